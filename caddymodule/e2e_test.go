package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
	"github.com/gatehouse-proxy/gatehouse/internal/testport"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// freePort is a loopback address no other test of any package is given.
func freePort(t testing.TB) string {
	t.Helper()
	return testport.Addr(t)
}

// siteConfig is a Caddy config with gatehouse in front of upstream, the
// identity passed on with placeholders too, and activity events logged to
// a file. Each tweak may change the server's and the handler's JSON.
func siteConfig(t *testing.T, listen, issuer, upstream, store, logFile string, tweaks ...func(server, handler map[string]any)) []byte {
	t.Helper()
	app := map[string]any{"store": store}
	if store != "memory" {
		app["secret"] = "{env.GH_E2E_SECRET}"
	}
	handler := map[string]any{
		"handler":       "gatehouse",
		"issuer":        issuer,
		"client_id":     "site",
		"client_secret": "{env.GH_E2E_CLIENT_SECRET}",
		"scopes":        []string{"openid", "email", "profile", "groups"},
		"admin_groups":  []string{"gatehouse-admins"},
	}
	server := map[string]any{
		"listen":          []string{listen},
		"automatic_https": map[string]any{"disable": true},
		"routes": []any{map[string]any{"handle": []any{
			handler,
			map[string]any{
				"handler":   "reverse_proxy",
				"upstreams": []any{map[string]any{"dial": upstream}},
				"headers": map[string]any{"request": map[string]any{"set": map[string][]string{
					"X-Placeholder-Id":      {"{http.auth.user.id}"},
					"X-Placeholder-Email":   {"{http.auth.user.email}"},
					"X-Placeholder-Groups":  {"{http.auth.user.groups}"},
					"X-Placeholder-Session": {"{http.auth.user.session_id}"},
				}}},
			},
		}}},
	}
	for _, tweak := range tweaks {
		tweak(server, handler)
	}
	cfg := map[string]any{
		"admin": map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{
			"activity": map[string]any{
				"writer":  map[string]any{"output": "file", "filename": logFile},
				"encoder": map[string]any{"format": "json"},
				"include": []string{"gatehouse.activity"},
			},
		}},
		"apps": map[string]any{
			"gatehouse": app,
			"http":      map[string]any{"servers": map[string]any{"s": server}},
		},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestThroughCaddy signs in through a real Caddy server, checks what the
// upstream receives (headers and placeholders, spoofed copies gone), and
// that events reach Caddy's log as gatehouse.activity.
func TestThroughCaddy(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			t.Setenv("GH_E2E_SECRET", strings.Repeat("s", 40))
			t.Setenv("GH_E2E_CLIENT_SECRET", "client-secret-from-env")
			storeURL := "memory"
			if store == "redis" {
				storeURL = "redis://" + testredis.Start(t)
			}
			idpSrv := httptest.NewUnstartedServer(nil)
			idpSrv.Start()
			defer idpSrv.Close()
			idp, err := devidp.New(devidp.Config{Issuer: idpSrv.URL, Users: devidp.DemoUsers()})
			if err != nil {
				t.Fatal(err)
			}
			idpSrv.Config.Handler = idp
			var seen http.Header
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = r.Header.Clone()
				_, _ = w.Write([]byte("upstream ok"))
			}))
			defer up.Close()
			listen := freePort(t)
			site := "http://" + listen
			idp.AddClient(devidp.Client{ID: "site", Secret: "client-secret-from-env", RedirectURIs: []string{site + "/.gatehouse/callback"}})
			logFile := filepath.Join(t.TempDir(), "activity.log")

			if err := caddy.Load(siteConfig(t, listen, idpSrv.URL, strings.TrimPrefix(up.URL, "http://"), storeURL, logFile), true); err != nil {
				t.Fatalf("loading config: %v", err)
			}
			defer func() { _ = caddy.Stop() }()

			b := testflow.New(t)
			if p := b.Login(site, "/", "alice"); p.Body != "upstream ok" {
				t.Fatalf("after login: %q", p.Body)
			}
			p := b.Do(http.MethodGet, site+"/data", nil, false, "X-Forwarded-User", "root", "X_Forwarded_Groups", "admins")
			if p.Status != http.StatusOK {
				t.Fatalf("signed-in request: %d", p.Status)
			}
			want := map[string]string{
				"X-Forwarded-User":     "alice",
				"X-Forwarded-Email":    "alice@example.com",
				"X-Forwarded-Groups":   "gatehouse-admins,staff",
				"X-Placeholder-Id":     "alice",
				"X-Placeholder-Email":  "alice@example.com",
				"X-Placeholder-Groups": "gatehouse-admins,staff",
			}
			for k, v := range want {
				if got := seen.Get(k); got != v {
					t.Errorf("upstream %s = %q, want %q", k, got, v)
				}
			}
			if got := seen.Get("X-Placeholder-Session"); len(got) != 22 {
				t.Errorf("session_id placeholder = %q", got)
			}
			if c := seen.Get("Cookie"); strings.Contains(c, "gatehouse=") {
				t.Errorf("the session cookie reached the upstream: %q", c)
			}
			if _, ok := seen["X_forwarded_groups"]; ok {
				t.Error("spoofed X_Forwarded_Groups reached the upstream")
			}
			// Events reach Caddy's log as gatehouse.activity.
			testflow.WaitFor(t, "activity log line", func() bool {
				b, _ := os.ReadFile(logFile)
				return strings.Contains(string(b), `"logger":"gatehouse.activity"`) && strings.Contains(string(b), `"type":"login_succeeded"`)
			})
			logged, _ := os.ReadFile(logFile)
			for _, secret := range []string{b.Cookie(site, "gatehouse"), "client-secret-from-env", strings.Repeat("s", 40)} {
				if strings.Contains(string(logged), secret) {
					t.Errorf("the log contains a secret: %q", secret)
				}
			}
		})
	}
}

// Validation provisions every module without network I/O: a store and a
// provider that cannot be reached do not matter until traffic arrives.
func TestValidateNeedsNoNetwork(t *testing.T) {
	t.Setenv("GH_E2E_SECRET", strings.Repeat("s", 40))
	dead := freePort(t) // nothing listens here
	cfg := siteConfig(t, freePort(t), "http://"+dead, "127.0.0.1:9", "redis://"+dead, filepath.Join(t.TempDir(), "log"))
	var c caddy.Config
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := caddy.Validate(&c); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Validate took %v: it must not wait on the network", d)
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		store  string
		want   string
	}{
		{"redis without secret", "", "redis://127.0.0.1:1", "a secret is required with a shared store"},
		{"short secret from env", "short", "redis://127.0.0.1:1", "secret must be at least 32 bytes"},
		{"bad store url", strings.Repeat("s", 40), "ftp://example.com", "store:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GH_E2E_SECRET", tt.secret)
			cfg := siteConfig(t, freePort(t), "http://127.0.0.1:1", "127.0.0.1:9", tt.store, filepath.Join(t.TempDir(), "log"))
			var c caddy.Config
			if err := json.Unmarshal(cfg, &c); err != nil {
				t.Fatal(err)
			}
			err := caddy.Validate(&c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// startIDP serves the development provider with the demo users on a test
// server, closed when the test ends.
func startIDP(t testing.TB) (*httptest.Server, *devidp.Provider) {
	t.Helper()
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	idp, err := devidp.New(devidp.Config{Issuer: srv.URL, Users: devidp.DemoUsers()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = idp
	return srv, idp
}
