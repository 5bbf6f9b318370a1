package geo

import (
	"sort"
	"strings"
	"testing"
)

func TestValidCountry(t *testing.T) {
	tests := []struct {
		code string
		want bool
	}{
		{"NL", true},
		{"DE", true},
		{"KP", true},
		{"GB", true},
		{"US", true},
		{"AX", true}, // Åland: the first code of the list
		{"ZW", true}, // the last
		{"XK", true}, // Kosovo, user-assigned but widely used
		{"nl", true},
		{"De", true},
		{"UK", false}, // exceptionally reserved, not assigned; GB is the code
		{"EU", false},
		{"ZZ", false},
		{"AA", false},
		{"", false},
		{"N", false},
		{"NLD", false}, // alpha-3
		{"N1", false},
		{"1N", false},
		{"@@", false},
		{"[[", false},
		{"N\x00", false},
		{"\xc3\x96", false},
	}
	for _, tt := range tests {
		if got := ValidCountry(tt.code); got != tt.want {
			t.Errorf("ValidCountry(%q) = %v, want %v", tt.code, got, tt.want)
		}
	}
}

func TestCountryCodesList(t *testing.T) {
	codes := strings.Fields(countryCodes)
	// 249 officially assigned codes plus XK.
	if len(codes) != 250 {
		t.Errorf("len(countryCodes) = %d, want 250", len(codes))
	}
	if !sort.StringsAreSorted(codes) {
		t.Error("countryCodes not sorted")
	}
	for i, c := range codes {
		if len(c) != 2 || strings.ToUpper(c) != c {
			t.Errorf("code %q malformed", c)
		}
		if i > 0 && codes[i-1] == c {
			t.Errorf("code %q repeated", c)
		}
		// The table parser assumes exactly one space between codes.
		if countryCodes[3*i:3*i+2] != c {
			t.Fatalf("countryCodes not evenly spaced at %q", c)
		}
	}
	n := 0
	for _, ok := range assigned {
		if ok {
			n++
		}
	}
	if n != len(codes) {
		t.Errorf("table holds %d codes, want %d", n, len(codes))
	}
}

func BenchmarkValidCountry(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ValidCountry("nl")
	}
}
