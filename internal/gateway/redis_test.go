package gateway

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/store/redisstore"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

func init() {
	stores["redis"] = func(t *testing.T, now func() time.Time) backend {
		return newRedisStore(t, testredis.Start(t), now)
	}
}

func newRedisStore(t *testing.T, addr string, now func() time.Time) *redisstore.Store {
	t.Helper()
	return newRedisStoreTB(t, addr, now)
}

func newRedisStoreB(b *testing.B, addr string) *redisstore.Store {
	return newRedisStoreTB(b, addr, nil)
}

func newRedisStoreTB(t testing.TB, addr string, now func() time.Time) *redisstore.Store {
	t.Helper()
	st, err := redisstore.New(redisstore.Options{URL: "redis://" + addr, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// A session ended through instance A is refused by instance B at once:
// B had it cached, and only the published end tells it.
func TestRevocationSeenByOtherInstance(t *testing.T) {
	srv := testredis.StartServer(t)
	h := newHarness(t, func(t *testing.T, now func() time.Time) backend { return newRedisStore(t, srv.Addr(), now) })
	// Instance B: its own store client, runtime (cache, subscription) and
	// gateway, in front of the same upstream.
	storeB := newRedisStore(t, srv.Addr(), h.clock.Now)
	rtB, err := NewRuntime(RuntimeConfig{Store: storeB, Events: storeB, Secret: testSecret, CacheTTL: time.Hour, Now: h.clock.Now})
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
	// Warm B's cache.
	reqB := func() int {
		r, _ := http.NewRequest(http.MethodGet, h.site.URL+"/x", nil)
		r.Header.Set("Cookie", "gatehouse="+b.cookie("gatehouse"))
		r.RemoteAddr = "127.0.0.1:1234"
		w := &statusRecorder{header: http.Header{}}
		if s := gwB.Serve(w, r); s != nil {
			return http.StatusOK
		}
		return w.status
	}
	if got := reqB(); got != http.StatusOK {
		t.Fatalf("instance B refused a live session: %d", got)
	}
	if rtB.Cache().Len() != 1 {
		t.Fatalf("instance B cache holds %d sessions, want 1", rtB.Cache().Len())
	}
	// End it through A, as an admin would.
	start := time.Now()
	if _, err := h.rt.End(context.Background(), id, activity.SessionRevoked, "alice@example.com", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "instance B to refuse the revoked session", func() bool { return reqB() == http.StatusUnauthorized })
	t.Logf("revocation seen by instance B after %v", time.Since(start))
	if time.Since(start) > time.Second {
		t.Errorf("instance B took %v to see the revocation", time.Since(start))
	}
}

type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.status = code }

// With Redis down, cached sessions keep working for up to cache_ttl; after
// that requests get 503 with Retry-After, never a login loop or a panic;
// when Redis is back (with its data, as a persistent Redis), service
// resumes with no session lost.
func TestStoreUnavailable(t *testing.T) {
	srv := testredis.StartServer(t, testredis.Persistent())
	h := newHarness(t, func(t *testing.T, now func() time.Time) backend { return newRedisStore(t, srv.Addr(), now) })
	b := h.browser()
	b.login("bob", "/")
	if p := b.Do(http.MethodGet, h.site.URL+"/x", nil, false); p.Status != http.StatusOK {
		t.Fatalf("before: %d", p.Status)
	}
	srv.Stop()
	if p := b.Do(http.MethodGet, h.site.URL+"/x", nil, false); p.Status != http.StatusOK {
		t.Errorf("cached session with Redis down: %d, want 200", p.Status)
	}
	h.clock.Advance(6 * time.Second) // past cache_ttl
	p := b.Do(http.MethodGet, h.site.URL+"/x", nil, false)
	if p.Status != http.StatusServiceUnavailable || p.Header.Get("Retry-After") == "" {
		t.Errorf("uncached session with Redis down: %d Retry-After %q, want 503 with Retry-After", p.Status, p.Header.Get("Retry-After"))
	}
	if p := b.Do(http.MethodGet, h.site.URL+"/x", nil, true); p.Status != http.StatusServiceUnavailable {
		t.Errorf("navigation with Redis down: %d, want 503 (not a redirect to sign in)", p.Status)
	}
	srv.Restart()
	waitFor(t, "service back", func() bool {
		return b.Do(http.MethodGet, h.site.URL+"/x", nil, false).Status == http.StatusOK
	})
}

// quietRedis drops go-redis's own log lines (dial failures while a test
// has Redis stopped on purpose); failures surface through errors.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }
