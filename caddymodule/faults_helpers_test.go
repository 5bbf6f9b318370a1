package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
)

// faultEnv is what every fault test starts from: the dev provider on a
// server that can be stopped and started again on the same address, an
// upstream, and the site's address. Caddy is loaded by load.
type faultEnv struct {
	t        *testing.T
	idp      *devidp.Provider
	idpSrv   *restartable
	upstream string
	listen   string
	site     string
	logFile  string
	// redirects are the callbacks the provider accepts.
	redirects []string
}

func newFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	t.Setenv("GH_E2E_SECRET", strings.Repeat("s", 40))
	t.Setenv("GH_E2E_CLIENT_SECRET", "cs")
	idpSrv := newRestartable(t)
	idp, err := devidp.New(devidp.Config{Issuer: idpSrv.URL(), Users: devidp.DemoUsers()})
	if err != nil {
		t.Fatal(err)
	}
	idpSrv.Start(idp)
	t.Cleanup(idpSrv.Stop)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(up.Close)
	e := &faultEnv{t: t, idp: idp, idpSrv: idpSrv, upstream: strings.TrimPrefix(up.URL, "http://"),
		logFile: filepath.Join(t.TempDir(), "activity.log")}
	e.listen = freePort(t)
	e.site = "http://" + e.listen
	e.addSite(e.site)
	return e
}

// addSite lets the provider send sign-ins back to site too.
func (e *faultEnv) addSite(site string) {
	e.redirects = append(e.redirects, site+"/.gatehouse/callback")
	e.idp.AddClient(devidp.Client{ID: "site", Secret: "cs", RedirectURIs: e.redirects})
}

// config is siteConfig for this environment, with app changing the
// gatehouse app's JSON.
func (e *faultEnv) config(store string, app func(map[string]any), tweaks ...func(server, handler map[string]any)) []byte {
	e.t.Helper()
	b := siteConfig(e.t, e.listen, e.idpSrv.URL(), e.upstream, store, e.logFile, tweaks...)
	if app == nil {
		return b
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		e.t.Fatal(err)
	}
	app(cfg["apps"].(map[string]any)["gatehouse"].(map[string]any))
	b, err := json.Marshal(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// load runs Caddy with cfg until the test ends.
func (e *faultEnv) load(cfg []byte) {
	e.t.Helper()
	if err := caddy.Load(cfg, true); err != nil {
		e.t.Fatalf("loading config: %v", err)
	}
	e.t.Cleanup(func() { _ = caddy.Stop() })
}

// signIn returns a browser signed in as user whose session is in the
// gateway's cache (the sign-in ends on a page through it).
func (e *faultEnv) signIn(user string) *testflow.Browser {
	e.t.Helper()
	b := testflow.New(e.t)
	b.Login(e.site, "/", user)
	return b
}

// signInCold returns a browser signed in as user whose session has never
// been looked up: the callback is visited but not the page it leads to,
// so the gateway's cache does not hold it and its next request must ask
// the store.
func (e *faultEnv) signInCold(user string) *testflow.Browser {
	e.t.Helper()
	b := testflow.New(e.t)
	p := b.Follow(e.site + "/")
	cb := b.CallbackURL(p, user)
	if r := b.Do(http.MethodGet, cb, nil, true); r.Status != http.StatusFound || b.Cookie(e.site, "gatehouse") == "" {
		e.t.Fatalf("callback: %d, no session cookie: %.200s", r.Status, r.Body)
	}
	return b
}

// restartable is an HTTP server that can be stopped (its listener and
// every connection closed, so clients get "connection refused") and
// started again on the same address.
type restartable struct {
	t    testing.TB
	addr string

	mu  sync.Mutex
	h   http.Handler
	srv *http.Server
}

func newRestartable(t testing.TB) *restartable {
	return &restartable{t: t, addr: freePort(t)}
}

func (s *restartable) URL() string { return "http://" + s.addr }

// Start serves h (or the handler of the last Start, when nil).
func (s *restartable) Start(h http.Handler) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if h != nil {
		s.h = h
	}
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("listening on %s again: %v", s.addr, err)
	}
	s.srv = &http.Server{Handler: s.h, ReadHeaderTimeout: 5 * time.Second}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(s.srv)
}

// Stop closes the listener and every connection. Stopping a stopped
// server does nothing.
func (s *restartable) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		_ = s.srv.Close()
		s.srv = nil
	}
}

