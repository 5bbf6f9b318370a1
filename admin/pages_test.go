package admin

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

var html = map[string]string{"Accept": "text/html,application/xhtml+xml"}

func TestPagesRender(t *testing.T) {
	e := newEnv(t)
	e.rt.Record(context.Background(), activity.Event{Type: activity.LoginFailed, User: "bob", Email: "bob@example.com",
		IP: "192.0.2.20", Reason: activity.ReasonIDPError})
	tests := []struct {
		name   string
		as     *session.Session
		path   string
		want   int
		has    []string
		hasNot []string
	}{
		{"my sessions", e.bob, "/", 200,
			[]string{"Your sessions", "Firefox on Linux", "Safari on macOS", "Chrome on Android", "This device",
				"London, England, GB", "New York, US", "2 days ago", "Sign out all other sessions",
				`action="/.gatehouse/logout"`, `action="/.gatehouse/sessions/revoke-others"`,
				`action="/.gatehouse/sessions/` + e.bobMac.ID + `/revoke"`,
				`name="csrf" value="` + e.rt.CSRFToken(e.bob.ID) + `"`,
				"Sign-in history", "Failed sign-ins", "Sign-in failed", "identity provider error", "Bob Builder"},
			[]string{"Alice", "Amsterdam", e.alice.ID, `href="/.gatehouse/admin/"`}},
		{"admin sees the admin link", e.alice, "/", 200, []string{`href="/.gatehouse/admin/"`, "Safari on iOS", "Berlin, Land Berlin, DE"}, nil},
		{"admin sessions", e.alice, "/admin/", 200,
			[]string{"Administration", "Sessions", "Alice Admin", "Bob Builder", "bob@example.com", "Firefox on Linux",
				"Safari on iOS", "Amsterdam, North Holland, NL", "192.0.2.99", "3 days ago", "2 d",
				`action="/.gatehouse/admin/sessions/` + e.bobMac.ID + `/revoke"`, `data-confirm=`,
				`href="/.gatehouse/admin/?user=bob"`},
			nil},
		{"admin sessions of one user by email", e.alice, "/admin/?user=bob%40example.com", 200,
			[]string{"Sessions of", "Revoke all sessions of this user", `action="/.gatehouse/admin/users/bob/revoke"`, "Firefox on Linux"},
			[]string{"Safari on iOS"}},
		{"admin sessions filtered by country", e.alice, "/admin/?country=de", 200, []string{"Safari on iOS"}, []string{"Firefox on Linux"}},
		{"admin sessions filtered by IP prefix", e.alice, "/admin/?ip=192.0.2.9", 200, []string{"Safari on macOS"}, []string{"Firefox on Linux"}},
		{"admin sessions sorted by sign-in", e.alice, "/admin/?sort=created_at", 200, []string{`<option value="created_at" selected>`}, nil},
		{"admin sessions paged", e.alice, "/admin/?limit=2", 200, []string{"Next page"}, []string{"First page"}},
		{"admin sessions bad limit", e.alice, "/admin/?limit=5000", 400, []string{"limit must be"}, nil},
		{"admin users", e.alice, "/admin/users", 200,
			[]string{"alice@example.com", "bob@example.com", "Active", "192.0.2.21", `action="/.gatehouse/admin/users/bob/revoke"`,
				`href="/.gatehouse/admin/?user=bob"`, "never"}, nil},
		{"admin users open the login history", e.alice, "/admin/users", 200,
			[]string{`href="/.gatehouse/admin/history?user=bob"`, `href="/.gatehouse/admin/history"`, "Login history"}, nil},
		{"admin login history", e.alice, "/admin/history", 200,
			[]string{"Login history", "bob@example.com", "alice@example.com", "Firefox on Linux", "London, GB", "192.0.2.20", "Active",
				`href="/.gatehouse/admin/history?user=bob"`, `aria-current="page">Login history`}, nil},
		{"admin login history of one user", e.alice, "/admin/history?user=bob%40example.com", 200,
			[]string{"bob@example.com", "Safari on macOS"}, []string{"alice@example.com</a>"}},
		{"admin login history bad date", e.alice, "/admin/history?from=soon", 400, []string{"from must be"}, nil},
		{"plain user: login history tab", e.bob, "/admin/history", 403, []string{"Administrators only"}, nil},
		{"admin users search", e.alice, "/admin/users?prefix=bo", 200, []string{"bob@example.com"}, []string{">alice@example.com<"}},
		{"admin activity", e.alice, "/admin/activity", 200,
			[]string{"Signed in", "Sign-in failed", "bob@example.com", "192.0.2.20", "London, GB",
				`<svg class="chart chart-narrow"`, "Export CSV", `href="/.gatehouse/api/events.csv?"`, "Times in UTC."}, nil},
		{"admin activity filtered", e.alice, "/admin/activity?type=login_failed&user=bob", 200,
			[]string{"Sign-in failed", `value="login_failed" checked`, `href="/.gatehouse/api/events.csv?type=login_failed&amp;user=bob"`},
			[]string{">Signed in<", `value="logout" checked`}},
		{"admin activity bad date", e.alice, "/admin/activity?from=soon", 400, []string{"from must be"}, nil},
		{"admin activity bad type", e.alice, "/admin/activity?type=nope", 400, []string{"unknown event type"}, nil},
		{"plain user: admin page", e.bob, "/admin/", 403, []string{"Administrators only"}, []string{"Alice"}},
		{"plain user: users tab", e.bob, "/admin/users", 403, []string{"Administrators only"}, []string{">alice@example.com<"}},
		{"plain user: activity tab", e.bob, "/admin/activity", 403, []string{"Administrators only"}, nil},
		{"unknown page", e.bob, "/nope", 404, []string{"Page not found"}, nil},
		{"unknown admin page", e.alice, "/admin/nope", 404, []string{"Page not found"}, nil},
		{"flash", e.bob, "/?flash=others&n=2", 200, []string{"Signed out of 2 other sessions."}, nil},
		{"unknown flash says nothing", e.bob, "/?flash=%3Cb%3Ehacked%3C%2Fb%3E", 200, nil, []string{"hacked"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(req{as: tt.as, method: "GET", path: tt.path, header: html})
			body := w.Body.String()
			if w.Code != tt.want {
				t.Fatalf("GET %s = %d, want %d\n%s", tt.path, w.Code, tt.want, body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			csp := w.Header().Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("CSP = %q", csp)
			}
			for _, s := range tt.has {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tt.hasNot {
				if strings.Contains(body, s) {
					t.Errorf("page contains %q", s)
				}
			}
			if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
				t.Errorf("page refers to an absolute URL (no CDN, no external assets)")
			}
		})
	}
}

func TestPagesEscape(t *testing.T) {
	e := newEnv(t)
	const evil = `<script>alert(1)</script>`
	dev := session.Device{UserAgent: evil, Browser: evil, OS: `"><img src=x onerror=alert(2)>`, Device: "desktop"}
	s := e.login(evil, evil+"@example.com", evil, dev, session.Location{City: evil, Country: "NL"}, "192.0.2.66", time.Hour, time.Minute)
	e.adminEmails[s.Email] = true
	for _, path := range []string{"/", "/admin/", "/admin/users", "/admin/activity", "/admin/?user=" + url.QueryEscape(evil),
		"/admin/users?prefix=" + url.QueryEscape(evil), "/admin/activity?user=" + url.QueryEscape(evil)} {
		w := e.do(req{as: s, method: "GET", path: path, header: html})
		body := w.Body.String()
		if w.Code != 200 {
			t.Errorf("GET %s = %d", path, w.Code)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("GET %s: unescaped markup in page", path)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("GET %s: escaped name missing", path)
		}
	}
}

func TestPageForms(t *testing.T) {
	tests := []struct {
		name     string
		as       func(*env) *session.Session
		path     func(*env) string
		form     func(*env) url.Values
		header   map[string]string
		want     int
		location string
		gone     func(*env) []*session.Session
		alive    func(*env) []*session.Session
	}{
		{
			name:     "sign out another of my sessions",
			as:       func(e *env) *session.Session { return e.bob },
			path:     func(e *env) string { return "/sessions/" + e.bobMac.ID + "/revoke" },
			form:     func(e *env) url.Values { return url.Values{"csrf": {e.rt.CSRFToken(e.bob.ID)}} },
			want:     303,
			location: "/.gatehouse/?flash=revoked",
			gone:     func(e *env) []*session.Session { return []*session.Session{e.bobMac} },
			alive:    func(e *env) []*session.Session { return []*session.Session{e.bob, e.bobTablet} },
		},
		{
			name:  "without the token",
			as:    func(e *env) *session.Session { return e.bob },
			path:  func(e *env) string { return "/sessions/" + e.bobMac.ID + "/revoke" },
			form:  func(e *env) url.Values { return url.Values{} },
			want:  403,
			alive: func(e *env) []*session.Session { return []*session.Session{e.bobMac} },
		},
		{
			name:  "with another session's token",
			as:    func(e *env) *session.Session { return e.bob },
			path:  func(e *env) string { return "/sessions/" + e.bobMac.ID + "/revoke" },
			form:  func(e *env) url.Values { return url.Values{"csrf": {e.rt.CSRFToken(e.bobMac.ID)}} },
			want:  403,
			alive: func(e *env) []*session.Session { return []*session.Session{e.bobMac} },
		},
		{
			name:   "from a foreign origin",
			as:     func(e *env) *session.Session { return e.bob },
			path:   func(e *env) string { return "/sessions/" + e.bobMac.ID + "/revoke" },
			form:   func(e *env) url.Values { return url.Values{"csrf": {e.rt.CSRFToken(e.bob.ID)}} },
			header: map[string]string{"Origin": "https://evil.example"},
			want:   403,
			alive:  func(e *env) []*session.Session { return []*session.Session{e.bobMac} },
		},
		{
			name:   "X-Requested-With is not enough for a form",
			as:     func(e *env) *session.Session { return e.bob },
			path:   func(e *env) string { return "/sessions/" + e.bobMac.ID + "/revoke" },
			form:   func(e *env) url.Values { return url.Values{} },
			header: xhr,
			want:   403,
			alive:  func(e *env) []*session.Session { return []*session.Session{e.bobMac} },
		},
		{
			name:     "someone else's session reads as already ended",
			as:       func(e *env) *session.Session { return e.bob },
			path:     func(e *env) string { return "/sessions/" + e.alice.ID + "/revoke" },
			form:     func(e *env) url.Values { return url.Values{"csrf": {e.rt.CSRFToken(e.bob.ID)}} },
			header:   map[string]string{"Origin": "http://app.example.com"},
			want:     303,
			location: "/.gatehouse/?flash=gone",
			alive:    func(e *env) []*session.Session { return []*session.Session{e.alice} },
		},
		{
			name:     "sign out all others",
			as:       func(e *env) *session.Session { return e.bob },
			path:     func(e *env) string { return "/sessions/revoke-others" },
			form:     func(e *env) url.Values { return url.Values{"csrf": {e.rt.CSRFToken(e.bob.ID)}} },
			want:     303,
			location: "/.gatehouse/?flash=others&n=2",
			gone:     func(e *env) []*session.Session { return []*session.Session{e.bobMac, e.bobTablet} },
			alive:    func(e *env) []*session.Session { return []*session.Session{e.bob, e.alice} },
		},
		{
			name:  "plain user cannot use admin revoke",
			as:    func(e *env) *session.Session { return e.bob },
			path:  func(e *env) string { return "/admin/sessions/" + e.alice.ID + "/revoke" },
			form:  func(e *env) url.Values { return url.Values{"csrf": {e.rt.CSRFToken(e.bob.ID)}} },
			want:  403,
			alive: func(e *env) []*session.Session { return []*session.Session{e.alice} },
		},
		{
			name:  "plain user cannot revoke a user",
			as:    func(e *env) *session.Session { return e.bob },
			path:  func(e *env) string { return "/admin/users/alice/revoke" },
			form:  func(e *env) url.Values { return url.Values{"csrf": {e.rt.CSRFToken(e.bob.ID)}} },
			want:  403,
			alive: func(e *env) []*session.Session { return []*session.Session{e.alice, e.alicePhone} },
		},
		{
			name: "admin revokes a session and returns to the filtered list",
			as:   func(e *env) *session.Session { return e.alice },
			path: func(e *env) string { return "/admin/sessions/" + e.bobMac.ID + "/revoke" },
			form: func(e *env) url.Values {
				return url.Values{"csrf": {e.rt.CSRFToken(e.alice.ID)}, "return": {"/.gatehouse/admin/?country=US&flash=gone"}}
			},
			want:     303,
			location: "/.gatehouse/admin/?country=US&flash=revoked",
			gone:     func(e *env) []*session.Session { return []*session.Session{e.bobMac} },
		},
		{
			name: "admin revokes a user; a foreign return is ignored",
			as:   func(e *env) *session.Session { return e.alice },
			path: func(e *env) string { return "/admin/users/bob/revoke" },
			form: func(e *env) url.Values {
				return url.Values{"csrf": {e.rt.CSRFToken(e.alice.ID)}, "return": {"https://evil.example/.gatehouse/admin/"}}
			},
			want:     303,
			location: "/.gatehouse/admin/?flash=user&n=3",
			gone:     func(e *env) []*session.Session { return []*session.Session{e.bob, e.bobMac, e.bobTablet} },
			alive:    func(e *env) []*session.Session { return []*session.Session{e.alice} },
		},
		{
			name: "return outside the admin pages is ignored",
			as:   func(e *env) *session.Session { return e.alice },
			path: func(e *env) string { return "/admin/sessions/" + e.bobMac.ID + "/revoke" },
			form: func(e *env) url.Values {
				return url.Values{"csrf": {e.rt.CSRFToken(e.alice.ID)}, "return": {"/.gatehouse/admin/../../elsewhere"}}
			},
			want:     303,
			location: "/.gatehouse/admin/?flash=revoked",
		},
		{
			name: "return to the users tab",
			as:   func(e *env) *session.Session { return e.alice },
			path: func(e *env) string { return "/admin/users/bob/revoke" },
			form: func(e *env) url.Values {
				return url.Values{"csrf": {e.rt.CSRFToken(e.alice.ID)}, "return": {"/.gatehouse/admin/users?prefix=b"}}
			},
			want:     303,
			location: "/.gatehouse/admin/users?flash=user&n=3&prefix=b",
		},
		{
			name:     "admin revokes an unknown session",
			as:       func(e *env) *session.Session { return e.alice },
			path:     func(e *env) string { return "/admin/sessions/" + session.NewSecret().ID() + "/revoke" },
			form:     func(e *env) url.Values { return url.Values{"csrf": {e.rt.CSRFToken(e.alice.ID)}} },
			want:     303,
			location: "/.gatehouse/admin/?flash=gone",
		},
		{
			name: "GET on a form action",
			as:   func(e *env) *session.Session { return e.bob },
			path: func(e *env) string { return "/sessions/revoke-others" },
			want: 405,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := req{as: tt.as(e), method: "POST", path: tt.path(e), header: map[string]string{"Accept": "text/html"}}
			for k, v := range tt.header {
				r.header[k] = v
			}
			if tt.form != nil {
				r.form = tt.form(e)
			} else {
				r.method = "GET"
			}
			w := e.do(r)
			if w.Code != tt.want {
				t.Fatalf("%s %s = %d, want %d\n%s", r.method, r.path, w.Code, tt.want, w.Body)
			}
			if got := w.Header().Get("Location"); got != tt.location {
				t.Errorf("Location = %q, want %q", got, tt.location)
			}
			if tt.gone != nil {
				for _, s := range tt.gone(e) {
					if e.exists(s) {
						t.Errorf("session of %s on %s survived", s.User, s.Browser)
					}
				}
			}
			if tt.alive != nil {
				for _, s := range tt.alive(e) {
					if !e.exists(s) {
						t.Errorf("session of %s on %s was ended", s.User, s.Browser)
					}
				}
			}
		})
	}
}

