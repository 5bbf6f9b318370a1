package caddymodule

// Fault tests (issue 10, item 3): each runs Caddy with gatehouse, the dev
// provider and a real redis-server under a bounded load (a few goroutines
// of requests for a few seconds), breaks one part, and checks what users
// see while it is broken and after it is back. Each logs its figures.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// recoveryAllowance is what a loaded CI machine may add to a bound the
// product promises (scheduling, the race detector).
const recoveryAllowance = 300 * time.Millisecond

// TestFaultRedisKilled kills Redis (SIGKILL) under load and starts it
// again from its append-only file: no crash, no lost session, cached
// sessions served throughout, a clear 503 for what needs the store, and
// service back within 1 s of Redis (SPEC, Targets).
func TestFaultRedisKilled(t *testing.T) {
	srv := testredis.StartServer(t, testredis.Persistent())
	e := newFaultEnv(t)
	e.load(e.config("redis://"+srv.Addr(), func(app map[string]any) {
		// Long enough to span the outage: the cached sessions must be
		// served from memory for all of it.
		app["cache_ttl"] = "10s"
	}))

	hot := []*testflow.Browser{e.signIn("alice"), e.signIn("bob"), e.signIn("alice")}
	var cold []*testflow.Browser
	for _, u := range []string{"alice", "bob", "alice", "bob"} {
		cold = append(cold, e.signInCold(u))
	}

	ctx, stop := context.WithCancel(context.Background())
	var ss samples
	wait := load(ctx, len(hot), &ss, func(i int) sample {
		return request(hot[i].Client, e.site+"/data", false)
	})
	defer func() { stop(); wait() }()
	time.Sleep(300 * time.Millisecond)

	killed := time.Now()
	srv.Stop()
	// Uncached traffic meanwhile, which keeps the Redis client dialling
	// a server that is not there (go-redis stops dialling after a burst
	// of failures and probes once a second: that bounds the recovery).
	var us samples
	uctx, ustop := context.WithCancel(context.Background())
	uwait := load(uctx, 2, &us, func(int) sample {
		return request(cold[0].Client, e.site+"/data", false)
	})

	// An uncached session: 503 with Retry-After, for an API call and for
	// a navigation (a page, not a redirect to sign in again).
	r := request(cold[0].Client, e.site+"/data", false)
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("uncached session while Redis is down: %d (%v), want 503", r.status, r.err)
	}
	t.Logf("uncached session while Redis is down: %d in %v", r.status, r.latency.Round(time.Millisecond))
	p := cold[0].Do(http.MethodGet, e.site+"/page", nil, true)
	if p.Status != http.StatusServiceUnavailable || p.Header.Get("Retry-After") == "" {
		t.Errorf("navigation with an uncached session while Redis is down: %d, Retry-After %q, want 503 with Retry-After",
			p.Status, p.Header.Get("Retry-After"))
	}

	// A new sign-in: the chain of redirects ends on the 503 page at the
	// callback, not back at the provider.
	nb := testflow.New(t)
	start := time.Now()
	login := nb.Follow(e.site + "/wanted")
	if !strings.HasPrefix(login.URL, e.idpSrv.URL()) {
		t.Fatalf("sign-in while Redis is down did not reach the provider's form: %d at %s", login.Status, login.URL)
	}
	final, cb := nb.SubmitLogin(login, "bob", "demo")
	signin503 := time.Since(start)
	checkUnavailablePage(t, "sign-in while Redis is down", final)
	if cb == "" || final.URL != cb {
		t.Errorf("sign-in while Redis is down ended at %s, want the callback %s", final.URL, cb)
	}

	// Again, with the provider's single sign-on: no form, the redirects
	// go from the site to the provider and back, to end on the 503 page
	// (Follow fails the test on a loop).
	start = time.Now()
	again := nb.Follow(e.site + "/wanted")
	ssoSignin503 := time.Since(start)
	checkUnavailablePage(t, "sign-in with the provider's single sign-on while Redis is down", again)

	time.Sleep(time.Until(killed.Add(3 * time.Second)))
	ustop()
	uwait()
	srv.Restart()
	back := time.Now()
	down := back.Sub(killed)

	// The first request that must ask the store: a session never looked
	// up before.
	var recovered time.Duration
	for {
		r := request(cold[1].Client, e.site+"/data", false)
		if r.status == http.StatusOK {
			recovered = time.Since(back)
			break
		}
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("uncached session after Redis restarted: %d (%v), want 503 then 200", r.status, r.err)
		}
		if time.Since(back) > 5*time.Second {
			t.Fatalf("no service 5s after Redis was back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if recovered > time.Second+recoveryAllowance {
		t.Errorf("service back %v after Redis, want within 1s (+%v allowance)", recovered, recoveryAllowance)
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	wait()

	// No session lost: each one signed in before the kill still works,
	// including those never looked up (only the append-only file has them).
	for i, b := range append(hot, cold...) {
		if r := request(b.Client, e.site+"/data", false); r.status != http.StatusOK {
			t.Errorf("session %d after the restart: %d (%v), want 200", i, r.status, r.err)
		}
	}
	// The sign-in refused during the outage works now (the provider
	// remembers bob, so the chain goes straight back to the site).
	if p := nb.Follow(e.site + "/again"); p.Status != http.StatusOK || p.Body != "upstream ok" {
		t.Errorf("sign-in after the restart: %d at %s: %.200s", p.Status, p.URL, p.Body)
	}

	all := ss.snapshot()
	during := between(all, killed, back)
	counts, _, maxLat := summary(all)
	dcounts, _, dmax := summary(during)
	if len(during) == 0 {
		t.Fatal("no cached request ran while Redis was down")
	}
	// Cached sessions are served while Redis is down, and once the store
	// is back. In between, while the client reconnects (up to the 1 s the
	// target allows, go-redis probing a dead server once a second), an
	// entry whose cache_ttl ran out in the outage may get a 503 like an
	// uncached one.
	var outside []sample
	for _, x := range all {
		if x.start.Before(back) || !x.start.Before(back.Add(recovered+recoveryAllowance)) {
			outside = append(outside, x)
		}
	}
	if ocounts, _, _ := summary(outside); len(ocounts) != 1 || ocounts["200"] == 0 {
		t.Errorf("cached sessions under load, but for the reconnection: %v, want only 200s", ocounts)
	}
	ucounts, _, umax := summary(us.snapshot())
	if len(ucounts) != 1 || ucounts["503"] == 0 {
		t.Errorf("uncached requests while Redis was down: %v, want only 503s", ucounts)
	}
	t.Logf("Redis down %v: cached requests during the outage %v (max %v), all %v (max %v); uncached requests during the outage %v (max %v); new sign-in 503 in %v (with single sign-on %v); uncached service back %v after Redis",
		down.Round(time.Millisecond), dcounts, dmax.Round(time.Millisecond), counts, maxLat.Round(time.Millisecond), ucounts, umax.Round(time.Millisecond),
		signin503.Round(time.Millisecond), ssoSignin503.Round(time.Millisecond), recovered.Round(time.Millisecond))
}

// checkUnavailablePage checks that p is the HTML page saying that the
// session store is unavailable.
func checkUnavailablePage(t *testing.T, what string, p testflow.Page) {
	t.Helper()
	if p.Status != http.StatusServiceUnavailable {
		t.Errorf("%s: %d at %s, want 503: %.300s", what, p.Status, p.URL, p.Body)
		return
	}
	if ct := p.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: Content-Type %q, want an HTML page", what, ct)
	}
	if !strings.Contains(p.Body, "session store") {
		t.Errorf("%s: the page does not say the session store is unavailable: %.500s", what, p.Body)
	}
	if p.Header.Get("Retry-After") == "" {
		t.Errorf("%s: no Retry-After", what)
	}
}

