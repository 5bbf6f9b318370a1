package caddymodule

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
)

// clientFrom is an HTTP client whose connections come from source address
// src (any 127.0.0.0/8 address works on loopback) and that does not follow
// redirects.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Regression (issue 6, "tests that would not have noticed"): nothing ran
// trusted_proxies through real Caddy, so reading X-Forwarded-For or
// X-Forwarded-Proto by hand, or ignoring Caddy's trust decision, went
// unseen. With trusted_proxies 127.0.0.2/32, only a request from
// 127.0.0.2 may name another client address or the https scheme.
func TestTrustedProxiesThroughCaddy(t *testing.T) {
	t.Setenv("GH_E2E_CLIENT_SECRET", "s")
	idpSrv, idp := startIDP(t)
	listen := freePort(t)
	site := "http://" + listen
	idp.AddClient(devidp.Client{ID: "site", Secret: "s", RedirectURIs: []string{
		site + "/.gatehouse/callback", "https://" + listen + "/.gatehouse/callback",
	}})
	logFile := filepath.Join(t.TempDir(), "activity.log")
	cfg := siteConfig(t, listen, idpSrv.URL, "127.0.0.1:9", "memory", logFile, func(server, handler map[string]any) {
		server["trusted_proxies"] = map[string]any{"source": "static", "ranges": []string{"127.0.0.2/32"}}
		handler["deny_ip"] = []string{"203.0.113.0/24"}
	})
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	defer func() { _ = caddy.Stop() }()

	get := func(t *testing.T, from string, header ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, site+"/app", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/html")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := clientFrom(from).Do(req)
		if err != nil {
			t.Fatalf("GET from %s: %v", from, err)
		}
		resp.Body.Close()
		return resp
	}
	// redirectScheme is the scheme of the redirect_uri that the sign-in
	// redirect sends to the provider.
	redirectScheme := func(t *testing.T, resp *http.Response) string {
		t.Helper()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("status %d, want 302 to the provider", resp.StatusCode)
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || !strings.HasPrefix(loc.String(), idpSrv.URL) {
			t.Fatalf("redirect to %q, want the provider", resp.Header.Get("Location"))
		}
		ru, err := url.Parse(loc.Query().Get("redirect_uri"))
		if err != nil || ru.Host != listen || ru.Path != "/.gatehouse/callback" {
			t.Fatalf("redirect_uri = %q", loc.Query().Get("redirect_uri"))
		}
		return ru.Scheme
	}
	// secureCookies reports whether the response set cookies and all are
	// Secure, and lists them as name and Secure flag (never values).
	secureCookies := func(resp *http.Response) (bool, string) {
		cs := resp.Cookies()
		all := len(cs) > 0
		var list []string
		for _, c := range cs {
			all = all && c.Secure
			list = append(list, fmt.Sprintf("%s Secure=%v", c.Name, c.Secure))
		}
		return all, strings.Join(list, ", ")
	}

	t.Run("untrusted X-Forwarded-For", func(t *testing.T) {
		resp := get(t, "127.0.0.1", "X-Forwarded-For", "203.0.113.9")
		if resp.StatusCode == http.StatusForbidden {
			t.Fatal("an untrusted peer's X-Forwarded-For got it denied: the header must change nothing")
		}
		redirectScheme(t, resp) // the usual sign-in redirect
	})
	t.Run("trusted X-Forwarded-For", func(t *testing.T) {
		resp := get(t, "127.0.0.2", "X-Forwarded-For", "203.0.113.9")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("trusted proxy forwarding for 203.0.113.9: status %d, want 403", resp.StatusCode)
		}
		testflow.WaitFor(t, "access_denied for 203.0.113.9", func() bool {
			b, _ := os.ReadFile(logFile)
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, `"type":"access_denied"`) && strings.Contains(line, `"ip":"203.0.113.9"`) &&
					strings.Contains(line, `"reason":"ip_restricted"`) {
					return true
				}
			}
			return false
		})
	})
	t.Run("untrusted X-Forwarded-Proto", func(t *testing.T) {
		resp := get(t, "127.0.0.1", "X-Forwarded-Proto", "https")
		if got := redirectScheme(t, resp); got != "http" {
			t.Errorf("untrusted peer claiming https: redirect_uri scheme %q, want http", got)
		}
		if ok, list := secureCookies(resp); ok {
			t.Errorf("untrusted peer claiming https got Secure cookies: %s", list)
		}
	})
	t.Run("trusted X-Forwarded-Proto", func(t *testing.T) {
		resp := get(t, "127.0.0.2", "X-Forwarded-Proto", "https")
		if got := redirectScheme(t, resp); got != "https" {
			t.Errorf("trusted proxy saying https: redirect_uri scheme %q, want https", got)
		}
		if ok, list := secureCookies(resp); !ok {
			t.Errorf("trusted proxy saying https: cookies [%s], want all Secure", list)
		}
	})
}
