package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/gatehouse-proxy/gatehouse/internal/gateway"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
)

// fuzzDispenser tokenizes src as NewTestDispenser does, without its
// log.Fatalf on text the lexer refuses (an unterminated quote or heredoc):
// Caddy reports that before any directive sees a token.
func fuzzDispenser(src string) (*caddyfile.Dispenser, bool) {
	tokens, err := caddyfile.Tokenize([]byte(src), "Testfile")
	if err != nil {
		return nil, false
	}
	return caddyfile.NewDispenser(tokens), true
}

// errorHasLine checks that a Caddyfile error names its place, as the
// adapter's errors must: a mistake is to be found by its line.
func errorHasLine(t *testing.T, what, src string, err error) {
	t.Helper()
	if msg := err.Error(); !strings.Contains(msg, "Testfile:") {
		t.Fatalf("%s(%q): error %q names no line", what, src, msg)
	}
}

// FuzzUnmarshalCaddyfile parses a fuzzed gatehouse handler directive.
// Refusals must be errors naming a line, never panics. Parsing is
// deterministic, and what it accepts must stay accepted: Validate passes
// (UnmarshalCaddyfile promises to check every value itself, so that
// nothing is left for a line-less error at load; only a placeholder that
// expands to nothing is left to Validate), on the handler and on its JSON
// (which is what Caddy loads), and the gateway can be built from it.
// Validate gives the same answer twice.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, s := range []string{
		"{\n\tissuer https://idp.example.com\n\tclient_id app\n}",
		"{\nissuer https://i\nclient_id app\nclient_secret {env.SECRET}\nscopes openid email\npath_prefix /auth\n" +
			"idle_timeout 0\nmax_lifetime 12h\nallow_ip 10.0.0.0/8 192.0.2.1\ndeny_ip ::1\nallow_country nl de\n" +
			"deny_country RU\nmax_sessions 3\nbind_ip subnet\nallow_groups staff\nallow_emails a@example.com\n" +
			"allow_domains example.com\nrequire_mfa on\nmfa_acr gold silver\nadmin_groups admins\nadmin_emails b@example.com\n" +
			"auditor_groups audit\nauditor_emails c@example.com\ngroups_claim roles\ncookie_name gh\n" +
			"cookie_domain example.com\ncookie_secure off\ninsecure_unverified_email\njwt_header X-Gatehouse-Assertion\n" +
			"refresh on\npass_access_token on\n}",
		"{\nissuer https://i\nclient_id app\npass_access_token on\n}",
		"{\nissuer https://i\nclient_id app\ninsecure_unverified_email off\ncookie_secure on\n}",
		"{\nissuer https://i\nclient_id app\nidle_timeout -1s\n}",
		"{\nissuer https://i\nclient_id app\nmax_lifetime 90d\npath_prefix /a/\n}",
		"{\nissuer https://i\nclient_id app\ncookie_name \"a b\"\n}",
		"{\nissuer https://i\nclient_id app\njwt_header Cookie\n}",
		"{\nissuer https://i\nclient_id app\nissuer https://j\n}",
		"{\nissuer https://i\n}",
		"arg {\n}",
		"{\nissuer `https://i`\nclient_id <<EOF\n\tapp\n\tEOF\n}",
	} {
		f.Add(s)
	}
	st := memstore.New(memstore.Options{})
	f.Fuzz(func(t *testing.T, block string) {
		src := "gatehouse " + block
		parse := func() (*Handler, error) {
			d, ok := fuzzDispenser(src)
			if !ok {
				return nil, nil
			}
			h := new(Handler)
			return h, h.UnmarshalCaddyfile(d)
		}
		h, err := parse()
		if h == nil {
			return
		}
		again, err2 := parse()
		j1, _ := json.Marshal(h)
		j2, _ := json.Marshal(again)
		if string(j1) != string(j2) || (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("UnmarshalCaddyfile(%q) twice: %s, %v and %s, %v", src, j1, err, j2, err2)
		}
		if err != nil {
			errorHasLine(t, "UnmarshalCaddyfile", src, err)
			return
		}
		v1, v2 := h.Validate(), h.Validate()
		if (v1 == nil) != (v2 == nil) {
			t.Fatalf("Validate of %s: %v, then %v", j1, v1, v2)
		}
		if v1 != nil {
			// Placeholders are expanded at load, not at adapt time:
			// one that expands to nothing is Validate's to refuse.
			if strings.Contains(h.Issuer+h.ClientID, "{") && strings.Contains(v1.Error(), "once its placeholders are expanded") {
				return
			}
			t.Fatalf("UnmarshalCaddyfile(%q) accepted %s, which Validate refuses: %v", src, j1, v1)
		}
		var loaded Handler
		if err := json.Unmarshal(j1, &loaded); err != nil {
			t.Fatalf("handler JSON %s does not load: %v", j1, err)
		}
		if j3, _ := json.Marshal(&loaded); string(j3) != string(j1) {
			t.Fatalf("handler JSON %s loads as %s", j1, j3)
		}
		if err := loaded.Validate(); err != nil {
			t.Fatalf("handler JSON %s of %q: Validate: %v", j1, src, err)
		}
		cfg, err := loaded.config()
		if err != nil {
			t.Fatalf("handler JSON %s: config: %v", j1, err)
		}
		rt, err := gateway.NewRuntime(gateway.RuntimeConfig{Store: st, Events: st, Secret: []byte(strings.Repeat("s", 32))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gateway.New(cfg, rt); err != nil {
			t.Fatalf("UnmarshalCaddyfile(%q) accepted %s, which the gateway refuses: %v", src, j1, err)
		}
	})
}

// FuzzParseGlobal parses a fuzzed gatehouse global options block. As for
// the handler: errors name a line, parsing is deterministic, and what is
// accepted loads as the app's JSON and passes the checks the app's
// Provision makes before it opens anything (durations, secret and store,
// IP rules, alerts, time zone).
func FuzzParseGlobal(f *testing.F) {
	for _, s := range []string{
		"{\n\tstore memory\n}",
		"{\nstore redis://localhost:6379/0\nsecret 0123456789abcdef0123456789abcdef\ngeoip /var/lib/GeoIP/City.mmdb\n" +
			"cache_ttl 5s\ntouch_interval 30s\nretention 90d\ntimezone Europe/Amsterdam\nmax_events 1000\n" +
			"allow_ip 10.0.0.0/8\ndeny_ip 10.1.0.0/16\nalert_webhook https://hooks.example.com/x\nalert_on login_failed\n" +
			"alerts {\nnew_country off\nnew_device on\nimpossible_travel 900\nshared_ip 5 1h\nfailure_burst 10 5m\n}\n}",
		"{\nstore {env.GATEHOUSE_STORE}\nsecret {env.GATEHOUSE_SECRET}\n}",
		"{\nstore redis-sentinel://mymaster@a:26379,b:26379/0\nsecret {env.S}\n}",
		"{\nstore rediss://u:p@h:6380\n}",
		"{\nalert_on login_failed\n}",
		"{\ntimezone Local\n}",
		"{\nalerts {\nshared_ip 0 1h\n}\n}",
		"{\nmax_events -1\n}",
		"{\nsecret short\n}",
		"{\ncache_ttl 5\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, block string) {
		src := "gatehouse " + block
		parse := func() (any, error, bool) {
			d, ok := fuzzDispenser(src)
			if !ok {
				return nil, nil, false
			}
			v, err := parseGlobal(d, nil)
			return v, err, true
		}
		v, err, ok := parse()
		if !ok {
			return
		}
		v2, err2, _ := parse()
		j1, _ := json.Marshal(v)
		j2, _ := json.Marshal(v2)
		if string(j1) != string(j2) || (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("parseGlobal(%q) twice: %s, %v and %s, %v", src, j1, err, j2, err2)
		}
		if err != nil {
			errorHasLine(t, "parseGlobal", src, err)
			return
		}
		app, ok := v.(httpcaddyfile.App)
		if !ok || app.Name != "gatehouse" {
			t.Fatalf("parseGlobal(%q) = %#v, want the gatehouse app", src, v)
		}
		var a App
		if err := json.Unmarshal(app.Value, &a); err != nil {
			t.Fatalf("app JSON %s does not load: %v", app.Value, err)
		}
		// What Provision checks before opening the store. A value with
		// a placeholder is checked only once expanded, at Provision:
		// here it stands for a valid one.
		placeholder := func(v, valid string) string {
			if strings.Contains(v, "{") {
				return valid
			}
			return v
		}
		repl := caddy.NewReplacer()
		storeURL := placeholder(a.Store, "memory")
		secret := placeholder(a.Secret, strings.Repeat("s", 32))
		a.AlertWebhook = placeholder(a.AlertWebhook, "https://hooks.example.com/")
		if err := a.validate(storeURL, secret); err != nil {
			t.Fatalf("parseGlobal(%q) accepted %s, which Provision refuses: %v", src, app.Value, err)
		}
		if _, err := a.network(); err != nil {
			t.Fatalf("parseGlobal(%q) accepted %s, which Provision refuses: %v", src, app.Value, err)
		}
		if _, _, err := a.alertConfig(repl); err != nil {
			t.Fatalf("parseGlobal(%q) accepted %s, which Provision refuses: %v", src, app.Value, err)
		}
		if _, err := loadZone(a.Timezone); err != nil {
			t.Fatalf("parseGlobal(%q) accepted %s, which Provision refuses: %v", src, app.Value, err)
		}
	})
}
