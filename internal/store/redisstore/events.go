package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// Append implements activity.Store. The event's ID is its stream entry ID,
// which follows its time (see appendIndexedScript). Sign-ins and session ends
// then update the login history (history.go); when that fails the event
// is stored all the same, with its ID set, and the error says so.
func (s *Store) Append(ctx context.Context, e *activity.Event) error {
	// With its index entries (evindex.go).
	id, err := s.appendIndexed(ctx, e)
	if err != nil {
		return fail("appending event", err)
	}
	e.ID = id
	return s.recordHistory(ctx, e)
}

// Query implements activity.Store. A filter on a user, site or type reads
// that value's index (queryIndexed); otherwise Query walks the stream
// newest first in chunks, bounded by From and To. Both filter with
// activity.Filter.Match.
// When the filter rejects most events, one call examines at most
// EventMaxScan of them and may return a short page whose Next continues.
func (s *Store) Query(ctx context.Context, f activity.Filter) (activity.Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = activity.DefaultLimit
	}
	limit = min(limit, activity.MaxLimit)
	if f.Sites != nil && len(f.Sites) == 0 {
		// An admin who reaches no site sees nothing: no need to scan.
		return activity.Page{}, nil
	}

	// An entry's ID is at or after its event's time and less than MaxSkew
	// after it, so time bounds become ID bounds with that margin.
	start, end := "+", "-"
	if !f.To.IsZero() {
		start = strconv.FormatInt(f.To.Add(s.skew).UnixMilli(), 10)
	}
	if !f.From.IsZero() {
		end = strconv.FormatInt(max(f.From.UnixMilli(), 0), 10)
	}
	if f.Cursor != "" {
		if !validStreamID(f.Cursor) {
			return activity.Page{}, fmt.Errorf("querying events: %w %q", activity.ErrInvalidCursor, f.Cursor)
		}
		// Resume strictly below the cursor, unless the To bound is lower
		// still.
		if start == "+" || compareStreamIDs(f.Cursor, start) < 0 {
			start = "(" + f.Cursor
		}
	}

	if keys := s.queryIndexKeys(&f); keys != nil {
		// A user, site or type: read its index (evindex.go).
		return s.queryIndexed(ctx, &f, keys, start, end, limit)
	}

	var page activity.Page
	// limit+1 at most, enough to fill a page and know that more follow.
	chunk := int64(min(max(2*limit, 100), activity.MaxLimit+1))
	seen, lastID := 0, ""
	for seen < s.evScan {
		msgs, err := s.c.XRevRangeN(ctx, s.events, start, end, chunk).Result()
		if err != nil {
			return activity.Page{}, fail("querying events", err)
		}
		for _, m := range msgs {
			seen++
			lastID = m.ID
			e, err := decodeEvent(m.ID, m.Values)
			if err != nil {
				return activity.Page{}, err
			}
			if !f.Match(&e) {
				continue
			}
			if len(page.Items) == limit {
				page.Next = page.Items[limit-1].ID
				return page, nil
			}
			page.Items = append(page.Items, e)
		}
		if int64(len(msgs)) < chunk {
			return page, nil
		}
		start = "(" + lastID
		// Wider chunks once it is clear the filter is selective.
		chunk = min(2*chunk, activity.MaxLimit+1)
	}
	// Out of budget: let the caller continue from where the scan stopped.
	page.Next = lastID
	return page, nil
}

// Trim implements activity.Store.
func (s *Store) Trim(ctx context.Context, before time.Time) error {
	minID := strconv.FormatInt(max(before.UnixMilli(), 0), 10)
	if err := s.c.XTrimMinID(ctx, s.events, minID).Err(); err != nil {
		return fail("trimming events", err)
	}
	if err := s.trimHistory(ctx, before); err != nil {
		return err
	}
	// The indexes, to what the stream kept (retention and the cap).
	return s.trimIndexes(ctx)
}

// validStreamID checks the shape ms-seq.
func validStreamID(id string) bool {
	a, b, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(a, 10, 64)
	_, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil
}

// compareStreamIDs orders full or ms-only IDs; a bare ms compares as its
// largest ID, which is what it means as an XREVRANGE start.
func compareStreamIDs(a, b string) int {
	parse := func(id string) (uint64, uint64) {
		m, q, ok := strings.Cut(id, "-")
		ms, _ := strconv.ParseUint(m, 10, 64)
		if !ok {
			return ms, ^uint64(0)
		}
		seq, _ := strconv.ParseUint(q, 10, 64)
		return ms, seq
	}
	am, as := parse(a)
	bm, bs := parse(b)
	switch {
	case am != bm:
		if am < bm {
			return -1
		}
		return 1
	case as != bs:
		if as < bs {
			return -1
		}
		return 1
	}
	return 0
}
