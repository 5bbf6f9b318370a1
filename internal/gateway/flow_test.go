package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
)

// stores lists the store implementations every flow test runs against;
// redis_test.go adds the Redis store.
var stores = map[string]func(t *testing.T, now func() time.Time) backend{
	"memory": func(t *testing.T, now func() time.Time) backend {
		return memstore.New(memstore.Options{Now: now})
	},
}

// forEachStore runs f once per store with a fresh harness.
func forEachStore(t *testing.T, f func(t *testing.T, newH func(...harnessOption) *harness)) {
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			f(t, func(opts ...harnessOption) *harness {
				return newHarness(t, mk, opts...)
			})
		})
	}
}

func TestSignInRoundTrip(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH()
		b := h.browser()
		// The first navigation goes to the provider.
		first := b.Do(http.MethodGet, h.site.URL+"/reports?year=2026", nil, true)
		if first.Status != http.StatusFound || !strings.HasPrefix(first.Header.Get("Location"), h.idpSrv.URL) {
			t.Fatalf("navigation without session: %d Location %q, want 302 to the provider", first.Status, first.Header.Get("Location"))
		}
		loc, _ := url.Parse(first.Header.Get("Location"))
		q := loc.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" {
			t.Errorf("authorization request lacks PKCE S256, state or nonce: %s", loc.RawQuery)
		}
		cb := mustURL(h.site.URL + "/.gatehouse/callback")
		pending := map[string]bool{}
		for _, c := range b.Jar.Cookies(cb) {
			pending[c.Name] = true
		}
		e := b.login("alice", "/reports?year=2026")
		if e.Path != "/reports?year=2026" {
			t.Errorf("returned to %q, want /reports?year=2026", e.Path)
		}
		// The state cookie is single use: the callback deletes the one it
		// used. The first navigation's sign-in, never finished, keeps its
		// own until it expires, as another tab's would.
		for _, c := range b.Jar.Cookies(cb) {
			if strings.HasPrefix(c.Name, "gatehouse_login_") && !pending[c.Name] {
				t.Errorf("state cookie %s of the finished sign-in is still in the jar", c.Name)
			}
		}
		if len(pending) != 1 {
			t.Errorf("the first navigation left %d cookies for the callback, want its one state cookie", len(pending))
		}
		want := map[string]string{
			HeaderUser:     "alice",
			HeaderEmail:    "alice@example.com",
			HeaderUsername: "alice",
			HeaderGroups:   "gatehouse-admins,staff",
		}
		for k, v := range want {
			if got := strings.Join(e.Headers[k], ","); got != v {
				t.Errorf("upstream %s = %q, want %q", k, got, v)
			}
		}
		// A signed-in request with spoofed identity headers: the upstream
		// sees only ours, and never the session cookie.
		b.SetCookie(h.site.URL, "theme", "dark")
		p := b.Do(http.MethodGet, h.site.URL+"/x", nil, false,
			"X-Forwarded-User", "bob", "X_Forwarded_Email", "bob@example.com", "x-forwarded-groups", "gatehouse-admins,root")
		if p.Status != http.StatusOK {
			t.Fatalf("signed-in API request: %d %s", p.Status, p.Body)
		}
		e = parseEcho(t, p)
		if got := e.Headers[HeaderUser]; len(got) != 1 || got[0] != "alice" {
			t.Errorf("upstream X-Forwarded-User = %v, want [alice]", got)
		}
		for k := range e.Headers {
			if strings.Contains(k, "_") {
				t.Errorf("client-supplied header %q reached the upstream", k)
			}
		}
		if got := strings.Join(e.Headers[HeaderGroups], ","); got != "gatehouse-admins,staff" {
			t.Errorf("upstream groups = %q", got)
		}
		if got := strings.Join(e.Headers["Cookie"], "; "); strings.Contains(got, "gatehouse=") || strings.Contains(got, "gatehouse_logout") || !strings.Contains(got, "theme=dark") {
			t.Errorf("upstream Cookie = %q: want theme=dark and no session cookie", got)
		}
		// The store knows the session by its id, not by the cookie.
		id := b.sessionID()
		s, err := h.store.Get(context.Background(), id)
		if err != nil {
			t.Fatalf("store.Get(%s): %v", id, err)
		}
		if s.User != "alice" || s.Email != "alice@example.com" || s.IP != "127.0.0.1" || s.Site == "" || s.IDPSessionID == "" {
			t.Errorf("stored session = %+v", s)
		}
		if len(s.Tokens) != 0 {
			t.Errorf("the store holds %d bytes of tokens; it should hold none", len(s.Tokens))
		}
		if ev := h.eventsOf(activity.LoginSucceeded); len(ev) != 1 || ev[0].User != "alice" || ev[0].SessionID != id {
			t.Errorf("login_succeeded events = %+v", ev)
		}
		page, err := h.store.Query(context.Background(), activity.Filter{Types: []string{activity.LoginSucceeded}})
		if err != nil || len(page.Items) != 1 {
			t.Errorf("stored login events = %+v, %v", page.Items, err)
		}
	})
}

