package admin

import (
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

const siteB = "b.example.com"

// reachEnv is newEnv plus sessions on siteB: carol only there, one more
// of bob's, and one of alice's own.
type reachEnv struct {
	*env
	carolB, bobB, aliceB *session.Session
}

func newReachEnv(t *testing.T) *reachEnv {
	t.Helper()
	e := newEnv(t)
	return &reachEnv{
		env:    e,
		carolB: e.loginOn(siteB, true, "carol", "carol@example.com", "Carol B", chromeWindows, berlin, "198.51.100.50", time.Hour, time.Minute),
		bobB:   e.loginOn(siteB, true, "bob", "bob@example.com", "Bob Builder", firefoxLinux, london, "198.51.100.51", time.Hour, 2*time.Minute),
		aliceB: e.loginOn(siteB, true, "alice", "alice@example.com", "Alice Admin", safariMac, amsterdam, "198.51.100.52", time.Hour, 3*time.Minute),
	}
}

// onA is a request by alice as an admin of siteA only.
func (e *reachEnv) onA(method, path string) req {
	return req{as: e.alice, method: method, path: path, header: xhr, sites: []string{siteA}}
}

// Regression (issue 6, item 1): admin rights reached every site's sessions
// and events, so an admin of one site could list, read and end the
// sessions of every other site sharing the store.
func TestAdminReachAPI(t *testing.T) {
	e := newReachEnv(t)
	onA := []string{e.alice.ID, e.alicePhone.ID, e.bob.ID, e.bobMac.ID, e.bobTablet.ID}
	onB := []string{e.carolB.ID, e.bobB.ID, e.aliceB.ID}
	tests := []struct {
		name      string
		path      string
		has, lack []string
	}{
		{"all sessions", "/api/sessions", onA, onB},
		{"site filter outside the reach is empty", "/api/sessions?site=" + siteB, nil, append(onB, onA...)},
		{"site filter inside the reach", "/api/sessions?site=" + siteA, onA, onB},
		{"user filter", "/api/sessions?user=bob", []string{e.bob.ID}, []string{e.bobB.ID}},
		{"a user's sessions", "/api/users/bob/sessions", []string{e.bob.ID, e.bobMac.ID, e.bobTablet.ID}, []string{e.bobB.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(e.onA("GET", tt.path))
			if w.Code != 200 {
				t.Fatalf("GET %s = %d %s, want 200", tt.path, w.Code, w.Body)
			}
			got := ids(t, w)
			for _, id := range tt.has {
				if !slices.Contains(got, id) {
					t.Errorf("GET %s lacks %s", tt.path, id)
				}
			}
			for _, id := range tt.lack {
				if slices.Contains(got, id) {
					t.Errorf("GET %s lists %s, outside the reach", tt.path, id)
				}
			}
		})
	}

	t.Run("the store is asked for the reach", func(t *testing.T) {
		e.b.sent()
		e.do(e.onA("GET", "/api/sessions?site="+siteA))
		e.do(e.onA("GET", "/api/events?site="+siteA))
		qs, fs := e.b.sent()
		if len(qs) != 1 || !slices.Equal(qs[0].Sites, []string{siteA}) || qs[0].Site != siteA {
			t.Errorf("session queries %+v, want one with Site and Sites %s", qs, siteA)
		}
		if len(fs) != 1 || !slices.Equal(fs[0].Sites, []string{siteA}) {
			t.Errorf("event filters %+v, want one with Sites [%s]", fs, siteA)
		}
		// A site beyond the reach needs no store at all.
		e.do(e.onA("GET", "/api/sessions?site="+siteB))
		e.do(e.onA("GET", "/api/events?site="+siteB))
		if qs, fs := e.b.sent(); len(qs)+len(fs) != 0 {
			t.Errorf("store asked %+v %+v for a site outside the reach", qs, fs)
		}
	})

	// Beyond the reach, a session answers exactly as an unknown id.
	unknown := e.do(e.onA("GET", "/api/sessions/"+session.NewSecret().ID()))
	for _, method := range []string{"GET", "DELETE"} {
		w := e.do(e.onA(method, "/api/sessions/"+e.carolB.ID))
		if w.Code != 404 || w.Body.String() != unknown.Body.String() {
			t.Errorf("%s of a session on %s = %d %s, want %d %s", method, siteB, w.Code, w.Body, unknown.Code, unknown.Body)
		}
	}
	for _, method := range []string{"GET", "DELETE"} {
		if w := e.do(e.onA(method, "/api/users/carol/sessions")); w.Code != 404 {
			t.Errorf("%s sessions of a user only on %s = %d %s, want 404", method, siteB, w.Code, w.Body)
		}
		if w := e.do(e.onA(method, "/api/users/carol%40example.com/sessions")); w.Code != 404 {
			t.Errorf("%s sessions of a user only on %s by email = %d %s, want 404", method, siteB, w.Code, w.Body)
		}
	}
	if !e.exists(e.carolB) {
		t.Fatal("a session outside the reach was ended")
	}

	// Revoking all of a user ends only the sessions in reach.
	if w := e.do(e.onA("DELETE", "/api/users/bob%40example.com/sessions")); w.Code != 204 {
		t.Fatalf("DELETE bob's sessions = %d %s, want 204", w.Code, w.Body)
	}
	for _, s := range []*session.Session{e.bob, e.bobMac, e.bobTablet} {
		if e.exists(s) {
			t.Errorf("bob's session %s on %s survived", s.ID, s.Site)
		}
	}
	if !e.exists(e.bobB) {
		t.Errorf("bob's session on %s was ended by an admin of %s", siteB, siteA)
	}
	for _, ev := range e.events(activity.SessionRevoked) {
		if ev.Site != siteA {
			t.Errorf("session_revoked on %s", ev.Site)
		}
	}

	// Events and users.
	w := e.do(e.onA("GET", "/api/events?limit=1000"))
	for _, ev := range decode[list[activity.Event]](t, w).Items {
		if ev.Site != siteA {
			t.Errorf("event %s of site %q listed", ev.Type, ev.Site)
		}
	}
	if n := len(decode[list[activity.Event]](t, e.do(e.onA("GET", "/api/events?site="+siteB))).Items); n != 0 {
		t.Errorf("%d events with a site filter outside the reach, want 0", n)
	}
	users := decode[list[map[string]any]](t, e.do(e.onA("GET", "/api/users")))
	for _, u := range users.Items {
		switch u["user"] {
		case "carol":
			t.Error("a user with sessions only outside the reach is listed")
		case "alice":
			// Her newest sign-in and last IP are on siteB; the last
			// sign-out is kept for all sites together.
			if u["active_sessions"] != 2.0 || u["last_ip"] != e.alice.LastIP || u["last_logout"] != nil ||
				u["last_login"] != e.alice.CreatedAt.UTC().Format(time.RFC3339) {
				t.Errorf("alice = %v, want 2 active sessions, last sign-in %v, last IP %s, no last sign-out (%s only)",
					u, e.alice.CreatedAt, e.alice.LastIP, siteA)
			}
		case "bob":
			t.Errorf("bob listed with %v sessions, but has none left on %s", u["active_sessions"], siteA)
		}
	}
	if len(users.Items) != 1 {
		t.Errorf("users = %+v, want alice only", users.Items)
	}
}

// Regression (issue 6, item 1): the pages acted for an admin on every
// site, whichever site granted the rights.
func TestAdminReachPages(t *testing.T) {
	e := newReachEnv(t)
	page := func(path string) string {
		t.Helper()
		r := e.onA("GET", path)
		r.header = html
		w := e.do(r)
		if w.Code != 200 {
			t.Fatalf("GET %s = %d", path, w.Code)
		}
		return w.Body.String()
	}
	for _, path := range []string{"/admin/", "/admin/?site=" + siteB, "/admin/?user=carol", "/admin/?user=carol%40example.com"} {
		body := page(path)
		for _, s := range []*session.Session{e.carolB, e.bobB, e.aliceB} {
			if strings.Contains(body, s.ID) {
				t.Errorf("GET %s shows a session on %s", path, siteB)
			}
		}
	}
	if body := page("/admin/"); !strings.Contains(body, e.bobMac.ID) {
		t.Error("sessions in reach are missing")
	}
	if body := page("/admin/users"); strings.Contains(body, "carol") || !strings.Contains(body, "bob@example.com") {
		t.Error("users tab: carol listed or bob missing")
	}
	if body := page("/admin/activity"); strings.Contains(body, "carol") || strings.Contains(body, "198.51.100.5") {
		t.Error("activity tab shows events of another site")
	}

	form := func(path string) *httptest.ResponseRecorder {
		t.Helper()
		r := e.onA("POST", path)
		r.header = map[string]string{"Accept": "text/html"}
		r.form = url.Values{"csrf": {e.rt.CSRFToken(e.alice.ID)}}
		return e.do(r)
	}
	if w := form("/admin/sessions/" + e.carolB.ID + "/revoke"); w.Code != 303 || w.Header().Get("Location") != prefix+"/admin/?flash=gone" {
		t.Errorf("revoke beyond the reach = %d to %q, want 303 to ?flash=gone like an unknown id", w.Code, w.Header().Get("Location"))
	}
	if w := form("/admin/users/carol/revoke"); w.Code != 404 {
		t.Errorf("revoke all of a user only on %s = %d, want 404", siteB, w.Code)
	}
	if !e.exists(e.carolB) {
		t.Fatal("a session outside the reach was ended")
	}
	if w := form("/admin/users/bob/revoke"); w.Header().Get("Location") != prefix+"/admin/?flash=user&n=3" {
		t.Errorf("revoke all of bob = %d to %q, want the 3 on %s", w.Code, w.Header().Get("Location"), siteA)
	}
	if !e.exists(e.bobB) {
		t.Errorf("bob's session on %s was ended", siteB)
	}
}

// The viewer's own sessions are theirs whatever their admin reach.
func TestOwnSessionsIgnoreReach(t *testing.T) {
	e := newReachEnv(t)
	r := req{as: e.alice, method: "GET", path: "/api/me/sessions", noSites: true}
	if got := ids(t, e.do(r)); !slices.Contains(got, e.aliceB.ID) || len(got) != 3 {
		t.Errorf("own sessions = %v, want all 3 including the one on %s", got, siteB)
	}
	r.path, r.header = "/", html
	if body := e.do(r).Body.String(); !strings.Contains(body, e.aliceB.ID+"/revoke") {
		t.Errorf("my sessions page lacks the session on %s", siteB)
	}
	r = req{as: e.alice, method: "DELETE", path: "/api/me/sessions/" + e.aliceB.ID, header: xhr, noSites: true}
	if w := e.do(r); w.Code != 204 || e.exists(e.aliceB) {
		t.Errorf("ending own session on %s = %d, want 204 and the session gone", siteB, w.Code)
	}
}

// An admin whose reach is no site sees nothing, and the store is not even
// asked.
func TestAdminReachNone(t *testing.T) {
	e := newReachEnv(t)
	e.b.sent()
	for _, path := range []string{"/api/sessions", "/api/users", "/api/events"} {
		w := e.do(req{as: e.alice, method: "GET", path: path, noSites: true})
		if got := strings.TrimSpace(w.Body.String()); w.Code != 200 || got != `{"items":[],"next_cursor":""}` {
			t.Errorf("GET %s with no site in reach = %d %s, want an empty list", path, w.Code, got)
		}
	}
	if qs, fs := e.b.sent(); len(qs)+len(fs) != 0 {
		t.Errorf("store asked %v %v for a reach of no site", qs, fs)
	}
	if w := e.do(req{as: e.alice, method: "DELETE", path: "/api/sessions/" + e.bob.ID, header: xhr, noSites: true}); w.Code != 404 || !e.exists(e.bob) {
		t.Errorf("DELETE with no site in reach = %d, want 404 and nothing ended", w.Code)
	}
}

// An admin of every site (Sites nil) and Caddy's admin endpoint still
// reach everything.
func TestAdminReachUnrestricted(t *testing.T) {
	e := newReachEnv(t)
	got := ids(t, e.do(req{as: e.alice, method: "GET", path: "/api/sessions"}))
	if len(got) != 8 || !slices.Contains(got, e.carolB.ID) {
		t.Errorf("sessions = %v, want all 8", got)
	}
	if w := e.do(req{as: e.alice, method: "GET", path: "/api/sessions/" + e.carolB.ID}); w.Code != 200 {
		t.Errorf("GET a session on %s = %d, want 200", siteB, w.Code)
	}
	users := decode[list[map[string]any]](t, e.do(req{as: e.alice, method: "GET", path: "/api/users"}))
	if len(users.Items) != 3 {
		t.Errorf("users = %+v, want alice, bob and carol", users.Items)
	}
	sites := map[string]bool{}
	for _, ev := range decode[list[activity.Event]](t, e.do(req{as: e.alice, method: "GET", path: "/api/events"})).Items {
		sites[ev.Site] = true
	}
	if !sites[siteA] || !sites[siteB] {
		t.Errorf("events of sites %v, want both", sites)
	}
	if qs, _ := e.b.sent(); len(qs) == 0 || qs[0].Sites != nil {
		t.Errorf("queries %+v, want no Sites limit", qs)
	}

	w := httptest.NewRecorder()
	e.api.ServeHTTP(w, httptest.NewRequest("DELETE", "http://localhost:2019/gatehouse/users/carol/sessions", nil))
	if w.Code != 204 || e.exists(e.carolB) {
		t.Errorf("Caddy API DELETE of a user on %s = %d, want 204 and the session gone", siteB, w.Code)
	}
}

// Regression (issue 6, item 6): "revoke all of alice@…" resolved the email
// from the first page of a user search, which may be empty with a cursor;
// the email was then taken as a subject, nothing was ended, and the answer
// was still 204.
func TestRevokeUserByEmailPastEmptyPage(t *testing.T) {
	e := newEnv(t)
	e.b.usersGap.Store(true)
	if w := e.do(req{as: e.alice, method: "DELETE", path: "/api/users/bob%40example.com/sessions", header: xhr}); w.Code != 204 {
		t.Fatalf("DELETE = %d %s, want 204", w.Code, w.Body)
	}
	for _, s := range []*session.Session{e.bob, e.bobMac, e.bobTablet} {
		if e.exists(s) {
			t.Errorf("bob's session %s survived", s.ID)
		}
	}
	// The page action, and a subject known only by its summary (every
	// session ended): still known, found past the empty page.
	w := e.do(req{as: e.alice, method: "POST", path: "/admin/users/alice%40example.com/revoke", header: html,
		form: url.Values{"csrf": {e.rt.CSRFToken(e.alice.ID)}}})
	if w.Code != 303 || e.exists(e.alicePhone) {
		t.Errorf("page revoke by email = %d, alice's phone survived: %v", w.Code, e.exists(e.alicePhone))
	}
	if w := e.do(req{as: e.alice, method: "DELETE", path: "/api/users/bob/sessions", header: xhr}); w.Code != 204 {
		t.Errorf("DELETE of a signed-out user = %d %s, want 204", w.Code, w.Body)
	}
}

// Regression (issue 6, item 6): an unknown user was a success that ended
// nothing (204, or "that user had no active sessions"), so a typo looked
// like a revocation.
func TestUnknownUserIsNotFound(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, method, path string
	}{
		{"DELETE unknown email", "DELETE", "/api/users/nobody%40example.com/sessions"},
		{"GET unknown email", "GET", "/api/users/nobody%40example.com/sessions"},
		{"DELETE unknown subject", "DELETE", "/api/users/nobody/sessions"},
		{"GET unknown subject", "GET", "/api/users/nobody/sessions"},
		{"page action, unknown email", "POST", "/admin/users/nobody%40example.com/revoke"},
		{"page action, unknown subject", "POST", "/admin/users/nobody/revoke"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req{as: e.alice, method: tt.method, path: tt.path, header: xhr}
			if tt.method == "POST" {
				r.header = html
				r.form = url.Values{"csrf": {e.rt.CSRFToken(e.alice.ID)}}
			}
			w := e.do(r)
			if w.Code != 404 {
				t.Fatalf("%s %s = %d %s, want 404", tt.method, tt.path, w.Code, w.Body)
			}
			if tt.method == "POST" && !strings.Contains(w.Body.String(), "Unknown user") {
				t.Errorf("page says %s", w.Body)
			}
		})
	}
	// The Caddy endpoint too.
	w := httptest.NewRecorder()
	e.api.ServeHTTP(w, httptest.NewRequest("DELETE", "http://localhost:2019/gatehouse/users/nobody%40example.com/sessions", nil))
	if w.Code != 404 {
		t.Errorf("Caddy API DELETE of an unknown email = %d, want 404", w.Code)
	}
	if n := len(e.events(activity.SessionRevoked)); n != 0 {
		t.Errorf("%d sessions revoked", n)
	}
}

