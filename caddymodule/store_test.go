package caddymodule

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// Regression (issue 6, item 4): the event stream had no length cap, so
// anonymous traffic could fill Redis. max_events reaches both stores.
func TestMaxEventsReachesStore(t *testing.T) {
	const maxEvents, appended = 5, 300
	tests := []struct {
		name string
		url  string
		// most is the longest the log may be: Redis trims whole stream
		// nodes (MAXLEN ~, 100 entries a node by default).
		most int
	}{
		{"memory", "memory", maxEvents},
		// Redis keeps a sixteenth of the cap, rounded up, in each of its
		// 16 shards; the events' addresses spread them over all.
		{"redis", "redis://" + testredis.Start(t), 16 * ((maxEvents + 15) / 16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := openStore(tt.url, maxEvents)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _, _ = storePool.Delete(h.key) }()
			if h.maxEvents != maxEvents {
				t.Fatalf("the %s store was already open with max_events %d", tt.name, h.maxEvents)
			}
			ctx := context.Background()
			start := time.Now()
			for i := range appended {
				e := &activity.Event{Type: activity.AccessDenied, Time: start.Add(time.Duration(i) * time.Millisecond), IP: fmt.Sprintf("203.0.%d.%d", i/200, i%200)}
				if err := h.events.Append(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			page, err := h.events.Query(ctx, activity.Filter{Limit: activity.MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(page.Items); n > tt.most || n < maxEvents {
				t.Errorf("after %d events with max_events %d the log holds %d, want %d to %d", appended, maxEvents, n, maxEvents, tt.most)
			}
		})
	}
}

// A Redis store is pooled by URL and cap, so a reload that changes
// max_events gets the new cap; the memory store is one per process, so
// that a reload loses no session.
func TestStorePoolKeys(t *testing.T) {
	url := "redis://" + testredis.Start(t)
	open := func(u string, n int64) *storeHandle {
		t.Helper()
		h, err := openStore(u, n)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = storePool.Delete(h.key) })
		return h
	}
	if a, b := open(url, 10), open(url, 20); a == b || b.maxEvents != 20 {
		t.Errorf("redis with max_events 10 and 20 share a store (cap in effect %d)", b.maxEvents)
	}
	if a, b := open(url, 10), open(url, 10); a != b {
		t.Error("redis with the same URL and cap opened two stores")
	}
	if a, b := open("memory", 10), open("memory", 20); a != b || b.maxEvents != 10 {
		t.Errorf("memory stores: same %v, cap in effect %d; want one store keeping its cap 10", a == b, b.maxEvents)
	}
}

// Regression (issue 6, tidy): go-redis's process-wide logger was set to the
// first App's logger for good, so after a reload its messages went to a
// config that was gone. They now go to the newest App still provisioned.
func TestRedisLogsFollowNewestApp(t *testing.T) {
	newLogger := func() (*zap.Logger, *observer.ObservedLogs) {
		core, logs := observer.New(zap.WarnLevel)
		return zap.New(core), logs
	}
	la, logsA := newLogger()
	lb, logsB := newLogger()
	say := func(msg string) { redisLogger{}.Printf(context.Background(), "%s", msg) }
	count := func(logs *observer.ObservedLogs, msg string) int {
		return logs.FilterMessage(msg).FilterLoggerName("redis").Len()
	}

	releaseA := routeRedisLogs(la)
	say("one")
	releaseB := routeRedisLogs(lb) // a reload: B starts before A stops
	say("two")
	releaseA()
	say("three")
	releaseB()
	say("four") // no App left: Caddy's default logger

	// A new config that fails is cleaned up while the old one runs on.
	releaseA = routeRedisLogs(la)
	releaseB = routeRedisLogs(lb)
	releaseB()
	say("five")
	releaseA()

	for _, c := range []struct {
		msg    string
		a, b   int
		reason string
	}{
		{"one", 1, 0, "the only App"},
		{"two", 0, 1, "the newer App"},
		{"three", 0, 1, "the App left"},
		{"four", 0, 0, "no App left"},
		{"five", 1, 0, "the newer App failed"},
	} {
		if a, b := count(logsA, c.msg), count(logsB, c.msg); a != c.a || b != c.b {
			t.Errorf("%q (%s): A logged it %d times, B %d; want %d, %d", c.msg, c.reason, a, b, c.a, c.b)
		}
	}
}