func TestUnauthenticatedAPIGets401(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH()
		b := h.browser()
		for _, tc := range []struct {
			method string
			hdr    []string
		}{
			{http.MethodGet, []string{"Accept", "application/json"}},
			{http.MethodPost, []string{"Accept", "text/html"}},
			{http.MethodGet, []string{"Accept", "text/html", "Sec-Fetch-Mode", "cors"}},
			{http.MethodGet, []string{"Accept", "text/html", "X-Requested-With", "XMLHttpRequest"}},
		} {
			p := b.Do(tc.method, h.site.URL+"/api/data?x=1", nil, false, tc.hdr...)
			if p.Status != http.StatusUnauthorized {
				t.Errorf("%s with %v: status %d, want 401", tc.method, tc.hdr, p.Status)
				continue
			}
			var body map[string]string
			mustJSON(t, p.Body, &body)
			if body["error"] != "unauthenticated" || body["login_url"] != "/.gatehouse/login?rd=%2Fapi%2Fdata%3Fx%3D1" {
				t.Errorf("401 body = %v", body)
			}
		}
	})
}

func TestBadCookies(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH()
		forged := session.NewSecret().Cookie()
		for name, v := range map[string]string{
			"garbage":   "not-a-cookie",
			"truncated": forged[:20],
			"oversized": strings.Repeat("A", 3000),
			"forged":    forged,
			"binary":    "g1.%00%ff",
		} {
			t.Run(name, func(t *testing.T) {
				b := h.browser()
				b.SetCookie(h.site.URL, "gatehouse", v)
				if p := b.Do(http.MethodGet, h.site.URL+"/", nil, true); p.Status != http.StatusFound {
					t.Errorf("navigation: status %d, want 302", p.Status)
				}
				if p := b.Do(http.MethodGet, h.site.URL+"/", nil, false); p.Status != http.StatusUnauthorized {
					t.Errorf("API: status %d, want 401", p.Status)
				}
			})
		}
	})
}

// startLogin navigates to the site and returns the provider's login page,
// leaving the state cookie in the browser.
func startLogin(b *browser, path string) testflow.Page {
	return b.Follow(b.h.site.URL + path)
}

