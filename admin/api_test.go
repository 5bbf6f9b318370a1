package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

func TestAPIPermissions(t *testing.T) {
	e := newEnv(t)
	unknown := session.NewSecret().ID()
	tests := []struct {
		name     string
		r        req
		want     int
		survives *session.Session // must still exist afterwards
	}{
		{"admin lists sessions", req{as: e.alice, method: "GET", path: "/api/sessions"}, 200, nil},
		{"plain user cannot list sessions", req{as: e.bob, method: "GET", path: "/api/sessions"}, 403, nil},
		{"admin reads a session", req{as: e.alice, method: "GET", path: "/api/sessions/" + e.bob.ID}, 200, nil},
		{"plain user cannot read another's session", req{as: e.bob, method: "GET", path: "/api/sessions/" + e.alice.ID}, 403, nil},
		{"plain user cannot read even their own by the admin path", req{as: e.bob, method: "GET", path: "/api/sessions/" + e.bob.ID}, 403, nil},
		{"plain user gets 403 for unknown ids too", req{as: e.bob, method: "GET", path: "/api/sessions/" + unknown}, 403, nil},
		{"plain user gets 403 for malformed ids too", req{as: e.bob, method: "GET", path: "/api/sessions/nope"}, 403, nil},
		{"admin: unknown id", req{as: e.alice, method: "GET", path: "/api/sessions/" + unknown}, 404, nil},
		{"admin: malformed id", req{as: e.alice, method: "GET", path: "/api/sessions/not-an-id"}, 404, nil},
		{"plain user cannot end another's session", req{as: e.bob, method: "DELETE", path: "/api/sessions/" + e.alice.ID, header: xhr}, 403, e.alice},
		{"plain user cannot end a user's sessions", req{as: e.bob, method: "DELETE", path: "/api/users/alice/sessions", header: xhr}, 403, e.alicePhone},
		{"plain user cannot list a user's sessions", req{as: e.bob, method: "GET", path: "/api/users/alice/sessions"}, 403, nil},
		{"admin lists a user's sessions", req{as: e.alice, method: "GET", path: "/api/users/bob/sessions"}, 200, nil},
		{"plain user cannot list users", req{as: e.bob, method: "GET", path: "/api/users"}, 403, nil},
		{"admin lists users", req{as: e.alice, method: "GET", path: "/api/users"}, 200, nil},
		{"plain user cannot read events", req{as: e.bob, method: "GET", path: "/api/events"}, 403, nil},
		{"admin reads events", req{as: e.alice, method: "GET", path: "/api/events"}, 200, nil},
		{"own sessions", req{as: e.bob, method: "GET", path: "/api/me/sessions"}, 200, nil},
		{"own session by id", req{as: e.bob, method: "GET", path: "/api/me/sessions/" + e.bobMac.ID}, 200, nil},
		{"another's session under me is 404", req{as: e.bob, method: "GET", path: "/api/me/sessions/" + e.alice.ID}, 404, nil},
		{"ending another's session under me is 404", req{as: e.bob, method: "DELETE", path: "/api/me/sessions/" + e.alice.ID, header: xhr}, 404, e.alice},
		{"ending a malformed id under me is 404", req{as: e.bob, method: "DELETE", path: "/api/me/sessions/x", header: xhr}, 404, nil},
		{"ending an unknown id under me is 404", req{as: e.bob, method: "DELETE", path: "/api/me/sessions/" + unknown, header: xhr}, 404, nil},
		{"HEAD works like GET", req{as: e.alice, method: "HEAD", path: "/api/sessions"}, 200, nil},
		{"wrong method", req{as: e.alice, method: "POST", path: "/api/sessions", header: xhr}, 405, nil},
		{"unknown API path", req{as: e.alice, method: "GET", path: "/api/nope"}, 404, nil},
		{"trailing slash is not a route", req{as: e.alice, method: "GET", path: "/api/sessions/"}, 404, nil},
		{"others must be explicit", req{as: e.bob, method: "DELETE", path: "/api/me/sessions", header: xhr}, 400, e.bobMac},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(tt.r)
			if w.Code != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.r.method, tt.r.path, w.Code, w.Body, tt.want)
			}
			if ct := w.Header().Get("Content-Type"); w.Code != 204 && ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if tt.want == 403 {
				if got := decode[errorJSON](t, w).Error; got != "forbidden" {
					t.Errorf("error = %q, want forbidden", got)
				}
			}
			if tt.survives != nil && !e.exists(tt.survives) {
				t.Errorf("session %s of %s was ended", tt.survives.ID, tt.survives.User)
			}
		})
	}
}

