package gateway

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/policy"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// Issue 7, item 1: the app's allow_ip / deny_ip apply on every site
// before its own rules, with the same 403 and access_denied event.
func TestGlobalNetworkRules(t *testing.T) {
	global := policy.Network{
		AllowIP: mustPrefixes(t, "10.0.0.0/8", "2001:db8::/32"),
		DenyIP:  mustPrefixes(t, "10.6.0.0/16"),
	}
	withIP := func(c *Config) { c.ClientIP = headerIP }
	h := newHarnessRT(t, memBackend, func(c *RuntimeConfig) { c.Network = global }, withIP)
	open := h.site.URL
	lax := h.addSite(withIP, func(c *Config) {
		// Tries to admit what the app refuses.
		c.Network.AllowIP = mustPrefixes(t, "192.0.2.0/24", "10.6.0.0/16")
	}).URL()
	strict := h.addSite(withIP, func(c *Config) { c.Network.DenyIP = mustPrefixes(t, "10.1.0.0/16") }).URL()
	tests := []struct {
		name, site, ip string
		allow          bool
	}{
		{"inside the global allow list", open, "10.1.1.1", true},
		{"global deny", open, "10.6.1.1", false},
		{"global deny, ipv4-mapped client", open, "::ffff:10.6.2.1", false},
		{"outside the global allow list", open, "192.0.2.1", false},
		{"ipv6 inside the global allow list", open, "2001:db8::5", true},
		{"ipv6 outside the global allow list", open, "2001:db9::1", false},
		{"site allow cannot admit outside the global allow list", lax, "192.0.2.1", false},
		{"global deny wins over a site allow", lax, "10.6.1.1", false},
		{"site allow list still applies", lax, "10.1.1.1", false},
		{"site deny after global allow", strict, "10.1.1.1", false},
		{"site and global both allow", strict, "10.2.1.1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.browser()
			p := b.Do(http.MethodGet, tt.site+"/app", nil, true, testIPHeader, tt.ip)
			if tt.allow {
				if p.Status != http.StatusFound || !strings.HasPrefix(p.Header.Get("Location"), h.idpSrv.URL) {
					t.Fatalf("from %s: %d to %q, want a redirect to sign in", tt.ip, p.Status, p.Header.Get("Location"))
				}
				return
			}
			if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "network address") {
				t.Fatalf("from %s: %d, want 403 naming the network address", tt.ip, p.Status)
			}
			// Sign-in is not even offered.
			if p := b.Do(http.MethodGet, tt.site+"/.gatehouse/login?rd=/", nil, true, testIPHeader, tt.ip); p.Status != http.StatusForbidden {
				t.Errorf("login endpoint from %s: %d, want 403", tt.ip, p.Status)
			}
			want := netip.MustParseAddr(tt.ip).String()
			found := false
			for _, e := range h.eventsOf(activity.AccessDenied) {
				found = found || e.IP == want && e.Reason == policy.ReasonIP
			}
			if !found {
				t.Errorf("no access_denied ip_restricted event for %s: %+v", tt.ip, h.eventsOf(activity.AccessDenied))
			}
		})
	}

	// A signed-in session is refused too, on every request.
	b := h.browser()
	p := b.Do(http.MethodGet, open+"/", nil, true, testIPHeader, "10.1.1.1")
	cb := b.CallbackURL(b.Follow(p.Header.Get("Location")), "bob")
	if r := b.Do(http.MethodGet, cb, nil, true, testIPHeader, "10.1.1.1"); r.Status != http.StatusFound {
		t.Fatalf("callback: %d", r.Status)
	}
	if r := b.Do(http.MethodGet, open+"/x", nil, false, testIPHeader, "10.1.1.1"); r.Status != http.StatusOK {
		t.Fatalf("signed in from an allowed address: %d", r.Status)
	}
	if r := b.Do(http.MethodGet, open+"/x", nil, false, testIPHeader, "10.6.9.9"); r.Status != http.StatusForbidden {
		t.Errorf("signed-in session from a globally denied address: %d, want 403", r.Status)
	}
}

func mustPrefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	p, err := policy.ParsePrefixes(ss)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// createLog remembers every session a store created, across the store
// clients of several instances.
type createLog struct {
	mu      sync.Mutex
	created map[string]*session.Session
}

type loggingStore struct {
	backend
	log *createLog
}

func (s *loggingStore) Create(ctx context.Context, sess *session.Session) error {
	err := s.backend.Create(ctx, sess)
	if err == nil {
		s.log.mu.Lock()
		s.log.created[sess.ID] = sess.Clone()
		s.log.mu.Unlock()
	}
	return err
}

// siteOn starts a protected site on rt (another instance when rt is
// not the harness's), registered at the harness's provider.
func (h *harness) siteOn(rt *Runtime, opts ...harnessOption) *site {
	h.t.Helper()
	st := &site{}
	st.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := st.gw.Serve(w, r); s != nil {
			upstream(w, r)
		}
	}))
	h.t.Cleanup(st.srv.Close)
	id := "site-" + st.srv.Listener.Addr().String()
	cfg := h.baseConfig(id)
	for _, o := range opts {
		o(&cfg)
	}
	gw, err := New(cfg, rt)
	if err != nil {
		h.t.Fatal(err)
	}
	st.gw = gw
	h.register(id, st.srv.URL)
	return st
}