func TestTamperedAndReplayedCallbacks(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH()
		h.expectErrors("exchanging code")

		t.Run("tampered state", func(t *testing.T) {
			b := h.browser()
			p := startLogin(b, "/")
			// Stop at the callback to change its state.
			b.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			cb := callbackURL(t, b, p, "alice")
			u, _ := url.Parse(cb)
			q := u.Query()
			q.Set("state", q.Get("state")+"x")
			u.RawQuery = q.Encode()
			r := b.Do(http.MethodGet, u.String(), nil, true)
			assertFailed(t, h, b, r, activity.ReasonStateMismatch)
		})
		t.Run("replayed callback", func(t *testing.T) {
			b := h.browser()
			p := startLogin(b, "/")
			cb := callbackURL(t, b, p, "alice")
			stateCookies := b.Jar.Cookies(mustURL(cb))
			if r := b.Do(http.MethodGet, cb, nil, true); r.Status != http.StatusFound {
				t.Fatalf("first callback: %d %s", r.Status, r.Body)
			}
			// An attacker who saw the callback URL and the state cookie
			// replays both in a fresh browser.
			b2 := h.browser()
			b2.Jar.SetCookies(mustURL(cb), stateCookies)
			r := b2.Do(http.MethodGet, cb, nil, true)
			assertFailed(t, h, b2, r, activity.ReasonStateMismatch)
		})
		t.Run("callback without the browser's state cookie", func(t *testing.T) {
			b := h.browser()
			p := startLogin(b, "/")
			cb := callbackURL(t, b, p, "alice")
			victim := h.browser()
			r := victim.Do(http.MethodGet, cb, nil, true)
			assertFailed(t, h, victim, r, activity.ReasonStateMismatch)
		})
		t.Run("replayed code with a fresh state", func(t *testing.T) {
			b := h.browser()
			p := startLogin(b, "/")
			cb := callbackURL(t, b, p, "alice")
			if r := b.Do(http.MethodGet, cb, nil, true); r.Status != http.StatusFound {
				t.Fatalf("first callback: %d", r.Status)
			}
			oldCode := mustURL(cb).Query().Get("code")
			// Start a new sign-in to get a valid state, then hand the old
			// code in with it.
			b2 := h.browser()
			first := b2.Do(http.MethodGet, h.site.URL+"/", nil, true)
			state := mustURL(first.Header.Get("Location")).Query().Get("state")
			r := b2.Do(http.MethodGet, h.site.URL+"/.gatehouse/callback?code="+url.QueryEscape(oldCode)+"&state="+url.QueryEscape(state), nil, true)
			assertFailed(t, h, b2, r, activity.ReasonIDPError)
		})
		t.Run("provider error", func(t *testing.T) {
			b := h.browser()
			first := b.Do(http.MethodGet, h.site.URL+"/", nil, true)
			state := mustURL(first.Header.Get("Location")).Query().Get("state")
			r := b.Do(http.MethodGet, h.site.URL+"/.gatehouse/callback?error=access_denied&state="+url.QueryEscape(state), nil, true)
			assertFailed(t, h, b, r, activity.ReasonIDPError)
		})
		t.Run("garbage state cookie", func(t *testing.T) {
			b := h.browser()
			first := b.Do(http.MethodGet, h.site.URL+"/", nil, true)
			state := mustURL(first.Header.Get("Location")).Query().Get("state")
			cbURL := h.site.URL + "/.gatehouse/callback?code=x&state=" + url.QueryEscape(state)
			for _, c := range b.Jar.Cookies(mustURL(cbURL)) {
				if strings.HasPrefix(c.Name, "gatehouse_login_") {
					b.Jar.SetCookies(mustURL(cbURL), []*http.Cookie{{Name: c.Name, Value: "AAAA" + c.Value[4:], Path: "/.gatehouse/callback"}})
				}
			}
			r := b.Do(http.MethodGet, cbURL, nil, true)
			assertFailed(t, h, b, r, activity.ReasonStateMismatch)
		})
	})
}

func callbackURL(t *testing.T, b *browser, p testflow.Page, user string) string {
	return b.CallbackURL(p, user)
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// assertFailed checks a refused callback: 400 page, a login_failed event
// with reason, no session cookie, and no automatic restart of sign-in.
func assertFailed(t *testing.T, h *harness, b *browser, r testflow.Page, reason string) {
	t.Helper()
	if r.Status != http.StatusBadRequest {
		t.Errorf("status %d, want 400 (body %.200s)", r.Status, r.Body)
	}
	if loc := r.Header.Get("Location"); loc != "" {
		t.Errorf("failed callback redirects to %q; it must not restart sign-in", loc)
	}
	if !strings.Contains(r.Body, "Sign-in failed") {
		t.Errorf("failure page lacks its title: %.200s", r.Body)
	}
	if c := b.cookie("gatehouse"); c != "" {
		t.Errorf("failed callback left a session cookie")
	}
	found := false
	for _, e := range h.eventsOf(activity.LoginFailed) {
		if e.Reason == reason {
			found = true
		}
	}
	if !found {
		t.Errorf("no login_failed event with reason %q; have %+v", reason, h.eventsOf(activity.LoginFailed))
	}
}

func TestIDTokenChecks(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		tests := []struct {
			name    string
			mutate  func(c map[string]any)
			foreign bool
		}{
			{"wrong issuer", func(c map[string]any) { c["iss"] = "https://evil.example" }, false},
			{"wrong audience", func(c map[string]any) { c["aud"] = []string{"another-client"} }, false},
			{"wrong nonce", func(c map[string]any) { c["nonce"] = "replayed-nonce" }, false},
			{"no nonce", func(c map[string]any) { delete(c, "nonce") }, false},
			{"expired", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, false},
			{"bad signature", func(map[string]any) {}, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := newH()
				h.expectErrors("invalid token")
				h.tamper, h.foreignKey = tt.mutate, tt.foreign
				b := h.browser()
				p := startLogin(b, "/")
				cb := callbackURL(t, b, p, "alice")
				r := b.Do(http.MethodGet, cb, nil, true)
				assertFailed(t, h, b, r, activity.ReasonTokenInvalid)
			})
		}
		t.Run("untampered token passes through the same path", func(t *testing.T) {
			h := newH()
			h.tamper = func(map[string]any) {}
			b := h.browser()
			p := startLogin(b, "/")
			cb := callbackURL(t, b, p, "alice")
			if r := b.Do(http.MethodGet, cb, nil, true); r.Status != http.StatusFound {
				t.Fatalf("re-signed genuine token refused: %d %s", r.Status, r.Body)
			}
		})
	})
}

