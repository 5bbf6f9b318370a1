package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite golden files")

func adapt(t *testing.T, src string) ([]byte, error) {
	t.Helper()
	a := caddyconfig.GetAdapter("caddyfile")
	out, warnings, err := a.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	for _, w := range warnings {
		t.Logf("warning: %s", w.String())
	}
	return out, err
}

// TestAdaptGolden adapts every testdata/adapt/*.caddyfile and compares the
// JSON with the .json file beside it (go test -update rewrites them).
func TestAdaptGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/adapt/*.caddyfile")
	if len(files) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := adapt(t, string(src))
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := strings.TrimSuffix(f, ".caddyfile") + ".json"
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run go test -update): %v", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("adapted JSON differs from %s:\n%s", golden, pretty.String())
			}
		})
	}
}

// The directive is ordered before reverse_proxy without an order line,
// even when written after it.
func TestDirectiveOrderedBeforeReverseProxy(t *testing.T) {
	src, _ := os.ReadFile("testdata/adapt/full.caddyfile")
	out, err := adapt(t, string(src))
	if err != nil {
		t.Fatal(err)
	}
	gh := bytes.Index(out, []byte(`"handler":"gatehouse"`))
	rp := bytes.Index(out, []byte(`"handler":"reverse_proxy"`))
	if gh < 0 || rp < 0 || gh > rp {
		t.Errorf("gatehouse at %d, reverse_proxy at %d: gatehouse must come first", gh, rp)
	}
}

func TestAdaptExample(t *testing.T) {
	src, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	out, err := adapt(t, string(src))
	if err != nil {
		t.Fatalf("Caddyfile.example does not adapt: %v", err)
	}
	for _, want := range []string{`"gatehouse":{`, `"issuer":"https://idp.example.com/realms/main"`, `"store":"redis://127.0.0.1:6379/0"`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("adapted example lacks %s", want)
		}
	}
}

func TestAdaptErrors(t *testing.T) {
	site := func(body string) string {
		return "app.example.com {\n\tgatehouse {\n\t\tissuer https://idp.example.com\n\t\tclient_id x\n" + body + "\t}\n}\n"
	}
	global := func(body string) string {
		return "{\n\tgatehouse {\n" + body + "\t}\n}\n" + site("")
	}
	tests := []struct {
		name, src, want string
		line            int
	}{
		{"unknown subdirective", site("\t\tidle_timout 5m\n"), `unrecognized gatehouse subdirective "idle_timout"`, 5},
		{"duplicate subdirective", site("\t\tclient_id y\n"), `duplicate subdirective "client_id"`, 5},
		{"bad duration", site("\t\tidle_timeout 5 minutes\n"), "wrong argument count", 5},
		{"unparsable duration", site("\t\tmax_lifetime forever\n"), `max_lifetime: invalid duration "forever"`, 5},
		{"negative duration", site("\t\tidle_timeout -5m\n"), "idle_timeout: duration must not be negative", 5},
		{"bad CIDR", site("\t\tallow_ip 10.0.0.0/33\n"), `allow_ip: invalid IP range "10.0.0.0/33"`, 5},
		{"bad address", site("\t\tdeny_ip example.com\n"), `deny_ip: invalid IP range "example.com"`, 5},
		{"unknown country", site("\t\tallow_country NL XX\n"), `allow_country: unknown country code "XX"`, 5},
		{"not a country code", site("\t\tdeny_country Germany\n"), `deny_country: unknown country code "Germany"`, 5},
		{"missing issuer", "app.example.com {\n\tgatehouse {\n\t\tclient_id x\n\t}\n}\n", "gatehouse: missing issuer", 2},
		{"missing client_id", "app.example.com {\n\tgatehouse {\n\t\tissuer https://i\n\t}\n}\n", "gatehouse: missing client_id", 2},
		{"argument after directive", "app.example.com {\n\tgatehouse x {\n\t}\n}\n", "wrong argument count", 2},
		{"empty list", site("\t\tadmin_groups\n"), "wrong argument count", 5},
		{"bad path prefix", site("\t\tpath_prefix auth/\n"), "path_prefix:", 5},
		{"bad cookie name", site("\t\tcookie_name a;b\n"), `cookie_name "a;b"`, 5},
		{"unknown global option", global("\t\tstorage memory\n"), `unrecognized gatehouse option "storage"`, 3},
		{"bad store URL", global("\t\tstore mysql://localhost\n"), "store:", 3},
		{"short secret", global("\t\tsecret hunter2\n"), "secret must be at least 32 bytes", 3},
		{"bad retention", global("\t\tretention 90days\n"), `retention: invalid duration "90days"`, 3},
		{"duplicate global", global("\t\tcache_ttl 1s\n\t\tcache_ttl 2s\n"), `duplicate subdirective "cache_ttl"`, 4},
		{"cookie_secure not a switch", site("\t\tcookie_secure yes\n"), `cookie_secure: want on or off, got "yes"`, 5},
		{"cookie_secure bare", site("\t\tcookie_secure\n"), "wrong argument count", 5},
		{"cookie_secure two args", site("\t\tcookie_secure on off\n"), "wrong argument count", 5},
		{"duplicate cookie_secure", site("\t\tcookie_secure on\n\t\tcookie_secure off\n"), `duplicate subdirective "cookie_secure"`, 6},
		{"insecure_unverified_email not a switch", site("\t\tinsecure_unverified_email true\n"), `insecure_unverified_email: want on or off, got "true"`, 5},
		{"insecure_unverified_email two args", site("\t\tinsecure_unverified_email on on\n"), "wrong argument count", 5},
		{"duplicate insecure_unverified_email", site("\t\tinsecure_unverified_email\n\t\tinsecure_unverified_email off\n"), `duplicate subdirective "insecure_unverified_email"`, 6},
		{"require_mfa not a switch", site("\t\trequire_mfa yes\n"), `require_mfa: want on or off, got "yes"`, 5},
		{"require_mfa bare", site("\t\trequire_mfa\n"), "wrong argument count", 5},
		{"duplicate require_mfa", site("\t\trequire_mfa on\n\t\trequire_mfa off\n"), `duplicate subdirective "require_mfa"`, 6},
		{"refresh not a switch", site("\t\trefresh yes\n"), `refresh: want on or off, got "yes"`, 5},
		{"refresh bare", site("\t\trefresh\n"), "wrong argument count", 5},
		{"duplicate refresh", site("\t\trefresh on\n\t\trefresh on\n"), `duplicate subdirective "refresh"`, 6},
		{"pass_access_token not a switch", site("\t\tpass_access_token always\n"), `pass_access_token: want on or off, got "always"`, 5},
		{"pass_access_token without refresh", site("\t\tpass_access_token on\n"), "pass_access_token needs refresh on", 5},
		{"pass_access_token with refresh off", site("\t\tpass_access_token on\n\t\trefresh off\n"), "pass_access_token needs refresh on", 5},
		{"mfa_acr bare", site("\t\tmfa_acr\n"), "wrong argument count", 5},
		{"duplicate mfa_acr", site("\t\tmfa_acr a\n\t\tmfa_acr b\n"), `duplicate subdirective "mfa_acr"`, 6},
		{"unknown timezone", global("\t\ttimezone Mars/Olympus\n"), `timezone: unknown time zone "Mars/Olympus"`, 3},
		{"host timezone", global("\t\ttimezone Local\n"), `timezone: "Local" is not an IANA time zone name`, 3},
		{"timezone path", global("\t\ttimezone /etc/localtime\n"), `timezone: "/etc/localtime" is not an IANA`, 3},
		{"timezone bare", global("\t\ttimezone\n"), "wrong argument count", 3},
		{"max_events zero", global("\t\tmax_events 0\n"), `max_events: want a positive whole number of events, got "0"`, 3},
		{"max_events negative", global("\t\tmax_events -5\n"), `max_events: want a positive whole number of events, got "-5"`, 3},
		{"max_events not a number", global("\t\tmax_events 1e6\n"), `max_events: want a positive whole number of events, got "1e6"`, 3},
		{"max_events bare", global("\t\tmax_events\n"), "wrong argument count", 3},
		{"duplicate max_events", global("\t\tmax_events 10\n\t\tmax_events 20\n"), `duplicate subdirective "max_events"`, 4},
		// Regression (found by FuzzParseGlobal): both were refused only at
		// Provision, without a line.
		{"shared store without secret", global("\t\tcache_ttl 1s\n\t\tstore redis://localhost:6379\n"), "a secret is required with a shared store", 4},
		{"alert_on without alert_webhook", global("\t\talert_on login_failed\n"), "alert_on needs alert_webhook", 3},
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

func TestUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`gatehouse {
		issuer https://idp.example.com
		client_id app
		idle_timeout 0
		scopes openid email
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if h.IdleTimeout == nil || *h.IdleTimeout != 0 {
		t.Errorf("idle_timeout 0 = %v, want explicit zero (off)", h.IdleTimeout)
	}
	if strings.Join(h.Scopes, " ") != "openid email" {
		t.Errorf("scopes = %v", h.Scopes)
	}
	if h.CookieSecure != nil || h.InsecureUnverifiedEmail {
		t.Errorf("absent switches = cookie_secure %v, insecure_unverified_email %v; want unset (by scheme) and off",
			h.CookieSecure, h.InsecureUnverifiedEmail)
	}
}

func TestUnmarshalSwitches(t *testing.T) {
	on, off := true, false
	tests := []struct {
		line         string
		cookieSecure *bool
		unverified   bool
	}{
		{"", nil, false},
		{"cookie_secure on", &on, false},
		{"cookie_secure off", &off, false},
		{"insecure_unverified_email", nil, true},
		{"insecure_unverified_email on", nil, true},
		{"insecure_unverified_email off", nil, false},
		// The bare form must not swallow the next line as its argument.
		{"insecure_unverified_email\ncookie_secure off", &off, true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			d := caddyfile.NewTestDispenser("gatehouse {\nissuer https://i\nclient_id app\n" + tt.line + "\n}")
			var h Handler
			if err := h.UnmarshalCaddyfile(d); err != nil {
				t.Fatal(err)
			}
			if (h.CookieSecure == nil) != (tt.cookieSecure == nil) || (h.CookieSecure != nil && *h.CookieSecure != *tt.cookieSecure) {
				t.Errorf("CookieSecure = %v, want %v", show(h.CookieSecure), show(tt.cookieSecure))
			}
			if h.InsecureUnverifiedEmail != tt.unverified {
				t.Errorf("InsecureUnverifiedEmail = %v, want %v", h.InsecureUnverifiedEmail, tt.unverified)
			}
			// The handler's fields reach the gateway's configuration.
			cfg, err := h.config()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.CookieSecure != h.CookieSecure || cfg.InsecureUnverifiedEmail != h.InsecureUnverifiedEmail {
				t.Errorf("gateway config CookieSecure %v, InsecureUnverifiedEmail %v; want %v, %v",
					show(cfg.CookieSecure), cfg.InsecureUnverifiedEmail, show(h.CookieSecure), h.InsecureUnverifiedEmail)
			}
		})
	}
}

func show(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}

// Issue 7, item 5: require_mfa and mfa_acr reach the gateway.
func TestUnmarshalMFA(t *testing.T) {
	tests := []struct {
		lines   string
		require bool
		acr     string
	}{
		{"", false, ""},
		{"require_mfa on", true, ""},
		{"require_mfa off", false, ""},
		{"require_mfa on\nmfa_acr mfa", true, "mfa"},
		{"mfa_acr urn:example:loa:2 mfa", false, "urn:example:loa:2 mfa"},
	}
	for _, tt := range tests {
		t.Run(tt.lines, func(t *testing.T) {
			d := caddyfile.NewTestDispenser("gatehouse {\nissuer https://i\nclient_id app\n" + tt.lines + "\n}")
			var h Handler
			if err := h.UnmarshalCaddyfile(d); err != nil {
				t.Fatal(err)
			}
			cfg, err := h.config()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RequireMFA != tt.require || cfg.MFAACR != tt.acr {
				t.Errorf("gateway config RequireMFA %v MFAACR %q, want %v %q", cfg.RequireMFA, cfg.MFAACR, tt.require, tt.acr)
			}
		})
	}
}

// Issue 7, item 4: refresh and pass_access_token reach the gateway.
func TestUnmarshalRefresh(t *testing.T) {
	tests := []struct {
		lines         string
		refresh, pass bool
	}{
		{"", false, false},
		{"refresh on", true, false},
		{"refresh off", false, false},
		{"refresh on\npass_access_token on", true, true},
		{"pass_access_token on\nrefresh on", true, true},
		{"refresh on\npass_access_token off", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.lines, func(t *testing.T) {
			d := caddyfile.NewTestDispenser("gatehouse {\nissuer https://i\nclient_id app\n" + tt.lines + "\n}")
			var h Handler
			if err := h.UnmarshalCaddyfile(d); err != nil {
				t.Fatal(err)
			}
			cfg, err := h.config()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Refresh != tt.refresh || cfg.PassAccessToken != tt.pass {
				t.Errorf("gateway config Refresh %v PassAccessToken %v, want %v %v", cfg.Refresh, cfg.PassAccessToken, tt.refresh, tt.pass)
			}
		})
	}
	// JSON config skips the Caddyfile's check; config() has its own.
	h := Handler{Issuer: "https://i", ClientID: "app", PassAccessToken: true}
	if _, err := h.config(); err == nil {
		t.Error("JSON pass_access_token without refresh accepted")
	}
}

// "cache_ttl 0" turns the cache off; JSON's 0 would be the default, so it
// adapts to a nanosecond, and an unset cache_ttl stays unset.
func TestCacheTTLZeroMeansNoCache(t *testing.T) {
	site := "app.example.com {\n\tgatehouse {\n\t\tissuer https://idp.example.com\n\t\tclient_id x\n\t}\n}\n"
	for _, tt := range []struct{ global, want string }{
		{"\t\tcache_ttl 0\n", `"cache_ttl":1`},
		{"\t\tcache_ttl 0s\n", `"cache_ttl":1`},
		{"\t\tcache_ttl 2s\n", `"cache_ttl":2000000000`},
		{"\t\tretention 30d\n", ""},
	} {
		out, err := adapt(t, "{\n\tgatehouse {\n"+tt.global+"\t}\n}\n"+site)
		if err != nil {
			t.Fatalf("%q: %v", tt.global, err)
		}
		if tt.want == "" {
			if strings.Contains(string(out), "cache_ttl") {
				t.Errorf("%q adapted to %s, want no cache_ttl", tt.global, out)
			}
		} else if !strings.Contains(string(out), tt.want) {
			t.Errorf("%q adapted to %s, want %s", tt.global, out, tt.want)
		}
	}
}
