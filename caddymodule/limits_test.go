package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/gatehouse-proxy/gatehouse/internal/policy"
)

// The keys of issue 7, items 1-3 (global allow_ip / deny_ip, max_sessions,
// bind_ip) are checked at adapt time, naming the line.
func TestAdaptLimitsErrors(t *testing.T) {
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
		{"global bad CIDR", global("\t\tallow_ip 10.0.0.0/33\n"), `allow_ip: invalid IP range "10.0.0.0/33"`, 3},
		{"global bad address", global("\t\tdeny_ip example.com\n"), `deny_ip: invalid IP range "example.com"`, 3},
		{"global mapped range too wide", global("\t\tdeny_ip ::ffff:0:0/95\n"), "IPv4-mapped range must be /96 or longer", 3},
		{"global empty allow_ip", global("\t\tallow_ip\n"), "wrong argument count", 3},
		{"global duplicate deny_ip", global("\t\tdeny_ip 10.0.0.1\n\t\tdeny_ip 10.0.0.2\n"), `duplicate subdirective "deny_ip"`, 4},
		{"max_sessions negative", site("\t\tmax_sessions -1\n"), `max_sessions: want a whole number of sessions (0 for no limit), got "-1"`, 5},
		{"max_sessions not a number", site("\t\tmax_sessions three\n"), `max_sessions: want a whole number of sessions (0 for no limit), got "three"`, 5},
		{"max_sessions bare", site("\t\tmax_sessions\n"), "wrong argument count", 5},
		{"max_sessions two args", site("\t\tmax_sessions 1 2\n"), "wrong argument count", 5},
		{"duplicate max_sessions", site("\t\tmax_sessions 1\n\t\tmax_sessions 2\n"), `duplicate subdirective "max_sessions"`, 6},
		{"bind_ip unknown", site("\t\tbind_ip on\n"), `bind_ip: want off, exact or subnet, got "on"`, 5},
		{"bind_ip a prefix length", site("\t\tbind_ip /24\n"), `bind_ip: want off, exact or subnet, got "/24"`, 5},
		{"bind_ip bare", site("\t\tbind_ip\n"), "wrong argument count", 5},
		{"duplicate bind_ip", site("\t\tbind_ip exact\n\t\tbind_ip off\n"), `duplicate subdirective "bind_ip"`, 6},
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

// max_sessions and bind_ip reach the gateway's configuration, and JSON
// written by hand is checked as the Caddyfile is.
func TestHandlerLimitsConfig(t *testing.T) {
	tests := []struct {
		json    string
		max     int
		bind    string
		wantErr string
	}{
		{`{}`, 0, policy.BindOff, ""},
		{`{"max_sessions":3,"bind_ip":"subnet"}`, 3, policy.BindSubnet, ""},
		{`{"bind_ip":"exact"}`, 0, policy.BindExact, ""},
		{`{"bind_ip":"off"}`, 0, policy.BindOff, ""},
		{`{"bind_ip":"EXACT"}`, 0, "", "bind_ip: want off, exact or subnet"},
		{`{"max_sessions":-2}`, 0, "", "max_sessions must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.json, func(t *testing.T) {
			h := Handler{Issuer: "https://idp.example.com", ClientID: "app"}
			if err := json.Unmarshal([]byte(tt.json), &h); err != nil {
				t.Fatal(err)
			}
			cfg, err := h.config()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("config() error = %v, want %q", err, tt.wantErr)
				}
				if h.Validate() == nil {
					t.Fatal("Validate accepted what config refuses")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MaxSessions != tt.max || cfg.BindIP != tt.bind {
				t.Errorf("config() MaxSessions %d BindIP %q, want %d %q", cfg.MaxSessions, cfg.BindIP, tt.max, tt.bind)
			}
		})
	}
	d := caddyfile.NewTestDispenser("gatehouse {\nissuer https://i\nclient_id app\nmax_sessions 2\nbind_ip subnet\n}")
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if h.MaxSessions != 2 || h.BindIP != "subnet" {
		t.Errorf("Caddyfile max_sessions 2, bind_ip subnet = %d, %q", h.MaxSessions, h.BindIP)
	}
}

// The app's allow_ip / deny_ip become the runtime's network rules, with
// IPv4-mapped forms unmapped as a site's are.
func TestAppNetwork(t *testing.T) {
	a := App{AllowIP: []string{"10.0.0.0/8", "2001:db8::/32"}, DenyIP: []string{"::ffff:10.6.6.6"}}
	n, err := a.network()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(n.AllowIP, n.DenyIP); got != "[10.0.0.0/8 2001:db8::/32] [10.6.6.6/32]" {
		t.Errorf("network() = %s", got)
	}
	if d := n.Decide(netip.MustParseAddr("10.6.6.6"), ""); d.Allow {
		t.Error("global deny_ip ::ffff:10.6.6.6 let 10.6.6.6 through")
	}
	for _, bad := range []App{{AllowIP: []string{"10.0.0.0/33"}}, {DenyIP: []string{"nope"}}} {
		if _, err := bad.network(); err == nil {
			t.Errorf("network() of %+v succeeded, want an error", bad)
		}
	}
}
