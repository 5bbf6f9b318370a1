package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// Export reads ahead: see doc.go, "Export".

const (
	// exportChunk is how many entries a source's reader asks for at once
	// at most; its first read asks for exportFirst, so that the first
	// rows come soon, and each next read for twice as many.
	exportChunk = 512
	exportFirst = 64
	// exportReads bounds the Redis calls the store's exports have in
	// flight, all of them together (Store.exports), so that they leave
	// the connection pool to the requests however many run at once.
	exportReads = 4
	// exportDense is the share of the streams an index must hold at least
	// (one in exportDense) for an export to read it: fetching an event by
	// its ID costs a few times what reading it in order does.
	exportDense = 4
)

// exportEvent is a matching event and its parsed ID, for the merge.
type exportEvent struct {
	ms, seq uint64
	e       activity.Event
}

func (e *exportEvent) newer(o *exportEvent) bool {
	return e.ms > o.ms || e.ms == o.ms && e.seq > o.seq
}

// exportBatch is a run of matching events from one source, newest first.
type exportBatch struct {
	evs []exportEvent
	err error
}

// exportReader reads one source ahead of the merge: a shard's stream, an
// index stream or an index list, whose events it fetches from stream.
type exportReader struct {
	key    string   // the stream or index read in order
	stream string   // the shard's stream (key, or the index's events)
	events bool     // key is the stream: its entries are the events
	list   bool     // key is an index list: read whole, then done
	start  string   // the XREVRANGE start of the reader's first read
	ids    []string // a list's IDs, read with the snapshot
	ch     chan exportBatch
	cur    []exportEvent
	done   bool
}

// Export implements activity.Exporter. Every source (each shard's
// stream, or the filter's index in each shard) has a goroutine that
// reads, decodes and filters its next chunk while the caller writes the
// previous ones; the merge takes the newest head, so the order and the
// lack of gaps and duplicates are Query's.
func (s *Store) Export(ctx context.Context, f activity.Filter, each func(*activity.Event) error) error {
	if f.Sites != nil && len(f.Sites) == 0 {
		return nil
	}
	start, end, err := s.bounds(&f)
	if err != nil {
		return fmt.Errorf("exporting events: %w", err)
	}
	readers, err := s.exportReaders(ctx, &f)
	if err != nil {
		return err
	}
	if err := s.snapshot(ctx, readers, start); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	sem := s.exports
	for _, r := range readers {
		if r.done {
			continue
		}
		r.ch = make(chan exportBatch, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(r.ch)
			r.run(ctx, s, &f, r.start, end, sem)
		}()
	}
	var last *exportEvent
	for {
		var best *exportReader
		for _, r := range readers {
			for len(r.cur) == 0 && !r.done {
				b, ok := <-r.ch
				switch {
				case !ok:
					r.done = true
				case b.err != nil:
					return b.err
				default:
					r.cur = b.evs
				}
			}
			if len(r.cur) > 0 && (best == nil || r.cur[0].newer(&best.cur[0])) {
				best = r
			}
		}
		if best == nil {
			return ctx.Err()
		}
		ev := &best.cur[0]
		best.cur = best.cur[1:]
		if last != nil && ev.ms == last.ms && ev.seq == last.seq {
			continue // in two indexes: its subject's and its email's
		}
		last = ev
		if err := each(&ev.e); err != nil {
			return err
		}
	}
}

// exportReaders are the sources of an export of f: its index in every
// shard, unless the index is dense enough that reading the streams in
// order is cheaper; then every shard's stream.
func (s *Store) exportReaders(ctx context.Context, f *activity.Filter) ([]*exportReader, error) {
	keys := s.queryIndexKeys(f)
	if keys != nil {
		var idx, all []*redis.IntCmd
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				idx = append(idx, p.XLen(ctx, k), p.LLen(ctx, s.shardOfKey(k).indexList(k)))
			}
			for i := range s.shards {
				all = append(all, p.XLen(ctx, s.shards[i].events))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fail("exporting events", err)
		}
		var n, total int64
		for _, c := range idx {
			n += c.Val()
		}
		for _, c := range all {
			total += c.Val()
		}
		if n*exportDense >= total {
			keys = nil
		}
	}
	var rs []*exportReader
	if keys == nil {
		for i := range s.shards {
			rs = append(rs, &exportReader{key: s.shards[i].events, stream: s.shards[i].events, events: true})
		}
		return rs, nil
	}
	for _, k := range keys {
		sh := s.shardOfKey(k)
		rs = append(rs, &exportReader{key: k, stream: sh.events},
			&exportReader{key: sh.indexList(k), stream: sh.events, list: true})
	}
	return rs, nil
}

