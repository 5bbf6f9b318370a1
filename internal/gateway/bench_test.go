package gateway

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/policy"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// benchGateway returns a gateway on st with one signed-in session and a
// request carrying its cookie.
func benchGateway(b testing.TB, st backend, cacheTTL time.Duration, opts ...harnessOption) (*Gateway, *http.Request) {
	b.Helper()
	rt, err := NewRuntime(RuntimeConfig{Store: st, Events: st, Secret: testSecret, CacheTTL: cacheTTL})
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Issuer: "http://127.0.0.1:1", ClientID: "bench", IdleTimeout: 30 * time.Minute}
	for _, o := range opts {
		o(&cfg)
	}
	g, err := New(cfg, rt)
	if err != nil {
		b.Fatal(err)
	}
	sec := session.NewSecretFor("alice")
	now := time.Now().UTC().Truncate(time.Millisecond)
	s := &session.Session{
		ID: sec.ID(), User: "alice", Email: "alice@example.com", Username: "alice",
		Groups: []string{"staff", "gatehouse-admins"}, Site: "app.example.com",
		CreatedAt: now, LastAccess: now, ExpiresAt: now.Add(12 * time.Hour), IdleTimeout: 30 * time.Minute,
		IP: "192.0.2.10", LastIP: "192.0.2.10",
		Device: session.Device{UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", Browser: "Firefox", OS: "Linux", Device: "desktop"},
	}
	if cfg.Refresh {
		s.Tokens = g.sealTokens(s.ID, sealedTokens{Refresh: "r", Access: "a"}, now.Add(time.Hour), now)
	}
	if err := st.Create(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, "http://app.example.com/reports", nil)
	r.Header.Set("Cookie", "_ga=GA1.2.3; gatehouse="+sec.Cookie()+"; theme=dark")
	r.Header.Set("User-Agent", s.UserAgent)
	r.RemoteAddr = "192.0.2.10:50000"
	return g, r
}

// BenchmarkCheckWarm is the session check of every request with the
// session in the local cache: cookie parse, id derivation, cache lookup,
// expiry and touch-throttle checks. SPEC target: ≤ 2 µs, ≤ 4 allocs.
func BenchmarkCheckWarm(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchCheckWarm(b) })
	// refresh on: the check also reads the tokens' clear expiry header.
	b.Run("refresh", func(b *testing.B) { benchCheckWarm(b, withRefresh(true)) })
}

func benchCheckWarm(b *testing.B, opts ...harnessOption) {
	g, r := benchGateway(b, memstore.New(memstore.Options{}), time.Hour, opts...)
	ip := netip.MustParseAddr("192.0.2.10")
	if c, err := g.check(r, ip); err != nil || c.s == nil {
		b.Fatalf("check = %v, %v", c.s, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if c, _ := g.check(r, ip); c.s == nil {
			b.Fatal("no session")
		}
	}
}

// BenchmarkServeWarm is everything the gateway does to a request that
// passes: header stripping, the check, and the identity headers.
func BenchmarkServeWarm(b *testing.B) {
	g, r := benchGateway(b, memstore.New(memstore.Options{}), time.Hour)
	cookie := r.Header.Get("Cookie")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Header = http.Header{"Cookie": {cookie}, "X-Forwarded-User": {"mallory"}}
		if s := g.Serve(nil, r); s == nil {
			b.Fatal("no session")
		}
	}
}

// BenchmarkCheckColdRedis is the check when the session is not cached: one
// round trip to a real Redis.
func BenchmarkCheckColdRedis(b *testing.B) {
	addr := testredis.Start(b)
	st := newRedisStoreB(b, addr)
	g, r := benchGateway(b, st, time.Hour)
	ip := netip.MustParseAddr("192.0.2.10")
	id := ""
	if c, err := g.check(r, ip); err != nil || c.s == nil {
		b.Fatalf("check = %v, %v", c.s, err)
	} else {
		id = c.s.ID
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		g.rt.cache.Invalidate(id)
		if c, err := g.check(r, ip); err != nil || c.s == nil {
			b.Fatalf("check = %v, %v", c.s, err)
		}
	}
}

