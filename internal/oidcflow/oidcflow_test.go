package oidcflow

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/testclock"
)

// Discovery is lazy (New does no I/O), a failure is remembered for
// RetryAfter so a dead provider costs one attempt per interval, and the
// client recovers once the provider is up.
func TestDiscoveryLazyAndRetried(t *testing.T) {
	var (
		mu   sync.Mutex
		hits int
		down = true
		idp  *devidp.Provider
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		isDown := down
		mu.Unlock()
		if isDown {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		idp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	issuer := srv.URL
	var err error
	idp, err = devidp.New(devidp.Config{Issuer: issuer, Users: devidp.DemoUsers()})
	if err != nil {
		t.Fatal(err)
	}
	clk := testclock.New(time.Now())
	c := New(Config{Issuer: issuer, ClientID: "x", Now: clk.Now, RetryAfter: 5 * time.Second})
	mu.Lock()
	if hits != 0 {
		t.Errorf("New asked the provider %d times; discovery must wait for first use", hits)
	}
	mu.Unlock()

	ctx := context.Background()
	if _, _, err := c.AuthCodeURL(ctx, "http://rp/cb", false); !errors.Is(err, ErrProvider) {
		t.Fatalf("AuthCodeURL with the provider down: err = %v, want ErrProvider", err)
	}
	mu.Lock()
	down, hits = false, 0
	mu.Unlock()

	// Within RetryAfter the failure is remembered: no request is made.
	if _, _, err := c.AuthCodeURL(ctx, "http://rp/cb", false); !errors.Is(err, ErrProvider) {
		t.Errorf("within RetryAfter: err = %v, want the remembered ErrProvider", err)
	}
	mu.Lock()
	if hits != 0 {
		t.Errorf("provider was asked %d times within RetryAfter", hits)
	}
	mu.Unlock()
	clk.Advance(6 * time.Second)
	u, st, err := c.AuthCodeURL(ctx, "http://rp/cb", true)
	if err != nil {
		t.Fatalf("after RetryAfter: %v", err)
	}
	q := mustParse(t, u).Query()
	if q.Get("state") != st.State || q.Get("nonce") != st.Nonce || q.Get("code_challenge_method") != "S256" || q.Get("prompt") != "login" {
		t.Errorf("authorization URL = %s", u)
	}
	// Discovery happens once.
	mu.Lock()
	before := hits
	mu.Unlock()
	if _, _, err := c.AuthCodeURL(ctx, "http://rp/cb", false); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if hits != before {
		t.Errorf("second AuthCodeURL asked the provider again")
	}
	mu.Unlock()
	end, err := c.EndSessionURL(ctx, "hint", "http://rp/signed-out")
	if err != nil {
		t.Fatal(err)
	}
	eq := mustParse(t, end).Query()
	if eq.Get("id_token_hint") != "hint" || eq.Get("post_logout_redirect_uri") != "http://rp/signed-out" || eq.Get("client_id") != "x" {
		t.Errorf("end session URL = %s", end)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestGroupsClaim(t *testing.T) {
	tests := []struct {
		in   any
		want []string
	}{
		{[]any{"a", "b", 3, ""}, []string{"a", "b"}},
		{"a,b c", []string{"a", "b", "c"}},
		{nil, nil},
		{map[string]any{"x": 1}, nil},
	}
	for _, tt := range tests {
		if got := groups(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("groups(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestCheckState(t *testing.T) {
	st := State{State: "abc"}
	if !st.CheckState("abc") || st.CheckState("abd") || st.CheckState("") || (State{}).CheckState("") {
		t.Error("CheckState accepts the wrong values")
	}
}

// Regression (issue 7, item 5): mfa_acr must reach the provider as
// acr_values on every sign-in, forced or not, and be absent otherwise.
func TestAuthCodeURLACRValues(t *testing.T) {
	p := newFakeIdP(t)
	for _, acr := range []string{"", "mfa", "urn:example:loa:2 mfa"} {
		c := New(Config{Issuer: p.srv.URL, ClientID: fakeClientID, ClientSecret: "secret", Now: p.clk.Now, ACRValues: acr})
		for _, force := range []bool{false, true} {
			u, _, err := c.AuthCodeURL(context.Background(), "https://app.example.com/.gatehouse/callback", force)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			got, has := parsed.Query()["acr_values"]
			if acr == "" && has {
				t.Errorf("AuthCodeURL(%v) without ACRValues = %s, want no acr_values", force, u)
			}
			if acr != "" && (len(got) != 1 || got[0] != acr) {
				t.Errorf("AuthCodeURL(%v) with ACRValues %q: acr_values = %q, want [%q]", force, acr, got, acr)
			}
		}
	}
}