func TestReturnURLStaysOnSite(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH()
		for _, rd := range []string{"https://evil.example/", "//evil.example", "/\\evil.example", "/%2F%2Fevil.example"} {
			b := h.browser()
			p := b.Follow(h.site.URL + "/.gatehouse/login?rd=" + url.QueryEscape(rd))
			final, _ := b.SubmitLogin(p, "bob", "demo")
			if e := parseEcho(t, final); e.Path != "/" {
				t.Errorf("rd=%q: returned to %q, want /", rd, e.Path)
			}
		}
		b := h.browser()
		p := b.Follow(h.site.URL + "/.gatehouse/login?rd=" + url.QueryEscape("/docs?a=1"))
		final, _ := b.SubmitLogin(p, "bob", "demo")
		if e := parseEcho(t, final); e.Path != "/docs?a=1" {
			t.Errorf("rd=/docs?a=1: returned to %q", e.Path)
		}
	})
}

func TestNotAllowedUserRefusedAtCallback(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH(func(c *Config) { c.Identity.Groups = []string{"gatehouse-admins"} })
		b := h.browser()
		p := startLogin(b, "/")
		cb := callbackURL(t, b, p, "bob")
		r := b.Do(http.MethodGet, cb, nil, true)
		if r.Status != http.StatusForbidden {
			t.Errorf("status %d, want 403", r.Status)
		}
		if b.cookie("gatehouse") != "" {
			t.Error("refused user got a session cookie")
		}
		ev := h.eventsOf(activity.LoginFailed)
		if len(ev) != 1 || ev[0].Reason != activity.ReasonNotAllowedGroup || ev[0].User != "bob" {
			t.Errorf("login_failed events = %+v", ev)
		}
		page, _ := h.store.List(context.Background(), session.Query{User: "bob"})
		if len(page.Items) != 0 {
			t.Errorf("refused user has %d sessions", len(page.Items))
		}
	})
}

func TestIdleTimeoutAndLifetime(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH(func(c *Config) { c.IdleTimeout = 10 * time.Minute; c.MaxLifetime = 30 * time.Minute })
		idle, active := h.browser(), h.browser()
		idle.login("alice", "/")
		active.login("bob", "/")
		idleID := idle.sessionID()
		// bob works every 4 minutes, past his idle timeout several times
		// over; alice is away and comes back after 12 minutes.
		for i := range 7 {
			h.clock.Advance(4 * time.Minute)
			if p := active.Do(http.MethodGet, h.site.URL+"/work", nil, false); p.Status != http.StatusOK {
				t.Fatalf("active session refused after %d min: %d", 4*(i+1), p.Status)
			}
			// Let the background writer record the access.
			waitFor(t, "touch", func() bool {
				s, err := h.store.Get(context.Background(), active.sessionID())
				return err == nil && !s.LastAccess.Before(h.clock.Now().Add(-time.Second)) && h.touchDone(s.ID)
			})
			if i == 2 {
				p := idle.Do(http.MethodGet, h.site.URL+"/", nil, true)
				if p.Status != http.StatusFound || !strings.HasPrefix(p.Header.Get("Location"), h.idpSrv.URL) {
					t.Errorf("idle session: status %d Location %q, want 302 to sign-in", p.Status, p.Header.Get("Location"))
				}
				if _, err := h.store.Get(context.Background(), idleID); !errors.Is(err, session.ErrNotFound) {
					t.Errorf("idle session still in store: %v", err)
				}
			}
		}
		ev := h.eventsOf(activity.ExpiredIdle)
		if len(ev) != 1 || ev[0].SessionID != idleID || ev[0].Inactivity != 12*60 {
			t.Errorf("session_expired_idle events = %+v", ev)
		}
		// Past the maximum lifetime even the active session ends.
		h.clock.Advance(3 * time.Minute)
		if p := active.Do(http.MethodGet, h.site.URL+"/work", nil, false); p.Status != http.StatusUnauthorized {
			t.Errorf("session past max lifetime: status %d, want 401", p.Status)
		}
		if ev := h.eventsOf(activity.ExpiredLifetime); len(ev) != 1 || ev[0].User != "bob" {
			t.Errorf("session_expired_lifetime events = %+v", ev)
		}
	})
}

