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
