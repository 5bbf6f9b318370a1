package redisstore

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/storetest"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// The email index must find every event Filter.Match accepts by email:
// foldKey agrees exactly with strings.EqualFold.
func TestFoldKey(t *testing.T) {
	words := []string{
		"alice@example.com", "ALICE@EXAMPLE.COM", "Alice@Example.Com", "alice@example.co",
		"k@x", "K@x", "\u212a@x", // Kelvin sign folds to k
		"s", "S", "\u017f", // long s folds to s
		"straße", "STRASSE", "ǅ", "ǆ", "Ǆ", "σ", "ς", "Σ", "", "\xff", "\xfe",
	}
	for _, a := range words {
		for _, b := range words {
			if eq, same := strings.EqualFold(a, b), foldKey(a) == foldKey(b); eq != same {
				t.Errorf("EqualFold(%q, %q) = %v but foldKey gives %q and %q", a, b, eq, foldKey(a), foldKey(b))
			}
		}
	}
}

// indexSizes returns how many IDs each index of s holds, by stream key.
func indexSizes(t *testing.T, s *Store) map[string]int64 {
	t.Helper()
	ctx := t.Context()
	out := map[string]int64{}
	for i := range s.shards {
		sh := &s.shards[i]
		keys, err := s.c.SMembers(ctx, sh.eventIndexes()).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			n := s.c.XLen(ctx, k).Val() + s.c.LLen(ctx, sh.indexList(k)).Val()
			out[strings.TrimPrefix(k, sh.events+":")] += n
		}
	}
	return out
}

// Regression (issue 8, item 7): index entries must not outlive their
// events, whether retention (Trim) or the cap (MAXLEN) dropped them, and
// an index left empty goes with its key.
func TestEventIndexesTrimmed(t *testing.T) {
	addr := testredis.Start(t)
	ctx := t.Context()
	t0 := storetest.T0.Truncate(time.Millisecond)
	event := func(i int) activity.Event {
		user := fmt.Sprintf("u%d", i%10)
		if i%2 == 0 {
			user = "heavy" // past smallIndex: a stream
		}
		return activity.Event{Time: t0.Add(time.Duration(i) * time.Second), Type: activity.Logout, User: user, Site: "a.example.com"}
	}

	t.Run("retention", func(t *testing.T) {
		s := newStore(t, addr, nil)
		const n = 1400
		for i := range n {
			e := event(i)
			mustIx(t, s.Append(ctx, &e))
		}
		cut := n / 2
		mustIx(t, s.Trim(ctx, t0.Add(time.Duration(cut)*time.Second)))
		want := map[string]int64{}
		for i := cut; i < n; i++ {
			e := event(i)
			want["u:"+e.User]++
			want["y:"+e.Type]++
			want["si:"+e.Site]++
		}
		if got := indexSizes(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("index sizes after Trim = %v, want %v", got, want)
		}
		mustIx(t, s.Trim(ctx, t0.Add(time.Duration(n)*time.Second)))
		if got := indexSizes(t, s); len(got) != 0 {
			t.Fatalf("indexes after trimming every event = %v, want none", got)
		}
		for i := range s.shards {
			keys, err := s.c.Keys(ctx, s.shards[i].events+":*").Result()
			mustIx(t, err)
			if len(keys) != 0 {
				t.Fatalf("keys left after trimming every event: %v", keys)
			}
		}
	})

	t.Run("cap", func(t *testing.T) {
		s, err := New(Options{Client: newClient(t, addr), Prefix: "evcap", EventMaxLen: 1000})
		mustIx(t, err)
		// "early" has events only among the first 200, which the cap
		// drops: it shares its shard with "heavy", whose later events
		// fill that shard's part of the cap.
		early := "early"
		for k := 0; session.UserGroup(early) != session.UserGroup("heavy"); k++ {
			early = fmt.Sprintf("early%d", k)
		}
		for i := range 3000 {
			e := event(i)
			if i < 200 && i%2 == 1 {
				e.User = early
			}
			mustIx(t, s.Append(ctx, &e))
		}
		mustIx(t, s.Trim(ctx, time.Time{}))
		if _, ok := indexSizes(t, s)["u:"+early]; ok {
			t.Fatalf("index of a user whose events the cap dropped is still there")
		}
		for i := range s.shards {
			sh := &s.shards[i]
			head := s.c.XRange(ctx, sh.events, "-", "+").Val()
			if len(head) == 0 {
				continue
			}
			first := head[0].ID
			keys, err := s.c.SMembers(ctx, sh.eventIndexes()).Result()
			mustIx(t, err)
			for _, key := range keys {
				ids := s.c.LRange(ctx, sh.indexList(key), 0, 0).Val()
				if m := s.c.XRangeN(ctx, key, "-", "+", 1).Val(); len(m) > 0 {
					ids = append(ids, m[0].ID)
				}
				for _, id := range ids {
					id = fullListID(id, uint64(len(s.shards)))
					if compareStreamIDs(id, first) < 0 {
						t.Fatalf("index %s holds %s, before its shard's first event %s", key, id, first)
					}
				}
			}
		}
		page, err := s.Query(ctx, activity.Filter{User: early})
		mustIx(t, err)
		if len(page.Items) != 0 || page.Next != "" {
			t.Fatalf("Query(early) = %d items, next %q; want none", len(page.Items), page.Next)
		}
	})
}

