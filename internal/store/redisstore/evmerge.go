package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// Query reads several ordered sources at once (every shard's stream, or
// an index in every shard) and merges them newest first; see doc.go,
// "Event indexes" and "Shards".

// evSource is one sequence of event IDs read newest first: a shard's
// event stream (whose entries are the events), an index stream (entries
// name events by ID), or an index list, read whole at once.
type evSource struct {
	key    string
	list   bool // an index list: read whole, then done
	events bool // the entries are the events themselves
	chunk  int64
	start  string // XREVRANGE start of the next read
	within bool   // start continues below an entry the source returned
	buf    []evEntry
	done   bool
}

type evEntry struct {
	id      string
	ms, seq uint64 // id, parsed once: the merge compares them often
	values  []any  // the entry's fields and values; nil for an index entry
}

func newEntry(id string, values []any) evEntry {
	m, q, _ := strings.Cut(id, "-")
	ms, _ := strconv.ParseUint(m, 10, 64)
	seq, _ := strconv.ParseUint(q, 10, 64)
	return evEntry{id: id, ms: ms, seq: seq, values: values}
}

// newer orders entries newest first.
func (e *evEntry) newer(o *evEntry) bool {
	return e.ms > o.ms || e.ms == o.ms && e.seq > o.seq
}

// mergedEvents walks sources newest first between start and end (XREVRANGE
// bounds), refilling the sources that run dry in one pipelined round trip,
// so that each entry is read once and an ID is taken only once every
// source has been read down to it.
type mergedEvents struct {
	s       *Store
	sources []*evSource
	end     string
	last    string // the last ID taken, to drop the same ID from two indexes
}

func (s *Store) newMerged(keys []string, lists []string, events bool, start, end string, limit int) *mergedEvents {
	m := &mergedEvents{s: s, end: end}
	n := len(keys)
	// A source's first read is its share of the page and a quarter more,
	// so that a page usually takes one round trip without reading (and
	// decoding) much that the next page reads again; a source that runs
	// dry reads twice as much the next time.
	chunk := int64(min(max((limit+1)*5/4/max(n, 1)+4, 16), activity.MaxLimit+1))
	for _, k := range keys {
		m.sources = append(m.sources, &evSource{key: k, events: events, chunk: chunk, start: start})
	}
	for _, l := range lists {
		m.sources = append(m.sources, &evSource{key: l, list: true, start: start})
	}
	return m
}