func TestSweepRecordsExpiryWithoutARequest(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH(func(c *Config) { c.IdleTimeout = 10 * time.Minute })
		b := h.browser()
		b.login("alice", "/")
		id := b.sessionID()
		h.clock.Advance(11 * time.Minute)
		h.rt.Sweep(context.Background())
		ev := h.eventsOf(activity.ExpiredIdle)
		if len(ev) != 1 || ev[0].SessionID != id {
			t.Fatalf("after sweep: session_expired_idle events = %+v", ev)
		}
		// The browser coming back later records nothing twice.
		b.Do(http.MethodGet, h.site.URL+"/", nil, false)
		if ev := h.eventsOf(activity.ExpiredIdle); len(ev) != 1 {
			t.Errorf("expiry recorded %d times", len(ev))
		}
	})
}

func TestLogout(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH()
		b := h.browser()
		b.login("alice", "/")
		id := b.sessionID()
		r := b.Do(http.MethodPost, h.site.URL+"/.gatehouse/logout", url.Values{}, true, "Origin", h.site.URL)
		loc := r.Header.Get("Location")
		if r.Status != http.StatusFound || !strings.HasPrefix(loc, h.idpSrv.URL) {
			t.Fatalf("logout: %d to %q, want 302 to the provider's end_session", r.Status, loc)
		}
		q := mustURL(loc).Query()
		if q.Get("id_token_hint") == "" || q.Get("post_logout_redirect_uri") != h.site.URL+"/.gatehouse/signed-out" {
			t.Errorf("end_session query = %v", q)
		}
		if _, err := h.store.Get(context.Background(), id); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("session survived logout: %v", err)
		}
		final := b.Follow(loc)
		if final.Status != http.StatusOK || !strings.Contains(final.Body, "Signed out") {
			t.Errorf("after provider logout: %d %.200s", final.Status, final.Body)
		}
		if ev := h.eventsOf(activity.Logout); len(ev) != 1 || ev[0].SessionID != id || ev[0].Actor != "alice@example.com" {
			t.Errorf("logout events = %+v", ev)
		}
		// The provider's session ended too: the next sign-in asks again.
		p := b.Follow(h.site.URL + "/")
		if !testflow.FormAction.MatchString(p.Body) {
			t.Errorf("after logout the provider signed in silently: %.200s", p.Body)
		}
	})
}

func TestCrossSiteLogoutNeedsConfirmation(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH()
		b := h.browser()
		b.login("alice", "/")
		id := b.sessionID()
		r := b.Do(http.MethodGet, h.site.URL+"/.gatehouse/logout", nil, true, "Sec-Fetch-Site", "cross-site")
		if r.Status != http.StatusOK || !strings.Contains(r.Body, `method="post"`) {
			t.Errorf("cross-site GET logout: %d, want a confirmation form", r.Status)
		}
		r = b.Do(http.MethodPost, h.site.URL+"/.gatehouse/logout", url.Values{}, true, "Origin", "https://evil.example")
		if r.Status != http.StatusForbidden {
			t.Errorf("cross-origin POST logout: %d, want 403", r.Status)
		}
		if _, err := h.store.Get(context.Background(), id); err != nil {
			t.Errorf("session ended by a cross-site request: %v", err)
		}
	})
}