// BenchmarkRevocationSeenByOtherInstance ends sessions through instance A
// and measures how long until instance B, which had each one cached,
// refuses it. SPEC target: p99 ≤ 50 ms. Run with e.g.
//
//	go test -run '^$' -bench RevocationSeen -benchtime 500x ./internal/gateway
func BenchmarkRevocationSeenByOtherInstance(b *testing.B) {
	addr := testredis.Start(b)
	stA, stB := newRedisStoreB(b, addr), newRedisStoreB(b, addr)
	rtA, err := NewRuntime(RuntimeConfig{Store: stA, Events: stA, Secret: testSecret})
	if err != nil {
		b.Fatal(err)
	}
	rtB, err := NewRuntime(RuntimeConfig{Store: stB, Events: stB, Secret: testSecret, CacheTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	rtA.Start()
	rtB.Start()
	b.Cleanup(rtA.Close)
	b.Cleanup(rtB.Close)
	gB, err := New(Config{Issuer: "http://127.0.0.1:1", ClientID: "bench"}, rtB)
	if err != nil {
		b.Fatal(err)
	}
	// Let B's subscription settle before measuring.
	time.Sleep(100 * time.Millisecond)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		sec := session.NewSecretFor("u")
		now := time.Now().UTC().Truncate(time.Millisecond)
		s := &session.Session{ID: sec.ID(), User: "u", CreatedAt: now, LastAccess: now, ExpiresAt: now.Add(time.Hour)}
		if err := stA.Create(ctx, s); err != nil {
			b.Fatal(err)
		}
		r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		r.Header.Set("Cookie", "gatehouse="+sec.Cookie())
		if got, _ := gB.check(r, netip.Addr{}); got.s == nil {
			b.Fatal("B does not see the new session")
		}
		start := time.Now()
		if _, err := rtA.End(ctx, s.ID, session.EndRevoked, "bench", ""); err != nil {
			b.Fatal(err)
		}
		for {
			if got, _ := gB.check(r, netip.Addr{}); got.s == nil {
				break
			}
			if time.Since(start) > 5*time.Second {
				b.Fatal("B never saw the revocation")
			}
			time.Sleep(50 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkServeWarmAllOn is a signed-in request with every per-request
// feature of issue 7 on: bind_ip subnet, refresh with the access token
// passed on, a jwt_header assertion and stream tracking, from another
// address of the login's /24. The check alone is measured too; SPEC
// target for it: ≤ 2 µs, ≤ 4 allocs.
func BenchmarkServeWarmAllOn(b *testing.B) {
	on := func(c *Config) {
		c.BindIP = policy.BindSubnet
		c.Refresh, c.PassAccessToken = true, true
		c.JWTHeader = testJWTHeader
	}
	g, r := benchGateway(b, memstore.New(memstore.Options{}), time.Hour, on)
	r.RemoteAddr = "192.0.2.77:50000"
	ip := netip.MustParseAddr("192.0.2.77")
	cookie := r.Header.Get("Cookie")
	if s := g.Serve(nil, r); s == nil || r.Header.Get(testJWTHeader) == "" {
		b.Fatal("no session or no assertion")
	}
	b.Run("check", func(b *testing.B) {
		// Serve took the session cookie out for the upstream.
		r.Header = http.Header{"Cookie": {cookie}}
		b.ReportAllocs()
		for b.Loop() {
			if c, _ := g.check(r, ip); c.s == nil {
				b.Fatal("no session")
			}
		}
	})
	b.Run("serve", func(b *testing.B) {
		w := discardWriter{h: http.Header{}}
		body := []byte("ok")
		b.ReportAllocs()
		for b.Loop() {
			r.Header = http.Header{"Cookie": {cookie}}
			s := g.Serve(nil, r)
			if s == nil {
				b.Fatal("no session")
			}
			tw, _, done := g.Track(w, r, s)
			_, _ = tw.Write(body)
			done()
		}
	})
}
