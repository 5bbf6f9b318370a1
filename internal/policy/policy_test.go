package policy

import (
	"net/netip"
	"testing"
)

func mustPrefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	p, err := ParsePrefixes(ss)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNetworkDecide(t *testing.T) {
	n := Network{
		AllowIP:      mustPrefixes(t, "10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"),
		DenyIP:       mustPrefixes(t, "192.0.2.66"),
		AllowCountry: []string{"NL", "DE"},
		DenyCountry:  []string{"KP"},
	}
	tests := []struct {
		name    string
		ip      string
		country string
		want    Decision
	}{
		{"allowed range and country", "10.1.2.3", "NL", Decision{Allow: true}},
		{"country case-insensitive", "10.1.2.3", "de", Decision{Allow: true}},
		{"denied single address wins over allowed range", "192.0.2.66", "NL", Decision{Reason: ReasonIP}},
		{"outside allow list", "203.0.113.9", "NL", Decision{Reason: ReasonIP}},
		{"ipv4-mapped ipv6 is treated as ipv4", "::ffff:10.0.0.1", "NL", Decision{Allow: true}},
		{"ipv6 allowed", "2001:db8::5", "DE", Decision{Allow: true}},
		{"country not allowed", "10.0.0.1", "FR", Decision{Reason: ReasonCountry}},
		{"unknown country fails closed", "10.0.0.1", "", Decision{Reason: ReasonCountry}},
		{"denied country", "10.0.0.1", "KP", Decision{Reason: ReasonCountry}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := n.Decide(netip.MustParseAddr(tt.ip), tt.country); got != tt.want {
				t.Errorf("Decide(%s, %q) = %+v, want %+v", tt.ip, tt.country, got, tt.want)
			}
		})
	}
	var zero Network
	if got := zero.Decide(netip.MustParseAddr("198.51.100.1"), ""); !got.Allow {
		t.Errorf("zero Network refused: %+v", got)
	}
}

// Regression (issue 6, item 9): "deny_ip ::ffff:192.0.2.66" was accepted
// and never denied, because client addresses are unmapped before matching.
func TestParsePrefixesUnmapsIPv4Mapped(t *testing.T) {
	tests := []struct{ in, want string }{
		{"::ffff:192.0.2.66", "192.0.2.66/32"},
		{"::ffff:192.0.2.66/128", "192.0.2.66/32"},
		{"::ffff:192.0.2.0/120", "192.0.2.0/24"},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0"},
		{"192.0.2.7", "192.0.2.7/32"},
		{"2001:db8::/32", "2001:db8::/32"},
	}
	for _, tt := range tests {
		got, err := ParsePrefixes([]string{tt.in})
		if err != nil || len(got) != 1 || got[0].String() != tt.want {
			t.Errorf("ParsePrefixes(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	n := Network{DenyIP: mustPrefixes(t, "::ffff:192.0.2.66")}
	for _, ip := range []string{"192.0.2.66", "::ffff:192.0.2.66"} {
		if d := n.Decide(netip.MustParseAddr(ip), ""); d.Allow {
			t.Errorf("deny_ip ::ffff:192.0.2.66 let %s through", ip)
		}
	}
}

func TestParsePrefixesErrors(t *testing.T) {
	for _, s := range []string{"10.0.0.0/33", "not-an-ip", "10.0.0/8", "", "::ffff:0:0/95", "fe80::1%eth0"} {
		if _, err := ParsePrefixes([]string{s}); err == nil {
			t.Errorf("ParsePrefixes(%q) succeeded, want error", s)
		}
	}
}

func TestIdentityDecide(t *testing.T) {
	id := Identity{Groups: []string{"staff"}, Emails: []string{"ops@example.com"}, Domains: []string{"example.org"}}
	tests := []struct {
		email  string
		groups []string
		want   bool
	}{
		{"bob@x.test", []string{"staff"}, true},
		{"OPS@example.com", nil, true},
		{"carol@EXAMPLE.org", nil, true},
		{"carol@example.org.evil.test", nil, false},
		{"mallory@x.test", []string{"Staff"}, false},
		{"", nil, false},
	}
	for _, tt := range tests {
		got := id.Decide(tt.email, tt.groups)
		if got.Allow != tt.want || (!got.Allow && got.Reason != ReasonNotAllowed) {
			t.Errorf("Decide(%q, %v) = %+v, want allow=%v", tt.email, tt.groups, got, tt.want)
		}
	}
	var open Identity
	if !open.Decide("", nil).Allow {
		t.Error("empty Identity policy refused a user")
	}
}
