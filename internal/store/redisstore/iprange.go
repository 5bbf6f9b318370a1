package redisstore

import (
	"net/netip"
	"strconv"
	"strings"
)

// The IP index (see doc.go, "Filters") scores a session by its address's
// key: an IPv4 address's 32-bit number, or 2^32 plus an IPv6 address's
// first 40 bits (the scripts' ipkey). A filter on the start of the
// address as text (Query.IPPrefix: "10.1.", "2001:db8:") becomes ranges
// of keys that hold every address with that start, and some more, which
// the exact check then drops.

// ipKeyRange is an inclusive range of IP index keys.
type ipKeyRange struct{ lo, hi int64 }

const ipv6Base = int64(1) << 32

// ipKey is the scripts' ipkey in Go, for addresses as netip prints them.
func ipKey(ip string) (int64, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return 0, false
	}
	if a.Is4() {
		b := a.As4()
		return int64(b[0])<<24 | int64(b[1])<<16 | int64(b[2])<<8 | int64(b[3]), true
	}
	b := a.As16()
	return ipv6Base + (int64(b[0])<<32 | int64(b[1])<<24 | int64(b[2])<<16 | int64(b[3])<<8 | int64(b[4])), true
}

// ipRanges returns key ranges that cover every address whose text starts
// with prefix, nil when none can (or for an empty prefix, which the
// caller does not ask).
func ipRanges(prefix string) []ipKeyRange {
	if prefix == "" {
		return nil
	}
	var out []ipKeyRange
	if !strings.ContainsAny(prefix, ":abcdefABCDEF") {
		out = append(out, ipv4Ranges(prefix)...)
	}
	if !strings.Contains(prefix, ".") || strings.Contains(prefix, ":") {
		out = append(out, ipv6Ranges(prefix)...)
	}
	return out
}

// startsWith returns the ranges of numbers up to max whose text in base
// (10 or 16, lower case, no leading zeros) starts with q; all of them for
// an empty q.
func startsWith(q string, base int, max int64) [][2]int64 {
	if q == "" {
		return [][2]int64{{0, max}}
	}
	v, err := strconv.ParseInt(q, base, 64)
	if err != nil || len(q) > 1 && q[0] == '0' || v > max {
		return nil
	}
	if v == 0 {
		// "0" starts only 0: no number but 0 begins with a zero.
		return [][2]int64{{0, 0}}
	}
	out := [][2]int64{{v, v}}
	for w := int64(base); v*w <= max; w *= int64(base) {
		out = append(out, [2]int64{v * w, min(v*w+w-1, max)})
	}
	return out
}

func ipv4Ranges(p string) []ipKeyRange {
	parts := strings.Split(p, ".")
	if len(parts) > 4 {
		return nil
	}
	var base int64
	for i, o := range parts[:len(parts)-1] {
		r := startsWith(o, 10, 255)
		// A complete octet must be exactly one number.
		if len(r) == 0 || o == "" || strconv.Itoa(int(r[0][0])) != o {
			return nil
		}
		base |= r[0][0] << (24 - 8*i)
	}
	k := len(parts) - 1 // the partial octet's position
	if k == 4 {
		return nil // a complete address and a dot
	}
	shift := 24 - 8*k
	var out []ipKeyRange
	for _, r := range startsWith(parts[k], 10, 255) {
		out = append(out, ipKeyRange{base | r[0]<<shift, base | r[1]<<shift | (1<<shift - 1)})
	}
	return out
}

func ipv6Ranges(p string) []ipKeyRange {
	p = strings.ToLower(p)
	// After "::" the groups' positions are unknown: cover every address
	// with the groups before it.
	if i := strings.Index(p, "::"); i >= 0 {
		p = p[:i+1]
	}
	if strings.HasPrefix(p, ":") {
		// "::" first: any address whose first groups are zero, and
		// more; cover them all.
		return []ipKeyRange{{ipv6Base, ipv6Base + 1<<40 - 1}}
	}
	parts := strings.Split(p, ":")
	if len(parts) > 8 {
		return nil
	}
	var groups []int64
	for _, g := range parts[:len(parts)-1] {
		r := startsWith(g, 16, 0xffff)
		if len(r) == 0 || g == "" || strconv.FormatInt(r[0][0], 16) != g {
			return nil
		}
		groups = append(groups, r[0][0])
	}
	last := parts[len(parts)-1]
	if strings.Contains(last, ".") {
		// An IPv4 tail: the key's groups are known already or not at all.
		last = ""
	}
	// The key holds groups 1, 2 and the top byte of 3.
	key := func(g []int64) int64 {
		var g3 [3]int64
		copy(g3[:], g)
		return ipv6Base + g3[0]<<24 | g3[1]<<8 | g3[2]>>8
	}
	if len(groups) >= 3 {
		k := key(groups)
		return []ipKeyRange{{k, k}}
	}
	var out []ipKeyRange
	for _, r := range startsWith(last, 16, 0xffff) {
		lo := append(append([]int64{}, groups...), r[0])
		hi := append(append([]int64{}, groups...), r[1])
		for len(lo) < 3 {
			lo, hi = append(lo, 0), append(hi, 0xffff)
		}
		out = append(out, ipKeyRange{key(lo), key(hi)})
	}
	return out
}
