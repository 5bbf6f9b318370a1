package caddymodule

import (
	"context"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

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