func TestBackchannelLogout(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH()
		b := h.browser()
		b.login("alice", "/")
		id := b.sessionID()
		if err := h.idp.EndUserSessions("alice"); err != nil {
			t.Fatalf("EndUserSessions: %v", err)
		}
		if _, err := h.store.Get(context.Background(), id); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("session survived back-channel logout: %v", err)
		}
		if p := b.Do(http.MethodGet, h.site.URL+"/", nil, false); p.Status != http.StatusUnauthorized {
			t.Errorf("request after back-channel logout: %d, want 401", p.Status)
		}
		if ev := h.eventsOf(activity.BackchannelLogout); len(ev) != 1 {
			t.Errorf("backchannel_logout events = %+v", ev)
		}
		// Forged tokens are refused.
		for name, tok := range map[string]string{
			"garbage": "x.y.z",
			"wrong issuer": mustSign(t, h, map[string]any{"iss": "https://evil.example", "aud": "site", "iat": time.Now().Unix(), "jti": "1",
				"sub": "bob", "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}),
			"nonce present": mustSign(t, h, map[string]any{"iss": h.idpSrv.URL, "aud": "site", "iat": time.Now().Unix(), "jti": "2", "nonce": "n",
				"sub": "bob", "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}),
			"no event": mustSign(t, h, map[string]any{"iss": h.idpSrv.URL, "aud": "site", "iat": time.Now().Unix(), "jti": "3", "sub": "bob"}),
		} {
			r := b.Do(http.MethodPost, h.site.URL+"/.gatehouse/backchannel-logout", url.Values{"logout_token": {tok}}, false)
			if r.Status != http.StatusBadRequest {
				t.Errorf("%s logout token: status %d, want 400", name, r.Status)
			}
		}
	})
}

func mustSign(t *testing.T, h *harness, claims map[string]any) string {
	t.Helper()
	s, err := h.idp.SignJWT(claims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestForwardAuth(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH()
		b := h.browser()
		if r := b.Do(http.MethodGet, h.site.URL+"/.gatehouse/auth", nil, false); r.Status != http.StatusUnauthorized {
			t.Errorf("forward-auth without session: %d, want 401", r.Status)
		}
		b.login("bob", "/")
		r := b.Do(http.MethodGet, h.site.URL+"/.gatehouse/auth", nil, false)
		if r.Status != http.StatusOK || r.Header.Get(HeaderUser) != "bob" || r.Header.Get(HeaderEmail) != "bob@example.com" {
			t.Errorf("forward-auth: %d %v", r.Status, r.Header)
		}
	})
}

// A browser whose session was ended must prove who it is again: the
// provider's own single sign-on must not sign it straight back in (found
// by the Chromium tests: revoking a lost laptop's session achieved
// nothing).
func TestEndedSessionMustAuthenticateAgain(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		// The provider stamps ID tokens with the real clock (5 minute
		// lifetime), so the test clock may run ahead only a little.
		h := newH(func(c *Config) { c.IdleTimeout = 2 * time.Minute })
		for _, end := range []struct {
			name string
			do   func(b *browser)
		}{
			{"revoked", func(b *browser) {
				if _, err := h.rt.End(context.Background(), b.sessionID(), session.EndRevoked, "alice@example.com", ""); err != nil {
					t.Fatal(err)
				}
				// Typing a password takes longer than the second in
				// which the revocation happened (see stale).
				h.clock.Advance(2 * time.Second)
			}},
			{"idle", func(*browser) { h.clock.Advance(3 * time.Minute) }},
		} {
			t.Run(end.name, func(t *testing.T) {
				b := h.browser()
				b.login("bob", "/")
				// A fresh navigation while signed in at the provider is
				// silent: that is what the provider's SSO is for.
				first := b.Do(http.MethodGet, h.site.URL+"/.gatehouse/login", nil, true)
				if q := mustURL(first.Header.Get("Location")).Query(); q.Get("prompt") != "" {
					t.Errorf("sign-in with a live session asks prompt=%q", q.Get("prompt"))
				}
				end.do(b)
				p := b.Do(http.MethodGet, h.site.URL+"/reports", nil, true)
				if p.Status != http.StatusFound {
					t.Fatalf("navigation after the end: %d, want 302", p.Status)
				}
				if got := mustURL(p.Header.Get("Location")).Query().Get("prompt"); got != "login" {
					t.Errorf("re-sign-in asks prompt=%q, want login", got)
				}
				form := b.Follow(p.Header.Get("Location"))
				if !testflow.FormAction.MatchString(form.Body) {
					t.Fatalf("the provider signed the ended browser back in without asking: %.200s", form.Body)
				}
				final, _ := b.SubmitLogin(form, "bob", "demo")
				if e := parseEcho(t, final); e.Path != "/reports" {
					t.Errorf("after signing in again: at %q, want /reports", e.Path)
				}
			})
		}
	})
}

