// Package policy decides who may pass: network rules (IP ranges, countries)
// checked before sign-in is offered, and identity rules (groups, emails,
// email domains) checked at the callback. Every refusal carries a
// machine-readable reason, which becomes the reason of the activity event.
package policy

import (
	"fmt"
	"net/netip"
	"strings"
)

// Reasons for a refusal.
const (
	ReasonIP         = "ip_restricted"
	ReasonCountry    = "country_restricted"
	ReasonNotAllowed = "not_allowed_group"
)

// Decision is the outcome of a check.
type Decision struct {
	Allow  bool
	Reason string // empty when allowed
}

var allow = Decision{Allow: true}

// Network holds the IP and country rules of a site. Its zero value allows
// everything.
type Network struct {
	AllowIP      []netip.Prefix
	DenyIP       []netip.Prefix
	AllowCountry []string // upper-case ISO 3166-1 alpha-2
	DenyCountry  []string
}

// ParsePrefixes parses CIDRs; a bare address means that one address.
// IPv4-mapped IPv6 forms (::ffff:192.0.2.66, ::ffff:192.0.2.0/120) are
// turned into the IPv4 prefix they mean, because client addresses are
// unmapped before matching: kept as they are they would never match
// (issue 6, item 9). A mapped prefix shorter than /96 spans more than the
// IPv4 space and is refused.
func ParsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(s)
			if err == nil && a.Zone() != "" {
				err = fmt.Errorf("zones are not allowed")
			}
			if err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("invalid IP range %q: %w", s, err)
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("invalid IP range %q: an IPv4-mapped range must be /96 or longer", s)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Empty reports whether n has no rules at all.
func (n *Network) Empty() bool {
	return len(n.AllowIP) == 0 && len(n.DenyIP) == 0 && len(n.AllowCountry) == 0 && len(n.DenyCountry) == 0
}

// NeedsCountry reports whether a country lookup is needed to decide.
func (n *Network) NeedsCountry() bool {
	return len(n.AllowCountry) > 0 || len(n.DenyCountry) > 0
}

// Decide checks a client address and its country ("" when unknown). Deny
// rules win over allow rules; an address outside a non-empty allow list is
// refused, and so is an unknown country when an allow list of countries is
// set (fail closed).
func (n *Network) Decide(ip netip.Addr, country string) Decision {
	// Prefix.Contains is false for any address with a zone (fe80::1%eth0):
	// the zone says which link, not which address.
	ip = ip.Unmap().WithZone("")
	for _, p := range n.DenyIP {
		if p.Contains(ip) {
			return Decision{Reason: ReasonIP}
		}
	}
	if len(n.AllowIP) > 0 {
		ok := false
		for _, p := range n.AllowIP {
			if p.Contains(ip) {
				ok = true
				break
			}
		}
		if !ok {
			return Decision{Reason: ReasonIP}
		}
	}
	for _, c := range n.DenyCountry {
		if strings.EqualFold(c, country) {
			return Decision{Reason: ReasonCountry}
		}
	}
	if len(n.AllowCountry) > 0 {
		for _, c := range n.AllowCountry {
			if strings.EqualFold(c, country) {
				return allow
			}
		}
		return Decision{Reason: ReasonCountry}
	}
	return allow
}

// Layered decides under the app's rules (global: allow_ip, deny_ip of the
// global options) first and then under a site's own: a global deny wins
// over a site's allow, and an address outside a global allow list is
// refused whatever the site allows. The refusal's reason is the same
// whichever layer refused.
func Layered(global, site *Network, ip netip.Addr, country string) Decision {
	if d := global.Decide(ip, country); !d.Allow {
		return d
	}
	return site.Decide(ip, country)
}

// Ways to bind a session to its login address (bind_ip).
const (
	BindOff    = ""
	BindExact  = "exact"
	BindSubnet = "subnet"
)

// ParseBind reads a bind_ip value: off, exact or subnet.
func ParseBind(s string) (string, error) {
	switch s {
	case "off", "":
		return BindOff, nil
	case BindExact, BindSubnet:
		return s, nil
	}
	return "", fmt.Errorf("bind_ip: want off, exact or subnet, got %q", s)
}

// Bound reports whether a request from addr may use a session signed in
// from login under mode: always when mode is BindOff or the login address
// is unknown (nothing to compare with); otherwise the same address
// (exact) or the same /24 for IPv4, /64 for IPv6 (subnet), so that a
// privacy-extension IPv6 address or a carrier's NAT pool keeps working.
// IPv4-mapped IPv6 counts as IPv4. An unknown addr, or one of the other
// family, is not bound.
func Bound(mode string, login, addr netip.Addr) bool {
	if mode == BindOff || !login.IsValid() {
		return true
	}
	login, addr = login.Unmap().WithZone(""), addr.Unmap().WithZone("")
	if !addr.IsValid() || login.Is4() != addr.Is4() {
		return false
	}
	if mode != BindSubnet {
		return login == addr
	}
	bits := 64
	if login.Is4() {
		bits = 24
	}
	p, _ := login.Prefix(bits)
	return p.Contains(addr)
}

// Identity holds who may sign in to a site. Its zero value allows every
// authenticated user; when any list is set, a user must match at least one
// entry of any list.
type Identity struct {
	Groups  []string
	Emails  []string // compared case-insensitively
	Domains []string // email domains, case-insensitive, without "@"
}

// Decide checks a signed-in user.
func (id *Identity) Decide(email string, groups []string) Decision {
	if len(id.Groups) == 0 && len(id.Emails) == 0 && len(id.Domains) == 0 {
		return allow
	}
	if Member(groups, email, id.Groups, id.Emails) {
		return allow
	}
	if at := strings.LastIndexByte(email, '@'); at >= 0 {
		dom := email[at+1:]
		for _, d := range id.Domains {
			if asciiEqualFold(d, dom) {
				return allow
			}
		}
	}
	return Decision{Reason: ReasonNotAllowed}
}

// asciiEqualFold compares case-insensitively in ASCII only. Unicode case
// folding (strings.EqualFold) makes "ſam@example.com" (long s) or a
// Kelvin sign match an ASCII address: a provider that verifies the one
// would grant the rights of the other.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Member reports whether a user with these groups and email is in one of
// wantGroups (exact) or wantEmails (case-insensitive). It decides admin
// rights too.
func Member(groups []string, email string, wantGroups, wantEmails []string) bool {
	for _, w := range wantGroups {
		for _, g := range groups {
			if g == w {
				return true
			}
		}
	}
	if email != "" {
		for _, w := range wantEmails {
			if asciiEqualFold(w, email) {
				return true
			}
		}
	}
	return false
}