// fill reads the next chunk of every source that ran dry and is not done.
func (m *mergedEvents) fill(ctx context.Context) error {
	var todo []*evSource
	for _, src := range m.sources {
		if len(src.buf) == 0 && !src.done {
			todo = append(todo, src)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	streams := make([]*redis.Cmd, len(todo))
	lists := make([]*redis.StringSliceCmd, len(todo))
	err := m.s.pipelinedRevRange(ctx, func(p redis.Pipeliner) error {
		for i, src := range todo {
			if src.list {
				lists[i] = p.LRange(ctx, src.key, 0, -1)
			} else {
				streams[i] = revRange(ctx, p, src.key, src.start, m.end, src.chunk, src.within)
			}
		}
		return nil
	})
	if err != nil {
		return fail("querying events", err)
	}
	G := uint64(len(m.s.shards))
	for i, src := range todo {
		if src.list {
			src.done = true
			ids := lists[i].Val()
			for j := len(ids) - 1; j >= 0; j-- {
				id := fullListID(ids[j], G)
				if inRange(id, src.start, m.end) {
					src.buf = append(src.buf, newEntry(id, nil))
				}
			}
			continue
		}
		msgs, _ := streams[i].Slice()
		last := ""
		for _, en := range msgs {
			id, kv, ok := streamEntry(en)
			if !ok {
				return fmt.Errorf("querying events: malformed XREVRANGE reply from %s", src.key)
			}
			if !src.events {
				kv = nil
			}
			src.buf = append(src.buf, newEntry(id, kv))
			last = id
		}
		if int64(len(msgs)) < src.chunk {
			src.done = true
		} else {
			src.start, src.within = "("+last, true
			src.chunk = min(2*src.chunk, activity.MaxLimit+1)
		}
	}
	return nil
}

// next returns the newest entry not taken yet; ok is false when every
// source is exhausted. It reads from Redis only when a source ran dry.
func (m *mergedEvents) next(ctx context.Context) (e evEntry, ok bool, err error) {
	for {
		if err := m.fill(ctx); err != nil {
			return evEntry{}, false, err
		}
		var best *evSource
		for _, src := range m.sources {
			if len(src.buf) > 0 && (best == nil || src.buf[0].newer(&best.buf[0])) {
				best = src
			}
		}
		if best == nil {
			return evEntry{}, false, nil
		}
		e = best.buf[0]
		best.buf = best.buf[1:]
		if e.id == m.last {
			// The same event in two indexes (its subject's and its
			// email's).
			continue
		}
		m.last = e.id
		return e, true, nil
	}
}

// errStopFetch ends an eventsByID walk that has what it needs.
var errStopFetch = errors.New("stop fetching")

// fullListID undoes listid (luaIDs): an integer is ms * G + seq.
func fullListID(v string, G uint64) string {
	if strings.Contains(v, "-") {
		return v
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return v
	}
	return strconv.FormatUint(n/G, 10) + "-" + strconv.FormatUint(n%G, 10)
}

// queryMerged serves Query from the merged sources: events come with
// the stream entries, or, from indexes, are fetched by ID from their
// shard's stream in batches about the size of what the page still needs.
// It examines at most EventMaxScan entries and then returns a page whose
// Next continues.
func (s *Store) queryMerged(ctx context.Context, f *activity.Filter, m *mergedEvents, limit int) (activity.Page, error) {
	var page activity.Page
	seen, lastID := 0, ""
	var pending []string
	// check decodes an event and adds it to the page; full reports that
	// the page is complete (limit items and one more behind them).
	check := func(id string, vals []any) (full bool, err error) {
		e, err := decodeEventFlat(id, vals)
		if err != nil {
			return false, fmt.Errorf("querying events: %w", err)
		}
		if !f.Match(&e) {
			return false, nil
		}
		if len(page.Items) == limit {
			page.Next = page.Items[limit-1].ID
			return true, nil
		}
		page.Items = append(page.Items, e)
		return false, nil
	}
	flush := func() (bool, error) {
		if len(pending) == 0 {
			return false, nil
		}
		ids := pending
		pending = pending[:0]
		full := false
		var checkErr error
		err := s.eventsByID(ctx, ids, func(id string, kv []any) error {
			full, checkErr = check(id, kv)
			if full || checkErr != nil {
				return errStopFetch
			}
			return nil
		})
		switch {
		case full || checkErr != nil:
			return full, checkErr
		case err != nil:
			return false, fail("querying events", err)
		}
		return false, nil
	}
	for seen < s.evScan {
		e, ok, err := m.next(ctx)
		if err != nil {
			return activity.Page{}, err
		}
		if !ok {
			break
		}
		seen++
		lastID = e.id
		if e.values != nil {
			if full, err := check(e.id, e.values); full || err != nil {
				return page, err
			}
			continue
		}
		pending = append(pending, e.id)
		// Fetch about what the page still needs (and one more to know
		// that more follow), at least a few dozen at a time.
		if len(pending) >= max(limit+1-len(page.Items), 32) {
			if full, err := flush(); full || err != nil {
				return page, err
			}
		}
	}
	if full, err := flush(); full || err != nil {
		return page, err
	}
	if seen >= s.evScan {
		// Out of budget: let the caller continue from where it stopped.
		page.Next = lastID
	}
	return page, nil
}

// querySources returns the merged sources for f: its index keys in every
// shard that may hold them (with their list forms), or every shard's
// stream.
func (s *Store) querySources(f *activity.Filter, start, end string, limit int) *mergedEvents {
	keys := s.queryIndexKeys(f)
	if keys == nil {
		streams := make([]string, len(s.shards))
		for i := range s.shards {
			streams[i] = s.shards[i].events
		}
		return s.newMerged(streams, nil, true, start, end, limit)
	}
	lists := make([]string, len(keys))
	for i, k := range keys {
		lists[i] = s.shardOfKey(k).indexList(k)
	}
	return s.newMerged(keys, lists, false, start, end, limit)
}

// shardOfKey is the shard whose tag starts key.
func (s *Store) shardOfKey(key string) *shard {
	for i := range s.shards {
		if strings.HasPrefix(key, s.shards[i].tag) {
			return &s.shards[i]
		}
	}
	panic("redisstore: key " + key + " is in no shard")
}
