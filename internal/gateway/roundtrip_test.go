package gateway

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
)

// countingStore counts the store calls the request path makes.
type countingStore struct {
	*memstore.Store
	gets, touches atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, id string) (*session.Session, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, id)
}

func (c *countingStore) Touch(ctx context.Context, id string, a session.Access) error {
	c.touches.Add(1)
	return c.Store.Touch(ctx, id, a)
}

// SPEC: 0 store round trips per request on a cache hit; at most one write
// per session per touch_interval.
func TestStoreRoundTripsPerRequest(t *testing.T) {
	var cs *countingStore
	h := newHarness(t, func(t *testing.T, now func() time.Time) backend {
		cs = &countingStore{Store: memstore.New(memstore.Options{Now: now})}
		return cs
	}, func(c *Config) { c.TouchInterval = 30 * time.Second })
	b := h.browser()
	b.login("bob", "/")
	cs.gets.Store(0)
	cs.touches.Store(0)
	// 200 requests within 4 s (under cache_ttl 5s, under touch_interval).
	for i := range 200 {
		if i%50 == 0 {
			h.clock.Advance(time.Second)
		}
		if p := b.Do(http.MethodGet, h.site.URL+"/x", nil, false); p.Status != http.StatusOK {
			t.Fatalf("request %d: %d", i, p.Status)
		}
	}
	if g := cs.gets.Load(); g != 0 {
		t.Errorf("store reads for 200 cached requests = %d, want 0", g)
	}
	if n := cs.touches.Load(); n != 0 {
		t.Errorf("store writes within one touch interval = %d, want 0", n)
	}
	// Past the touch interval: exactly one write however many requests.
	h.clock.Advance(30 * time.Second)
	for range 50 {
		b.Do(http.MethodGet, h.site.URL+"/x", nil, false)
	}
	waitFor(t, "the touch", func() bool { return cs.touches.Load() >= 1 })
	time.Sleep(20 * time.Millisecond)
	if n := cs.touches.Load(); n != 1 {
		t.Errorf("store writes after one touch interval = %d, want 1", n)
	}
}
