package redisstore

// Review of the packed event encoding (packedField, encodeEvent,
// unpackEvent): hostile values through Redis on RESP2, RESP3 and a
// Cluster; malformed values; and entries of the old encoding side by
// side with packed ones through every reader of the stream.

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/store/storetest"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// uvarint agrees with binary.Uvarint wherever that decodes, and fails
// wherever it fails: overflow, truncation, non-minimal encodings (which
// both accept, as encodeEvent never writes them).
func TestPackedReviewUvarintMatchesBinary(t *testing.T) {
	check := func(s string) {
		t.Helper()
		wn, ww := binary.Uvarint([]byte(s))
		n, w := uvarint(s)
		if ww > 0 && (n != wn || w != ww) || ww <= 0 && w > 0 {
			t.Fatalf("uvarint(%q) = %d, %d; binary.Uvarint = %d, %d", s, n, w, wn, ww)
		}
	}
	for a := range 256 {
		check(string([]byte{byte(a)}))
		for b := range 256 {
			check(string([]byte{byte(a), byte(b)}))
		}
	}
	for _, s := range []string{
		"", "\x80", "\x80\x00", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
		"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81",
		"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00",
	} {
		check(s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		b := make([]byte, r.IntN(13))
		for i := range b {
			b[i] = byte(r.UintN(256)) | byte(r.UintN(2))<<7
		}
		check(string(b))
	}
	for _, n := range []uint64{0, 1, 127, 128, 16383, 16384, 70 << 10, 1<<63 - 1, 1 << 63, ^uint64(0)} {
		check(string(binary.AppendUvarint(nil, n)))
	}
}

// valueEnds returns the offset at which each value of a packed value ends.
func valueEnds(t *testing.T, v string) []int {
	t.Helper()
	var ends []int
	for off := 1; off < len(v); {
		n, w := uvarint(v[off:])
		if w <= 0 {
			t.Fatalf("packed value %q does not decode", v)
		}
		off += w + int(n)
		ends = append(ends, off)
	}
	return ends
}

// Regression: a packed value cut at a value boundary ("\x01" alone, or
// the first few values) decoded without error, as an event whose other
// fields were empty, and an entry with no event field at all (an index
// entry's x, a foreign writer's) as a blank event with its ID: silently
// wrong events in a page or an export. Every packed entry holds at least
// the sixteen values of eventPackV1, and every entry of the old encoding
// a time field, t.
func TestPackedReviewMalformedIsError(t *testing.T) {
	e := hostileEvent()
	good := packed(&e)
	ends := valueEnds(t, good)
	if len(ends) != 16 {
		t.Fatalf("hostileEvent packs %d values, want 16", len(ends))
	}
	for _, tt := range []struct {
		name string
		kv   []any
	}{
		{"version byte alone", []any{packedField, "\x01"}},
		{"one value", []any{packedField, good[:ends[0]]}},
		{"15 of 16 values", []any{packedField, good[:ends[14]]}},
		{"index entry", []any{"x", ""}},
		{"unknown field only", []any{"zz", "1"}},
		{"no fields", []any{}},
		{"non-string value", []any{packedField, int64(1)}},
		{"value cut in a length", []any{packedField, good[:ends[12]+1]}},
	} {
		got, err := decodeEventFlat("1-0", tt.kv)
		if err == nil || !strings.Contains(err.Error(), "decoding event 1-0") {
			t.Errorf("%s: decodeEventFlat = %+v, %v; want an error for event 1-0", tt.name, got, err)
		}
	}
	// All sixteen, and the old encoding's time alone, still decode.
	if _, err := decodeEventFlat("1-0", []any{packedField, good[:ends[15]]}); err != nil {
		t.Errorf("16 values: %v", err)
	}
	if got, err := decodeEventFlat("1-0", []any{"t", "1700000000000"}); err != nil || got.Time.UnixMilli() != 1_700_000_000_000 {
		t.Errorf("old entry with a time alone = %+v, %v", got, err)
	}
}

// filterText shows a filter whose values may not be printable.
func filterText(f activity.Filter) string { return strconv.Quote(fmt.Sprintf("%+v", f)) }

// reviewTime is when the review's events happen, give or take.
var reviewTime = storetest.T0

// reviewEvents are events with odd values: empty, before 1970, long, NUL
// bytes, invalid UTF-8, values that look like the version byte or a
// length.
func reviewEvents() []activity.Event {
	at := func(d time.Duration) time.Time { return time.UnixMilli(reviewTime.Add(d).UnixMilli()).UTC() }
	return []activity.Event{
		{},
		{Type: activity.Logout, User: "zero-time", IP: "198.51.100.1"},
		{Time: time.UnixMilli(-86_400_000).UTC(), Type: activity.Logout, User: "before-1970", Detail: "\x00"},
		{Time: time.UnixMilli(-1).UTC(), Type: activity.AccessDenied, User: "just-before-1970"},
		{Time: time.UnixMilli(1).UTC(), Type: activity.AccessDenied, User: "just-after-1970"},
		{Time: at(time.Second), Type: activity.Anomaly, User: strings.Repeat("s", 100), Email: strings.Repeat("e", 100) + "@example.com",
			Site: "app.example.com", Detail: strings.Repeat("x", 70<<10) + "\x00end"},
		{Time: at(2 * time.Second), Type: "\x01", User: "\x01", Email: "\x01\x01", Site: "\x01", IP: "\x01\x7f",
			Reason: "\x01\x10", Detail: "\x01\x7f\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"},
		{Time: at(3 * time.Second), Type: activity.LoginFailed, User: "bad\xff\xfeutf8", Email: "nul\x00@example.com",
			Site: "\x00", IP: "203.0.113.7", City: "\xc3\x28", Device: "\xed\xa0\x80", Detail: "\x80\x80\x80\x80"},
		{Time: at(4 * time.Second), Type: activity.ExpiredIdle, User: "big", Site: "big.example.com",
			Inactivity: 1 << 40, Duration: 1, Detail: strings.Repeat("é", 1<<19)},
		{Time: at(5 * time.Second), Type: activity.Logout, User: "0", Email: "1", IP: "0", Reason: "-1", Actor: "00"},
		hostileEvent(),
	}
}

// appendReview appends evs to s and returns them with their IDs, keyed by
// ID.
func appendReview(t *testing.T, s *Store, evs []activity.Event) map[string]activity.Event {
	t.Helper()
	want := map[string]activity.Event{}
	for i := range evs {
		e := evs[i]
		if err := s.Append(t.Context(), &e); err != nil {
			t.Fatalf("appending event %d: %v", i, err)
		}
		if _, dup := want[e.ID]; dup || e.ID == "" {
			t.Fatalf("event %d got ID %q twice or none", i, e.ID)
		}
		want[e.ID] = e
	}
	return want
}

// checkReviewReads reads want back from s every way there is: the raw
// entry (whose packed value must be encodeEvent's bytes exactly), Query
// over the streams and through each index, and Export likewise.
func checkReviewReads(t *testing.T, s *Store, want map[string]activity.Event) {
	t.Helper()
	ctx := t.Context()
	for id, e := range want {
		raw, err := s.c.Do(ctx, "XRANGE", s.shardOfEventID(id).events, id, id).Slice()
		if err != nil || len(raw) != 1 {
			t.Fatalf("XRANGE %s = %v, %v", id, raw, err)
		}
		_, kv, _ := streamEntry(raw[0])
		if len(kv) != 2 || kv[0] != packedField || kv[1] != packed(&e) {
			t.Errorf("entry %s holds %.200q, want %q and its packed value", id, kv, packedField)
		}
	}
	filters := []activity.Filter{{}, {Limit: 2}}
	seen := map[string]bool{}
	for _, e := range want {
		for _, f := range []activity.Filter{{User: e.User}, {User: e.Email}, {Types: []string{e.Type}}, {Site: e.Site}, {IPPrefix: e.IP}} {
			if k := filterText(f); !seen[k] && (f.User != "" || f.Types != nil && f.Types[0] != "" || f.Site != "" || f.IPPrefix != "") {
				seen[k] = true
				filters = append(filters, f)
			}
		}
	}
	for _, f := range filters {
		exp := matchingIDs(want, f)
		got, exported := queryAndExport(t, s, f)
		for name, evs := range map[string][]activity.Event{"Query": got, "Export": exported} {
			var ids []string
			for i, e := range evs {
				ids = append(ids, e.ID)
				if w := want[e.ID]; e != w {
					t.Errorf("%s(%s) item %d:\n got %.300v\nwant %.300v", name, filterText(f), i, e, w)
				}
			}
			if !slices.Equal(ids, exp) {
				t.Errorf("%s(%s) = IDs %v, want %v", name, filterText(f), ids, exp)
			}
		}
	}
}

// Hostile values go through Lua's ARGV into XADD and come back unchanged,
// whichever protocol wrote them and whichever reads them.
func TestPackedReviewHostileValues(t *testing.T) {
	addr := testredis.Start(t)
	for _, wp := range []int{2, 3} {
		prefix := fmt.Sprintf("pr%d", prefixes.Add(1))
		open := func(p int) *Store {
			c := redis.NewClient(&redis.Options{Addr: addr, Protocol: p})
			t.Cleanup(func() { c.Close() })
			s, err := New(Options{Client: c, Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		want := appendReview(t, open(wp), reviewEvents())
		for _, rp := range []int{2, 3} {
			t.Run(fmt.Sprintf("written RESP%d read RESP%d", wp, rp), func(t *testing.T) {
				checkReviewReads(t, open(rp), want)
			})
		}
	}
}

// The same on a Cluster, where the script runs on the master of its keys.
func TestPackedReviewHostileValuesCluster(t *testing.T) {
	c := testredis.StartCluster(t, 3)
	for _, p := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", p), func(t *testing.T) {
			cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Protocol: p})
			t.Cleanup(func() { cc.Close() })
			s, err := New(Options{Client: cc, Prefix: fmt.Sprintf("pc%d", prefixes.Add(1))})
			if err != nil {
				t.Fatal(err)
			}
			checkReviewReads(t, s, appendReview(t, s, reviewEvents()))
		})
	}
}

// appendOld appends e as an entry of the old encoding (its values as
// fields of their own), with its index entries and counters, as Append
// did before packedField; it sets e.ID.
func appendOld(t *testing.T, s *Store, e *activity.Event) {
	t.Helper()
	keys, args := s.appendArgs(e)
	args = append(args[:len(args)-2], encodeEventFlat(e)...)
	id, err := appendIndexedScript.Run(t.Context(), s.c, keys, args...).Text()
	if err != nil {
		t.Fatalf("appending an old entry: %v", err)
	}
	e.ID = id
}

// Old and packed entries interleaved in the same stream nodes and the
// same indexes (lists and, past smallIndex, streams) read alike through
// every path: Query over the streams and through the indexes
// (eventsByID), paged, with time bounds, and Export over the streams and
// through the indexes.
func TestPackedReviewMixedEntries(t *testing.T) {
	s := newStorePrefix(t, testredis.Start(t), fmt.Sprintf("pm%d", prefixes.Add(1)), nil)
	ctx := t.Context()
	const n = 1100 // two users of 550 events: their indexes are streams
	want := map[string]activity.Event{}
	for i := range n {
		e := realisticEvent(i)
		e.User, e.Email = fmt.Sprintf("user-%d", i%2), fmt.Sprintf("User%d@Example.com", i%2)
		e.SessionID = ""
		e.Time = time.UnixMilli(e.Time.UnixMilli()).UTC() // as it reads back
		if i%7 == 3 {
			e.Detail = strings.Repeat("d", 100+i)
		}
		// Old and new alternate in runs of 1 to 3, so that both start
		// nodes.
		if i/(1+i%3)%2 == 0 {
			appendOld(t, s, &e)
		} else if err := s.Append(ctx, &e); err != nil {
			t.Fatal(err)
		}
		want[e.ID] = e
	}
	var old, cur int
	for i := range s.shards {
		raw, err := s.c.Do(ctx, "XRANGE", s.shards[i].events, "-", "+").Slice()
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range raw {
			if _, kv, _ := streamEntry(en); len(kv) == 2 {
				cur++
			} else {
				old++
			}
		}
	}
	if old == 0 || cur == 0 || old+cur != n {
		t.Fatalf("%d old and %d packed entries, want both, %d in all", old, cur, n)
	}
	check := func(f activity.Filter) {
		t.Helper()
		exp := matchingIDs(want, f)
		got, exported := queryAndExport(t, s, f)
		for name, evs := range map[string][]activity.Event{"Query": got, "Export": exported} {
			var ids []string
			for i, e := range evs {
				ids = append(ids, e.ID)
				if w := want[e.ID]; e != w {
					t.Fatalf("%s(%+v) item %d:\n got %+v\nwant %+v", name, f, i, e, w)
				}
			}
			if !slices.Equal(ids, exp) {
				t.Fatalf("%s(%+v): %d IDs, want %d (%v...)", name, f, len(ids), len(exp), exp[:min(len(exp), 3)])
			}
		}
	}
	from, to := reviewTime.Add(20*time.Second), reviewTime.Add(70*time.Second)
	for _, f := range []activity.Filter{
		{}, {Limit: 7},
		{User: "user-1", Limit: 50}, {User: "USER0@example.COM"},
		{Types: []string{activity.LoginFailed}, Limit: 9}, {Types: []string{activity.ExpiredIdle, activity.Logout}},
		{Site: "app.example.com", Limit: 333}, {IPPrefix: "203.0."}, {IPPrefix: "203.0.7"},
		{From: from, To: to}, {User: "user-0", From: from, To: to, Limit: 5},
		{Types: []string{activity.AccessDenied}, From: from},
	} {
		check(f)
	}
}