func TestMeListsOnlyOwnSessions(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{as: e.bob, method: "GET", path: "/api/me/sessions"})
	l := decode[list[map[string]any]](t, w)
	var got []string
	current := 0
	for _, it := range l.Items {
		got = append(got, it["id"].(string))
		if it["user"] != "bob" {
			t.Errorf("item of user %v in bob's list", it["user"])
		}
		cur, ok := it["current"].(bool)
		if !ok {
			t.Errorf("item %v: current = %v, want a boolean", it["id"], it["current"])
		}
		if cur {
			current++
			if it["id"] != e.bob.ID {
				t.Errorf("current = true on %v, want only %s", it["id"], e.bob.ID)
			}
		}
	}
	slices.Sort(got)
	want := []string{e.bob.ID, e.bobMac.ID, e.bobTablet.ID}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("bob's sessions = %v, want %v", got, want)
	}
	if current != 1 {
		t.Errorf("%d items are current, want 1", current)
	}
}

func TestCSRF(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no header", nil, 403},
		{"X-Requested-With", xhr, 204},
		{"X-Requested-With with another value", map[string]string{"X-Requested-With": "fetch"}, 403},
		{"X-Requested-With from a foreign origin", map[string]string{"X-Requested-With": "XMLHttpRequest", "Origin": "https://evil.example"}, 403},
		{"X-Requested-With from our origin", map[string]string{"X-Requested-With": "XMLHttpRequest", "Origin": "http://app.example.com"}, 204},
		{"our origin with the default port", map[string]string{"X-Requested-With": "XMLHttpRequest", "Origin": "http://APP.example.com:80"}, 204},
		{"our host on another scheme", map[string]string{"X-Requested-With": "XMLHttpRequest", "Origin": "https://app.example.com"}, 403},
		{"a sibling subdomain", map[string]string{"X-Requested-With": "XMLHttpRequest", "Origin": "http://other.example.com"}, 403},
		{"opaque origin", map[string]string{"X-Requested-With": "XMLHttpRequest", "Origin": "null"}, 403},
		{"cross-site fetch metadata", map[string]string{"X-Requested-With": "XMLHttpRequest", "Sec-Fetch-Site": "cross-site"}, 403},
		{"right token", map[string]string{"X-Gatehouse-CSRF": "TOKEN"}, 204},
		{"right token, foreign origin", map[string]string{"X-Gatehouse-CSRF": "TOKEN", "Origin": "https://evil.example"}, 403},
		{"wrong token", map[string]string{"X-Gatehouse-CSRF": "TOKEN" + "x"}, 403},
		{"another session's token", map[string]string{"X-Gatehouse-CSRF": "ALICE"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			h := map[string]string{}
			for k, v := range tt.header {
				v = strings.ReplaceAll(v, "TOKEN", e.rt.CSRFToken(e.bob.ID))
				v = strings.ReplaceAll(v, "ALICE", e.rt.CSRFToken(e.alice.ID))
				h[k] = v
			}
			w := e.do(req{as: e.bob, method: "DELETE", path: "/api/me/sessions/" + e.bobMac.ID, header: h})
			if w.Code != tt.want {
				t.Fatalf("DELETE = %d %s, want %d", w.Code, w.Body, tt.want)
			}
			if gone := !e.exists(e.bobMac); gone != (tt.want == 204) {
				t.Errorf("session gone = %v after %d", gone, w.Code)
			}
		})
	}
}