// TestFormThenPage follows a form the way a browser without JavaScript
// does: POST, 303, GET the Location, read the message.
func TestFormThenPage(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{as: e.bob, method: "POST", path: "/sessions/revoke-others", header: html,
		form: url.Values{"csrf": {e.rt.CSRFToken(e.bob.ID)}}})
	if w.Code != 303 {
		t.Fatalf("POST = %d", w.Code)
	}
	loc := strings.TrimPrefix(w.Header().Get("Location"), prefix)
	w = e.do(req{as: e.bob, method: "GET", path: loc, header: html})
	body := w.Body.String()
	if !strings.Contains(body, "Signed out of 2 other sessions.") {
		t.Errorf("no confirmation after redirect to %s", loc)
	}
	if strings.Contains(body, e.bobMac.ID+"/revoke") || strings.Contains(body, "Sign out all other sessions") {
		t.Error("ended sessions still listed")
	}
	if n := len(e.events(activity.RevokedOthers)); n != 2 {
		t.Errorf("%d sessions_revoked_others events, want 2", n)
	}
}

func TestRedirects(t *testing.T) {
	e := newEnv(t)
	for path, want := range map[string]string{
		"":       "/.gatehouse/",
		"/admin": "/.gatehouse/admin/",
	} {
		w := e.do(req{as: e.bob, method: "GET", path: path, header: html})
		if w.Code != 303 || w.Header().Get("Location") != want {
			t.Errorf("GET %q = %d to %q, want 303 to %q", prefix+path, w.Code, w.Header().Get("Location"), want)
		}
	}
}

