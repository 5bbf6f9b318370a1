package session

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/testclock"
)

// blockingStore's Get waits for release, after telling entered.
func blockingStore(s *Session) (st *countingStore, entered chan struct{}, release chan struct{}) {
	st = &countingStore{m: map[string]*Session{s.ID: s}}
	entered, release = make(chan struct{}, 16), make(chan struct{})
	st.onGet = func() {
		entered <- struct{}{}
		<-release
	}
	return st, entered, release
}

func waitFor(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// Misses of one id while a lookup is under way wait for it: one store
// round trip for all of them.
func TestCacheMissesShareOneLookup(t *testing.T) {
	sec := NewSecret()
	s := &Session{ID: sec.ID(), User: "alice"}
	st, entered, release := blockingStore(s)
	c := NewCache(st, 5*time.Second, testclock.New(time.Unix(1000, 0)).Now)
	var joined atomic.Int32
	allJoined := make(chan struct{})
	const n = 10
	c.onJoin = func() {
		if joined.Add(1) == n-1 {
			close(allJoined)
		}
	}
	var wg sync.WaitGroup
	got := make([]*Session, n)
	errs := make([]error, n)
	get := func(i int) {
		defer wg.Done()
		got[i], errs[i] = c.GetSecret(context.Background(), sec)
	}
	wg.Add(n)
	go get(0)
	waitFor(t, entered, "the first lookup")
	for i := 1; i < n; i++ {
		go get(i)
	}
	waitFor(t, allJoined, "the other lookups to join")
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] != s {
			t.Errorf("lookup %d = %v, %v; want the session", i, got[i], errs[i])
		}
	}
	if st.gets != 1 {
		t.Errorf("store gets = %d for %d parallel misses, want 1", st.gets, n)
	}
}

// After an invalidation, a miss does not join a lookup that started
// before it: that lookup may have found the ended session.
func TestCacheMissAfterInvalidateDoesNotJoin(t *testing.T) {
	s := &Session{ID: NewSecret().ID()}
	st, entered, release := blockingStore(s)
	c := NewCache(st, 5*time.Second, testclock.New(time.Unix(1000, 0)).Now)
	c.onJoin = func() { t.Error("a miss after the invalidation joined the earlier lookup") }
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.Get(context.Background(), s.ID)
	}()
	waitFor(t, entered, "the first lookup")
	var wg sync.WaitGroup
	for _, id := range []string{s.ID, ""} { // one id, then a flush
		c.Invalidate(id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.Get(context.Background(), s.ID)
		}()
		waitFor(t, entered, "a lookup of its own")
	}
	close(release)
	wg.Wait()
	waitFor(t, done, "the first lookup")
	if st.gets != 3 {
		t.Errorf("store gets = %d, want 3", st.gets)
	}
}

// A lookup older than ttl is not joined: what it finds may be older than
// the cache may trust (cache_ttl 1ns: every request asks the store).
func TestCacheMissDoesNotJoinLookupOlderThanTTL(t *testing.T) {
	s := &Session{ID: NewSecret().ID()}
	st, entered, release := blockingStore(s)
	clk := testclock.New(time.Unix(1000, 0))
	c := NewCache(st, time.Second, clk.Now)
	c.onJoin = func() { t.Error("joined a lookup older than ttl") }
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.Get(context.Background(), s.ID)
	}()
	waitFor(t, entered, "the first lookup")
	clk.Advance(time.Second)
	second := make(chan struct{})
	go func() {
		defer close(second)
		_, _ = c.Get(context.Background(), s.ID)
	}()
	waitFor(t, entered, "a lookup of its own")
	close(release)
	waitFor(t, second, "the second lookup")
	waitFor(t, done, "the first lookup")
}

// A failed lookup does not fail those who waited for it: they ask the
// store themselves. A waiter whose request is gone stops waiting.
func TestCacheJoinedLookupFails(t *testing.T) {
	s := &Session{ID: NewSecret().ID()}
	st, entered, release := blockingStore(s)
	c := NewCache(st, 5*time.Second, testclock.New(time.Unix(1000, 0)).Now)
	joined := make(chan struct{}, 2)
	c.onJoin = func() { joined <- struct{}{} }
	st.err = ErrUnavailable // read as the first lookup starts
	first := make(chan error, 1)
	go func() {
		_, err := c.Get(context.Background(), s.ID)
		first <- err
	}()
	waitFor(t, entered, "the first lookup")

	gone, stop := context.WithCancel(context.Background())
	goneErr := make(chan error, 1)
	go func() {
		_, err := c.Get(gone, s.ID)
		goneErr <- err
	}()
	waitFor(t, joined, "a waiter to join")
	stop()
	if err := <-goneErr; !errors.Is(err, context.Canceled) {
		t.Errorf("waiter whose context ended: err = %v, want context.Canceled", err)
	}

	waiter := make(chan error, 1)
	var got *Session
	go func() {
		var err error
		got, err = c.Get(context.Background(), s.ID)
		waiter <- err
	}()
	waitFor(t, joined, "a waiter to join")
	st.mu.Lock()
	st.err = nil
	st.mu.Unlock()
	release <- struct{}{}
	if err := <-first; !errors.Is(err, ErrUnavailable) {
		t.Errorf("first lookup: err = %v, want ErrUnavailable", err)
	}
	waitFor(t, entered, "the waiter's own lookup")
	close(release)
	if err := <-waiter; err != nil || got != s {
		t.Errorf("waiter after a failed lookup = %v, %v; want the session", got, err)
	}
	if st.gets != 2 {
		t.Errorf("store gets = %d, want 2", st.gets)
	}
}
