package redisstore

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// Counts written before the counters were strings (a hash per day,
// quarter hour to weight) still count, beside the strings of the same
// day, in every shard they are in; Trim drops both.
func TestCountsOldHashesStillCount(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := newStorePrefix(t, testredis.Start(t), "cnt", func() time.Time { return now })
	ctx := t.Context()
	at := now.Add(-2 * time.Hour) // 10:00, quarter 40
	day, quarter := quarterOf(at.UnixMilli())
	site := "app.example.com"
	for _, u := range []string{"alice", "bob", "carol"} {
		e := activity.Event{Time: at, Type: activity.LoginSucceeded, User: u, Site: site}
		if err := s.Append(ctx, &e); err != nil {
			t.Fatal(err)
		}
	}
	// As an older gatehouse wrote them: in two shards, for every site
	// and for the site, one at the same quarter hour and one later.
	for _, k := range []int{0, 7} {
		sh := &s.shards[k]
		for _, key := range []string{sh.hashCounter(activity.LoginSucceeded, day, nil), sh.hashCounter(activity.LoginSucceeded, day, &site)} {
			s.c.HIncrBy(ctx, key, "40", 2)
			s.c.HIncrBy(ctx, key, "41", 5)
			s.c.ZAdd(ctx, sh.counterSet(), redis.Z{Score: float64(day), Member: key})
		}
	}
	if quarter != 40 {
		t.Fatalf("quarter %d, want 40", quarter)
	}
	for name, f := range map[string]activity.Filter{"every site": {}, "the site": {Site: site}, "a reach": {Sites: []string{site, "other.example.com"}}} {
		st, err := activity.CountEvents(ctx, s.Query, s, f, now.Add(-3*time.Hour), now, time.Hour, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, b := range st.Buckets {
			if b.LoginSucceeded != 0 && !b.Start.Equal(at) {
				t.Errorf("%s: %d sign-ins at %v, want them all at %v", name, b.LoginSucceeded, b.Start, at)
			}
			got += b.LoginSucceeded
		}
		if want := 3 + 2*(2+5); got != want {
			t.Errorf("%s: %d sign-ins, want %d (3 new, 14 old)", name, got, want)
		}
	}
	if err := s.Trim(ctx, now.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{0, 7} {
		sh := &s.shards[k]
		if n := s.c.Exists(ctx, sh.hashCounter(activity.LoginSucceeded, day, nil), sh.counter(activity.LoginSucceeded, day, nil)).Val(); n != 0 {
			t.Errorf("shard %d: %d counters left after Trim", k, n)
		}
	}
}