// Issue 7, item 2: concurrent sign-ins of one user, on one instance or
// split over two on one Redis, leave exactly max_sessions sessions, the
// most recent, and every other session ends once, recorded as
// session_ended_new_login by the system.
func TestMaxSessionsConcurrentSignIns(t *testing.T) {
	const signIns, limit = 20, 3
	tests := []struct {
		name      string
		instances int
		mk        func(t *testing.T) func(t *testing.T, now func() time.Time) backend
	}{
		{"memory", 1, func(*testing.T) func(t *testing.T, now func() time.Time) backend {
			return func(t *testing.T, now func() time.Time) backend { return memstore.New(memstore.Options{Now: now}) }
		}},
		{"redis two instances", 2, func(t *testing.T) func(t *testing.T, now func() time.Time) backend {
			srv := testredis.StartServer(t)
			return func(t *testing.T, now func() time.Time) backend { return newRedisStore(t, srv.Addr(), now) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &createLog{created: map[string]*session.Session{}}
			mk := tt.mk(t)
			logged := func(t *testing.T, now func() time.Time) backend {
				return &loggingStore{backend: mk(t, now), log: log}
			}
			limited := func(c *Config) { c.MaxSessions = limit }
			h := newHarness(t, logged, limited)
			sites := []string{h.site.URL}
			if tt.instances == 2 {
				storeB := logged(t, h.clock.Now)
				rtB := h.newRuntime(func(c *RuntimeConfig) { c.Store, c.Events = storeB, storeB })
				sites = append(sites, h.siteOn(rtB, limited).URL())
			}
			// Sign-ins at distinct milliseconds, so that "most recent" is
			// decided by time and not by the tie-break.
			stop := make(chan struct{})
			ticked := make(chan struct{})
			go func() {
				defer close(ticked)
				for {
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Microsecond):
						h.clock.Advance(time.Millisecond)
					}
				}
			}()
			browsers := make([]*browser, signIns)
			var wg sync.WaitGroup
			for i := range signIns {
				browsers[i] = h.browser()
				wg.Go(func() { browsers[i].Login(sites[i%len(sites)], "/", "bob") })
			}
			wg.Wait()
			close(stop)
			<-ticked

			ctx := context.Background()
			page, err := h.store.List(ctx, session.Query{User: "bob", Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != limit {
				t.Fatalf("bob has %d sessions after %d concurrent sign-ins, want %d", len(page.Items), signIns, limit)
			}
			log.mu.Lock()
			all := slices.Collect(func(yield func(*session.Session) bool) {
				for _, s := range log.created {
					if !yield(s) {
						return
					}
				}
			})
			log.mu.Unlock()
			if len(all) != signIns {
				t.Fatalf("%d sessions created, want %d", len(all), signIns)
			}
			// Most recently used first, as the stores order them.
			slices.SortFunc(all, func(a, b *session.Session) int {
				if c := b.LastAccess.Compare(a.LastAccess); c != 0 {
					return c
				}
				if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
					return c
				}
				return cmp.Compare(b.ID, a.ID)
			})
			// The kept sessions must be the newest: none ended is newer
			// than one kept. Sessions of the same millisecond tie, and a
			// store may keep either (the sign-in that asks wins such a
			// tie, see session.Limit.Keep), so the check is on times.
			got := ids(page.Items)
			slices.Sort(got)
			keptSet := map[string]bool{}
			for _, id := range got {
				keptSet[id] = true
			}
			newer := func(a, b *session.Session) bool {
				if c := a.LastAccess.Compare(b.LastAccess); c != 0 {
					return c > 0
				}
				return a.CreatedAt.After(b.CreatedAt)
			}
			for _, e := range all {
				for _, k := range all {
					if !keptSet[e.ID] && keptSet[k.ID] && newer(e, k) {
						t.Errorf("ended %s (last %s) is newer than kept %s (last %s)", e.ID, e.LastAccess.Format(time.StampMilli), k.ID, k.LastAccess.Format(time.StampMilli))
					}
				}
			}
			want := got
			ended := h.eventsOf(activity.EndedNewLogin)
			endedIDs := map[string]bool{}
			for _, e := range ended {
				if e.Actor != activity.ActorSystem || e.User != "bob" || endedIDs[e.SessionID] {
					t.Errorf("bad or repeated %s event: %+v", activity.EndedNewLogin, e)
				}
				endedIDs[e.SessionID] = true
			}
			if len(endedIDs) != signIns-limit {
				t.Errorf("%d sessions recorded as %s, want %d", len(endedIDs), activity.EndedNewLogin, signIns-limit)
			}
			for _, s := range all {
				if keptSet[s.ID] {
					continue
				}
				if !endedIDs[s.ID] {
					t.Errorf("session %s ended without a %s event", s.ID, activity.EndedNewLogin)
				}
			}
			// The ended browsers must sign in again on whichever
			// instance they use; the kept ones carry on.
			kept := map[string]bool{}
			for _, id := range want {
				kept[id] = true
			}
			for i, b := range browsers {
				siteURL := sites[i%len(sites)]
				id := b.Cookie(siteURL, "gatehouse")
				sid, err := session.ParseCookie(id)
				if err != nil {
					t.Fatal(err)
				}
				wantStatus := http.StatusUnauthorized
				if kept[sid] {
					wantStatus = http.StatusOK
				}
				waitFor(t, "the browser's session to be "+http.StatusText(wantStatus), func() bool {
					return b.Do(http.MethodGet, siteURL+"/x", nil, false).Status == wantStatus
				})
			}
		})
	}
}

func ids(ss []*session.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

// from127002 makes the browser connect from 127.0.0.2, a second loopback
// address: a second client IP without trusting any header.
func from127002(b *browser) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	b.Client.Transport = &http.Transport{DialContext: d.DialContext}
}