// TestFaultReload reloads Caddy's config three times under load, each
// time with a changed route: no request fails during a reload, and the
// same cookies work after it, with either store.
func TestFaultReload(t *testing.T) {
	for _, store := range []string{"redis", "memory"} {
		t.Run(store, func(t *testing.T) {
			storeURL := "memory"
			if store == "redis" {
				storeURL = "redis://" + testredis.Start(t)
			}
			e := newFaultEnv(t)
			gen := func(n int) []byte {
				return e.config(storeURL, nil, func(server, _ map[string]any) {
					handle := server["routes"].([]any)[0].(map[string]any)["handle"].([]any)
					rp := handle[len(handle)-1].(map[string]any)
					rp["headers"].(map[string]any)["response"] = map[string]any{
						"set": map[string][]string{"X-Config-Gen": {strconv.Itoa(n)}},
					}
				})
			}
			e.load(gen(0))
			hot := []*testflow.Browser{e.signIn("alice"), e.signIn("bob"), e.signIn("alice")}
			cold := e.signInCold("bob")

			ctx, stop := context.WithCancel(context.Background())
			var ss samples
			var resets atomic.Int64
			wait := load(ctx, len(hot), &ss, func(i int) sample {
				return requestAsBrowser(hot[i].Client, e.site+"/data", false, &resets)
			})
			defer func() { stop(); wait() }()
			time.Sleep(200 * time.Millisecond)
			var took []time.Duration
			var windows [][2]time.Time
			for n := 1; n <= 3; n++ {
				start := time.Now()
				if err := caddy.Load(gen(n), false); err != nil {
					t.Fatalf("reload %d: %v", n, err)
				}
				windows = append(windows, [2]time.Time{start, time.Now()})
				took = append(took, time.Since(start).Round(time.Millisecond))
				// A new connection, which the new config serves.
				c := &http.Client{Jar: hot[0].Jar, Transport: &http.Transport{DisableKeepAlives: true}}
				req, _ := http.NewRequest(http.MethodGet, e.site+"/data", nil)
				resp, err := c.Do(req)
				if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) {
					// Queued on the old listener as it closed: sent again,
					// as a browser would (requestAsBrowser).
					resets.Add(1)
					req, _ = http.NewRequest(http.MethodGet, e.site+"/data", nil)
					resp, err = c.Do(req)
				}
				if err != nil {
					t.Fatalf("after reload %d: %v", n, err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Config-Gen") != strconv.Itoa(n) {
					t.Errorf("after reload %d: %d, X-Config-Gen %q, want 200 with %d", n, resp.StatusCode, resp.Header.Get("X-Config-Gen"), n)
				}
				time.Sleep(200 * time.Millisecond)
			}
			stop()
			wait()
			all := ss.snapshot()
			counts, p99, maxLat := summary(all)
			if len(counts) != 1 || counts["200"] == 0 {
				t.Errorf("requests during the reloads: %v, want only 200s", counts)
				for _, s := range all {
					if s.err != nil || s.status != http.StatusOK {
						t.Logf("failed request at %v: %d %v", s.start.Format("15:04:05.000"), s.status, s.err)
					}
				}
			}
			// Sessions survive: the same cookies, one never looked up
			// before the reloads.
			for i, b := range append(hot, cold) {
				if r := request(b.Client, e.site+"/data", false); r.status != http.StatusOK {
					t.Errorf("session %d after the reloads: %d (%v), want 200", i, r.status, r.err)
				}
			}
			// Requests in flight while a reload ran.
			overlap := 0
			for _, s := range all {
				for _, w := range windows {
					if s.start.Before(w[1]) && s.start.Add(s.latency).After(w[0]) {
						overlap++
						break
					}
				}
			}
			if overlap == 0 {
				t.Error("no request was in flight during a reload")
			}
			t.Logf("3 reloads (took %v) under load: requests %v (%d in flight during a reload; %d connections reset by Caddy's listener handover, each request retried once as browsers do), p99 %v, max %v", took, counts,
				overlap, resets.Load(), p99.Round(time.Millisecond), maxLat.Round(time.Millisecond))
		})
	}
}