func TestCSRFOverTLS(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		origin string
		want   int
	}{
		{"http://app.example.com", 403},
		{"https://app.example.com", 204},
	} {
		hr := httptest.NewRequest("DELETE", "https://app.example.com/.gatehouse/api/me/sessions/"+e.bobMac.ID, nil)
		hr.Header.Set("X-Requested-With", "XMLHttpRequest")
		hr.Header.Set("Origin", tt.origin)
		// The gateway puts the site's origin, with the scheme Caddy
		// reports, in the viewer.
		v := e.viewer(e.bob)
		v.Origin = "https://app.example.com"
		hr = hr.WithContext(withViewer(hr, v))
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, hr)
		if w.Code != tt.want {
			t.Errorf("DELETE over TLS from %s = %d, want %d", tt.origin, w.Code, tt.want)
		}
	}
}

func TestEndOthersKeepsCurrent(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{as: e.bob, method: "DELETE", path: "/api/me/sessions?others=true", header: xhr})
	if w.Code != 204 {
		t.Fatalf("DELETE others = %d %s, want 204", w.Code, w.Body)
	}
	if w.Body.Len() != 0 {
		t.Errorf("204 with body %q", w.Body)
	}
	if !e.exists(e.bob) {
		t.Error("current session ended")
	}
	for _, s := range []*session.Session{e.bobMac, e.bobTablet} {
		if e.exists(s) {
			t.Errorf("other session %s survived", s.ID)
		}
	}
	if !e.exists(e.alice) || !e.exists(e.alicePhone) {
		t.Error("alice's sessions were touched")
	}
	ev := e.events(activity.RevokedOthers)
	if len(ev) != 2 {
		t.Fatalf("%d sessions_revoked_others events, want 2", len(ev))
	}
	for _, x := range ev {
		if x.Actor != "bob@example.com" || x.User != "bob" {
			t.Errorf("event actor %q user %q, want bob@example.com bob", x.Actor, x.User)
		}
	}
}

func TestRevokeRecordsActor(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{as: e.alice, method: "DELETE", path: "/api/sessions/" + e.bobMac.ID, header: xhr})
	if w.Code != 204 {
		t.Fatalf("DELETE = %d %s, want 204", w.Code, w.Body)
	}
	if e.exists(e.bobMac) {
		t.Error("session survived")
	}
	ev := e.events(activity.SessionRevoked)
	if len(ev) != 1 || ev[0].Actor != "alice@example.com" || ev[0].SessionID != e.bobMac.ID {
		t.Errorf("events = %+v, want one session_revoked by alice@example.com", ev)
	}
	if ev[0].Site != e.bobMac.Site {
		t.Errorf("event site = %q, want the session's %q", ev[0].Site, e.bobMac.Site)
	}
	w = e.do(req{as: e.alice, method: "DELETE", path: "/api/sessions/" + e.bobMac.ID, header: xhr})
	if w.Code != 404 {
		t.Errorf("second DELETE = %d, want 404", w.Code)
	}
	// Own single session through /me.
	w = e.do(req{as: e.bob, method: "DELETE", path: "/api/me/sessions/" + e.bobTablet.ID, header: xhr})
	if w.Code != 204 {
		t.Fatalf("DELETE own = %d, want 204", w.Code)
	}
	ev = e.events(activity.SessionRevoked)
	if len(ev) != 2 || ev[0].Actor != "bob@example.com" {
		t.Errorf("newest event %+v, want session_revoked by bob@example.com", ev[0])
	}
}

