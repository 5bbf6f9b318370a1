package redisstore

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

func randomAddr(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		var b [4]byte
		for i := range b {
			// Small numbers often: short texts, leading digits shared.
			if r.IntN(3) == 0 {
				b[i] = byte(r.IntN(20))
			} else {
				b[i] = byte(r.IntN(256))
			}
		}
		return netip.AddrFrom4(b).String()
	}
	var b [16]byte
	for i := range b {
		if r.IntN(3) > 0 {
			b[i] = byte(r.IntN(256))
		}
	}
	if r.IntN(4) == 0 {
		copy(b[:4], []byte{0x20, 0x01, 0x0d, 0xb8})
	}
	return netip.AddrFrom16(b).String()
}

// Every address whose text starts with a prefix has a key in the
// prefix's ranges: for each prefix of many random addresses.
func TestIPRangesCoverPrefixes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var addrs []string
	for range 3000 {
		addrs = append(addrs, randomAddr(r))
	}
	addrs = append(addrs, "0.0.0.0", "255.255.255.255", "10.0.0.1", "::", "::1", "::ffff:1.2.3.4", "2001:db8::", "fe80::1")
	for _, a := range addrs[:300] {
		for n := 1; n <= len(a); n++ {
			prefix := a[:n]
			ranges := ipRanges(prefix)
			for _, b := range addrs {
				if !strings.HasPrefix(b, prefix) {
					continue
				}
				k, ok := ipKey(b)
				if !ok {
					t.Fatalf("no key for %q", b)
				}
				in := false
				for _, rg := range ranges {
					in = in || rg.lo <= k && k <= rg.hi
				}
				if !in {
					t.Fatalf("prefix %q: %s (key %d) in none of %v", prefix, b, k, ranges)
				}
			}
		}
	}
	for _, p := range []string{"x", "1.2.3.4.", "256.", "01.", "gggg:"} {
		if r := ipRanges(p); len(r) != 0 {
			t.Errorf("ipRanges(%q) = %v, want none", p, r)
		}
	}
}

// The scripts' ipkey agrees with ipKey.
func TestIPKeyInLua(t *testing.T) {
	s := newStore(t, testredis.Start(t), nil)
	r := rand.New(rand.NewPCG(3, 4))
	addrs := []string{"0.0.0.0", "1.2.3.4", "255.255.255.255", "::", "::1", "::ffff:1.2.3.4", "2001:db8::1", "2001:db8:1:2:3:4:5:6", "fe80::"}
	for range 500 {
		addrs = append(addrs, randomAddr(r))
	}
	for _, a := range addrs {
		want, _ := ipKey(a)
		got, err := s.c.Eval(t.Context(), luaLib+`return ipscore(ARGV[1], 0)`, nil, a).Text()
		if err != nil {
			t.Fatalf("ipscore(%q): %v", a, err)
		}
		if got != fmt.Sprint(want*4096) {
			t.Fatalf("ipscore(%q) = %s, want %d", a, got, want*4096)
		}
	}
}
