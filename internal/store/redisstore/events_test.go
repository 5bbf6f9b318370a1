package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/store/storetest"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// realisticEvent is one of the events a busy site writes, with the field
// sizes a Keycloak subject, a GeoIP city and a device label give.
func realisticEvent(i int) activity.Event {
	types := []string{activity.LoginSucceeded, activity.Logout, activity.ExpiredIdle, activity.LoginFailed, activity.AccessDenied}
	e := activity.Event{
		Time:      storetest.T0.Add(time.Duration(i) * 100 * time.Millisecond),
		Type:      types[i%len(types)],
		User:      fmt.Sprintf("%08x-6a0d-4b7e-9c1a-2e5f7d8a9b0c", i%5000),
		Email:     fmt.Sprintf("user%05d@example.com", i%5000),
		SessionID: fmt.Sprintf("sess%018d", i),
		Site:      "app.example.com",
		IP:        fmt.Sprintf("203.0.%d.%d", i%256, i%253),
		City:      "Amsterdam",
		Country:   "NL",
		Device:    "Chrome on Windows",
		Actor:     activity.ActorSystem,
	}
	switch e.Type {
	case activity.ExpiredIdle:
		e.Inactivity, e.Duration = 1800, 7260
	case activity.LoginFailed:
		e.Reason, e.Detail = "state_invalid", "3 like events from 203.0.113.0/24"
	case activity.AccessDenied:
		e.Reason = "ip_denied"
	}
	return e
}

// appendMany appends events as Append does (with their index entries),
// pipelined; with plain, without index entries (the script with the
// stream key alone), for comparison.
func appendMany(ctx context.Context, s *Store, n int, plain bool) error {
	script := appendIndexedScript
	if err := script.Load(ctx, s.c).Err(); err != nil {
		return err
	}
	const batch = 1000
	for from := 0; from < n; from += batch {
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := from; i < min(from+batch, n); i++ {
				e := realisticEvent(i)
				keys, args := s.appendArgs(&e)
				if plain {
					keys = keys[:1]
					args[6] = 0 // no counters either
				}
				script.EvalSha(ctx, p, keys, args...)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("appending events %d-: %w", from, err)
		}
	}
	return nil
}

// TestMemoryPerEvent measures what one event costs in Redis, the figure
// behind DefaultEventMaxLen in doc.go, without and with its index
// entries. realisticEvent has ten events per user here, the costly case
// for the user indexes (each user's lists have a fixed part).
func TestMemoryPerEvent(t *testing.T) {
	addr := testredis.Start(t)
	for _, tt := range []struct {
		name  string
		plain bool
		max   float64
	}{
		// A regression in the fixed field order (names stored per
		// entry) would cost about 40 bytes more an event.
		{"stream", true, 250},
		// The IP index (issue 8, item 7) added about 17 bytes here: many
		// /16 buckets of few events each, whose lists have a fixed part.
		{"indexed", false, 390},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStorePrefix(t, addr, "ev"+tt.name, nil)
			ctx := t.Context()
			const n = 50_000
			before := usedMemory(t, s.c)
			if err := appendMany(ctx, s, n, tt.plain); err != nil {
				t.Fatal(err)
			}
			per := float64(usedMemory(t, s.c)-before) / n
			t.Logf("%d events: %.0f bytes/event in Redis; %d events (DefaultEventMaxLen) ≈ %.0f MiB", n, per, DefaultEventMaxLen, per*DefaultEventMaxLen/(1<<20))
			if per > tt.max {
				t.Errorf("%.0f bytes/event, want at most %.0f", per, tt.max)
			}
		})
	}
}

// Regression (issue 6, item 4): the stream had no length cap unless one
// was configured, so anyone able to make events could fill Redis. The
// cap is on by default, and XADD MAXLEN ~ keeps the stream within one
// stream node (100 entries) of it.
func TestEventStreamCapped(t *testing.T) {
	addr := testredis.Start(t)
	def, err := New(Options{Client: newClient(t, addr)})
	if err != nil {
		t.Fatal(err)
	}
	if def.maxLen != DefaultEventMaxLen {
		t.Fatalf("default event cap = %d, want DefaultEventMaxLen (%d)", def.maxLen, DefaultEventMaxLen)
	}
	const limit = 1000
	s, err := New(Options{Client: newClient(t, addr), Prefix: "cap", EventMaxLen: limit})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i := range 3 * limit {
		e := realisticEvent(i)
		if err := s.Append(ctx, &e); err != nil {
			t.Fatal(err)
		}
	}
	// Each shard keeps its part of the cap, within a node.
	per := s.shardMaxLen()
	for i := range s.shards {
		if n := s.c.XLen(ctx, s.shards[i].events).Val(); n < per || n > per+100 {
			t.Fatalf("shard %d stream length after %d appends with a cap of %d = %d, want %d to %d", i, 3*limit, limit, n, per, per+100)
		}
	}
	// The newest events are the ones kept.
	page, err := s.Query(ctx, activity.Filter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := realisticEvent(3*limit - 1); len(page.Items) != 1 || page.Items[0].SessionID != want.SessionID {
		t.Fatalf("newest event after capping = %+v, want session %s", page.Items, want.SessionID)
	}
}

// Every entry carries one field, packedField, whatever the event holds
// (see doc.go): Redis then keeps the name once per stream node. Its value
// holds every one of eventFields, empty or not: a regression guard for
// new fields such as mf (issue 7, item 5).
func TestEventFieldsFixed(t *testing.T) {
	addr := testredis.Start(t)
	s := newStorePrefix(t, addr, "evf", nil)
	ctx := t.Context()
	for _, e := range []activity.Event{
		{Time: storetest.T0, Type: activity.LoginSucceeded, User: "alice", MFA: true},
		{Time: storetest.T0, Type: activity.Logout},
		{},
	} {
		if err := s.Append(ctx, &e); err != nil {
			t.Fatal(err)
		}
	}
	var raw []any
	for i := range s.shards {
		r, err := s.c.Do(ctx, "XRANGE", s.shards[i].events, "-", "+").Slice()
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, r...)
	}
	if len(raw) != 3 {
		t.Fatalf("%d entries in the streams, want 3", len(raw))
	}
	for i, entry := range raw {
		kv := entry.([]any)[1].([]any)
		if len(kv) != 2 || kv[0] != packedField {
			t.Errorf("entry %d = %q, want one field %q", i, kv, packedField)
			continue
		}
		if n := packedValues(t, kv[1].(string)); n != len(eventFields) {
			t.Errorf("entry %d packs %d values, want %d", i, n, len(eventFields))
		}
	}
}