func TestNotFoundJSON(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{as: e.bob, method: "GET", path: "/nope"})
	if w.Code != 404 || decode[errorJSON](t, w).Error != "not_found" {
		t.Errorf("GET /nope without Accept: html = %d %s, want a JSON 404", w.Code, w.Body)
	}
}

func TestAssets(t *testing.T) {
	e := newEnv(t)
	page := e.do(req{as: e.bob, method: "GET", path: "/", header: html}).Body.String()
	for _, tt := range []struct{ name, typ string }{{"app.css", "text/css"}, {"app.js", "text/javascript"}} {
		i := strings.Index(page, prefix+"/assets/"+tt.name+"?v=")
		if i < 0 {
			t.Fatalf("page does not link %s", tt.name)
		}
		link := page[i:]
		link = link[:strings.IndexByte(link, '"')]
		w := e.do(req{as: e.bob, method: "GET", path: strings.TrimPrefix(link, prefix)})
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), tt.typ) {
			t.Errorf("GET %s = %d %q", link, w.Code, w.Header().Get("Content-Type"))
		}
		if !strings.Contains(w.Header().Get("Cache-Control"), "immutable") {
			t.Errorf("versioned %s not cacheable: %q", tt.name, w.Header().Get("Cache-Control"))
		}
		if w.Body.Len() == 0 {
			t.Errorf("%s is empty", tt.name)
		}
	}
	if w := e.do(req{as: e.bob, method: "GET", path: "/assets/nope.js"}); w.Code != 404 {
		t.Errorf("unknown asset = %d, want 404", w.Code)
	}
}

func TestOversizedForm(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{as: e.bob, method: "POST", path: "/sessions/revoke-others", header: html,
		form: url.Values{"csrf": {e.rt.CSRFToken(e.bob.ID)}, "pad": {strings.Repeat("x", maxForm)}}})
	if w.Code != 400 {
		t.Errorf("oversized form = %d, want 400", w.Code)
	}
	if !e.exists(e.bobMac) {
		t.Error("oversized form still ended sessions")
	}
}
