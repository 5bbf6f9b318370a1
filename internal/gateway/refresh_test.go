package gateway

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// accessLifetime is the dev provider's access token lifetime in these
// tests; its ID tokens, stamped with the real clock, live a day, so that
// refreshed ones still verify on the test clock moved hours ahead.
const accessLifetime = 5 * time.Minute

// pastRefresh moves a token past its refresh point (a minute before
// expiry for a five-minute token) but not past its expiry.
const pastRefresh = 4*time.Minute + 10*time.Second

func shortTokens(c *devidp.Config) {
	c.AccessTokenLifetime = accessLifetime
	c.TokenLifetime = 24 * time.Hour
}

func withRefresh(pass bool) harnessOption {
	return func(c *Config) { c.Refresh, c.PassAccessToken = true, pass }
}

func newRefreshHarness(t *testing.T, mkStore func(t *testing.T, now func() time.Time) backend, opts ...harnessOption) *harness {
	return newHarnessIDP(t, mkStore, nil, shortTokens, opts...)
}

var refreshStores = map[string]func(t *testing.T, now func() time.Time) backend{
	"memory": memBackend,
	"redis":  redisBackend,
}

// storedTokens opens the session's tokens as the store holds them.
func (h *harness) storedTokens(id string) (sealedTokens, []byte) {
	h.t.Helper()
	s, err := h.store.Get(context.Background(), id)
	if err != nil {
		h.t.Fatalf("session %s: %v", id, err)
	}
	t, err := h.rt.openTokens(id, s.Tokens)
	if err != nil {
		h.t.Fatalf("opening tokens: %v", err)
	}
	return t, s.Tokens
}

// refreshIdle reports whether no refresh of id is running.
func (h *harness) refreshIdle(id string) bool {
	f := h.rt.refresh
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.state[id]
	return st == nil || !st.running
}

