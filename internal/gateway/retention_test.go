package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
	"github.com/gatehouse-proxy/gatehouse/internal/store/redisstore"
	"github.com/gatehouse-proxy/gatehouse/internal/testclock"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// Issue 8, item 1: the log keeps events for the retention, measured by the
// runtime's clock, and never more than the store's hard cap, whatever the
// retention. Both run under an injected clock: five days of hourly events
// with a two-day retention, then a burst past the cap.
func TestRetentionAndCap(t *testing.T) {
	const capMem, capRedis = 200, 300
	for _, tc := range []struct {
		name string
		// lo, hi bound the events kept after the burst: Redis keeps
		// the cap in 16 shards, a sixteenth (rounded up) each.
		lo, hi int
		open   func(t *testing.T, now func() time.Time) backend
	}{
		{"memory", capMem, capMem, func(t *testing.T, now func() time.Time) backend {
			return memstore.New(memstore.Options{Now: now, EventMaxLen: capMem})
		}},
		{"redis", capRedis, capRedis + 16, func(t *testing.T, now func() time.Time) backend {
			st, err := redisstore.New(redisstore.Options{URL: "redis://" + testredis.Start(t), Now: now, EventMaxLen: capRedis})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clock := testclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
			st := tc.open(t, clock.Now)
			rt, err := NewRuntime(RuntimeConfig{Store: st, Events: st, Secret: testSecret, Now: clock.Now, Retention: 48 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(rt.Close)
			// Of many users: the Redis store splits its cap over 16
			// shards, each user's events in one of them.
			for i := range 5 * 24 {
				rt.Record(ctx, activity.Event{Type: activity.Logout, User: fmt.Sprintf("user%d", i%40)})
				clock.Advance(time.Hour)
			}
			rt.trim(ctx)
			kept := allEvents(t, st)
			cut := clock.Now().Add(-48 * time.Hour)
			// Hourly events from 0h to 119h, now 120h: 72h..119h stay.
			if len(kept) != 48 {
				t.Errorf("after trim at %v: %d events, want 48", clock.Now(), len(kept))
			}
			for _, e := range kept {
				if e.Time.Before(cut) {
					t.Errorf("event of %v kept past the retention (cut %v)", e.Time, cut)
				}
			}

			// A burst within the retention: the cap holds, newest kept.
			for i := range 3000 {
				// From many addresses, as a distributed flood of bogus
				// callbacks would come.
				ip := fmt.Sprintf("198.51.%d.%d", i/250, i%250)
				rt.Record(ctx, activity.Event{Type: activity.LoginFailed, Reason: activity.ReasonStateMismatch, Detail: "burst", IP: ip})
				if i%100 == 0 {
					clock.Advance(time.Second)
				}
			}
			kept = allEvents(t, st)
			if len(kept) < tc.lo || len(kept) > tc.hi {
				t.Errorf("after a burst of 3000: %d events, want %d..%d (the cap)", len(kept), tc.lo, tc.hi)
			}
			if len(kept) > 0 && kept[0].Detail != "burst" {
				t.Errorf("newest event kept = %+v, want the burst's last", kept[0])
			}
		})
	}
}

// allEvents pages through the whole log, newest first.
func allEvents(t *testing.T, st activity.Store) []activity.Event {
	t.Helper()
	var out []activity.Event
	f := activity.Filter{Limit: activity.MaxLimit}
	for {
		page, err := st.Query(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		f.Cursor = page.Next
	}
}