// sample is one request made under load.
type sample struct {
	start   time.Time
	latency time.Duration
	status  int // 0: the request failed (err)
	err     error
}

// samples collects what load goroutines saw.
type samples struct {
	mu  sync.Mutex
	all []sample
}

func (ss *samples) add(s sample) {
	ss.mu.Lock()
	ss.all = append(ss.all, s)
	ss.mu.Unlock()
}

// snapshot returns the samples so far, in no particular order.
func (ss *samples) snapshot() []sample {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return slices.Clone(ss.all)
}

// between returns the samples that started in [from, to).
func between(all []sample, from, to time.Time) []sample {
	var out []sample
	for _, s := range all {
		if !s.start.Before(from) && s.start.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// summary counts samples by status ("err" for failed requests) and gives
// the latency p99 and maximum.
func summary(all []sample) (counts map[string]int, p99, maxLat time.Duration) {
	counts = map[string]int{}
	lats := make([]time.Duration, 0, len(all))
	for _, s := range all {
		k := fmt.Sprint(s.status)
		if s.err != nil {
			k = "err"
		}
		counts[k]++
		lats = append(lats, s.latency)
	}
	if len(lats) == 0 {
		return counts, 0, 0
	}
	slices.Sort(lats)
	return counts, lats[(len(lats)*99)/100], lats[len(lats)-1]
}

// request is one GET from a load goroutine: unlike testflow's methods it
// never calls t.Fatal, which only the test's goroutine may. nav makes it a
// browser navigation (Accept: text/html); otherwise an API call.
func request(c *http.Client, u string, nav bool) sample {
	s := sample{start: time.Now()}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		s.err = err
		return s
	}
	req.Header.Set("User-Agent", testflow.FirefoxUA)
	if nav {
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := c.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		s.status = resp.StatusCode
	}
	s.err = err
	s.latency = time.Since(s.start)
	return s
}

// requestAsBrowser is request, sent again once when the first try got
// no response because the connection was reset or closed under it, as
// browsers retry an idempotent request then. A config reload causes that
// twice over, in Caddy and the kernel rather than in gatehouse: the old
// server closes its idle keep-alive connections, which races with a
// request being sent on one (RFC 9112 section 9.3.1; Go's Transport
// retries only when it knows nothing was written), and the old listening
// socket, which shares the port with the new one by SO_REUSEPORT, resets
// the connections still in its accept queue when it closes
// (https://lwn.net/Articles/542629/). resets counts the retries.
func requestAsBrowser(c *http.Client, u string, nav bool, resets *atomic.Int64) sample {
	s := request(c, u, nav)
	if s.err != nil && (errors.Is(s.err, syscall.ECONNRESET) || errors.Is(s.err, io.EOF)) {
		resets.Add(1)
		first := s.start
		s = request(c, u, nav)
		s.start, s.latency = first, time.Since(first)
	}
	return s
}

// load runs workers goroutines, each calling do in a loop until ctx ends,
// and returns a func that waits for them.
func load(ctx context.Context, workers int, ss *samples, do func(worker int) sample) (wait func()) {
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				ss.add(do(i))
				// A short pause keeps a few goroutines from saturating
				// the two shared cores: this is a fault test, not a
				// benchmark.
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	return wg.Wait
}

// slowProxy is a TCP proxy in front of a Redis server that, while slowed,
// holds every chunk Redis sends back for delay before passing it on: a
// Redis stalled by its machine, with connections that stay open.
type slowProxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64 // nanoseconds; 0: no delay
	// live counts the proxy's own goroutines, so a test can tell them
	// from the gateway's.
	live atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newSlowProxy(t testing.TB, target string) *slowProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.spawn(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *slowProxy) Addr() string { return p.ln.Addr().String() }

// SetDelay makes every chunk from Redis wait d (0: none).
func (p *slowProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

func (p *slowProxy) spawn(f func()) {
	p.wg.Add(1)
	p.live.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.live.Add(-1)
		f()
	}()
}

func (p *slowProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *slowProxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(in) || !p.track(out) {
			in.Close()
			out.Close()
			return
		}
		p.spawn(func() { p.pipe(out, in, false) })
		p.spawn(func() { p.pipe(in, out, true) })
	}
}

// pipe copies src to dst, delaying chunks when slow is set, and closes
// both ends when either side is done.
func (p *slowProxy) pipe(dst, src net.Conn, slow bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.delay.Load()); slow && d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *slowProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// isConnRefused tells a refused connection from other failures.
func isConnRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
