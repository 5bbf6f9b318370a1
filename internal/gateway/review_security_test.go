package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// Review of the issue 6 fixes: each test here shows a defect that is
// still present; it fails on the code it was written against.

// viewerOf asks st's admin handler (viewerEcho) what the gateway told it
// about b's rights.
func viewerOf(t *testing.T, b *browser, siteURL string) (admin bool, sites []string) {
	t.Helper()
	r := b.Do(http.MethodGet, siteURL+"/.gatehouse/admin/", nil, true)
	var v struct {
		Admin bool     `json:"admin"`
		Sites []string `json:"sites"`
	}
	if err := json.Unmarshal([]byte(r.Body), &v); err != nil {
		t.Fatalf("viewer on %s: %d %.200s", siteURL, r.Status, r.Body)
	}
	return v.Admin, v.Sites
}

// doHost sends a navigation to u with the Host header host, as a client
// talking to one listener may (Caddy routes by the Host header; a site
// without a host matcher, or a second port of the same host, accepts any).
func doHost(t *testing.T, b *browser, u, host string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Accept", "text/html")
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Review finding: the site registry learns "which gateway serves site X"
// from the client's Host header, and each gateway then skips learning
// again while its own Host is unchanged (lastHost). An admin of a lax
// site sends one request to it with the strict site's Host; from then on
// the strict site is in that admin's reach (Viewer.Sites), and the strict
// site's own traffic never repairs the map.
func TestReviewHostHeaderHijacksAdminReach(t *testing.T) {
	h := newHarness(t, memBackend) // harness site: admin_groups gatehouse-admins; bob is not one
	strict := h.addSite()          // admin_groups gatehouse-admins
	lax := h.addSite(func(c *Config) { c.AdminGroups = []string{"staff"} })
	strictHost := mustURL(strict.URL()).Host

	alice, bob := h.browser(), h.browser()
	alice.Login(strict.URL(), "/", "alice") // the strict site learns its host
	bob.Login(lax.URL(), "/", "bob")        // bob administers the lax site only

	if _, sites := viewerOf(t, bob, lax.URL()); slices.Contains(sites, strictHost) {
		t.Fatalf("before the attack bob already reaches %s: %q", strictHost, sites)
	}
	// One request to the lax site's listener naming the strict site.
	if st := doHost(t, bob, lax.URL()+"/", strictHost); st != http.StatusOK {
		t.Fatalf("request with a foreign Host: %d", st)
	}
	// The strict site keeps serving its users; that does not repair it.
	parseEcho(t, alice.Do(http.MethodGet, strict.URL()+"/", nil, true))
	if _, sites := viewerOf(t, bob, lax.URL()); slices.Contains(sites, strictHost) {
		t.Errorf("bob (admin of the lax site only) now reaches the strict site %s: Sites = %q", strictHost, sites)
	}
}

// Review finding: reach is nil ("every site") when every gateway of this
// runtime grants admin rights. A second instance on the same store that
// serves other sites (two Caddy configs, one Redis) is not consulted, so
// an admin of all of instance 1's sites reaches instance 2's sites,
// whose admin rules refuse them: fail open.
func TestReviewAdminReachFailsOpenAcrossInstances(t *testing.T) {
	h := newHarness(t, memBackend, func(c *Config) { c.Admin = viewerEcho })
	// Instance 2, same store, its own site where only other-admins
	// administer.
	rt2 := h.newRuntime(nil)
	var gw2 *Gateway
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := gw2.Serve(w, r); s != nil {
			upstream(w, r)
		}
	}))
	t.Cleanup(srv2.Close)
	cfg := h.baseConfig("instance2")
	cfg.AdminGroups = []string{"other-admins"}
	var err error
	if gw2, err = New(cfg, rt2); err != nil {
		t.Fatal(err)
	}
	h.register("instance2", srv2.URL)
	site2 := mustURL(srv2.URL).Host

	bob := h.browser()
	bob.Login(srv2.URL, "/", "bob") // a session of instance 2's site
	alice := h.browser()
	alice.login("alice", "/")
	admin, sites := viewerOf(t, alice, h.site.URL)
	if !admin {
		t.Fatal("alice is no admin on instance 1's site")
	}
	if sites == nil || slices.Contains(sites, site2) {
		t.Errorf("alice, admin of instance 1's only site, reaches instance 2's site %s whose admin_groups exclude her: Sites = %#v (nil is every site)", site2, sites)
	}
}

