package session

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestCookieRoundTrip(t *testing.T) {
	s := NewSecret()
	c := s.Cookie()
	if len(c) != CookieLen {
		t.Fatalf("len(Cookie()) = %d, want %d", len(c), CookieLen)
	}
	got, err := DecodeCookie(c)
	if err != nil {
		t.Fatalf("DecodeCookie(%q) error: %v", c, err)
	}
	if got != s {
		t.Fatal("DecodeCookie returned a different secret")
	}
	id, err := ParseCookie(c)
	if err != nil || id != s.ID() {
		t.Fatalf("ParseCookie = %q, %v; want %q", id, err, s.ID())
	}
	if !ValidID(id) {
		t.Errorf("ValidID(%q) = false", id)
	}
	if strings.Contains(c, id) {
		t.Error("cookie contains the public id")
	}
	if NewSecret() == s {
		t.Error("two secrets are equal")
	}
}

func TestDecodeCookieRejects(t *testing.T) {
	good := NewSecret().Cookie()
	tests := []struct {
		name, value string
	}{
		{"empty", ""},
		{"garbage", "hello"},
		{"truncated", good[:len(good)-1]},
		{"too long", good + "A"},
		{"oversized", strings.Repeat("A", 8192)},
		{"wrong prefix", "g2." + good[3:]},
		{"bad alphabet", good[:10] + "+" + good[11:]},
		{"padding", good[:len(good)-1] + "="},
		{"non-canonical last char", good[:len(good)-1] + "B"},
		{"quoted", `"` + good[1:len(good)-1] + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// "B" sets one of the two unused low bits, which strict
			// decoding refuses: every secret has exactly one spelling.
			if _, err := DecodeCookie(tt.value); err == nil {
				t.Errorf("DecodeCookie(%q) succeeded, want error", tt.value)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"", "short", strings.Repeat("a", IDLen+1), strings.Repeat("a", IDLen-1) + "/", "../../etc/passwd_____"} {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
}

// FuzzDecodeCookie decodes a fuzzed cookie value and encodes a fuzzed
// secret. Decoding refuses with ErrMalformedCookie anything but a value
// Cookie writes (no second spelling of a secret: base64 padding bits,
// another alphabet), agrees with ParseCookie and WellFormedCookie (the
// length, the prefix and base64url's alphabet), and
// leads to a valid id; every secret's cookie decodes to that secret.
func FuzzDecodeCookie(f *testing.F) {
	f.Add(NewSecret().Cookie(), []byte{})
	f.Add("", []byte{0})
	f.Add("g1.", bytes.Repeat([]byte{0xff}, 32))
	f.Add("g1."+strings.Repeat("_", 43), []byte("0123456789abcdef0123456789abcdef"))
	f.Add("g1."+strings.Repeat("_", 42)+"-", []byte{0xfb, 0xef})
	f.Add("g1."+strings.Repeat("A", 42)+"B", []byte{})
	f.Add("g1."+strings.Repeat("+", 43), []byte{})
	f.Add(strings.Repeat("\xff", 46), []byte{})
	f.Fuzz(func(t *testing.T, v string, raw []byte) {
		s, err := DecodeCookie(v)
		id, perr := ParseCookie(v)
		wellFormed := len(v) == CookieLen && strings.HasPrefix(v, "g1.") &&
			strings.Trim(v[3:], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ""
		if WellFormedCookie(v) != wellFormed {
			t.Fatalf("WellFormedCookie(%q) = %v, want %v", v, !wellFormed, wellFormed)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedCookie) || !errors.Is(perr, ErrMalformedCookie) || id != "" {
				t.Fatalf("DecodeCookie(%q): %v; ParseCookie: %q, %v", v, err, id, perr)
			}
		} else {
			// Anything accepted must be exactly what we would have written.
			if s.Cookie() != v || !wellFormed {
				t.Fatalf("DecodeCookie accepted %q, which re-encodes as %q", v, s.Cookie())
			}
			if perr != nil || id != s.ID() || !ValidID(id) {
				t.Fatalf("DecodeCookie(%q) leads to id %q; ParseCookie: %q, %v", v, s.ID(), id, perr)
			}
		}

		var sec Secret
		copy(sec[:], raw)
		c := sec.Cookie()
		back, err := DecodeCookie(c)
		if err != nil || back != sec || !WellFormedCookie(c) {
			t.Fatalf("Cookie of secret %x = %q decodes as %x, %v", sec, c, back, err)
		}
		if id := sec.ID(); !ValidID(id) || id != sec.ID() {
			t.Fatalf("ID of secret %x = %q is not valid or not stable", sec, id)
		}
	})
}

func BenchmarkParseCookie(b *testing.B) {
	c := NewSecret().Cookie()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCookie(c); err != nil {
			b.Fatal(err)
		}
	}
}

// Regression (issue 6, item 12): about one id in 64 began with '-', which
// a CLI takes for a flag ("gatehouse revoke -F9e7...": unknown shorthand
// flag) and a spreadsheet for a formula. No id may begin with a CSV
// formula character, every id made must be valid, and ids that did not
// begin with '-' must stay what they were, so that an upgrade keeps their
// sessions.
func TestIDNeverStartsWithFormulaChar(t *testing.T) {
	const n = 100_000
	mapped := 0
	for range n {
		s := NewSecret()
		id := s.ID()
		if strings.ContainsRune("=+-@\t\r", rune(id[0])) {
			t.Fatalf("ID() = %q begins with a CSV formula character", id)
		}
		if !ValidID(id) {
			t.Fatalf("ValidID(%q) = false for an id ID() made", id)
		}
		sum := sha256.Sum256(s[:])
		plain := base64.RawURLEncoding.EncodeToString(sum[:idBytes])
		switch {
		case plain[0] == '-':
			mapped++
			if id[1:] != plain[1:] {
				t.Fatalf("ID() = %q, want %q with only the first character changed", id, plain)
			}
		case id != plain:
			t.Fatalf("ID() = %q, want the unchanged %q (existing sessions must keep their ids)", id, plain)
		}
	}
	// One in 64 begins with '-' before the mapping: this many were
	// exercised (the chance of fewer than 1,000 is negligible).
	if mapped < 1000 {
		t.Fatalf("only %d of %d ids needed mapping; the test did not exercise the mapping", mapped, n)
	}
	for _, id := range []string{"-" + strings.Repeat("a", IDLen-1), "=" + strings.Repeat("a", IDLen-1), "_" + strings.Repeat("a", IDLen-1)} {
		want := id[0] == '_'
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}
