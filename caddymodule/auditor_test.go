package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// Issue 7, item 6: auditor_groups and auditor_emails reach the gateway's
// configuration, and a mistake in them is a config error naming the line.
func TestAuditorKeys(t *testing.T) {
	d := caddyfile.NewTestDispenser(`gatehouse {
		issuer https://idp.example.com
		client_id app
		auditor_groups security compliance
		auditor_emails auditor@example.com
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	cfg, err := h.config()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.AuditorGroups, []string{"security", "compliance"}) || !slices.Equal(cfg.AuditorEmails, []string{"auditor@example.com"}) {
		t.Errorf("gateway config auditors = %q, %q", cfg.AuditorGroups, cfg.AuditorEmails)
	}
	if len(cfg.AdminGroups)+len(cfg.AdminEmails) != 0 {
		t.Errorf("auditor keys made admins: %q, %q", cfg.AdminGroups, cfg.AdminEmails)
	}

	site := func(body string) string {
		return "app.example.com {\n\tgatehouse {\n\t\tissuer https://idp.example.com\n\t\tclient_id x\n" + body + "\t}\n}\n"
	}
	tests := []struct{ name, src, want string }{
		{"empty auditor_groups", site("\t\tauditor_groups\n"), "wrong argument count or unexpected line ending after 'auditor_groups', at Caddyfile:5"},
		{"empty auditor_emails", site("\t\tauditor_emails\n"), "wrong argument count or unexpected line ending after 'auditor_emails', at Caddyfile:5"},
		{"duplicate auditor_groups", site("\t\tauditor_groups a\n\t\tauditor_groups b\n"), `duplicate subdirective "auditor_groups", at Caddyfile:6`},
		{"misspelt", site("\t\tauditors_groups a\n"), `unrecognized gatehouse subdirective "auditors_groups", at Caddyfile:5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adapt(t, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("adapt error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// Issue 7, item 6, end to end through real Caddy and the dev provider:
// bob (group staff) audits the site, alice administers it. Bob reads
// every admin page and GET; every DELETE of alice's sessions is a 403
// that leaves her signed in.
func TestAuditorThroughCaddy(t *testing.T) {
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
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte("upstream ok"))
			}))
			defer up.Close()
			listen := freePort(t)
			site := "http://" + listen
			idp.AddClient(devidp.Client{ID: "site", Secret: "client-secret-from-env", RedirectURIs: []string{site + "/.gatehouse/callback"}})
			cfg := siteConfig(t, listen, idpSrv.URL, strings.TrimPrefix(up.URL, "http://"), storeURL, filepath.Join(t.TempDir(), "activity.log"),
				func(_, handler map[string]any) { handler["auditor_groups"] = []string{"staff"} })
			if err := caddy.Load(cfg, true); err != nil {
				t.Fatalf("loading config: %v", err)
			}
			defer func() { _ = caddy.Stop() }()

			alice, bob := testflow.New(t), testflow.New(t)
			for user, b := range map[string]*testflow.Browser{"alice": alice, "bob": bob} {
				if p := b.Login(site, "/", user); p.Body != "upstream ok" {
					t.Fatalf("%s after login: %q", user, p.Body)
				}
			}
			var mine struct {
				Items []struct {
					ID string `json:"id"`
				} `json:"items"`
			}
			if err := json.Unmarshal([]byte(alice.Do(http.MethodGet, site+"/.gatehouse/api/me/sessions", nil, false).Body), &mine); err != nil || len(mine.Items) != 1 {
				t.Fatalf("alice's sessions: %+v, %v", mine, err)
			}
			aliceID := mine.Items[0].ID

			for _, path := range []string{
				"/api/sessions", "/api/sessions/" + aliceID, "/api/users", "/api/users/alice/sessions",
				"/api/events", "/api/me/sessions",
			} {
				p := bob.Do(http.MethodGet, site+"/.gatehouse"+path, nil, false)
				if p.Status != http.StatusOK {
					t.Errorf("auditor GET %s = %d %.200s, want 200", path, p.Status, p.Body)
				}
			}
			if p := bob.Do(http.MethodGet, site+"/.gatehouse/api/sessions", nil, false); !strings.Contains(p.Body, aliceID) {
				t.Errorf("the auditor's session list lacks alice's session: %.300s", p.Body)
			}
			for _, path := range []string{"/admin/", "/admin/users", "/admin/activity"} {
				p := bob.Do(http.MethodGet, site+"/.gatehouse"+path, nil, true)
				if p.Status != http.StatusOK || strings.Contains(p.Body, "/revoke") || !strings.Contains(p.Body, "Read-only") {
					t.Errorf("auditor page %s = %d, revoke control %v, read-only mark %v", path, p.Status,
						strings.Contains(p.Body, "/revoke"), strings.Contains(p.Body, "Read-only"))
				}
			}
			for _, path := range []string{"/api/sessions/" + aliceID, "/api/users/alice/sessions"} {
				p := bob.Do(http.MethodDelete, site+"/.gatehouse"+path, nil, false, "X-Requested-With", "XMLHttpRequest")
				if p.Status != http.StatusForbidden {
					t.Errorf("auditor DELETE %s = %d %.200s, want 403", path, p.Status, p.Body)
				}
			}
			if p := alice.Do(http.MethodGet, site+"/", nil, false); p.Status != http.StatusOK || p.Body != "upstream ok" {
				t.Errorf("alice after the auditor's DELETEs: %d %q, want still signed in", p.Status, p.Body)
			}
		})
	}
}