func TestRevokeUser(t *testing.T) {
	for _, user := range []string{"bob", "bob@example.com", "BOB@example.com"} {
		t.Run(user, func(t *testing.T) {
			e := newEnv(t)
			w := e.do(req{as: e.alice, method: "DELETE", path: "/api/users/" + url.PathEscape(user) + "/sessions", header: xhr})
			if w.Code != 204 {
				t.Fatalf("DELETE = %d %s, want 204", w.Code, w.Body)
			}
			for _, s := range []*session.Session{e.bob, e.bobMac, e.bobTablet} {
				if e.exists(s) {
					t.Errorf("bob's session %s survived", s.ID)
				}
			}
			if !e.exists(e.alice) {
				t.Error("alice's session ended")
			}
			if n := len(e.events(activity.SessionRevoked)); n != 3 {
				t.Errorf("%d session_revoked events, want 3", n)
			}
		})
	}
}

func TestSubjectWithSlash(t *testing.T) {
	e := newEnv(t)
	s := e.login("auth0|a/b", "odd@example.com", "Odd", firefoxLinux, london, "192.0.2.5", time.Hour, time.Minute)
	w := e.do(req{as: e.alice, method: "GET", path: "/api/users/" + url.PathEscape("auth0|a/b") + "/sessions"})
	if got := ids(t, w); !slices.Equal(got, []string{s.ID}) {
		t.Errorf("sessions of auth0|a/b = %v, want [%s]", got, s.ID)
	}
}

func TestListValidation(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		path string
		want int
	}{
		{"/api/sessions?limit=1000", 200},
		{"/api/sessions?limit=1001", 400},
		{"/api/sessions?limit=0", 400},
		{"/api/sessions?limit=-5", 400},
		{"/api/sessions?limit=ten", 400},
		{"/api/sessions?sort=created_at", 200},
		{"/api/sessions?sort=-last_access", 200},
		{"/api/sessions?sort=name", 400},
		{"/api/sessions?user=" + strings.Repeat("x", 600), 400},
		{"/api/users?limit=1001", 400},
		{"/api/events?limit=1000", 200},
		{"/api/events?limit=1001", 400},
		{"/api/events?from=2025-03-01", 200},
		{"/api/events?from=2025-03-01T10:00:00Z&to=2025-03-02T00:00:00%2B01:00", 200},
		{"/api/events?from=yesterday", 400},
		{"/api/events?from=2025-13-01", 400},
		{"/api/events?to=03/01/2025", 400},
		{"/api/events?from=2025-03-02&to=2025-03-01", 400},
		{"/api/events?type=login_succeeded,login_failed", 200},
		{"/api/events?type=login_succeeded&type=logout", 200},
		{"/api/events?type=login_succeeded,bogus", 400},
		{"/api/events?type=LOGIN_SUCCEEDED", 400},
		{"/api/me/sessions?limit=1001", 400},
		// Garbled cursors are the caller's mistake, not a server error.
		{"/api/sessions?cursor=not-a-cursor", 400},
		{"/api/sessions?cursor=bDEyMw", 400},
		{"/api/users?cursor=%21%21", 400},
		{"/api/events?cursor=zzzz", 400},
	}
	for _, tt := range tests {
		w := e.do(req{as: e.alice, method: "GET", path: tt.path})
		if w.Code != tt.want {
			t.Errorf("GET %s = %d %s, want %d", tt.path, w.Code, w.Body, tt.want)
			continue
		}
		if tt.want == 400 {
			if er := decode[errorJSON](t, w); er.Error != "bad_request" || er.Message == "" {
				t.Errorf("GET %s: error body %+v, want bad_request with a message", tt.path, er)
			}
		}
	}
}

// walk follows next_cursor from path until the last page and returns every
// id in order.
func walk(t *testing.T, e *env, path string) (all []string, pages int) {
	t.Helper()
	cursor := ""
	for pages = 1; pages < 100; pages++ {
		p := path
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		w := e.do(req{as: e.alice, method: "GET", path: p})
		if w.Code != 200 {
			t.Fatalf("GET %s = %d %s", p, w.Code, w.Body)
		}
		l := decode[list[map[string]any]](t, w)
		for _, it := range l.Items {
			all = append(all, it["id"].(string))
		}
		if l.NextCursor == "" {
			return all, pages
		}
		cursor = l.NextCursor
	}
	t.Fatal("pagination does not end")
	return nil, 0
}