// snapshot reads the newest ID of every shard's stream in one pipeline
// and starts each reader at the newest of them (or lower, at start):
// events appended while the export runs are newer than its snapshot, as
// an index entry is written with its event, so the export is of one
// moment, with no gaps, as a walk of pages is. When every stream is
// empty the readers are done at once.
//
// The index lists are read here too, before any index stream: an Append
// that brings a list to smallIndex IDs moves them to the index's stream,
// and a stream read before that move and a list read after it would
// both miss them. Read in this order, the move at worst hands an ID over
// twice, which the merge drops.
func (s *Store) snapshot(ctx context.Context, readers []*exportReader, start string) error {
	tops := make(map[string]*redis.XMessageSliceCmd)
	lists := make([]*redis.StringSliceCmd, len(readers))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range readers {
			if tops[r.stream] == nil {
				tops[r.stream] = p.XRevRangeN(ctx, r.stream, "+", "-", 1)
			}
			if r.list {
				lists[i] = p.LRange(ctx, r.key, 0, -1)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fail("exporting events", err)
	}
	// The cut is the newest ID of them all, not each stream's own: on a
	// Cluster the pipeline's parts reach the masters in no set order, and
	// an event appended to one shard after its newest ID was read, but
	// before another's was, is older than what that other shard exports.
	cut := ""
	for _, c := range tops {
		if top := c.Val(); len(top) > 0 && (cut == "" || compareStreamIDs(top[0].ID, cut) > 0) {
			cut = top[0].ID
		}
	}
	for i, r := range readers {
		if r.list {
			r.ids = lists[i].Val()
		}
		switch {
		case cut == "":
			r.done = true
		case start == "+" || compareStreamIDs(cut, strings.TrimPrefix(start, "(")) < 0:
			r.start = cut
		default:
			r.start = start
		}
	}
	return nil
}

// run reads r's source from start to end in chunks, sending each chunk's
// matching events, until the source ends, a read fails (sent as the
// batch's err) or ctx is done.
func (r *exportReader) run(ctx context.Context, s *Store, f *activity.Filter, start, end string, sem chan struct{}) {
	send := func(b exportBatch) bool {
		select {
		case r.ch <- b:
			return b.err == nil
		case <-ctx.Done():
			return false
		}
	}
	call := func(fn func() error) error {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-sem }()
		return fn()
	}
	if r.list {
		G := uint64(len(s.shards))
		var in []string
		for _, v := range slices.Backward(r.ids) {
			if id := fullListID(v, G); inRange(id, start, end) {
				in = append(in, id)
			}
		}
		for len(in) > 0 {
			n := min(len(in), exportChunk)
			evs, err := r.fetch(ctx, s, f, in[:n], call)
			if (len(evs) > 0 || err != nil) && !send(exportBatch{evs: evs, err: err}) {
				return
			}
			in = in[n:]
		}
		return
	}
	within := false // start is the snapshot's or the cursor's, at first
	for chunk := int64(exportFirst); ; chunk = min(2*chunk, exportChunk) {
		var entries []any
		err := call(func() (err error) {
			// Raw, not XRevRangeN: its map per entry was most of an
			// export's decoding (decodeEventFlat).
			entries, err = s.revRangeEntries(ctx, r.key, start, end, chunk, within)
			return err
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			send(exportBatch{err: fail("exporting events", err)})
			return
		}
		var evs []exportEvent
		var ids []string
		if r.events {
			evs = make([]exportEvent, 0, len(entries))
		} else {
			ids = make([]string, 0, len(entries))
		}
		last := ""
		for _, en := range entries {
			id, kv, ok := streamEntry(en)
			if !ok {
				err = fmt.Errorf("exporting events: malformed XREVRANGE reply from %s", r.key)
				break
			}
			last = id
			if !r.events {
				ids = append(ids, id)
			} else if evs, err = appendMatch(evs, f, id, kv); err != nil {
				break
			}
		}
		if err == nil && !r.events {
			evs, err = r.fetch(ctx, s, f, ids, call)
		}
		if (len(evs) > 0 || err != nil) && !send(exportBatch{evs: evs, err: err}) {
			return
		}
		if int64(len(entries)) < chunk {
			return
		}
		start, within = "("+last, true
	}
}

// streamEntry takes apart one entry of a raw XRANGE reply: [id, [k, v, ...]].
func streamEntry(v any) (id string, kv []any, ok bool) {
	pair, ok := v.([]any)
	if !ok || len(pair) != 2 {
		return "", nil, false
	}
	id, ok = pair[0].(string)
	kv, _ = pair[1].([]any)
	return id, kv, ok
}

// fetch reads the events ids name in one pipeline and returns those f
// matches.
func (r *exportReader) fetch(ctx context.Context, s *Store, f *activity.Filter, ids []string, call func(func() error) error) ([]exportEvent, error) {
	evs := make([]exportEvent, 0, len(ids))
	var decodeErr error
	err := call(func() error {
		return s.eventsByID(ctx, ids, func(id string, kv []any) error {
			var err error
			evs, err = appendMatch(evs, f, id, kv)
			decodeErr = err
			return err
		})
	})
	switch {
	case decodeErr != nil:
		return nil, decodeErr
	case err != nil:
		return nil, fail("exporting events", err)
	}
	return evs, nil
}

// appendMatch decodes an entry and appends it to evs when f matches it.
func appendMatch(evs []exportEvent, f *activity.Filter, id string, kv []any) ([]exportEvent, error) {
	e, err := decodeEventFlat(id, kv)
	if err != nil {
		return evs, fmt.Errorf("exporting events: %w", err)
	}
	if !f.Match(&e) {
		return evs, nil
	}
	en := newEntry(id, nil)
	return append(evs, exportEvent{ms: en.ms, seq: en.seq, e: e}), nil
}
