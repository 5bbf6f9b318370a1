package gateway

import (
	"strings"
	"testing"
)

// stripCookieLineJoin is the plain way to strip a cookie from a Cookie
// line (split, trim, drop, join), which stripCookieLine must match byte
// for byte while allocating less.
func stripCookieLineJoin(line, name string) string {
	var kept []string
	for part := range strings.SplitSeq(line, ";") {
		p := strings.TrimSpace(part)
		if p == "" || (strings.HasPrefix(p, name) && len(p) > len(name) && p[len(name)] == '=') {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "; ")
}

var stripCookieLines = []string{
	"gatehouse=s", "a=1; gatehouse=s", "gatehouse=s; a=1", "a=1; gatehouse=s; b=2",
	"a=1;gatehouse=s;b=2", " a=1 ;  gatehouse=s ; b=2 ", "a=1; b=2; gatehouse=s", "gatehouse=s; a=1; b=2",
	"a=1;; b=2; gatehouse=s", "a=1;  b=2; gatehouse=s", "gatehouse=s; gatehouse=t; a=1", "a=1; gatehouse=s; gatehouse=t",
	";;;", "; gatehouse=s;", "gatehouse2=x; gatehouse=s", "x=gatehouse=1; gatehouse=s", "a=1\t; gatehouse=s",
	"\u00a0a=1; gatehouse=s; b=2\u00a0", "gatehouse", "gatehouse=", "a=1; gatehouse; b=2",
}

func TestStripCookieLineMatchesJoin(t *testing.T) {
	for _, line := range stripCookieLines {
		if got, want := stripCookieLine(line, "gatehouse"), stripCookieLineJoin(line, "gatehouse"); got != want {
			t.Errorf("stripCookieLine(%q) = %q, want %q", line, got, want)
		}
	}
}

// The session cookie first or last, the rest as browsers spell it: no
// allocation.
func TestStripCookieLineAllocations(t *testing.T) {
	for _, line := range []string{"gatehouse=s; _ga=1; theme=dark", "_ga=1; theme=dark; gatehouse=s", "gatehouse=s"} {
		if n := testing.AllocsPerRun(100, func() { _ = stripCookieLine(line, "gatehouse") }); n != 0 {
			t.Errorf("stripCookieLine(%q): %v allocations, want 0", line, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = stripCookieLine("_ga=1; gatehouse=s; theme=dark", "gatehouse") }); n != 1 {
		t.Errorf("cookie in the middle: %v allocations, want 1", n)
	}
}

func FuzzStripCookieLine(f *testing.F) {
	for _, line := range stripCookieLines {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if got, want := stripCookieLine(line, "gatehouse"), stripCookieLineJoin(line, "gatehouse"); got != want {
			t.Errorf("stripCookieLine(%q) = %q, want %q", line, got, want)
		}
	})
}
