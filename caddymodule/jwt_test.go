package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
)

func TestAdaptJWTHeaderErrors(t *testing.T) {
	site := func(body string) string {
		return "app.example.com {\n\tgatehouse {\n\t\tissuer https://idp.example.com\n\t\tclient_id x\n" + body + "\t}\n}\n"
	}
	tests := []struct {
		name, src, want string
		line            int
	}{
		{"bare", site("\t\tjwt_header\n"), "wrong argument count", 5},
		{"two names", site("\t\tjwt_header X-A X-B\n"), "wrong argument count", 5},
		{"not a header name", site("\t\tjwt_header X-A:\n"), `jwt_header "X-A:" is not a valid header name`, 5},
		{"an identity header", site("\t\tjwt_header X-Forwarded-User\n"), "is one of the identity headers", 5},
		{"a header the request needs", site("\t\tjwt_header cookie\n"), "would replace a header the request needs", 5},
		{"duplicate", site("\t\tjwt_header X-A\n\t\tjwt_header X-B\n"), `duplicate subdirective "jwt_header"`, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adapt(t, tt.src)
			if err == nil {
				t.Fatalf("adapt succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			if at := fmt.Sprintf("at Caddyfile:%d", tt.line); !strings.HasSuffix(err.Error(), at) {
				t.Errorf("error = %q, want it to name the line: %q", err, at)
			}
		})
	}
}

// jwt_header reaches the gateway's configuration; JSON configs, which skip
// the adapter, are checked when the handler's config is built.
func TestJWTHeaderConfig(t *testing.T) {
	d := caddyfile.NewTestDispenser("gatehouse {\nissuer https://i\nclient_id app\njwt_header X-Gatehouse-Assertion\n}")
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	cfg, err := h.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.JWTHeader != "X-Gatehouse-Assertion" {
		t.Errorf("gateway JWTHeader = %q, want X-Gatehouse-Assertion", cfg.JWTHeader)
	}
	h.JWTHeader = "X-Forwarded-Email"
	if _, err := h.config(); err == nil || !strings.Contains(err.Error(), "identity headers") {
		t.Errorf("config with jwt_header X-Forwarded-Email = %v, want an error", err)
	}
}

// Through real Caddy and reverse_proxy, the upstream gets one token for
// the signed-in user, never the client's copy, and verifies it with
// go-jose against the site's jwks.json.
func TestJWTHeaderThroughCaddy(t *testing.T) {
	t.Setenv("GH_E2E_CLIENT_SECRET", "s")
	idpSrv, idp := startIDP(t)
	var mu sync.Mutex
	var got [][]string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Values("X-Gatehouse-Assertion"))
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	defer up.Close()
	listen := freePort(t)
	site := "http://" + listen
	idp.AddClient(devidp.Client{ID: "site", Secret: "s", RedirectURIs: []string{site + "/.gatehouse/callback"}})
	cfg := siteConfig(t, listen, idpSrv.URL, up.Listener.Addr().String(), "memory", filepath.Join(t.TempDir(), "activity.log"),
		func(_, handler map[string]any) { handler["jwt_header"] = "X-Gatehouse-Assertion" })
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	defer func() { _ = caddy.Stop() }()

	b := testflow.New(t)
	b.Login(site, "/", "bob")
	if p := b.Do(http.MethodGet, site+"/x", nil, false, "X-Gatehouse-Assertion", "forged", "X_Gatehouse_Assertion", "forged"); p.Status != http.StatusOK {
		t.Fatalf("request: %d", p.Status)
	}
	resp, err := http.Get(site + "/.gatehouse/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks.json: %d, %v, %d keys", resp.StatusCode, err, len(set.Keys))
	}
	mu.Lock()
	defer mu.Unlock()
	last := got[len(got)-1]
	if len(last) != 1 || last[0] == "forged" {
		t.Fatalf("upstream got %q, want one token", last)
	}
	tok, err := jwt.ParseSigned(last[0], []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		jwt.Claims
		Groups []string `json:"groups"`
	}
	if err := tok.Claims(set, &c); err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	if err := c.Validate(jwt.Expected{Issuer: site, AnyAudience: jwt.Audience{listen}, Subject: "bob", Time: time.Now()}); err != nil {
		t.Errorf("claims %+v: %v", c, err)
	}
}