func TestSessionPagination(t *testing.T) {
	e := newEnv(t)
	want := map[string]bool{}
	for i := range 23 {
		// Some share a last access, so ties must page correctly too.
		s := e.login("carol", "carol@example.com", "Carol", chromeWindows, amsterdam, fmt.Sprintf("10.0.0.%d", i),
			time.Duration(i)*time.Hour, time.Duration(i/3)*time.Minute)
		want[s.ID] = true
	}
	for _, sort := range []string{"last_access", "created_at"} {
		t.Run(sort, func(t *testing.T) {
			got, pages := walk(t, e, "/api/sessions?user=carol&limit=5&sort="+sort)
			if pages != 5 {
				t.Errorf("%d pages, want 5", pages)
			}
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Errorf("duplicate %s", id)
				}
				seen[id] = true
				if !want[id] {
					t.Errorf("unexpected %s", id)
				}
			}
			if len(seen) != len(want) {
				t.Errorf("%d sessions seen, want %d (gap)", len(seen), len(want))
			}
		})
	}
}

// testEvent is the part of an event item the tests read.
type testEvent struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Type string    `json:"type"`
}

func TestEventsNewestFirst(t *testing.T) {
	e := newEnv(t)
	day := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)
	for i := range 30 {
		e.rt.Record(context.Background(), activity.Event{
			Time: day.Add(time.Duration(i) * 2 * time.Hour), Type: activity.LoginFailed,
			User: "mallory", IP: "203.0.113.66", Reason: activity.ReasonStateMismatch,
		})
	}
	got, _ := walk(t, e, "/api/events?user=mallory&limit=7")
	if len(got) != 30 || len(slices.Compact(slices.Clone(got))) != 30 {
		t.Fatalf("%d events (with duplicates removed %d), want 30", len(got), len(slices.Compact(slices.Clone(got))))
	}
	w := e.do(req{as: e.alice, method: "GET", path: "/api/events?user=mallory&limit=1000"})
	l := decode[list[testEvent]](t, w)
	var prev time.Time
	for i, ev := range l.Items {
		tm := ev.Time
		if i > 0 && tm.After(prev) {
			t.Fatalf("event %d at %v after %v: not newest first", i, tm, prev)
		}
		prev = tm
	}
	// A to date includes the whole day: 12 events on 10 March.
	w = e.do(req{as: e.alice, method: "GET", path: "/api/events?user=mallory&from=2025-03-10&to=2025-03-10"})
	if n := len(decode[list[testEvent]](t, w).Items); n != 12 {
		t.Errorf("events on 2025-03-10 = %d, want 12", n)
	}
	w = e.do(req{as: e.alice, method: "GET", path: "/api/events?user=mallory&from=2025-03-10T20:00:00Z&to=2025-03-11T01:00:00Z"})
	if n := len(decode[list[testEvent]](t, w).Items); n != 3 {
		t.Errorf("events 20:00–01:00 = %d, want 3", n)
	}
	w = e.do(req{as: e.alice, method: "GET", path: "/api/events?type=login_succeeded"})
	for _, ev := range decode[list[testEvent]](t, w).Items {
		if ev.Type != activity.LoginSucceeded {
			t.Errorf("type filter let %s through", ev.Type)
		}
	}
}