// The ID token for id_token_hint lives sealed in a cookie sent only to
// the logout endpoint: signing out after a revocation still ends the
// provider's session, and a tampered cookie only loses the hint.
func TestLogoutHint(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH()
		t.Run("after revocation", func(t *testing.T) {
			b := h.browser()
			b.login("alice", "/")
			if _, err := h.rt.End(context.Background(), b.sessionID(), session.EndRevoked, "admin@example.com", ""); err != nil {
				t.Fatal(err)
			}
			r := b.Do(http.MethodPost, h.site.URL+"/.gatehouse/logout", url.Values{}, true, "Origin", h.site.URL)
			if q := mustURL(r.Header.Get("Location")).Query(); q.Get("id_token_hint") == "" {
				t.Errorf("sign-out after revocation went to %q without id_token_hint", r.Header.Get("Location"))
			}
		})
		t.Run("tampered", func(t *testing.T) {
			b := h.browser()
			b.login("bob", "/")
			logoutURL := h.site.URL + "/.gatehouse/logout"
			var hint string
			for _, c := range b.Jar.Cookies(mustURL(logoutURL)) {
				if c.Name == "gatehouse_logout" {
					hint = c.Value
				}
			}
			if hint == "" {
				t.Fatal("no logout hint cookie for the logout path")
			}
			for _, c := range b.Jar.Cookies(mustURL(h.site.URL + "/")) {
				if c.Name == "gatehouse_logout" {
					t.Error("the logout hint cookie is sent outside the logout endpoint")
				}
			}
			b.Jar.SetCookies(mustURL(logoutURL), []*http.Cookie{{Name: "gatehouse_logout", Value: "AAAA" + hint[4:], Path: "/.gatehouse/logout"}})
			id := b.sessionID()
			r := b.Do(http.MethodPost, logoutURL, url.Values{}, true, "Origin", h.site.URL)
			if r.Status != http.StatusFound || mustURL(r.Header.Get("Location")).Query().Get("id_token_hint") != "" {
				t.Errorf("tampered hint: %d to %q, want a sign-out without id_token_hint", r.Status, r.Header.Get("Location"))
			}
			if _, err := h.store.Get(context.Background(), id); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("session survived a sign-out with a tampered hint: %v", err)
			}
		})
	})
}

// A browser without Fetch Metadata (Safari before 16.4) following a link
// on another site sends that site as Referer: the GET only gets the
// confirmation form. The site's own pages, and clients that send neither
// header (curl, a typed URL), still sign out at once.
func TestLogoutGetFromElsewhereByReferer(t *testing.T) {
	h := newHarness(t, memBackend)
	for _, tt := range []struct {
		name    string
		headers []string
		confirm bool
	}{
		{"foreign referer", []string{"Referer", "https://evil.example/page"}, true},
		{"sibling subdomain referer", []string{"Referer", "http://other.127.0.0.1.nip.io/"}, true},
		{"referer of another port", []string{"Referer", "http://127.0.0.1:1/"}, true},
		{"unparsable referer", []string{"Referer", "::not a url"}, true},
		{"fetch metadata wins over referer", []string{"Sec-Fetch-Site", "same-origin", "Referer", "https://evil.example/"}, false},
		{"own referer", []string{"Referer", h.site.URL + "/app/page"}, false},
		{"neither header", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := h.browser()
			b.login("alice", "/")
			id := b.sessionID()
			r := b.Do(http.MethodGet, h.site.URL+"/.gatehouse/logout", nil, false, tt.headers...)
			_, err := h.store.Get(context.Background(), id)
			if tt.confirm {
				if r.Status != http.StatusOK || !strings.Contains(r.Body, `method="post"`) {
					t.Errorf("GET logout: %d, want the confirmation form", r.Status)
				}
				if err != nil {
					t.Errorf("session ended by a GET from elsewhere: %v", err)
				}
				return
			}
			if r.Status != http.StatusFound {
				t.Errorf("GET logout: %d, want 302 after signing out", r.Status)
			}
			if !errors.Is(err, session.ErrNotFound) {
				t.Errorf("session still there after a GET logout of its own: %v", err)
			}
		})
	}
}