// TestFaultProviderDown stops the dev provider's HTTP server under load:
// signed-in users keep working, a sign-in that needs the provider gets a
// page saying it cannot be reached (502 or 503, no redirect loop), and
// sign-in works again once the provider is back.
func TestFaultProviderDown(t *testing.T) {
	e := newFaultEnv(t)
	// Site B, a second server whose handler has not met the provider yet
	// (no discovery), as after a restart of gatehouse.
	listenB := freePort(t)
	siteB := "http://" + listenB
	e.addSite(siteB)
	cfg := e.config("redis://"+testredis.Start(t), nil)
	var m map[string]any
	if err := json.Unmarshal(cfg, &m); err != nil {
		t.Fatal(err)
	}
	servers := m["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)
	b, _ := json.Marshal(servers["s"])
	var sb map[string]any
	_ = json.Unmarshal(b, &sb)
	sb["listen"] = []string{listenB}
	servers["b"] = sb
	cfg, _ = json.Marshal(m)
	e.load(cfg)

	hot := []*testflow.Browser{e.signIn("alice"), e.signIn("bob"), e.signIn("alice")}
	// A sign-in under way: the provider has answered with a code, which
	// the callback must exchange at the provider.
	pending := testflow.New(t)
	cb := pending.CallbackURL(pending.Follow(e.site+"/wanted"), "bob")

	ctx, stop := context.WithCancel(context.Background())
	var ss samples
	wait := load(ctx, len(hot), &ss, func(i int) sample {
		return request(hot[i].Client, e.site+"/data", false)
	})
	defer func() { stop(); wait() }()
	time.Sleep(200 * time.Millisecond)

	downAt := time.Now()
	e.idpSrv.Stop()
	if _, err := http.Get(e.idpSrv.URL() + "/.well-known/openid-configuration"); !isConnRefused(err) {
		t.Fatalf("the provider still answers: %v", err)
	}

	// The callback cannot exchange its code.
	start := time.Now()
	p := pending.Follow(cb)
	cbTook := time.Since(start)
	checkProviderDownPage(t, "callback while the provider is down", p)

	// Site B cannot even discover the provider.
	nb := testflow.New(t)
	start = time.Now()
	p = nb.Follow(siteB + "/wanted")
	bTook := time.Since(start)
	checkProviderDownPage(t, "sign-in on a site that has not discovered the provider", p)

	// Site A knows the provider's endpoints and sends the browser there,
	// once (where the browser finds nothing listening).
	na := testflow.New(t)
	p = na.Do(http.MethodGet, e.site+"/wanted", nil, true)
	if p.Status != http.StatusFound || !strings.HasPrefix(p.Header.Get("Location"), e.idpSrv.URL()) {
		t.Errorf("sign-in on a site that knows the provider: %d to %q, want 302 to the provider", p.Status, p.Header.Get("Location"))
	}

	time.Sleep(time.Until(downAt.Add(1500 * time.Millisecond)))
	e.idpSrv.Start(nil)
	upAt := time.Now()
	down := upAt.Sub(downAt)

	// Sign-in completes again: on site A at once (the provider remembers
	// bob, whose sign-in was interrupted)...
	p = pending.Follow(e.site + "/wanted")
	if p.Status != http.StatusOK || p.Body != "upstream ok" {
		t.Errorf("sign-in on site A after the provider is back: %d at %s: %.200s", p.Status, p.URL, p.Body)
	}
	aBack := time.Since(upAt)
	// ...and on site B once its failed discovery is no longer
	// remembered (oidcflow's RetryAfter, 5 s), with a page each time
	// meanwhile.
	var bBack time.Duration
	for {
		p = nb.Follow(siteB + "/wanted")
		if p.Status == http.StatusOK {
			if final, _ := nb.SubmitLogin(p, "alice", "demo"); final.Status != http.StatusOK || final.Body != "upstream ok" {
				t.Errorf("sign-in on site B after the provider is back: %d: %.200s", final.Status, final.Body)
			}
			bBack = time.Since(upAt)
			break
		}
		if p.Status != http.StatusBadGateway {
			t.Fatalf("sign-in on site B while it recovers: %d: %.200s", p.Status, p.Body)
		}
		if time.Since(upAt) > 7*time.Second {
			t.Fatal("sign-in on site B does not work 7s after the provider is back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	wait()

	all := ss.snapshot()
	during := between(all, downAt, upAt)
	counts, _, maxLat := summary(all)
	dcounts, _, _ := summary(during)
	if len(during) == 0 {
		t.Fatal("no request ran while the provider was down")
	}
	if len(counts) != 1 || counts["200"] == 0 {
		t.Errorf("signed-in requests: %v, want only 200s", counts)
	}
	t.Logf("provider down %v: signed-in requests during the outage %v, all %v (max %v); callback page in %v, undiscovered site's page in %v; sign-in back %v (site A) and %v (site B) after the provider",
		down.Round(time.Millisecond), dcounts, counts, maxLat.Round(time.Millisecond), cbTook.Round(time.Millisecond),
		bTook.Round(time.Millisecond), aBack.Round(time.Millisecond), bBack.Round(time.Millisecond))
}

// checkProviderDownPage checks that p is an HTML page with status 502 or
// 503 that says the identity provider cannot be reached.
func checkProviderDownPage(t *testing.T, what string, p testflow.Page) {
	t.Helper()
	if p.Status != http.StatusBadGateway && p.Status != http.StatusServiceUnavailable {
		t.Errorf("%s: %d at %s, want 502 or 503: %.300s", what, p.Status, p.URL, p.Body)
		return
	}
	if ct := p.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: Content-Type %q, want an HTML page", what, ct)
	}
	if !strings.Contains(p.Body, "identity provider cannot be reached") {
		t.Errorf("%s: the page does not say the identity provider cannot be reached: %.500s", what, p.Body)
	}
}

// TestFaultWebhookHangs points alert_webhook at an endpoint that takes
// every POST and never answers (for 30 s) while sign-ins fire alerts
// under load: no request waits for it.
func TestFaultWebhookHangs(t *testing.T) {
	var hits, answered atomic.Int64
	var hang atomic.Bool
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hang.Load() {
			answered.Add(1)
			return
		}
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}))
	t.Cleanup(hook.Close)
	t.Cleanup(func() { close(release) }) // before hook.Close, which waits for handlers

	e := newFaultEnv(t)
	e.load(e.config("redis://"+testredis.Start(t), func(app map[string]any) {
		app["alert_webhook"] = hook.URL + "/hook"
		app["alert_on"] = []string{"login_succeeded"}
	}))
	hot := []*testflow.Browser{e.signIn("alice"), e.signIn("bob"), e.signIn("alice")}
	// Those sign-ins' alerts are delivered while the endpoint answers.
	testflow.WaitFor(t, "the alerts of the first sign-ins", func() bool { return answered.Load() >= int64(len(hot)) })
	// The baseline: the endpoint answers and no alert fires.
	ctx, stop := context.WithCancel(context.Background())
	var ss samples
	wait := load(ctx, len(hot), &ss, func(i int) sample {
		return request(hot[i].Client, e.site+"/data", false)
	})
	defer func() { stop(); wait() }()
	time.Sleep(time.Second)
	hang.Store(true)

	// Firing: sign-ins, each a login_succeeded alert (and anomalies) for
	// a webhook that is already hanging.
	firing := time.Now()
	var cbLat []time.Duration
	for i := range 8 {
		b := testflow.New(t)
		cb := b.CallbackURL(b.Follow(e.site+"/"), []string{"alice", "bob"}[i%2])
		start := time.Now()
		if p := b.Do(http.MethodGet, cb, nil, true); p.Status != http.StatusFound {
			t.Fatalf("callback %d: %d: %.200s", i, p.Status, p.Body)
		}
		cbLat = append(cbLat, time.Since(start))
	}
	testflow.WaitFor(t, "the webhook to be called", func() bool { return hits.Load() > 0 })
	time.Sleep(time.Until(firing.Add(2 * time.Second)))
	stop()
	wait()
	end := time.Now()

	all := ss.snapshot()
	counts, p99, maxLat := summary(between(all, firing, end))
	bcounts, bp99, bmax := summary(between(all, time.Time{}, firing))
	if len(counts) != 1 || counts["200"] == 0 {
		t.Errorf("signed-in requests while alerts fire: %v, want only 200s", counts)
	}
	const bound = time.Second
	if maxLat > bound {
		t.Errorf("slowest signed-in request while the webhook hangs: %v, want under %v", maxLat, bound)
	}
	slices.Sort(cbLat)
	if cbLat[len(cbLat)-1] > bound {
		t.Errorf("slowest callback (which records the alerting event) while the webhook hangs: %v, want under %v", cbLat[len(cbLat)-1], bound)
	}
	t.Logf("webhook hanging (%d POSTs taken, none answered): endpoint answering, no alerts %v p99 %v max %v; while 8 sign-ins fired alerts %v p99 %v max %v; callbacks max %v",
		hits.Load(), bcounts, bp99.Round(time.Millisecond), bmax.Round(time.Millisecond),
		counts, p99.Round(time.Millisecond), maxLat.Round(time.Millisecond), cbLat[len(cbLat)-1].Round(time.Millisecond))
}

