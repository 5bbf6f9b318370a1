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

// TestLayered covers issue 7, item 1: the app's allow_ip / deny_ip apply
// on every site before its own rules.
func TestLayered(t *testing.T) {
	nets := func(allow, deny []string) Network {
		return Network{AllowIP: mustPrefixes(t, allow...), DenyIP: mustPrefixes(t, deny...)}
	}
	none := []string(nil)
	tests := []struct {
		name         string
		global, site Network
		ip           string
		want         bool
	}{
		{"no rules anywhere", Network{}, Network{}, "198.51.100.1", true},
		{"empty lists allow ipv6 too", nets(none, none), nets(none, none), "2001:db8::1", true},
		{"global deny wins over site allow", nets(none, []string{"10.0.0.0/8"}), nets([]string{"10.0.0.0/8"}, none), "10.1.1.1", false},
		{"global allow refuses outside it even if the site allows", nets([]string{"10.0.0.0/8"}, none), nets([]string{"192.0.2.0/24"}, none), "192.0.2.1", false},
		{"global allow and site allow both pass", nets([]string{"10.0.0.0/8"}, none), nets([]string{"10.1.0.0/16"}, none), "10.1.2.3", true},
		{"global allow passes, site refuses", nets([]string{"10.0.0.0/8"}, none), nets([]string{"10.1.0.0/16"}, none), "10.2.0.1", false},
		{"site deny still applies after a global allow", nets([]string{"10.0.0.0/8"}, none), nets(none, []string{"10.0.0.7"}), "10.0.0.7", false},
		{"global deny over global allow", nets([]string{"10.0.0.0/8"}, []string{"10.9.0.0/16"}), Network{}, "10.9.1.1", false},
		{"global deny of one address spares its neighbour", nets(none, []string{"192.0.2.66"}), Network{}, "192.0.2.67", true},
		{"ipv4-mapped client meets a global ipv4 deny", nets(none, []string{"192.0.2.0/24"}), Network{}, "::ffff:192.0.2.9", false},
		{"ipv4-mapped rule meets an ipv4 client", nets(none, []string{"::ffff:192.0.2.0/120"}), Network{}, "192.0.2.9", false},
		{"global allow 0.0.0.0/0 admits every ipv4", nets([]string{"0.0.0.0/0"}, none), Network{}, "203.0.113.200", true},
		{"global allow 0.0.0.0/0 refuses ipv6", nets([]string{"0.0.0.0/0"}, none), Network{}, "2001:db8::1", false},
		{"global deny ::/0 refuses ipv6 only", nets(none, []string{"::/0"}), Network{}, "2001:db8::1", false},
		{"global deny ::/0 spares ipv4", nets(none, []string{"::/0"}), Network{}, "192.0.2.1", true},
		{"global deny ::/0 spares ipv4-mapped", nets(none, []string{"::/0"}), Network{}, "::ffff:192.0.2.1", true},
		{"global deny 0.0.0.0/0 beats a site allow", nets(none, []string{"0.0.0.0/0"}), nets([]string{"192.0.2.0/24"}, none), "192.0.2.1", false},
		{"unknown address is refused by an allow list", nets([]string{"0.0.0.0/0", "::/0"}, none), Network{}, "", false},
		{"unknown address passes deny lists only", nets(none, []string{"0.0.0.0/0"}), Network{}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			got := Layered(&tt.global, &tt.site, ip, "")
			want := Decision{Allow: true}
			if !tt.want {
				want = Decision{Reason: ReasonIP}
			}
			if got != want {
				t.Errorf("Layered(%s) = %+v, want %+v", tt.ip, got, want)
			}
		})
	}
	// The site's country rules still apply behind global IP rules.
	global := Network{AllowIP: mustPrefixes(t, "10.0.0.0/8")}
	site := Network{DenyCountry: []string{"KP"}}
	if got := Layered(&global, &site, netip.MustParseAddr("10.0.0.1"), "KP"); got.Reason != ReasonCountry {
		t.Errorf("Layered with a site country rule = %+v, want %s", got, ReasonCountry)
	}
}

// TestBound covers issue 7, item 3 (bind_ip).
func TestBound(t *testing.T) {
	tests := []struct {
		mode, login, addr string
		want              bool
	}{
		{BindOff, "192.0.2.1", "198.51.100.1", true},
		{BindExact, "192.0.2.1", "192.0.2.1", true},
		{BindExact, "192.0.2.1", "192.0.2.2", false},
		{BindExact, "192.0.2.1", "::ffff:192.0.2.1", true},
		{BindExact, "::ffff:192.0.2.1", "192.0.2.1", true},
		{BindExact, "2001:db8::1", "2001:db8::1", true},
		{BindExact, "2001:db8::1", "2001:db8::2", false},
		{BindSubnet, "192.0.2.1", "192.0.2.254", true},
		{BindSubnet, "192.0.2.1", "192.0.3.1", false},
		{BindSubnet, "192.0.2.1", "::ffff:192.0.2.77", true},
		{BindSubnet, "127.0.0.1", "127.0.0.2", true},
		{BindExact, "127.0.0.1", "127.0.0.2", false},
		{BindSubnet, "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{BindSubnet, "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		// Families differ: an IPv4 /24 is no IPv6 /64.
		{BindSubnet, "192.0.2.1", "::c000:201", false},
		{BindSubnet, "2001:db8::1", "192.0.2.1", false},
		// Zones do not make an address another one.
		{BindExact, "fe80::1", "fe80::1%eth0", true},
		// A login address unknown: nothing to bind to.
		{BindExact, "", "192.0.2.1", true},
		// A request address unknown: not from the login address.
		{BindExact, "192.0.2.1", "", false},
		{BindSubnet, "192.0.2.1", "", false},
		// An unknown mode is as strict as exact.
		{"bogus", "192.0.2.1", "192.0.2.2", false},
	}
	parse := func(s string) netip.Addr {
		if s == "" {
			return netip.Addr{}
		}
		return netip.MustParseAddr(s)
	}
	for _, tt := range tests {
		if got := Bound(tt.mode, parse(tt.login), parse(tt.addr)); got != tt.want {
			t.Errorf("Bound(%q, %s, %s) = %v, want %v", tt.mode, tt.login, tt.addr, got, tt.want)
		}
	}
}

func TestParseBind(t *testing.T) {
	for in, want := range map[string]string{"off": BindOff, "": BindOff, "exact": BindExact, "subnet": BindSubnet} {
		if got, err := ParseBind(in); err != nil || got != want {
			t.Errorf("ParseBind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"on", "Exact", "/24", "subnet/24"} {
		if _, err := ParseBind(in); err == nil {
			t.Errorf("ParseBind(%q) succeeded, want error", in)
		}
	}
}
