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
// that value's index in every shard that may hold it; otherwise Query
// walks every shard's stream; either way newest first, merged, bounded by
// From and To, and filtered with activity.Filter.Match (evmerge.go).
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

	start, end, err := s.bounds(&f)
	if err != nil {
		return activity.Page{}, fmt.Errorf("querying events: %w", err)
	}
	return s.queryMerged(ctx, &f, s.querySources(&f, start, end, limit), limit)
}

// bounds turns f's time range and cursor into XREVRANGE bounds.
func (s *Store) bounds(f *activity.Filter) (start, end string, err error) {
	// An entry's ID is at or after its event's time and less than MaxSkew
	// after it, so time bounds become ID bounds with that margin.
	start, end = "+", "-"
	if !f.To.IsZero() {
		start = strconv.FormatInt(f.To.Add(s.skew).UnixMilli(), 10)
		if f.To.Add(s.skew).UnixMilli() < 0 {
			// Before 1970: XREVRANGE refuses a negative ID, and no
			// entry is at 0-0 (XADD never makes it), so nothing.
			start = "0-0"
		}
	}
	if !f.From.IsZero() {
		end = strconv.FormatInt(max(f.From.UnixMilli(), 0), 10)
	}
	if f.Cursor != "" {
		if !validStreamID(f.Cursor) {
			return "", "", fmt.Errorf("%w %q", activity.ErrInvalidCursor, f.Cursor)
		}
		// Resume strictly below the cursor, unless the To bound is lower
		// still.
		if start == "+" || compareStreamIDs(f.Cursor, start) < 0 {
			start = "(" + f.Cursor
			if compareStreamIDs(f.Cursor, "0-0") == 0 {
				// XREVRANGE cannot go below 0-0: nothing is there.
				start = "0-0"
			}
		}
	}
	return start, end, nil
}

// Trim implements activity.Store, shard by shard.
func (s *Store) Trim(ctx context.Context, before time.Time) error {
	minID := strconv.FormatInt(max(before.UnixMilli(), 0), 10)
	for i := range s.shards {
		sh := &s.shards[i]
		if err := s.c.XTrimMinID(ctx, sh.events, minID).Err(); err != nil {
			return fail("trimming events", err)
		}
		if err := s.trimHistory(ctx, sh, before); err != nil {
			return err
		}
		if err := s.trimCounters(ctx, sh, before); err != nil {
			return err
		}
		// The indexes, to what the stream kept (retention and the cap).
		if err := s.trimIndexes(ctx, sh); err != nil {
			return err
		}
	}
	return nil
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
