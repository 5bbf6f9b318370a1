package admin

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

func TestAlertsPage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.rt.Record(ctx, activity.Event{Type: activity.Anomaly, Reason: "impossible_travel", User: "bob", Email: "bob@example.com",
		Site: siteA, IP: "192.0.2.99", City: "New York", Country: "US",
		Detail: "London, GB (192.0.2.20) then New York, US (192.0.2.99): 5570 km in 10m0s, 33420 km/h (limit 900 km/h)"})
	e.clock.Advance(1)
	e.rt.Record(ctx, activity.Event{Type: activity.Anomaly, Reason: "new_device", User: "alice", Email: "alice@example.com",
		Site: siteA, IP: "203.0.113.10", Detail: "first sign-in with <b>Lynx</b> on Plan 9"})
	e.rt.Record(ctx, activity.Event{Type: activity.Anomaly, Reason: "shared_ip", Site: "other.example.com", IP: "192.0.2.1", Detail: "not in reach"})

	w := e.do(req{as: e.alice, method: "GET", path: "/admin/alerts", header: html, sites: []string{siteA}})
	body := w.Body.String()
	if w.Code != 200 {
		t.Fatalf("GET /admin/alerts = %d\n%s", w.Code, body)
	}
	for _, s := range []string{"Impossible travel", "New device", "5570 km in 10m0s", "33420 km/h",
		`href="/.gatehouse/admin/history?user=bob"`, "bob@example.com", "New York, US", `aria-current="page">Alerts`,
		"&lt;b&gt;Lynx&lt;/b&gt;"} {
		if !strings.Contains(body, s) {
			t.Errorf("alerts page lacks %q", s)
		}
	}
	// Newest first; sign-ins are not alerts; another site's alert is out
	// of reach.
	if strings.Index(body, "New device") > strings.Index(body, "Impossible travel") {
		t.Error("alerts are not newest first")
	}
	for _, s := range []string{"Signed in", "not in reach", "<b>Lynx"} {
		if strings.Contains(body, s) {
			t.Errorf("alerts page shows %q", s)
		}
	}
	w = e.do(req{as: e.alice, method: "GET", path: "/admin/alerts?user=alice", header: html})
	if body := w.Body.String(); strings.Contains(body, "Impossible travel") || !strings.Contains(body, "New device") {
		t.Errorf("filtered by alice the page shows bob's alert or not hers")
	}
	if w := e.do(req{as: e.bob, method: "GET", path: "/admin/alerts", header: html}); w.Code != 403 {
		t.Errorf("a plain user got the alerts tab: %d", w.Code)
	}
	if w := e.do(req{as: e.alice, method: "GET", path: "/admin/alerts?from=soon", header: html}); w.Code != 400 {
		t.Errorf("bad date: %d", w.Code)
	}
}
