package policy

import (
	"net/netip"
	"testing"
)

// Review (issue 7, item 1): netip.Prefix.Contains is false for any
// address with an IPv6 zone, so a client on a link-local address
// (RemoteAddr "[fe80::1%eth0]:p", which the gateway's default ClientIP
// and Decide keep zoned) escapes a deny_ip that covers it, globally and
// per site. Bound strips the zone; Decide must too.
func TestReview7DenyIPMatchesZonedAddress(t *testing.T) {
	deny := &Network{DenyIP: []netip.Prefix{netip.MustParsePrefix("fe80::/10")}}
	allow := &Network{AllowIP: []netip.Prefix{netip.MustParsePrefix("fe80::/10")}}
	ip := netip.MustParseAddr("fe80::1%eth0")
	tests := []struct {
		name        string
		global, own *Network
		want        bool
	}{
		{"site deny", &Network{}, deny, false},
		{"global deny", deny, &Network{}, false},
		{"site allow", &Network{}, allow, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Layered(tt.global, tt.own, ip, "").Allow; got != tt.want {
				t.Errorf("Layered(%s) allow = %v, want %v", ip, got, tt.want)
			}
		})
	}
}
