package oidcflow

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/testclock"
)

// hangingIdP is the development provider behind a discovery endpoint that
// holds each request until the test answers it.
type hangingIdP struct {
	srv     *httptest.Server
	clk     *testclock.Clock
	hits    atomic.Int32
	arrived chan struct{}
	answer  chan bool // true: serve discovery; false: 503
}

func newHangingIdP(t *testing.T) *hangingIdP {
	t.Helper()
	h := &hangingIdP{clk: testclock.New(t0), arrived: make(chan struct{}, 100), answer: make(chan bool)}
	var idp *devidp.Provider
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/openid-configuration" {
			h.hits.Add(1)
			h.arrived <- struct{}{}
			select {
			case ok := <-h.answer:
				if !ok {
					http.Error(w, "maintenance", http.StatusServiceUnavailable)
					return
				}
			case <-r.Context().Done():
				return
			}
		}
		idp.ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close)
	var err error
	if idp, err = devidp.New(devidp.Config{Issuer: h.srv.URL, Users: devidp.DemoUsers()}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *hangingIdP) client() *Client {
	return New(Config{Issuer: h.srv.URL, ClientID: "x", Now: h.clk.Now, RetryAfter: 5 * time.Second})
}

func (h *hangingIdP) waitArrival(t *testing.T) {
	t.Helper()
	select {
	case <-h.arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("no discovery request arrived")
	}
}

// Regression (issue 6, item 8): discovery held a mutex across the network
// call and timed RetryAfter from the start of an attempt, so requests
// queued behind a hanging provider each made their own attempt in turn.
// Now one attempt is shared by every waiter, and its failure is remembered
// from the moment it ended.
func TestDiscoverySharedAttempt(t *testing.T) {
	h := newHangingIdP(t)
	c := h.client()
	const callers = 20
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { _, _, errs[i] = c.AuthCodeURL(context.Background(), "http://rp/cb", false) })
	}
	h.waitArrival(t)
	time.Sleep(100 * time.Millisecond) // the other callers join meanwhile
	// The attempt hangs longer than RetryAfter, then fails, as does any
	// further attempt (so that a regression fails fast instead of hanging).
	h.clk.Advance(time.Minute)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case h.answer <- false:
			case <-stop:
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	for len(h.arrived) > 0 {
		<-h.arrived
	}
	for i, err := range errs {
		if !errors.Is(err, ErrProvider) {
			t.Errorf("caller %d: err = %v, want ErrProvider", i, err)
		}
	}
	if n := h.hits.Load(); n != 1 {
		t.Fatalf("%d callers made %d discovery requests, want 1", callers, n)
	}

	// RetryAfter counts from the end of the failed attempt.
	h.clk.Advance(4 * time.Second)
	if _, _, err := c.AuthCodeURL(context.Background(), "http://rp/cb", false); !errors.Is(err, ErrProvider) {
		t.Fatalf("within RetryAfter of the failure: err = %v, want the remembered ErrProvider", err)
	}
	if n := h.hits.Load(); n != 1 {
		t.Fatalf("a new discovery request within RetryAfter of the failure's end (%d requests)", n)
	}
	h.clk.Advance(2 * time.Second)
	done := make(chan error, 1)
	go func() { _, _, err := c.AuthCodeURL(context.Background(), "http://rp/cb", false); done <- err }()
	h.waitArrival(t)
	h.answer <- true
	if err := <-done; err != nil {
		t.Fatalf("after RetryAfter: %v", err)
	}
}

// A caller whose own context ends stops waiting for a hanging provider;
// the attempt goes on, and its success serves the next caller.
func TestDiscoveryWaiterContext(t *testing.T) {
	h := newHangingIdP(t)
	c := h.client()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := c.AuthCodeURL(ctx, "http://rp/cb", false)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrProvider) {
		t.Fatalf("err = %v, want ErrProvider wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a caller with a 100ms deadline waited %v", d)
	}
	h.waitArrival(t)
	h.answer <- true
	// The attempt outlived the caller that started it: the next caller
	// joins it or finds its result, and makes no request of its own.
	if _, _, err := c.AuthCodeURL(context.Background(), "http://rp/cb", false); err != nil {
		t.Fatal(err)
	}
	if n := h.hits.Load(); n != 1 {
		t.Fatalf("%d discovery requests, want 1", n)
	}
}

// The verifiers keep a context of the Client's, not of the request that
// caused discovery: a key set fetched after that request has ended works.
func TestDiscoveryOutlivesFirstRequest(t *testing.T) {
	_, c := devIdP(t)
	ctx, cancel := context.WithCancel(context.Background())
	if _, _, err := c.AuthCodeURL(ctx, rpCallback, false); err != nil {
		t.Fatal(err)
	}
	cancel()
	// The first ID token makes the verifier fetch the JWKS now.
	if id := signIn(t, c, browser(t), "bob", false).Identity; id.Subject != "bob" {
		t.Fatalf("identity %+v, want bob", id)
	}
}
