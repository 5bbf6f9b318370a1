package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
	"github.com/gatehouse-proxy/gatehouse/internal/testport"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// The binary is Caddy plus gatehouse: `gatehouse list-modules` shows them.
func TestModulesRegistered(t *testing.T) {
	for _, id := range []string{"gatehouse", "http.handlers.gatehouse", "admin.api.gatehouse", "http.handlers.reverse_proxy"} {
		if _, err := caddy.GetModule(id); err != nil {
			t.Errorf("module %s not registered: %v", id, err)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return testport.Addr(t)
}

// startTestDemo runs the demo as `gatehouse demo` would, on free ports,
// with Caddy's admin endpoint on a free port too.
func startTestDemo(t *testing.T, redisURL string) (*demo, string) {
	t.Helper()
	admin := freeAddr(t)
	d, err := startDemo(demoOptions{Listen: freeAddr(t), IDPListen: "127.0.0.1:0", Redis: redisURL, Admin: admin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = caddy.Stop()
		d.Close()
	})
	return d, "http://" + admin
}

func TestDemo(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			redisURL := ""
			if store == "redis" {
				redisURL = "redis://" + testredis.Start(t)
			}
			d, admin := startTestDemo(t, redisURL)
			b := testflow.New(t)
			final := b.Login(d.SiteURL, "/inventory?page=2", "alice")
			for _, want := range []string{"alice@example.com", "gatehouse-admins", "/inventory?page=2"} {
				if !strings.Contains(final.Body, want) {
					t.Errorf("sample app page lacks %q", want)
				}
			}
			// Caddy's admin endpoint lists the session and ends it.
			var list struct {
				Items []struct {
					ID   string `json:"id"`
					User string `json:"user"`
				} `json:"items"`
			}
			getJSON(t, admin+"/gatehouse/sessions", &list)
			if len(list.Items) != 1 || list.Items[0].User != "alice" {
				t.Fatalf("admin endpoint sessions = %+v", list.Items)
			}
			req, _ := http.NewRequest(http.MethodDelete, admin+"/gatehouse/sessions/"+list.Items[0].ID, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("DELETE via admin endpoint: %d", resp.StatusCode)
			}
			if p := b.Do(http.MethodGet, d.SiteURL+"/inventory", nil, false); p.Status != http.StatusUnauthorized {
				t.Errorf("request after revocation: %d, want 401", p.Status)
			}
			var events struct {
				Items []struct {
					Type  string `json:"type"`
					Actor string `json:"actor"`
				} `json:"items"`
			}
			getJSON(t, admin+"/gatehouse/events", &events)
			if len(events.Items) < 2 || events.Items[0].Type != "session_revoked" || events.Items[0].Actor != "system" {
				t.Errorf("events = %+v, want session_revoked by system first", events.Items)
			}
		})
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, b)
	}
}

// The site must never get the admin endpoint's port: Caddy binds both
// with SO_REUSEPORT, so both binds would succeed and the kernel would
// hand some of the site's connections to the admin endpoint (a CI run
// failed that way, its page script answered by the admin API's 400).
func TestResolvePortAvoidsAdmin(t *testing.T) {
	admin := freeAddr(t)
	_, adminPort, _ := net.SplitHostPort(admin)
	if _, err := resolvePort("127.0.0.1:"+adminPort, admin); err == nil || !strings.Contains(err.Error(), "admin endpoint") {
		t.Errorf("site on the admin endpoint's port: err = %v, want one naming the admin endpoint", err)
	}
	if _, err := resolvePort("127.0.0.1:2019", ""); err == nil {
		t.Error("site on Caddy's default admin port with the default admin endpoint: no error")
	}
	for range 50 {
		got, err := resolvePort("127.0.0.1:0", admin)
		if err != nil {
			t.Fatal(err)
		}
		if _, p, _ := net.SplitHostPort(got); p == adminPort || p == "0" {
			t.Fatalf("resolvePort gave %s, admin is %s", got, admin)
		}
	}
	if got, err := resolvePort("127.0.0.1:8080", admin); err != nil || got != "127.0.0.1:8080" {
		t.Errorf("explicit port: %q, %v", got, err)
	}
}