// A malformed entry, in the stream and in its indexes, makes Query and
// Export fail with an error that names it, never a panic or a quietly
// wrong event; Query's error says that it was querying.
func TestPackedReviewMalformedEntry(t *testing.T) {
	for name, bad := range map[string]string{
		"truncated":      "\x01\x7fshort",
		"unknown":        "\x02\x010",
		"too few values": "\x01\x0d1700000000000\x06logout\x01u",
	} {
		t.Run(name, func(t *testing.T) {
			s := newStorePrefix(t, testredis.Start(t), fmt.Sprintf("pb%d", prefixes.Add(1)), nil)
			ctx := t.Context()
			for i := range 3 {
				e := activity.Event{Time: reviewTime.Add(time.Duration(i) * time.Second), Type: activity.Logout, User: "u"}
				if err := s.Append(ctx, &e); err != nil {
					t.Fatal(err)
				}
			}
			e := activity.Event{Time: reviewTime.Add(5 * time.Second), Type: activity.Logout, User: "u"}
			keys, args := s.appendArgs(&e)
			args[len(args)-1] = bad
			id, err := appendIndexedScript.Run(ctx, s.c, keys, args...).Text()
			if err != nil {
				t.Fatal(err)
			}
			// Two above it, so that a page of one needs no more.
			var later activity.Event
			for i := range 2 {
				later = activity.Event{Time: reviewTime.Add(time.Duration(8+i) * time.Second), Type: activity.Logout, User: "u"}
				if err := s.Append(ctx, &later); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []activity.Filter{{}, {User: "u"}, {Types: []string{activity.Logout}}} {
				page, err := s.Query(ctx, f)
				if err == nil || !strings.Contains(err.Error(), "decoding event "+id) || !strings.HasPrefix(err.Error(), "querying events") {
					t.Errorf("Query(%+v) = %+v, %v; want a querying error naming %s", f, page.Items, err, id)
				}
				err = s.Export(ctx, f, func(*activity.Event) error { return nil })
				if err == nil || !strings.Contains(err.Error(), "decoding event "+id) {
					t.Errorf("Export(%+v) = %v, want an error naming %s", f, err, id)
				}
			}
			// Pages above it still read.
			page, err := s.Query(ctx, activity.Filter{Limit: 1})
			if err != nil || len(page.Items) != 1 || page.Items[0].ID != later.ID {
				t.Errorf("first page above the bad entry = %+v, %v", page.Items, err)
			}
		})
	}
}

// matchingIDs are the IDs of the events of want that f matches, newest
// first.
func matchingIDs(want map[string]activity.Event, f activity.Filter) []string {
	var exp []string
	for id, e := range want {
		if f.Match(&e) {
			exp = append(exp, id)
		}
	}
	slices.SortFunc(exp, func(a, b string) int { return compareStreamIDs(b, a) })
	return exp
}

// queryAndExport reads every event f matches twice: through Query, page
// by page, and through Export.
func queryAndExport(t *testing.T, s *Store, f activity.Filter) (queried, exported []activity.Event) {
	t.Helper()
	for g := f; ; {
		page, err := s.Query(t.Context(), g)
		if err != nil {
			t.Fatalf("Query(%s): %v", filterText(f), err)
		}
		queried = append(queried, page.Items...)
		if page.Next == "" {
			break
		}
		g.Cursor = page.Next
	}
	err := s.Export(t.Context(), f, func(e *activity.Event) error {
		exported = append(exported, *e)
		return nil
	})
	if err != nil {
		t.Fatalf("Export(%s): %v", filterText(f), err)
	}
	return queried, exported
}
