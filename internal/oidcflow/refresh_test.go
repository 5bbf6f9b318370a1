package oidcflow

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/testclock"
)

// A refresh answer tells the caller whether to end the session: only a
// 4xx OAuth error saying the grant is gone wraps ErrRefreshRefused; an
// outage (5xx whatever its body, a body that is no OAuth error, a
// provider that does not answer) and our own client's misconfiguration
// (invalid_client) wrap ErrProvider alone, so the session survives and
// the caller retries.
func TestRefreshRefusedOrDown(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		body        string
		wantRefused bool
		wantOK      bool
	}{
		{"ok", 200, `{"access_token":"a2","token_type":"Bearer","expires_in":300,"refresh_token":"r2"}`, false, true},
		{"invalid_grant", 400, `{"error":"invalid_grant","error_description":"user disabled"}`, true, false},
		{"unauthorized_client", 400, `{"error":"unauthorized_client"}`, true, false},
		{"consent revoked", 400, `{"error":"consent_required"}`, true, false},
		{"invalid_grant as 401", 401, `{"error":"invalid_grant"}`, true, false},
		{"invalid_client", 401, `{"error":"invalid_client"}`, false, false},
		{"503 with an oauth body", 503, `{"error":"invalid_grant"}`, false, false},
		{"502 html", 502, `<html>bad gateway</html>`, false, false},
		{"400 without a code", 400, `oops`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testclock.New(t0.Add(7 * time.Hour)) // not the real clock
			c := refreshClient(t, clk, func(w http.ResponseWriter, r *http.Request) {
				if r.PostFormValue("grant_type") != "refresh_token" || r.PostFormValue("refresh_token") != "r1" {
					http.Error(w, "unexpected request", http.StatusTeapot)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			res, err := c.Refresh(context.Background(), "r1")
			if got := errors.Is(err, ErrRefreshRefused); got != tt.wantRefused {
				t.Errorf("Refresh error %v: refused = %v, want %v", err, got, tt.wantRefused)
			}
			if !tt.wantOK {
				if !errors.Is(err, ErrProvider) {
					t.Errorf("Refresh error %v does not wrap ErrProvider", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.AccessToken != "a2" || res.RefreshToken != "r2" {
				t.Errorf("Refresh = %+v", res)
			}
			// Expiry follows the injected clock, not the real one.
			if want := clk.Now().Add(5 * time.Minute); !res.Expiry.Equal(want) {
				t.Errorf("Expiry = %v, want %v", res.Expiry, want)
			}
		})
	}
}

// A provider that does not rotate the refresh token answers without one;
// Result.RefreshToken is then empty, so the caller keeps the old one.
func TestRefreshNotRotated(t *testing.T) {
	c := refreshClient(t, testclock.New(t0), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"a2","token_type":"Bearer","expires_in":60}`))
	})
	res, err := c.Refresh(context.Background(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	if res.RefreshToken != "" {
		t.Errorf("RefreshToken = %q, want empty (not rotated)", res.RefreshToken)
	}
}

// A provider that does not answer at all is down, not refusing.
func TestRefreshProviderUnreachable(t *testing.T) {
	c := refreshClient(t, testclock.New(t0), func(w http.ResponseWriter, r *http.Request) {
		// Drop the connection without an answer.
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		_ = conn.Close()
	})
	_, err := c.Refresh(context.Background(), "r1")
	if err == nil || errors.Is(err, ErrRefreshRefused) || !errors.Is(err, ErrProvider) {
		t.Errorf("Refresh with the token endpoint dropping connections: %v, want ErrProvider only", err)
	}
}

// refreshClient is a Client of a provider whose token endpoint is token.
func refreshClient(t *testing.T, clk *testclock.Clock, token http.HandlerFunc) *Client {
	t.Helper()
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize",
			"token_endpoint": srv.URL + "/token", "jwks_uri": srv.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("POST /token", token)
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return New(Config{Issuer: srv.URL, ClientID: fakeClientID, ClientSecret: "secret", Now: clk.Now})
}

// With the development provider: refreshes succeed and rotate, the used
// token is refused, and so is any token of a user the provider disabled.
func TestRefreshWithDevProvider(t *testing.T) {
	idp, c := devIdP(t)
	res := signIn(t, c, browser(t), "alice", false)
	ctx := context.Background()
	r1, err := c.Refresh(ctx, res.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if r1.RefreshToken == "" || r1.RefreshToken == res.RefreshToken || r1.Identity.Subject != "alice" {
		t.Fatalf("Refresh = %+v, want a rotated token for alice", r1)
	}
	if _, err := c.Refresh(ctx, res.RefreshToken); !errors.Is(err, ErrRefreshRefused) {
		t.Errorf("reused refresh token: %v, want ErrRefreshRefused", err)
	}
	idp.DisableUser("alice")
	if _, err := c.Refresh(ctx, r1.RefreshToken); !errors.Is(err, ErrRefreshRefused) {
		t.Errorf("refresh of a disabled user: %v, want ErrRefreshRefused", err)
	}
}