// Regression (issue 6, items 2 and 6): the user filter and "revoke all"
// matched emails on user summaries, verified or not, so a session whose
// provider sent someone else's email unverified was taken for theirs.
// The filter of an unknown email is an empty list, never another user's
// sessions.
func TestUserFilterOnlyVerifiedEmails(t *testing.T) {
	e := newEnv(t)
	mallory := e.loginOn(siteA, false, "mallory", "carol@example.com", "Not Carol", firefoxLinux, london, "192.0.2.66", time.Hour, time.Minute)
	for _, path := range []string{"/api/sessions?user=carol%40example.com", "/api/sessions?user=CAROL%40example.com", "/api/sessions?user=nobody%40example.com"} {
		w := e.do(req{as: e.alice, method: "GET", path: path})
		if got := ids(t, w); w.Code != 200 || len(got) != 0 {
			t.Errorf("GET %s = %d %v, want an empty list", path, w.Code, got)
		}
	}
	body := e.do(req{as: e.alice, method: "GET", path: "/admin/?user=carol%40example.com", header: html}).Body.String()
	if strings.Contains(body, mallory.ID) || strings.Contains(body, "Revoke all sessions of this user") {
		t.Error("sessions page shows mallory's session as carol's")
	}
	if w := e.do(req{as: e.alice, method: "DELETE", path: "/api/users/carol%40example.com/sessions", header: xhr}); w.Code != 404 {
		t.Errorf("DELETE by an email only seen unverified = %d, want 404", w.Code)
	}
	if !e.exists(mallory) {
		t.Error("mallory's session was ended as carol's")
	}
	// A verified email is found even when the text is also a prefix of
	// other users' emails.
	e.login("bob.other", "bob@example.com.au", "Other Bob", firefoxLinux, london, "192.0.2.67", time.Minute, time.Second)
	got := ids(t, e.do(req{as: e.alice, method: "GET", path: "/api/sessions?user=bob%40example.com"}))
	if len(got) != 3 {
		t.Errorf("bob's sessions by email = %v, want his 3", got)
	}
}
