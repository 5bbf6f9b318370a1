package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// Review 15b, item 2: the logout endpoint. A cross-site GET or POST signs
// no one out, and a sign-out ends only the browser's own session, never
// the user's others.
func TestReview15bLogoutCrossSite(t *testing.T) {
	h := newHarness(t, memBackend)
	b := h.browser()
	b.login("bob", "/")
	id := b.sessionID()
	other := h.browser()
	other.login("bob", "/")
	otherID := other.sessionID()
	alive := func(what string, ids ...string) {
		t.Helper()
		for _, id := range ids {
			if _, err := h.store.Get(context.Background(), id); err != nil {
				t.Fatalf("%s ended session %s: %v", what, id, err)
			}
		}
	}
	logout := h.site.URL + "/.gatehouse/logout"
	for _, tt := range []struct {
		name   string
		method string
		hdr    []string
	}{
		{"cross-site GET", http.MethodGet, []string{"Sec-Fetch-Site", "cross-site"}},
		{"same-site GET", http.MethodGet, []string{"Sec-Fetch-Site", "same-site"}},
		{"cross-site HEAD", http.MethodHead, []string{"Sec-Fetch-Site", "cross-site"}},
		{"POST, foreign origin", http.MethodPost, []string{"Origin", "https://evil.example"}},
		{"POST, null origin", http.MethodPost, []string{"Origin", "null"}},
		{"POST, sibling host origin", http.MethodPost, []string{"Origin", h.site.URL + ".evil.example"}},
		{"POST, https origin", http.MethodPost, []string{"Origin", "https" + h.site.URL[len("http"):]}},
		{"POST, cross-site, no origin", http.MethodPost, []string{"Sec-Fetch-Site", "cross-site"}},
		{"POST, foreign origin, same-origin fetch claim", http.MethodPost, []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "same-origin"}},
		{"PUT", http.MethodPut, nil},
		{"DELETE", http.MethodDelete, nil},
	} {
		var form url.Values
		if tt.method == http.MethodPost {
			form = url.Values{"all": {"true"}}
		}
		r := b.Do(tt.method, logout+"?all=true", form, true, tt.hdr...)
		if r.Status >= 300 && r.Status < 400 {
			t.Errorf("%s: %d, a redirect (signed out?)", tt.name, r.Status)
		}
		alive(tt.name, id, otherID)
	}
	// A same-origin sign-out ends this browser's session and no other.
	r := b.Do(http.MethodPost, logout+"?all=true", url.Values{"all": {"true"}}, true, "Origin", h.site.URL)
	if r.Status >= 400 {
		t.Fatalf("same-origin POST logout: %d", r.Status)
	}
	if _, err := h.store.Get(context.Background(), id); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("same-origin logout left the session: %v", err)
	}
	alive("same-origin logout", otherID)
}

// Review 15b: the confirmation form is what stands between a cross-site
// GET and a sign-out, so no other site may frame it and lure a click onto
// its button. frame-ancestors covers browsers with CSP 2; X-Frame-Options
// the rest, as on the admin pages (admin/pages.go).
func TestReview15bLogoutConfirmationNotFramable(t *testing.T) {
	h := newHarness(t, memBackend)
	b := h.browser()
	b.login("bob", "/")
	r := b.Do(http.MethodGet, h.site.URL+"/.gatehouse/logout", nil, true, "Sec-Fetch-Site", "cross-site")
	if r.Status != http.StatusOK {
		t.Fatalf("cross-site GET logout: %d", r.Status)
	}
	if got := r.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options = %q, want DENY", got)
	}
	if got := r.Header.Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q, want frame-ancestors 'none'", got)
	}
}

// signHS256 signs claims with key under HS256, as a forger who knows the
// client secret would (by hand: go-jose refuses keys this short).
func signHS256(t *testing.T, key []byte, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	in := enc([]byte(`{"alg":"HS256","typ":"JWT","kid":""}`)) + "." + enc(payload)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(in))
	return in + "." + enc(mac.Sum(nil))
}

// unsigned is claims as a JWT with alg none.
func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

