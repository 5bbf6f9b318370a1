package admin

import (
	"bufio"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// routeLine is a route in the package documentation (doc.go):
// "//	GET    {prefix}/api/sessions?user=…".
var routeLine = regexp.MustCompile(`^//\s+(GET|POST|DELETE|PUT|PATCH)\s+\{prefix\}(\S*)`)

// documentedRoutes lists the site routes doc.go documents, as "METHOD
// /path" with the query left out.
func documentedRoutes(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := routeLine.FindStringSubmatch(sc.Text()); m != nil {
			path, _, _ := strings.Cut(m[2], "?")
			out = append(out, m[1]+" "+path)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 15 {
		t.Fatalf("doc.go lists %d routes: %q; has its format changed?", len(out), out)
	}
	return out
}

// auditorEnv is newReachEnv with bob an auditor of siteA only (as the
// gateway's reach would make him).
type auditorEnv struct{ *reachEnv }

func (e auditorEnv) as(method, path string, header map[string]string) req {
	return req{as: e.bob, auditor: true, method: method, path: path, header: header, sites: []string{siteA}}
}

// form is a page form bob posts with his own valid token.
func (e auditorEnv) form(path string) req {
	r := e.as("POST", path, map[string]string{"Accept": "text/html"})
	r.form = url.Values{"csrf": {e.rt.CSRFToken(e.bob.ID)}}
	return r
}

// Issue 7, item 6: an auditor sees everything an admin of the same sites
// sees, on every route, and ends nothing but their own sessions. The
// table must name every route doc.go documents, so that a route added
// later is decided for auditors too.
func TestAuditorOnEveryRoute(t *testing.T) {
	type check struct {
		route string // as in doc.go
		// r is bob's request, as an auditor of siteA.
		r func(e auditorEnv) req
		// want is the status; ended the sessions it must end, alive
		// those it must not.
		want         int
		ended, alive func(e auditorEnv) []*session.Session
	}
	others := func(e auditorEnv) []*session.Session {
		return []*session.Session{e.alice, e.alicePhone, e.carolB, e.aliceB}
	}
	none := func(auditorEnv) []*session.Session { return nil }
	get := func(path string) func(e auditorEnv) req {
		return func(e auditorEnv) req { return e.as("GET", path, nil) }
	}
	page := func(path string) func(e auditorEnv) req {
		return func(e auditorEnv) req { return e.as("GET", path, html) }
	}
	tests := []check{
		{"GET /api/sessions", get("/api/sessions?site=" + siteA), 200, none, none},
		{"GET /api/sessions/{id}", func(e auditorEnv) req { return e.as("GET", "/api/sessions/"+e.alice.ID, nil) }, 200, none, none},
		{"GET /api/users", get("/api/users"), 200, none, none},
		{"GET /api/users/{user}/sessions", get("/api/users/alice%40example.com/sessions"), 200, none, none},
		{"GET /api/events", get("/api/events?type=login_succeeded"), 200, none, none},
		{"GET /api/events.csv", get("/api/events.csv?type=login_succeeded&mask=true"), 200, none, none},
		{"GET /api/stats", get("/api/stats?bucket=1h"), 200, none, none},
		{"GET /api/history", get("/api/history?user=alice"), 200, none, none},
		{"GET /api/history.csv", get("/api/history.csv?user=alice&mask=true"), 200, none, none},
		{"GET /api/me/sessions", get("/api/me/sessions"), 200, none, none},
		{"GET /api/me/history", get("/api/me/history"), 200, none, none},
		{"GET /api/me/sessions/{id}", func(e auditorEnv) req { return e.as("GET", "/api/me/sessions/"+e.bobMac.ID, nil) }, 200, none, none},
		{"GET /", page("/"), 200, none, none},
		{"GET /admin/", page("/admin/?user=alice"), 200, none, none},
		{"GET /admin/users", page("/admin/users"), 200, none, none},
		{"GET /admin/activity", page("/admin/activity?type=login_succeeded"), 200, none, none},
		{"GET /admin/alerts", page("/admin/alerts?user=alice"), 200, none, none},
		{"GET /admin/history", page("/admin/history?user=alice"), 200, none, none},
		{"GET /assets/{name}", page("/assets/app.css"), 200, none, none},

		{"DELETE /api/sessions/{id}", func(e auditorEnv) req { return e.as("DELETE", "/api/sessions/"+e.alice.ID, xhr) }, 403, none, others},
		{"DELETE /api/users/{user}/sessions", func(e auditorEnv) req { return e.as("DELETE", "/api/users/alice/sessions", xhr) }, 403, none, others},
		{"POST /admin/sessions/{id}/revoke", func(e auditorEnv) req { return e.form("/admin/sessions/" + e.alice.ID + "/revoke") }, 403, none, others},
		{"POST /admin/users/{user}/revoke", func(e auditorEnv) req { return e.form("/admin/users/alice/revoke") }, 403, none, others},

		// Their own sessions stay theirs to end.
		{"DELETE /api/me/sessions/{id}", func(e auditorEnv) req { return e.as("DELETE", "/api/me/sessions/"+e.bobMac.ID, xhr) }, 204,
			func(e auditorEnv) []*session.Session { return []*session.Session{e.bobMac} }, others},
		{"DELETE /api/me/sessions", func(e auditorEnv) req { return e.as("DELETE", "/api/me/sessions?others=true", xhr) }, 204,
			func(e auditorEnv) []*session.Session { return []*session.Session{e.bobMac, e.bobTablet, e.bobB} }, others},
		{"POST /sessions/{id}/revoke", func(e auditorEnv) req { return e.form("/sessions/" + e.bobMac.ID + "/revoke") }, 303,
			func(e auditorEnv) []*session.Session { return []*session.Session{e.bobMac} }, others},
		{"POST /sessions/revoke-others", func(e auditorEnv) req { return e.form("/sessions/revoke-others") }, 303,
			func(e auditorEnv) []*session.Session { return []*session.Session{e.bobMac, e.bobTablet, e.bobB} }, others},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.route] = true
		t.Run(tt.route, func(t *testing.T) {
			e := auditorEnv{newReachEnv(t)}
			r := tt.r(e)
			if !strings.HasPrefix(tt.route, r.method+" ") {
				t.Fatalf("the %s check sends %s", tt.route, r.method)
			}
			w := e.do(r)
			if w.Code != tt.want {
				t.Fatalf("%s %s as an auditor = %d %.300s, want %d", r.method, r.path, w.Code, w.Body, tt.want)
			}
			for _, s := range tt.ended(e) {
				if e.exists(s) {
					t.Errorf("%s's own session %s survived", s.User, s.ID)
				}
			}
			for _, s := range tt.alive(e) {
				if !e.exists(s) {
					t.Errorf("an auditor ended %s's session %s", s.User, s.ID)
				}
			}
			if tt.want == 403 {
				if n := len(e.events(activity.SessionRevoked, activity.RevokedOthers)); n != 0 {
					t.Errorf("%d session_revoked events after a refused request", n)
				}
			}
		})
	}
	for _, route := range documentedRoutes(t) {
		if !covered[route] {
			t.Errorf("route %s (doc.go) has no auditor check here", route)
		}
	}
}

// Issue 7, item 6: an auditor's refusal comes before the id is looked
// up, so it tells nothing about which ids exist, and holds for sessions
// beyond the reach too; an admin who is also marked auditor is an admin.
func TestAuditorRefusalRevealsNothing(t *testing.T) {
	e := auditorEnv{newReachEnv(t)}
	unknown := e.do(e.as("DELETE", "/api/sessions/"+session.NewSecret().ID(), xhr))
	for _, s := range []*session.Session{e.alice, e.carolB} {
		w := e.do(e.as("DELETE", "/api/sessions/"+s.ID, xhr))
		if w.Code != 403 || w.Body.String() != unknown.Body.String() {
			t.Errorf("DELETE of %s's session = %d %s, want %d %s as for an unknown id", s.User, w.Code, w.Body, unknown.Code, unknown.Body)
		}
		if !e.exists(s) {
			t.Errorf("%s's session was ended", s.User)
		}
	}
	if w := e.do(e.as("DELETE", "/api/users/nobody/sessions", xhr)); w.Code != 403 {
		t.Errorf("DELETE of an unknown user's sessions = %d, want 403", w.Code)
	}
	both := e.as("DELETE", "/api/sessions/"+e.alicePhone.ID, xhr)
	both.as = e.alice // an admin of siteA
	both.auditor = false
	if w := e.do(both); w.Code != 204 {
		t.Errorf("admin DELETE = %d %s, want 204", w.Code, w.Body)
	}
}

// Issue 7, item 6: an auditor's reach follows the same per-site rules as
// an admin's: only the sites in Viewer.Sites, nil for every site, an
// empty list for none.
func TestAuditorReach(t *testing.T) {
	e := auditorEnv{newReachEnv(t)}
	onA := []string{e.alice.ID, e.alicePhone.ID, e.bob.ID, e.bobMac.ID, e.bobTablet.ID}
	onB := []string{e.carolB.ID, e.bobB.ID, e.aliceB.ID}
	tests := []struct {
		name      string
		sites     []string
		noSites   bool
		path      string
		has, lack []string
	}{
		{"siteA: all sessions", []string{siteA}, false, "/api/sessions", onA, onB},
		{"siteA: a site filter beyond the reach", []string{siteA}, false, "/api/sessions?site=" + siteB, nil, append(onA, onB...)},
		{"siteA: a user's sessions", []string{siteA}, false, "/api/users/bob/sessions", []string{e.bob.ID}, []string{e.bobB.ID}},
		{"every site", nil, false, "/api/sessions", append(onA, onB...), nil},
		{"no site", nil, true, "/api/sessions", nil, append(onA, onB...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.as("GET", tt.path, nil)
			r.sites, r.noSites = tt.sites, tt.noSites
			w := e.do(r)
			if w.Code != 200 {
				t.Fatalf("GET %s = %d %s", tt.path, w.Code, w.Body)
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
	// Beyond the reach a session is unknown; so are the events and users.
	if w := e.do(e.as("GET", "/api/sessions/"+e.carolB.ID, nil)); w.Code != 404 {
		t.Errorf("GET of a session on %s = %d, want 404", siteB, w.Code)
	}
	if w := e.do(e.as("GET", "/api/users/carol/sessions", nil)); w.Code != 404 {
		t.Errorf("GET of a user only on %s = %d, want 404", siteB, w.Code)
	}
	for _, ev := range decode[list[activity.Event]](t, e.do(e.as("GET", "/api/events?limit=1000", nil))).Items {
		if ev.Site != siteA {
			t.Errorf("event %s of site %q listed", ev.Type, ev.Site)
		}
	}
	for _, u := range decode[list[map[string]any]](t, e.do(e.as("GET", "/api/users", nil))).Items {
		if u["user"] == "carol" {
			t.Error("a user with sessions only outside the reach is listed")
		}
	}
	if body := e.do(e.as("GET", "/admin/activity", html)).Body.String(); strings.Contains(body, "198.51.100.5") {
		t.Error("the activity tab shows events of another site")
	}
}

// Issue 7, item 6: an auditor's admin pages show everything and no
// revoke control; "my sessions" keeps theirs.
func TestAuditorPagesHaveNoRevokeControls(t *testing.T) {
	e := auditorEnv{newReachEnv(t)}
	for _, path := range []string{"/admin/", "/admin/?user=alice", "/admin/users", "/admin/activity", "/admin/history"} {
		w := e.do(e.as("GET", path, html))
		body := w.Body.String()
		if w.Code != 200 {
			t.Fatalf("GET %s = %d", path, w.Code)
		}
		if strings.Contains(body, "/revoke") || strings.Contains(body, ">Revoke") {
			t.Errorf("GET %s shows a revoke control to an auditor", path)
		}
		if !strings.Contains(body, "Read-only") {
			t.Errorf("GET %s does not say it is read-only", path)
		}
		if !strings.Contains(body, `href="`+prefix+`/admin/"`) {
			t.Errorf("GET %s has no Admin link", path)
		}
	}
	if body := e.do(e.as("GET", "/admin/", html)).Body.String(); !strings.Contains(body, e.alicePhone.ID[:8]) && !strings.Contains(body, "Alice Admin") {
		t.Error("the sessions tab does not show alice's sessions to the auditor")
	}
	if body := e.do(e.as("GET", "/admin/users", html)).Body.String(); !strings.Contains(body, "alice@example.com") {
		t.Error("the users tab does not show alice to the auditor")
	}
	me := e.do(e.as("GET", "/", html)).Body.String()
	if !strings.Contains(me, prefix+"/sessions/"+e.bobMac.ID+"/revoke") || !strings.Contains(me, prefix+"/sessions/revoke-others") {
		t.Error(`"my sessions" lost the auditor's own sign-out controls`)
	}
	// The same pages still give an admin the controls.
	admin := e.do(req{as: e.alice, method: "GET", path: "/admin/?user=bob", header: html, sites: []string{siteA}}).Body.String()
	if !strings.Contains(admin, "/admin/users/bob/revoke") || !strings.Contains(admin, "/admin/sessions/"+e.bobMac.ID+"/revoke") || strings.Contains(admin, "Read-only") {
		t.Error("the admin lost the revoke controls, or is marked read-only")
	}
}
