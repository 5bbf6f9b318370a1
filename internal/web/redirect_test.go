package web

import (
	"net/url"
	"strings"
	"testing"
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

func FuzzSafeReturn(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//x", "/\\x", "/%2F%2Fx", "http://x", "/\t/x", "/%5C%5Cx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rd string) {
		got := SafeReturn(rd)
		if got != "/" && got != rd {
			t.Fatalf("SafeReturn(%q) = %q: must be the input or /", rd, got)
		}
		// Whatever passes must resolve to this site in a browser: same
		// host, even after the browser drops tabs and newlines and turns
		// backslashes into slashes.
		browser := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(got)
		base, _ := url.Parse("https://site.example/start")
		ref, err := url.Parse(browser)
		if err != nil {
			t.Fatalf("SafeReturn(%q) = %q does not parse: %v", rd, got, err)
		}
		if u := base.ResolveReference(ref); u.Host != "site.example" || u.Scheme != "https" {
			t.Fatalf("SafeReturn(%q) = %q leads to %s", rd, got, u)
		}
		if dec, err := url.PathUnescape(got); err == nil && (strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\")) {
			t.Fatalf("SafeReturn(%q) = %q decodes to a scheme-relative URL", rd, got)
		}
	})
}