// Review 15b, item 3: back-channel logout tokens that must be refused
// (400, nothing ends), and valid ones that end exactly what they name.
func TestReview15bBackchannelLogout(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH()
		a1, a2, bob := h.browser(), h.browser(), h.browser()
		a1.login("alice", "/")
		a2.login("alice", "/")
		bob.login("bob", "/")
		ids := []string{a1.sessionID(), a2.sessionID(), bob.sessionID()}
		sidOf := func(id string) string {
			s, err := h.store.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if s.IDPSessionID == "" {
				t.Fatalf("session %s has no provider sid", id)
			}
			return s.IDPSessionID
		}
		sid1, sid2 := sidOf(ids[0]), sidOf(ids[1])
		if sid1 == sid2 {
			t.Fatalf("two browsers share the provider sid %q", sid1)
		}
		// Another provider's session of "alice" with the very sid of a1's.
		now := h.clock.Now()
		foreign := &session.Session{
			ID: session.NewSecretFor("alice").ID(), User: "alice", Site: "127.0.0.1",
			CreatedAt: now, LastAccess: now, ExpiresAt: now.Add(time.Hour),
			IP: "192.0.2.50", LastIP: "192.0.2.50", IssuerKey: session.IssuerKey("https://other-idp.example"),
			IDPSessionID: sid1,
		}
		if err := h.store.Create(context.Background(), foreign); err != nil {
			t.Fatal(err)
		}
		all := append(ids, foreign.ID)
		alive := func(what string, except ...string) {
			t.Helper()
		next:
			for _, id := range all {
				for _, x := range except {
					if id == x {
						continue next
					}
				}
				if _, err := h.store.Get(context.Background(), id); err != nil {
					t.Fatalf("%s ended session %s: %v", what, id, err)
				}
			}
		}
		gone := func(what, id string) {
			t.Helper()
			if _, err := h.store.Get(context.Background(), id); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("%s left session %s: %v", what, id, err)
			}
		}
		event := map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}
		jti := 0
		claims := func(edit func(map[string]any)) map[string]any {
			jti++
			c := map[string]any{"iss": h.idpSrv.URL, "aud": "site", "iat": h.clock.Now().Unix(),
				"jti": "r15b-" + string(rune('a'+jti)), "sub": "alice", "sid": sid1, "events": event}
			if edit != nil {
				edit(c)
			}
			return c
		}
		post := func(form url.Values) int {
			return a1.Do(http.MethodPost, h.site.URL+"/.gatehouse/backchannel-logout", form, false).Status
		}
		send := func(tok string) int { return post(url.Values{"logout_token": {tok}}) }

		for _, tt := range []struct {
			name string
			tok  string
		}{
			{"wrong iss", mustSign(t, h, claims(func(c map[string]any) { c["iss"] = "https://other-idp.example" }))},
			{"iss with a trailing slash", mustSign(t, h, claims(func(c map[string]any) { c["iss"] = h.idpSrv.URL + "/" }))},
			{"wrong aud", mustSign(t, h, claims(func(c map[string]any) { c["aud"] = "another-client" }))},
			{"aud of another site among others", mustSign(t, h, claims(func(c map[string]any) { c["aud"] = []string{"b"} }))},
			{"no events", mustSign(t, h, claims(func(c map[string]any) { delete(c, "events") }))},
			{"events empty", mustSign(t, h, claims(func(c map[string]any) { c["events"] = map[string]any{} }))},
			{"nonce", mustSign(t, h, claims(func(c map[string]any) { c["nonce"] = "n" }))},
			{"empty nonce", mustSign(t, h, claims(func(c map[string]any) { c["nonce"] = "" }))},
			{"neither sub nor sid", mustSign(t, h, claims(func(c map[string]any) { delete(c, "sub"); delete(c, "sid") }))},
			{"empty sub and sid", mustSign(t, h, claims(func(c map[string]any) { c["sub"], c["sid"] = "", "" }))},
			{"old iat", mustSign(t, h, claims(func(c map[string]any) { c["iat"] = h.clock.Now().Add(-time.Hour).Unix() }))},
			{"iat far ahead", mustSign(t, h, claims(func(c map[string]any) { c["iat"] = h.clock.Now().Add(time.Hour).Unix() }))},
			{"no iat", mustSign(t, h, claims(func(c map[string]any) { delete(c, "iat") }))},
			{"iat as string", mustSign(t, h, claims(func(c map[string]any) { c["iat"] = "now" }))},
			{"expired", mustSign(t, h, claims(func(c map[string]any) { c["exp"] = h.clock.Now().Add(-time.Second).Unix() }))},
			{"no jti", mustSign(t, h, claims(func(c map[string]any) { delete(c, "jti") }))},
			{"alg none", unsigned(t, claims(nil))},
			{"HS256 with the client secret", signHS256(t, []byte("site-secret"), claims(nil))},
			{"sub as a number", mustSign(t, h, claims(func(c map[string]any) { delete(c, "sid"); c["sub"] = 1 }))},
			{"garbage", "x.y.z"},
			{"empty", ""},
		} {
			if got := send(tt.tok); got != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", tt.name, got)
			}
			alive(tt.name)
		}
		// The token in the query string or as JSON is no form post.
		tok := mustSign(t, h, claims(nil))
		if got := a1.Do(http.MethodPost, h.site.URL+"/.gatehouse/backchannel-logout?logout_token="+url.QueryEscape(tok), nil, false).Status; got != http.StatusBadRequest {
			t.Errorf("token in the query: %d, want 400", got)
		}
		if got := a1.Do(http.MethodGet, h.site.URL+"/.gatehouse/backchannel-logout?logout_token="+url.QueryEscape(tok), nil, false).Status; got != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d, want 405", got)
		}
		alive("token outside the form")

		// bob's sub with alice's sid names no session.
		if got := send(mustSign(t, h, claims(func(c map[string]any) { c["sub"] = "bob" }))); got != http.StatusOK {
			t.Errorf("bob's sub with alice's sid: %d", got)
		}
		alive("bob's sub with alice's sid")

		// A valid sid-only token ends a1's session: not a2's, not bob's, not
		// the other provider's session with the same sid.
		valid := mustSign(t, h, claims(func(c map[string]any) { delete(c, "sub") }))
		if got := send(valid); got != http.StatusOK {
			t.Fatalf("valid sid-only token: %d", got)
		}
		gone("valid sid-only token", ids[0])
		alive("valid sid-only token", ids[0])
		// Forward-auth follows at once.
		if got := a1.Do(http.MethodGet, h.site.URL+"/.gatehouse/auth", nil, false).Status; got != http.StatusUnauthorized {
			t.Errorf("forward-auth with the ended session: %d, want 401", got)
		}
		if got := a2.Do(http.MethodGet, h.site.URL+"/.gatehouse/auth", nil, false).Status; got != http.StatusOK {
			t.Errorf("forward-auth with the session left alone: %d, want 200", got)
		}

		// Replayed, it is refused and ends nothing new.
		if got := send(valid); got != http.StatusBadRequest {
			t.Errorf("replayed token: %d, want 400", got)
		}
		alive("replayed token", ids[0])

		// A valid sub-only token ends alice's sessions at this provider only.
		if got := send(mustSign(t, h, claims(func(c map[string]any) { delete(c, "sid") }))); got != http.StatusOK {
			t.Fatalf("valid sub-only token: %d", got)
		}
		gone("valid sub-only token", ids[1])
		alive("valid sub-only token", ids[0], ids[1])
	})
}

// Review 15b: when the provider's discovery cannot be reached, a logout
// token cannot be checked at all, and the gateway answered 400 "invalid
// logout token": to the provider, a logout that failed for good (Back-
// Channel Logout 1.0, 2.8), so it does not deliver again and the sessions
// live on. As with the store down (TestBackchannelLogoutRetryAndJTI), it
// is a 503 the provider may retry.
func TestReview15bBackchannelLogoutProviderDown(t *testing.T) {
	h := newHarness(t, memBackend)
	down := httptest.NewServer(http.NotFoundHandler())
	issuer := down.URL
	down.Close()
	gw, err := New(Config{Issuer: issuer, ClientID: "b", ClientSecret: "b-secret"}, h.rt)
	if err != nil {
		t.Fatal(err)
	}
	h.expectErrors("discovery of")
	req := httptest.NewRequest(http.MethodPost, "http://b.example/.gatehouse/backchannel-logout",
		strings.NewReader(url.Values{"logout_token": {"eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	gw.Serve(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("logout token with the provider unreachable: %d %s, want 503", rec.Code, rec.Body)
	}
}
