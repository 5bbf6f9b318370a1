package web

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSafeReturn(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"/", "/"},
		{"/app/page?x=1&y=2", "/app/page?x=1&y=2"},
		{"/a%20b", "/a%20b"},
		{"", "/"},
		{"app", "/"},
		{"//evil.example", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%2fevil.example", "/"},
		{"%2F%2Fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%252F%252Fevil.example", "/"},
		// Regression (found by FuzzSafeReturn): five encodings of a
		// slash passed; four still decode to something checked.
		{"/%252525252F/evil.example", "/"},
		{"/%2525252F/evil.example", "/"},
		{"/%25252541", "/%25252541"},
		{"/%2525252541", "/"},
		// Regression (found by FuzzStateCookie): invalid UTF-8 did not
		// survive the state cookie's JSON.
		{"/\x88", "/"},
		{"/caf\xe9", "/"},
		{"/café", "/café"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/x/https://evil", "/"},
		{"/%zz", "/"},
		{"/" + strings.Repeat("a", 5000), "/"},
	}
	for _, tt := range tests {
		if got := SafeReturn(tt.in); got != tt.want {
			t.Errorf("SafeReturn(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzSafeReturn: SafeReturn gives back its input or "/", is idempotent,
// and what it lets through stays on this site however often it is
// percent-decoded first (each decoding resolved as a browser would, tabs
// and newlines dropped and backslashes read as slashes: never
// scheme-relative, never another host), and holds no control character or
// backslash at any decoding.
func FuzzSafeReturn(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//x", "/\\x", "/%2F%2Fx", "http://x", "/\t/x", "/%5C%5Cx",
		"/%252525252F/x", "/%2525252F/x", "/%25%32%46%25%32%46x", "/a%20b#frag", "/.%2e/x", "/@x", "/x:y@z"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://site.example/start")
	browser := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/")
	f.Fuzz(func(t *testing.T, rd string) {
		got := SafeReturn(rd)
		if got != "/" && got != rd {
			t.Fatalf("SafeReturn(%q) = %q: must be the input or /", rd, got)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("SafeReturn(%q) = %q is not valid UTF-8", rd, got)
		}
		if again := SafeReturn(got); again != got {
			t.Fatalf("SafeReturn(%q) = %q, but SafeReturn(%q) = %q", rd, got, got, again)
		}
		for level, s := 0, got; ; level++ {
			if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
				t.Fatalf("SafeReturn(%q) = %q holds a control character or backslash after %d decodings: %q", rd, got, level, s)
			}
			b := browser.Replace(s)
			// Browsers skip any number of slashes after the first two
			// ("///x" is https://x/), which url.Parse does not.
			if strings.HasPrefix(b, "//") {
				t.Fatalf("SafeReturn(%q) = %q is scheme-relative after %d decodings: %q", rd, got, level, s)
			}
			ref, err := url.Parse(b)
			if err != nil {
				if level == 0 {
					t.Fatalf("SafeReturn(%q) = %q does not parse: %v", rd, got, err)
				}
			} else if u := base.ResolveReference(ref); u.Host != "site.example" || u.Scheme != "https" {
				t.Fatalf("SafeReturn(%q) = %q leads to %s after %d decodings", rd, got, u, level)
			}
			d, err := url.PathUnescape(s)
			if err != nil || d == s {
				break
			}
			s = d
		}
	})
}
