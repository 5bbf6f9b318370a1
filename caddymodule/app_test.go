package caddymodule

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// Events carry detail (an anomaly's evidence, a flood's count) into Caddy's
// log too, and only when they have one.
func TestLogEventDetail(t *testing.T) {
	for _, detail := range []string{"", "count=42 network=203.0.113.0/24"} {
		core, logs := observer.New(zap.InfoLevel)
		logEvent(zap.New(core), activity.Event{Type: activity.AccessDenied, Detail: detail})
		got, ok := logs.All()[0].ContextMap()["detail"]
		if detail == "" && ok {
			t.Errorf("an event without detail logged detail %q", got)
		}
		if detail != "" && got != detail {
			t.Errorf("logged detail = %v, want %q", got, detail)
		}
	}
}

// Issue 8, item 1: events that end a session log its final inactivity
// and duration as numbers of seconds; other events log neither.
func TestLogEventFinalTimes(t *testing.T) {
	for _, tc := range []struct {
		e    activity.Event
		want bool
	}{
		{activity.Event{Type: activity.ExpiredIdle, Inactivity: 1800, Duration: 7200}, true},
		{activity.Event{Type: activity.Logout}, true},
		{activity.Event{Type: activity.LoginSucceeded}, false},
	} {
		core, logs := observer.New(zap.InfoLevel)
		logEvent(zap.New(core), tc.e)
		m := logs.All()[0].ContextMap()
		in, okIn := m["inactivity_duration"]
		du, okDu := m["duration"]
		if okIn != tc.want || okDu != tc.want {
			t.Errorf("%s: logged inactivity %v (%v), duration %v (%v); want them: %v", tc.e.Type, in, okIn, du, okDu, tc.want)
			continue
		}
		if tc.want && (in != tc.e.Inactivity || du != tc.e.Duration) {
			t.Errorf("%s: logged inactivity %#v, duration %#v; want int64 %d, %d", tc.e.Type, in, du, tc.e.Inactivity, tc.e.Duration)
		}
	}
}
