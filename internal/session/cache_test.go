package session

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/testclock"
)

// countingStore is a minimal Store for cache unit tests; the real stores
// run the conformance suite in internal/store/storetest.
type countingStore struct {
	Store
	mu    sync.Mutex
	m     map[string]*Session
	gets  int
	err   error
	onGet func()
}

func (c *countingStore) Get(_ context.Context, id string) (*Session, error) {
	c.mu.Lock()
	c.gets++
	s, ok := c.m[id]
	err := c.err
	hook := c.onGet
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	return s, nil
}

func TestCache(t *testing.T) {
	sec := NewSecret()
	s := &Session{ID: sec.ID(), User: "alice"}
	st := &countingStore{m: map[string]*Session{s.ID: s}}
	clk := testclock.New(time.Unix(1000, 0))
	c := NewCache(st, 5*time.Second, clk.Now)
	ctx := context.Background()

	for range 3 {
		got, err := c.GetSecret(ctx, sec)
		if err != nil || got != s {
			t.Fatalf("GetSecret = %v, %v", got, err)
		}
		clk.Advance(time.Second)
	}
	if st.gets != 1 {
		t.Errorf("store gets = %d after 3 cached lookups, want 1", st.gets)
	}
	clk.Advance(5 * time.Second)
	if _, err := c.Get(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if st.gets != 2 {
		t.Errorf("store gets = %d after ttl, want 2", st.gets)
	}

	// An end published by another instance removes the entry at once.
	clk.Advance(time.Millisecond)
	c.Invalidate(s.ID)
	delete(st.m, s.ID)
	if _, err := c.Get(ctx, s.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Invalidate: err = %v, want ErrNotFound", err)
	}
}

// A lookup that started before an invalidation must not put the ended
// session back into the cache.
func TestCacheLookupRacingInvalidate(t *testing.T) {
	s := &Session{ID: NewSecret().ID()}
	st := &countingStore{m: map[string]*Session{s.ID: s}}
	clk := testclock.New(time.Unix(1000, 0))
	c := NewCache(st, time.Minute, clk.Now)
	st.onGet = func() { c.Invalidate(s.ID) } // arrives while the store answers
	if _, err := c.Get(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 {
		t.Errorf("cache holds %d entries after a racing invalidation, want 0", c.Len())
	}
	st.onGet = func() { c.Invalidate("") }
	clk.Advance(time.Second)
	if _, err := c.Get(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 {
		t.Errorf("cache holds %d entries after a racing flush, want 0", c.Len())
	}
}

func TestCacheStoreDown(t *testing.T) {
	s := &Session{ID: NewSecret().ID()}
	st := &countingStore{m: map[string]*Session{s.ID: s}}
	clk := testclock.New(time.Unix(1000, 0))
	c := NewCache(st, 5*time.Second, clk.Now)
	ctx := context.Background()
	if _, err := c.Get(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	st.err = ErrUnavailable
	clk.Advance(4 * time.Second)
	if _, err := c.Get(ctx, s.ID); err != nil {
		t.Errorf("cached session within ttl failed while store down: %v", err)
	}
	clk.Advance(2 * time.Second)
	if _, err := c.Get(ctx, s.ID); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Get beyond ttl with store down: err = %v, want ErrUnavailable", err)
	}
}

func TestCachePrune(t *testing.T) {
	st := &countingStore{m: map[string]*Session{}}
	clk := testclock.New(time.Unix(1000, 0))
	c := NewCache(st, time.Second, clk.Now)
	for range 10 {
		s := &Session{ID: NewSecret().ID()}
		st.m[s.ID] = s
		_, _ = c.Get(context.Background(), s.ID)
	}
	if c.Len() != 10 {
		t.Fatalf("Len = %d, want 10", c.Len())
	}
	clk.Advance(2 * time.Second)
	c.Prune()
	if c.Len() != 0 {
		t.Errorf("Len after Prune = %d, want 0", c.Len())
	}
}

func BenchmarkCacheHit(b *testing.B) {
	sec := NewSecret()
	s := &Session{ID: sec.ID()}
	st := &countingStore{m: map[string]*Session{s.ID: s}}
	c := NewCache(st, time.Hour, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetSecret(ctx, sec); err != nil {
			b.Fatal(err)
		}
	}
}

// Update changes the cached copy as it is now: tokens another goroutine
// put after the caller loaded the session survive (a touch finishing
// after a refresh used to put back the old tokens).
func TestCacheUpdateKeepsNewerPut(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := &oneSession{s: &Session{ID: "s1", User: "alice", Tokens: []byte("old"), LastAccess: now}}
	c := NewCache(st, time.Minute, func() time.Time { return now })
	seen, err := c.Get(ctx, "s1") // what a request loaded
	if err != nil {
		t.Fatal(err)
	}
	refreshed := seen.Clone()
	refreshed.Tokens = []byte("new")
	c.Put(refreshed)
	c.Update(seen.ID, func(s *Session) { s.LastAccess = now.Add(time.Second) })
	got, err := c.Get(ctx, "s1")
	if err != nil || string(got.Tokens) != "new" || !got.LastAccess.Equal(now.Add(time.Second)) {
		t.Fatalf("after Update: %+v, %v; want the new tokens and the later access", got, err)
	}
	if string(seen.Tokens) != "old" {
		t.Fatal("Update changed a copy a caller holds")
	}
	c.Update("absent", func(s *Session) { t.Fatal("Update called change for an uncached id") })
}

// oneSession is a Store holding one session, for cache tests.
type oneSession struct {
	Store
	s *Session
}

func (o *oneSession) Get(_ context.Context, id string) (*Session, error) {
	if id != o.s.ID {
		return nil, ErrNotFound
	}
	return o.s.Clone(), nil
}