func TestJSONShape(t *testing.T) {
	e := newEnv(t)
	noGroups := e.login("dave", "dave@example.com", "Dave", firefoxLinux, session.Location{}, "192.0.2.30", time.Hour, 90*time.Second)
	w := e.do(req{as: e.alice, method: "GET", path: "/api/sessions/" + noGroups.ID})
	body := w.Body.String()
	if strings.Contains(body, "SEALED") || strings.Contains(strings.ToLower(body), "token") {
		t.Errorf("tokens exposed: %s", body)
	}
	m := decode[map[string]any](t, w)
	for _, k := range []string{"id", "user", "email", "name", "groups", "site", "created_at", "last_access", "expires_at",
		"ip", "last_ip", "user_agent", "browser", "os", "device", "city", "region", "country", "latitude", "longitude",
		"idp_sid", "inactive_for", "duration"} {
		if _, ok := m[k]; !ok {
			t.Errorf("field %q missing", k)
		}
	}
	if g, ok := m["groups"].([]any); !ok || g == nil {
		t.Errorf("groups = %#v, want an array", m["groups"])
	}
	if _, ok := m["current"]; ok {
		t.Error("current present outside /me")
	}
	for _, k := range []string{"created_at", "last_access", "expires_at"} {
		s, _ := m[k].(string)
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil || !strings.HasSuffix(s, "Z") {
			t.Errorf("%s = %q, want RFC 3339 UTC", k, s)
		}
		_ = tm
	}
	if v, ok := m["inactive_for"].(float64); !ok || v != 90 {
		t.Errorf("inactive_for = %#v, want 90", m["inactive_for"])
	}
	if v, ok := m["duration"].(float64); !ok || v != 3600 {
		t.Errorf("duration = %#v, want 3600", m["duration"])
	}
	for _, k := range []string{"latitude", "longitude"} {
		if _, ok := m[k].(float64); !ok {
			t.Errorf("%s = %#v, want a number", k, m[k])
		}
	}

	// Lists: items is [] (not null) when empty, next_cursor present.
	w = e.do(req{as: e.alice, method: "GET", path: "/api/sessions?user=nobody"})
	if got := strings.TrimSpace(w.Body.String()); got != `{"items":[],"next_cursor":""}` {
		t.Errorf("empty list = %s", got)
	}

	// Users: last_logout is null until a logout; times in UTC.
	w = e.do(req{as: e.alice, method: "GET", path: "/api/users"})
	users := decode[list[map[string]any]](t, w)
	if len(users.Items) < 3 {
		t.Fatalf("users = %v", users.Items)
	}
	for _, u := range users.Items {
		for _, k := range []string{"user", "email", "last_login", "last_logout", "status", "active_sessions", "last_ip"} {
			if _, ok := u[k]; !ok {
				t.Errorf("user field %q missing", k)
			}
		}
		if u["last_logout"] != nil {
			t.Errorf("last_logout = %v before any logout, want null", u["last_logout"])
		}
		if s, _ := u["last_login"].(string); !strings.HasSuffix(s, "Z") {
			t.Errorf("last_login = %v", u["last_login"])
		}
		if u["status"] != "active" {
			t.Errorf("status = %v, want active", u["status"])
		}
	}

	// Events: RFC 3339 UTC times.
	w = e.do(req{as: e.alice, method: "GET", path: "/api/events?limit=1"})
	ev := decode[list[map[string]any]](t, w)
	if len(ev.Items) != 1 || ev.NextCursor == "" {
		t.Fatalf("events page = %+v, want one item and a cursor", ev)
	}
	if s, _ := ev.Items[0]["time"].(string); !strings.HasSuffix(s, "Z") {
		t.Errorf("event time = %v", ev.Items[0]["time"])
	}
}

func TestUnavailable(t *testing.T) {
	e := newEnv(t)
	e.store.down.Store(true)
	for _, r := range []req{
		{as: e.alice, method: "GET", path: "/api/sessions"},
		{as: e.alice, method: "GET", path: "/api/sessions/" + e.bob.ID},
		{as: e.alice, method: "DELETE", path: "/api/sessions/" + e.bob.ID, header: xhr},
		{as: e.alice, method: "GET", path: "/api/users"},
		{as: e.alice, method: "GET", path: "/api/events"},
		{as: e.bob, method: "DELETE", path: "/api/me/sessions?others=true", header: xhr},
		{as: e.bob, method: "GET", path: "/", header: map[string]string{"Accept": "text/html"}},
		{as: e.alice, method: "GET", path: "/admin/", header: map[string]string{"Accept": "text/html"}},
	} {
		w := e.do(r)
		if w.Code != 503 || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s with the store down = %d, Retry-After %q; want 503 with Retry-After",
				r.method, r.path, w.Code, w.Header().Get("Retry-After"))
		}
	}
}

func TestCaddyAPI(t *testing.T) {
	e := newEnv(t)
	do := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		e.api.ServeHTTP(w, httptest.NewRequest(method, "http://localhost:2019"+path, nil))
		return w
	}
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/gatehouse/sessions", 200},
		{"GET", "/gatehouse/sessions?limit=1001", 400},
		{"GET", "/gatehouse/sessions/" + e.bob.ID, 200},
		{"GET", "/gatehouse/sessions/garbage", 404},
		{"GET", "/gatehouse/users", 200},
		{"GET", "/gatehouse/users/bob/sessions", 200},
		{"GET", "/gatehouse/events?type=bogus", 400},
		{"GET", "/gatehouse/events", 200},
		{"GET", "/gatehouse/me/sessions", 404},
		{"GET", "/gatehouse", 404},
		{"GET", "/gatehouse/", 404},
		{"GET", "/gatehousex/sessions", 404},
		{"POST", "/gatehouse/sessions", 405},
		// No CSRF on the admin endpoint: Caddy checks origins there.
		{"DELETE", "/gatehouse/sessions/" + e.bobMac.ID, 204},
		{"DELETE", "/gatehouse/users/alice/sessions", 204},
	}
	for _, tt := range tests {
		if w := do(tt.method, tt.path); w.Code != tt.want {
			t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, w.Code, w.Body, tt.want)
		}
	}
	if e.exists(e.bobMac) || e.exists(e.alice) || e.exists(e.alicePhone) {
		t.Error("a revoked session survived")
	}
	for _, ev := range e.events(activity.SessionRevoked) {
		if ev.Actor != activity.ActorSystem {
			t.Errorf("admin endpoint revoke recorded actor %q, want system", ev.Actor)
		}
	}
	w := do("GET", "/gatehouse/sessions/"+e.bob.ID)
	if m := decode[map[string]any](t, w); m["user"] != "bob" {
		t.Errorf("session = %v", m)
	}
}

func TestNoViewer(t *testing.T) {
	h := New(newEnv(t).rt)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/.gatehouse/api/sessions", nil))
	if w.Code != http.StatusUnauthorized {
		t.Errorf("request without a viewer = %d, want 401", w.Code)
	}
}

// Regression: stores keep a session readable for a while after its
// deadline so the sweep can record the expiry; it must not be listed as
// active, nor revoked (which would record the wrong reason).
func TestExpiredButNotSweptIsHidden(t *testing.T) {
	e := newEnv(t)
	s := e.login("bob", "bob@example.com", "Bob Builder", safariIPhone, berlin, "192.0.2.40", 7*24*time.Hour+time.Minute, 2*time.Minute)
	if !e.exists(s) {
		t.Fatal("setup: expired session not readable in its grace period")
	}
	for _, path := range []string{"/api/sessions", "/api/users/bob/sessions", "/api/me/sessions"} {
		w := e.do(req{as: e.alice, method: "GET", path: path})
		if slices.Contains(ids(t, w), s.ID) {
			t.Errorf("GET %s lists a session past its lifetime", path)
		}
	}
	if body := e.do(req{as: e.bob, method: "GET", path: "/", header: html}).Body.String(); strings.Contains(body, s.ID) {
		t.Error("my sessions lists a session past its lifetime")
	}
	e.do(req{as: e.alice, method: "DELETE", path: "/api/users/bob/sessions", header: xhr})
	if n := len(e.events(activity.SessionRevoked)); n != 3 {
		t.Errorf("%d session_revoked events, want 3 (the expired one is the sweep's)", n)
	}
}