// Issue 7, item 3: with bind_ip, a session used from outside its login
// address ends (ip_conflict) and that browser must sign in again; the
// user's other sessions carry on. subnet admits the login's /24.
func TestBindIP(t *testing.T) {
	tests := []struct {
		mode     string
		conflict bool
	}{
		{policy.BindOff, false},
		{policy.BindSubnet, false},
		{policy.BindExact, true},
	}
	for _, tt := range tests {
		t.Run("bind_ip "+cmp.Or(tt.mode, "off"), func(t *testing.T) {
			forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
				h := newH(func(c *Config) { c.BindIP = tt.mode })
				victim, other := h.browser(), h.browser()
				victim.login("bob", "/")
				other.login("bob", "/")
				id := victim.sessionID()

				thief := h.browser()
				from127002(thief)
				thief.SetCookie(h.site.URL, "gatehouse", victim.cookie("gatehouse"))
				p := thief.Do(http.MethodGet, h.site.URL+"/x", nil, false)
				if !tt.conflict {
					if p.Status != http.StatusOK {
						t.Fatalf("from 127.0.0.2 under bind_ip %q: %d, want 200", tt.mode, p.Status)
					}
					if ev := h.eventsOf(activity.IPConflict); len(ev) != 0 {
						t.Errorf("ip_conflict events under bind_ip %q: %+v", tt.mode, ev)
					}
					return
				}
				if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "login_url") {
					t.Fatalf("API call from 127.0.0.2: %d %s, want 401 with a login_url", p.Status, p.Body)
				}
				ev := h.eventsOf(activity.IPConflict)
				if len(ev) != 1 || ev[0].SessionID != id || ev[0].User != "bob" || ev[0].IP != "127.0.0.2" ||
					ev[0].Actor != activity.ActorSystem || !strings.Contains(ev[0].Detail, "127.0.0.1") {
					t.Fatalf("ip_conflict events = %+v, want one for %s from 127.0.0.2", ev, id)
				}
				if _, err := h.store.Get(context.Background(), id); !errors.Is(err, session.ErrNotFound) {
					t.Errorf("store still has the conflicting session: %v", err)
				}
				// The stolen cookie gets no further, and the rightful
				// browser must prove who it is again.
				for _, b := range []*browser{thief, victim} {
					if p := b.Do(http.MethodGet, h.site.URL+"/x", nil, false); p.Status != http.StatusUnauthorized {
						t.Errorf("API call with the ended session: %d, want 401", p.Status)
					}
					p := b.Do(http.MethodGet, h.site.URL+"/page", nil, true)
					if p.Status != http.StatusFound || mustURL(p.Header.Get("Location")).Query().Get("prompt") != "login" {
						t.Errorf("navigation with the ended session: %d to %q, want a fresh sign-in (prompt=login)", p.Status, p.Header.Get("Location"))
					}
				}
				if p := other.Do(http.MethodGet, h.site.URL+"/x", nil, false); p.Status != http.StatusOK {
					t.Errorf("the user's other session: %d, want 200", p.Status)
				}
				// Signed in again, the victim is bound to where it is.
				victim.login("bob", "/")
				if p := victim.Do(http.MethodGet, h.site.URL+"/x", nil, false); p.Status != http.StatusOK {
					t.Errorf("after signing in again: %d, want 200", p.Status)
				}
			})
		})
	}
}

// Regression guard for issue 7, item 3: bind_ip must keep the warm path
// free of allocations.
func TestCheckWarmBindIPAllocs(t *testing.T) {
	for _, mode := range []string{policy.BindExact, policy.BindSubnet} {
		g, r, ip := warmBound(t, mode)
		if n := testing.AllocsPerRun(200, func() {
			if c, _ := g.check(r, ip); c.s == nil {
				t.Fatal("no session")
			}
		}); n != 0 {
			t.Errorf("check with bind_ip %s: %v allocs per request, want 0", mode, n)
		}
	}
}

func warmBound(tb testing.TB, mode string) (*Gateway, *http.Request, netip.Addr) {
	tb.Helper()
	g, r := benchGateway(tb, memstore.New(memstore.Options{}), time.Hour)
	g.cfg.BindIP = mode
	ip := netip.MustParseAddr("192.0.2.10")
	if mode == policy.BindSubnet {
		ip = netip.MustParseAddr("192.0.2.99")
	}
	if c, err := g.check(r, ip); err != nil || c.s == nil {
		tb.Fatalf("check = %v, %v", c.s, err)
	}
	return g, r, ip
}

// BenchmarkCheckWarmBindIP is BenchmarkCheckWarm with bind_ip subnet on,
// the request from another address of the login's /24.
func BenchmarkCheckWarmBindIP(b *testing.B) {
	g, r, ip := warmBound(b, policy.BindSubnet)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if c, _ := g.check(r, ip); c.s == nil {
			b.Fatal("no session")
		}
	}
}