// An index entry whose event is gone (XDEL here; a trim between the two
// in practice) is skipped, and the page still fills.
func TestEventIndexDangling(t *testing.T) {
	s := newStore(t, testredis.Start(t), nil)
	ctx := t.Context()
	var ids []string
	for i := range 30 {
		e := activity.Event{Time: storetest.T0.Add(time.Duration(i) * time.Second), Type: activity.Logout, User: "alice"}
		mustIx(t, s.Append(ctx, &e))
		ids = append(ids, e.ID)
	}
	slices.Reverse(ids)
	mustIx(t, s.c.XDel(ctx, s.shardOfUser("alice").events, ids[3], ids[4]).Err())
	page, err := s.Query(ctx, activity.Filter{User: "alice", Limit: 10})
	mustIx(t, err)
	var got []string
	for _, e := range page.Items {
		got = append(got, e.ID)
	}
	want := append(slices.Clone(ids[:3]), ids[5:12]...)
	if !slices.Equal(got, want) || page.Next != want[9] {
		t.Fatalf("Query = %v, next %q; want %v, next %q", got, page.Next, want, want[9])
	}
}

// An index moves from its list to a stream at smallIndex IDs, all of them
// kept in order.
func TestEventIndexListToStream(t *testing.T) {
	s := newStore(t, testredis.Start(t), nil)
	ctx := t.Context()
	sh := s.shardOfUser("bob")
	key := sh.eventIndexKey(ixUser, "bob")
	for i := range smallIndex + 5 {
		if i == smallIndex-1 {
			if n := s.c.LLen(ctx, sh.indexList(key)).Val(); n != smallIndex-1 || s.c.Exists(ctx, key).Val() != 0 {
				t.Fatalf("before the move: list of %d, stream %d; want a list of %d and no stream", n, s.c.Exists(ctx, key).Val(), smallIndex-1)
			}
		}
		e := activity.Event{Time: storetest.T0.Add(time.Duration(i/3) * time.Millisecond), Type: activity.Logout, User: "bob"}
		mustIx(t, s.Append(ctx, &e))
	}
	if s.c.Exists(ctx, sh.indexList(key)).Val() != 0 || s.c.XLen(ctx, key).Val() != smallIndex+5 {
		t.Fatalf("after the move: list exists %d, stream of %d; want no list and %d", s.c.Exists(ctx, sh.indexList(key)).Val(), s.c.XLen(ctx, key).Val(), smallIndex+5)
	}
	all := s.c.XRange(ctx, sh.events, "-", "+").Val()
	idx := s.c.XRange(ctx, key, "-", "+").Val()
	for i := range all {
		if all[i].ID != idx[i].ID {
			t.Fatalf("index entry %d = %s, want %s (same-ms IDs keep their sequence)", i, idx[i].ID, all[i].ID)
		}
	}
}

func mustIx(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