// Review finding: back-channel logout ends the sessions of the token's
// subject on every site, whatever provider they came from. Subjects are
// unique only per issuer, so provider B (hostile, sloppy, or just another
// tenant) ends the sessions a different provider A signed in.
func TestReviewBackchannelLogoutCrossesIssuers(t *testing.T) {
	h := newHarness(t, memBackend)
	alice := h.browser()
	alice.login("alice", "/") // "alice" at the harness's provider
	id := alice.sessionID()

	// A second provider with its own user "alice", serving site B.
	var idp2 *devidp.Provider
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { idp2.ServeHTTP(w, r) }))
	t.Cleanup(srv2.Close)
	var err error
	idp2, err = devidp.New(devidp.Config{Issuer: srv2.URL, Users: devidp.DemoUsers(), Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	gwB, err := New(Config{Issuer: srv2.URL, ClientID: "b", ClientSecret: "b-secret"}, h.rt)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := idp2.SignJWT(map[string]any{"iss": srv2.URL, "aud": "b", "iat": h.clock.Now().Unix(), "jti": "x1",
		"sub": "alice", "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "http://b.example/.gatehouse/backchannel-logout",
		strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	gwB.Serve(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("provider B's logout: %d %s", rec.Code, rec.Body)
	}
	if _, err := h.store.Get(context.Background(), id); errors.Is(err, session.ErrNotFound) {
		t.Error("provider B's logout token for its own \"alice\" ended the session provider A signed in")
	}
}

// Review finding: the flood limiter keys on the site as the client's Host
// header gives it. Caddy's host matchers ignore the port, so one address
// sending bogus callbacks with Host example.com:1, :2, ... opens a new
// window, and writes an event at once, every time: the "two events a
// minute per network" bound does not hold.
func TestReviewFloodLimiterKeyedOnClientHost(t *testing.T) {
	h := newHarness(t, memBackend)
	for i := range 200 {
		req := httptest.NewRequest(http.MethodGet, "/.gatehouse/callback?state=forged&code=x", nil)
		req.Host = fmt.Sprintf("example.com:%d", 1000+i)
		req.RemoteAddr = "192.0.2.7:4000"
		rec := httptest.NewRecorder()
		h.gw.Serve(rec, req)
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("bogus callback: %d", rec.Code)
		}
	}
	page, err := h.store.Query(context.Background(), activity.Filter{Types: []string{activity.LoginFailed}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(page.Items); n > 2 {
		t.Errorf("one address wrote %d login_failed events in a minute by varying the Host port, want at most 2", n)
	}
}

// Review finding: the limiter keeps the client's Host (any length the
// HTTP server accepts, 1 MB by default) in every key and first event:
// maxFloodKeys bounds the number of windows, not their size.
func TestReviewFloodLimiterMemoryGrowsWithHostLength(t *testing.T) {
	h := newHarness(t, memBackend)
	long := strings.Repeat("9", 16<<10)
	for i := range 500 {
		req := httptest.NewRequest(http.MethodGet, "/.gatehouse/callback?state=forged&code=x", nil)
		req.Host = fmt.Sprintf("example.com:%d%s", i, long)
		req.RemoteAddr = "192.0.2.7:4000"
		h.gw.Serve(httptest.NewRecorder(), req)
	}
	h.rt.flood.mu.Lock()
	held := 0
	for k, w := range h.rt.flood.windows {
		held += len(k.user) + len(k.network) + len(w.first.Site)
	}
	h.rt.flood.mu.Unlock()
	if held > 1<<20 {
		t.Errorf("limiter holds %d KiB of client-chosen Host text after 500 requests from one address", held>>10)
	}
}

// Review finding: once anonymous traffic has filled the limiter's
// maxFloodKeys windows (10000 IPv6 /64s, i.e. part of one /48, per
// minute), a signed-in user's access_denied is only counted in the
// overflow summary, which names no user, no site and no address: the
// real user's denial is hidden behind the flood.
func TestReviewFloodOverflowHidesSignedInUsersDenials(t *testing.T) {
	h := newHarness(t, memBackend, func(c *Config) { c.ClientIP = headerIP })
	strict := h.addSite(func(c *Config) { c.Identity.Groups = []string{"gatehouse-admins"}; c.ClientIP = headerIP })
	bob := h.browser()
	bob.login("bob", "/")
	for i := range maxFloodKeys {
		req := httptest.NewRequest(http.MethodGet, "/.gatehouse/callback?state=forged&code=x", nil)
		req.Header.Set(testIPHeader, fmt.Sprintf("2001:db8:77:%x::1", i))
		h.gw.Serve(httptest.NewRecorder(), req)
	}
	if r := bob.Do(http.MethodGet, strict.URL()+"/secret", nil, true, testIPHeader, "198.51.100.4"); r.Status != http.StatusForbidden {
		t.Fatalf("bob on the strict site: %d, want 403", r.Status)
	}
	h.clock.Advance(61 * time.Second)
	h.rt.FlushAggregated(context.Background())
	page, err := h.store.Query(context.Background(), activity.Filter{Types: []string{activity.AccessDenied}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Items {
		if e.User == "bob" {
			return
		}
	}
	t.Errorf("bob's access_denied is not in the log; events: %+v", page.Items)
}

// Review finding: only the first maxSessionCookies (4) cookies of our
// name are looked at. A sibling subdomain can set cookies for the parent
// domain with longer paths, which browsers send first: four garbage
// values in front of the real cookie lock the user out (on a site
// without the __Host- prefix: plain HTTP, cookie_secure false, or
// cookie_domain), and a fresh sign-in cannot help.
func TestReviewFiveShadowingCookiesLockOut(t *testing.T) {
	h := newHarness(t, memBackend)
	alice := h.browser()
	alice.login("alice", "/")
	mine := alice.cookie("gatehouse")
	cookie := "gatehouse=junk1; gatehouse=junk2; gatehouse=junk3; gatehouse=junk4; gatehouse=" + mine
	r := h.browser().Do(http.MethodGet, h.site.URL+"/a/b/c/d", nil, false, "Cookie", cookie)
	if r.Status != http.StatusOK {
		t.Errorf("real cookie behind four planted ones: %d, want 200 as alice", r.Status)
	}
}

// Review finding: stale() forgives an auth_time in the same second as the
// re-authentication mark (it compares with the mark truncated to its
// second). auth_time has whole seconds, so such an authentication may
// have happened up to 999 ms before the revocation: a revocation that
// reacts to a sign-in at once (an automated response to an anomaly, an
// admin watching the log) is undone by the provider's single sign-on.
// The ambiguous second should count as stale: a user who really signed
// in afresh in it is asked once more, which the Forced flag bounds.
func TestReviewReauthForgivesTheRevocationsSecond(t *testing.T) {
	h := newHarness(t, memBackend)
	b := h.browser()
	b.login("bob", "/")
	h.clock.Advance(2 * time.Second)
	now := h.clock.Now()
	// The revocation 700 ms into a second.
	h.clock.Advance(time.Second + 700*time.Millisecond - now.Sub(now.Truncate(time.Second)))
	mark := h.clock.Now()
	if _, err := h.rt.End(context.Background(), b.sessionID(), session.EndRevoked, "alice@example.com", ""); err != nil {
		t.Fatal(err)
	}
	// The provider's single sign-on answers with an authentication stamped
	// in the revocation's second (it may be 700 ms older than the mark).
	h.tamper = func(c map[string]any) { c["auth_time"] = mark.Unix() }
	b.SetCookie(h.site.URL, "gatehouse", "")
	p := b.Follow(h.site.URL + "/")
	if strings.Contains(p.Body, `"path"`) {
		t.Errorf("an authentication that may predate the revocation (auth_time %d, mark %s) signed bob back in without a fresh login", mark.Unix(), mark.Format(time.StampMilli))
	}
}

// Review finding: admin_emails, allow_emails (policy.Member) and
// allow_domains compare with strings.EqualFold, which folds Unicode:
// "\u017fam@example.com" (long s) is "sam@example.com", and
// "x@example.\u212aom"-style Kelvin signs fold to k. A provider that lets
// users register such an address and verifies it (it is a different
// mailbox) makes its owner an admin. Compare ASCII case-insensitively
// only (or exactly after lower-casing ASCII).
func TestReviewAdminEmailUnicodeFolding(t *testing.T) {
	h := newHarness(t, memBackend)
	g, err := New(Config{Issuer: h.idpSrv.URL, ClientID: "fold", AdminEmails: []string{"sam@example.com"}}, h.rt)
	if err != nil {
		t.Fatal(err)
	}
	if g.isAdmin(&session.Session{User: "mallory", Email: "\u017fam@example.com", EmailVerified: true}) {
		t.Error(`a verified "\u017fam@example.com" (long s) counts as admin_emails "sam@example.com"`)
	}
}