func accessHeader(e echo) string {
	if v := e.Headers[HeaderAccessToken]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// Issue 7, item 4: with refresh on, the access token is refreshed in the
// background before it expires, several times; tokens are sealed in the
// store; the upstream gets the current token with pass_access_token and
// never a client's. When the provider refuses (the user was disabled),
// the session ends with refresh_failed and the next request is a 401.
func TestRefreshThenRefused(t *testing.T) {
	for name, mk := range refreshStores {
		t.Run(name, func(t *testing.T) {
			h := newRefreshHarness(t, mk, withRefresh(true))
			b := h.browser()
			e := b.login("bob", "/")
			id := b.sessionID()
			stored, blob := h.storedTokens(id)
			if stored.Refresh == "" || stored.Access == "" {
				t.Fatalf("stored tokens %+v, want a refresh and an access token", stored)
			}
			if got := accessHeader(e); got != stored.Access {
				t.Fatalf("upstream access token %q, want the stored %q", got, stored.Access)
			}
			if bytes.Contains(blob, []byte(stored.Access)) || bytes.Contains(blob, []byte(stored.Refresh)) {
				t.Fatal("the store holds a token in the clear")
			}
			for _, c := range b.Jar.Cookies(mustURL(h.site.URL)) {
				if len(c.Value) > 200 {
					t.Errorf("cookie %s is %d bytes: tokens belong in the store", c.Name, len(c.Value))
				}
			}
			prev := stored
			for i := range 3 {
				h.clock.Advance(pastRefresh)
				calls := h.refreshCalls.Load()
				// The request that finds the token due is not held up:
				// it goes through with the current (still valid) token.
				p := b.Do(http.MethodGet, h.site.URL+"/x", nil, false, "X-Forwarded-Access-Token", "forged", "X_Forwarded_Access_Token", "forged")
				if p.Status != http.StatusOK {
					t.Fatalf("refresh %d: request %d", i, p.Status)
				}
				if got := accessHeader(parseEcho(t, p)); got == "forged" || got == "" {
					t.Fatalf("refresh %d: upstream got access token %q", i, got)
				}
				waitFor(t, "the refresh", func() bool { return h.refreshCalls.Load() > calls && h.refreshIdle(id) })
				cur, _ := h.storedTokens(id)
				if cur.Access == prev.Access || cur.Refresh == prev.Refresh {
					t.Fatalf("refresh %d: tokens not replaced", i)
				}
				e := parseEcho(t, b.Do(http.MethodGet, h.site.URL+"/x", nil, false))
				if got := accessHeader(e); got != cur.Access {
					t.Fatalf("refresh %d: upstream got %q, want the refreshed %q", i, got, cur.Access)
				}
				if n := len(e.Headers[HeaderAccessToken]) + len(e.Headers["X_Forwarded_Access_Token"]); n != 1 {
					t.Fatalf("refresh %d: %d access token headers reached the upstream", i, n)
				}
				prev = cur
			}
			if got := h.refreshCalls.Load(); got != 3 {
				t.Errorf("%d refresh calls for 3 refreshes", got)
			}
			if ev := h.eventsOf(activity.RefreshFailed); len(ev) != 0 {
				t.Fatalf("refresh_failed while the provider refreshes: %+v", ev)
			}

			h.idp.DisableUser("bob")
			h.clock.Advance(pastRefresh)
			if p := b.Do(http.MethodGet, h.site.URL+"/x", nil, false); p.Status != http.StatusOK {
				t.Fatalf("request that starts the refused refresh: %d", p.Status)
			}
			waitFor(t, "refresh_failed", func() bool { return len(h.eventsOf(activity.RefreshFailed)) == 1 })
			ev := h.eventsOf(activity.RefreshFailed)[0]
			if ev.User != "bob" || ev.SessionID != id || ev.Actor != activity.ActorSystem {
				t.Errorf("refresh_failed event %+v", ev)
			}
			if p := b.Do(http.MethodGet, h.site.URL+"/x", nil, false); p.Status != http.StatusUnauthorized {
				t.Errorf("after refresh_failed: %d, want 401", p.Status)
			}
			if _, err := h.store.Get(context.Background(), id); err != session.ErrNotFound {
				t.Errorf("session after refresh_failed: %v, want ErrNotFound", err)
			}
		})
	}
}

// Issue 7, item 4: a provider that is merely down (503 from its token
// endpoint) does not end sessions, even past the access token's expiry;
// the gateway retries with backoff and succeeds once it is back.
func TestRefreshProviderDown(t *testing.T) {
	for name, mk := range refreshStores {
		t.Run(name, func(t *testing.T) {
			h := newRefreshHarness(t, mk, withRefresh(true))
			// Redis times the lock with its own clock, not the test's:
			// let retries through as time passes on the test clock.
			h.rt.refresh.lockTTL = time.Millisecond
			h.expectErrors("refreshing tokens")
			b := h.browser()
			b.login("bob", "/")
			id := b.sessionID()
			before, _ := h.storedTokens(id)
			h.tokenDown.Store(true)
			for i := range 4 {
				h.clock.Advance(2 * time.Minute) // past the refresh point, then past expiry
				calls := h.refreshCalls.Load()
				if p := b.Do(http.MethodGet, h.site.URL+"/x", nil, false); p.Status != http.StatusOK {
					t.Fatalf("provider down, request %d: %d, want 200", i, p.Status)
				}
				if i > 0 {
					waitFor(t, "a retried refresh", func() bool { return h.refreshCalls.Load() > calls && h.refreshIdle(id) })
				}
			}
			if ev := h.eventsOf(activity.RefreshFailed); len(ev) != 0 {
				t.Fatalf("provider down ended the session: %+v", ev)
			}
			h.tokenDown.Store(false)
			h.clock.Advance(refreshMaxRetry)
			calls := h.refreshCalls.Load()
			if p := b.Do(http.MethodGet, h.site.URL+"/x", nil, false); p.Status != http.StatusOK {
				t.Fatalf("provider back: %d", p.Status)
			}
			waitFor(t, "the refresh once the provider is back", func() bool { return h.refreshCalls.Load() > calls && h.refreshIdle(id) })
			if after, _ := h.storedTokens(id); after.Access == before.Access {
				t.Error("tokens not refreshed once the provider was back")
			}
		})
	}
}

// Issue 7, item 4: two instances on one Redis refresh a session at most
// once at a time: the lock is in the store, and the loser does not use
// the (rotated, now spent) refresh token it has cached.
func TestRefreshOnceAcrossInstances(t *testing.T) {
	srv := testredis.StartServer(t)
	h := newRefreshHarness(t, func(t *testing.T, now func() time.Time) backend { return newRedisStore(t, srv.Addr(), now) }, withRefresh(true))
	storeB := newRedisStore(t, srv.Addr(), h.clock.Now)
	rtB, err := NewRuntime(RuntimeConfig{Store: storeB, Events: storeB, Secret: testSecret, CacheTTL: 5 * time.Second, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rtB.Start()
	t.Cleanup(rtB.Close)
	gwB, err := New(h.gw.cfg, rtB)
	if err != nil {
		t.Fatal(err)
	}
	b := h.browser()
	b.login("bob", "/")
	id := b.sessionID()
	cookie := "gatehouse=" + b.cookie("gatehouse")
	reqB := func() int {
		r, _ := http.NewRequest(http.MethodGet, h.site.URL+"/x", nil)
		r.Header.Set("Cookie", cookie)
		r.RemoteAddr = "127.0.0.1:1234"
		w := &statusRecorder{header: http.Header{}}
		if s := gwB.Serve(w, r); s != nil {
			return http.StatusOK
		}
		return w.status
	}
	idleB := func() bool {
		rtB.refresh.mu.Lock()
		defer rtB.refresh.mu.Unlock()
		st := rtB.refresh.state[id]
		return st == nil || !st.running
	}
	for round := 1; round <= 3; round++ {
		h.clock.Advance(pastRefresh)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				if got := reqB(); got != http.StatusOK {
					t.Errorf("instance B: %d", got)
				}
			}()
			go func() {
				defer wg.Done()
				if p := b.Do(http.MethodGet, h.site.URL+"/x", nil, false); p.Status != http.StatusOK {
					t.Errorf("instance A: %d", p.Status)
				}
			}()
		}
		wg.Wait()
		waitFor(t, "the refresh", func() bool { return h.refreshCalls.Load() >= int64(round) && h.refreshIdle(id) && idleB() })
		time.Sleep(100 * time.Millisecond)
		if got := h.refreshCalls.Load(); got != int64(round) {
			t.Fatalf("round %d: %d refresh calls in all, want %d (one per round)", round, got, round)
		}
	}
	if ev := h.eventsOf(activity.RefreshFailed); len(ev) != 0 {
		t.Fatalf("refresh_failed: %+v", ev)
	}
}

// Issue 7, item 4: the access token reaches the upstream only when the
// site asks (pass_access_token), never by default, and a client's copy is
// deleted either way; pass_access_token without refresh is a config error.
func TestPassAccessTokenOnlyWhenAsked(t *testing.T) {
	h := newRefreshHarness(t, memBackend, withRefresh(false))
	b := h.browser()
	b.login("bob", "/")
	e := parseEcho(t, b.Do(http.MethodGet, h.site.URL+"/x", nil, false, "X-Forwarded-Access-Token", "forged", "x_forwarded_access_token", "forged"))
	for k := range e.Headers {
		if equalFoldDash(k, HeaderAccessToken) {
			t.Errorf("upstream got %s without pass_access_token", k)
		}
	}
	cfg := h.baseConfig("other")
	cfg.PassAccessToken = true
	if _, err := New(cfg, h.rt); err == nil {
		t.Error("pass_access_token without refresh accepted")
	}
}

// A session whose tokens another client (another site's provider client)
// issued gets neither refreshed nor passed on here: an access token is
// meant for its own client's upstreams.
func TestAccessTokenStaysWithItsClient(t *testing.T) {
	h := newRefreshHarness(t, memBackend, withRefresh(true))
	other := h.addSite(withRefresh(true))
	b := h.browser()
	b.login("bob", "/")
	id := b.sessionID()
	e := parseEcho(t, b.Do(http.MethodGet, other.URL()+"/x", nil, false))
	if got := accessHeader(e); got != "" {
		t.Errorf("another client's site passed the access token %q", got)
	}
	h.clock.Advance(pastRefresh)
	b.Do(http.MethodGet, other.URL()+"/x", nil, false)
	time.Sleep(50 * time.Millisecond)
	if n := h.refreshCalls.Load(); n != 0 {
		t.Errorf("another client's site refreshed the tokens (%d calls)", n)
	}
	_ = id
}

// Refresh store round trips per hour per session, with five-minute access
// tokens and a request a minute: the store calls of an hour with refresh
// on, less those of the same hour with it off.
func TestRefreshStoreRoundTrips(t *testing.T) {
	hour := func(refresh bool) (map[string]int, int64) {
		var opts []harnessOption
		if refresh {
			opts = append(opts, withRefresh(false))
		}
		h := newRefreshHarness(t, memBackend, opts...)
		b := h.browser()
		b.login("bob", "/")
		id := b.sessionID()
		start := h.calls.snapshot()
		for range 60 {
			h.clock.Advance(time.Minute)
			if p := b.Do(http.MethodGet, h.site.URL+"/x", nil, false); p.Status != http.StatusOK {
				t.Fatalf("request: %d", p.Status)
			}
			waitFor(t, "background work", func() bool { return h.refreshIdle(id) && h.touchDone(id) })
		}
		end := h.calls.snapshot()
		for k := range end {
			end[k] -= start[k]
		}
		return end, h.refreshCalls.Load()
	}
	off, _ := hour(false)
	on, refreshes := hour(true)
	extra := 0
	for k, v := range on {
		extra += v - off[k]
	}
	t.Logf("one hour, 5-minute access tokens, a request a minute: %d refreshes; store calls with refresh %v, without %v; %d refresh round trips per hour per session", refreshes, on, off, extra)
	if refreshes < 12 || refreshes > 16 {
		t.Errorf("%d refreshes in an hour of five-minute tokens", refreshes)
	}
	if extra > 3*int(refreshes) {
		t.Errorf("%d extra store round trips for %d refreshes, want at most 3 each", extra, refreshes)
	}
}
