package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// loginAt is a realistic login_succeeded event: i makes it unique, users
// spreads it over that many users.
func loginAt(i, users int, t0 time.Time) activity.Event {
	e := activity.Event{
		Time: t0.Add(time.Duration(i) * time.Second), Type: activity.LoginSucceeded,
		User: fmt.Sprintf("f:3a1b2c3d-4e5f-6a7b-8c9d-%012d:user%d", i%users, i%users), Email: fmt.Sprintf("user%d@example.com", i%users),
		SessionID: fmt.Sprintf("sess%018d", i), Site: "app.example.com", IP: fmt.Sprintf("203.0.%d.%d", i%256, i%253),
		City: "Amsterdam", Country: "NL", Device: "Chrome on Windows", MFA: i%2 == 0,
		IssuerKey: "k7Hc2p", Actor: fmt.Sprintf("user%d@example.com", i%users),
	}
	// One login in 10,000 is on a rare site, one in 1,000 on another.
	switch {
	case i%10_000 == 1:
		e.Site = "rare.example.com"
	case i%1000 == 2:
		e.Site = "other.example.com"
	}
	return e
}

// loadLogins writes n history rows, pipelined, as Append would.
func loadLogins(ctx context.Context, t testing.TB, s *Store, n, users int, t0 time.Time) {
	t.Helper()
	if err := historyBeginScript.Load(ctx, s.c).Err(); err != nil {
		t.Fatal(err)
	}
	for from := 0; from < n; from += 1000 {
		pipe := s.c.Pipeline()
		for i := from; i < min(from+1000, n); i++ {
			e := loginAt(i, users, t0)
			keys, args := s.beginArgs(s.shardOfEvent(&e), &e)
			historyBeginScript.EvalSha(ctx, pipe, keys, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("loading logins %d-: %v", from, err)
		}
	}
}

// TestHistoryAtScale measures what a login history row costs in Redis
// and how fast first pages are with 200,000 rows of 20,000 users (the
// figures in doc.go, "Login history"): a user's or a site's page reads
// its own index, so it does not grow with the log, and a rare site's
// first page has every match.
func TestHistoryAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 200,000 rows")
	}
	addr := testredis.Start(t)
	s := newStorePrefix(t, addr, "hs", nil)
	ctx := t.Context()
	const n, users = 200_000, 20_000
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	before := usedMemory(t, s.c)
	loadLogins(ctx, t, s, n, users, t0)
	per := float64(usedMemory(t, s.c)-before) / n
	t.Logf("%d login history rows: %.0f bytes/row in Redis", n, per)
	if per > 700 {
		t.Errorf("%.0f bytes a row, want at most 700", per)
	}
	for _, tc := range []struct {
		name string
		f    activity.HistoryFilter
		want int
	}{
		{"everyone", activity.HistoryFilter{}, activity.DefaultLimit},
		{"one user", activity.HistoryFilter{User: loginAt(7, users, t0).User}, n / users},
		{"one user, a month", activity.HistoryFilter{User: loginAt(7, users, t0).User, From: t0.Add(100_000 * time.Second)}, n / users / 2},
		{"date range", activity.HistoryFilter{From: t0.Add(50_000 * time.Second), To: t0.Add(60_000 * time.Second)}, activity.DefaultLimit},
		// Every match, not a short page with a cursor.
		{"rare site", activity.HistoryFilter{Site: "rare.example.com"}, n / 10_000},
		{"reach of two sites", activity.HistoryFilter{Sites: []string{"rare.example.com", "other.example.com"}}, activity.DefaultLimit},
	} {
		start := time.Now()
		page, err := s.History(ctx, tc.f)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: first page of %d rows in %v", tc.name, len(page.Items), took)
		if len(page.Items) != tc.want {
			t.Errorf("%s: %d rows, want %d", tc.name, len(page.Items), tc.want)
		}
		if took > 100*time.Millisecond {
			t.Errorf("%s: first page took %v, want ≤ 100 ms", tc.name, took)
		}
	}
}

// Issue 8, item 1: the inactivity field held a Go duration string before
// it held seconds; entries written then still read, as seconds.
func TestEventInactivityOldFormat(t *testing.T) {
	addr := testredis.Start(t)
	s := newStorePrefix(t, addr, "old", nil)
	ctx := t.Context()
	vals := encodeEventFlat(&activity.Event{Time: time.UnixMilli(1_700_000_000_000), Type: activity.ExpiredIdle, User: "alice"})
	for i := 0; i < len(vals); i += 2 {
		if vals[i] == "in" {
			vals[i+1] = "31m0s"
		}
	}
	// As written before issue 8: no du field.
	vals = vals[:len(vals)-2]
	if err := s.c.XAdd(ctx, &redis.XAddArgs{Stream: s.shardOfUser("alice").events, ID: "1700000000000-" + strconv.Itoa(s.shardOfUser("alice").n), Values: vals}).Err(); err != nil {
		t.Fatal(err)
	}
	page, err := s.Query(ctx, activity.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].Inactivity != 31*60 || page.Items[0].Duration != 0 {
		t.Fatalf("old entry reads as %+v, want inactivity 1860 and no duration", page.Items)
	}
}

// Trim and the cap leave no index entry behind a dropped row: stale
// entries would read as nothing, but cost memory and scan budget.
func TestHistoryDropLeavesNothing(t *testing.T) {
	addr := testredis.Start(t)
	ctx := t.Context()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	keysOf := func(s *Store) []string {
		var keys []string
		for i := range s.shards {
			k, err := s.c.Keys(ctx, s.shards[i].tag+":h*").Result()
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k...)
		}
		return keys
	}
	s := newStorePrefix(t, addr, "drop", nil)
	loadLogins(ctx, t, s, 300, 7, t0)
	if err := s.Trim(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if k := keysOf(s); len(k) != 0 {
		t.Errorf("after trimming every row: keys %v", k)
	}

	// Capped at 10 rows (EventMaxLen 20): 10 rows, their indexes only.
	c, err := New(Options{Client: newClient(t, addr), Prefix: "dropcap", EventMaxLen: 20})
	if err != nil {
		t.Fatal(err)
	}
	loadLogins(ctx, t, c, 300, 7, t0)
	var entries int64
	for _, k := range keysOf(c) {
		if typ, _ := c.c.Type(ctx, k).Result(); typ == "zset" {
			entries += c.c.ZCard(ctx, k).Val()
		}
	}
	// Each shard keeps its part of the cap: one row here.
	var rows int64
	for i := range c.shards {
		n := c.c.ZCard(ctx, c.shards[i].historyAll()).Val()
		if n > 1 {
			t.Errorf("capped: shard %d holds %d rows, want at most 1", i, n)
		}
		rows += n
	}
	if rows == 0 || entries != 3*rows {
		t.Errorf("capped: %d rows, %d index entries; want some rows and 3 entries each", rows, entries)
	}
}