// TestFaultRedisSlow puts a proxy between gatehouse and Redis that holds
// every reply for longer than the Redis client's read timeout: requests
// that need the store end within the timeout plus a margin (a 503),
// cached sessions are served as usual, and no goroutines pile up.
func TestFaultRedisSlow(t *testing.T) {
	proxy := newSlowProxy(t, testredis.Start(t))
	e := newFaultEnv(t)
	e.load(e.config("redis://"+proxy.Addr(), func(app map[string]any) {
		app["cache_ttl"] = "15s" // spans the slow phase
	}))
	hot := []*testflow.Browser{e.signIn("alice"), e.signIn("bob"), e.signIn("alice")}
	var cold []*testflow.Browser
	for i := range 6 {
		cold = append(cold, e.signInCold([]string{"alice", "bob"}[i%2]))
	}
	clients := func() []*testflow.Browser { return append(slices.Clone(hot), cold...) }
	// gatehouse's goroutines: the process's, less the proxy's, with the
	// clients' idle keep-alive connections (and so the server's) closed.
	ours := func() int {
		for _, b := range clients() {
			b.Client.CloseIdleConnections()
		}
		return runtime.NumGoroutine() - int(proxy.live.Load())
	}
	time.Sleep(100 * time.Millisecond)
	base := ours()

	const delay = 4 * time.Second // beyond go-redis's 3 s read timeout
	proxy.SetDelay(delay)
	slowAt := time.Now()
	ctx, stop := context.WithCancel(context.Background())
	var hs, cs samples
	waitHot := load(ctx, len(hot), &hs, func(i int) sample {
		return request(hot[i].Client, e.site+"/data", false)
	})
	var next atomic.Int64
	waitCold := load(ctx, 3, &cs, func(int) sample {
		return request(cold[int(next.Add(1))%len(cold)].Client, e.site+"/data", false)
	})
	peak := 0
	for time.Since(slowAt) < 5*time.Second {
		peak = max(peak, runtime.NumGoroutine()-int(proxy.live.Load()))
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	waitHot()
	waitCold()
	proxy.SetDelay(0)
	slowFor := time.Since(slowAt)

	hcounts, _, hmax := summary(hs.snapshot())
	ccounts, _, cmax := summary(cs.snapshot())
	if len(hcounts) != 1 || hcounts["200"] == 0 {
		t.Errorf("cached sessions while Redis is slow: %v, want only 200s", hcounts)
	}
	for k := range ccounts {
		if k != "200" && k != "503" {
			t.Errorf("uncached sessions while Redis is slow: %v, want 503s (or 200s)", ccounts)
			break
		}
	}
	if ccounts["503"] == 0 {
		t.Errorf("uncached sessions while Redis is slow: %v, want some 503s", ccounts)
	}
	// A reply is awaited storeTimeout, and go-redis retries a timed-out
	// command once.
	if bound := 2*storeTimeout + time.Second; cmax > bound {
		t.Errorf("slowest uncached request while Redis is slow: %v, want under %v", cmax, bound)
	}
	// After the slow phase, gatehouse's goroutines return to the baseline.
	var after int
	deadline := time.Now().Add(8 * time.Second)
	for {
		if after = ours(); after <= base+10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after > base+10 {
		t.Errorf("goroutines after the slow phase: %d, baseline %d (peak %d)", after, base, peak)
	}
	for i, b := range clients() {
		if r := request(b.Client, e.site+"/data", false); r.status != http.StatusOK {
			t.Errorf("session %d once Redis is fast again: %d (%v), want 200", i, r.status, r.err)
		}
	}
	t.Logf("Redis replies held %v for %v: cached requests %v (max %v); uncached %v (max %v); goroutines baseline %d, peak %d, after %d",
		delay, slowFor.Round(time.Millisecond), hcounts, hmax.Round(time.Millisecond), ccounts, cmax.Round(time.Millisecond), base, peak, after)
}
