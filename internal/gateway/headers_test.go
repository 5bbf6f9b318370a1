package gateway

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestStripIdentity(t *testing.T) {
	h := http.Header{}
	spoofed := []string{
		"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username",
		"X_Forwarded_User", "x_forwarded-email", "X-FORWARDED_GROUPS", "x-forwarded_preferred_username",
	}
	for _, k := range spoofed {
		h[k] = []string{"admin"}
	}
	h.Set("X-Forwarded-For", "192.0.2.1")
	h.Set("X-Forwarded-Users", "keep")
	stripIdentity(h)
	for _, k := range spoofed {
		if _, ok := h[k]; ok {
			t.Errorf("header %q survived stripping", k)
		}
	}
	for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Users"} {
		if h.Get(k) == "" {
			t.Errorf("unrelated header %q was removed", k)
		}
	}
	setIdentity(h, "sub-1", "a@example.com", "alice", []string{"staff", "admins"})
	if got := h.Get(HeaderGroups); got != "staff,admins" {
		t.Errorf("%s = %q, want staff,admins", HeaderGroups, got)
	}
}

func TestCookieValue(t *testing.T) {
	h := http.Header{"Cookie": {"a=1; gatehouse=abc; gatehouse_login_x=zz", "other=2"}}
	if got := cookieValue(h, "gatehouse"); got != "abc" {
		t.Errorf("cookieValue = %q, want abc", got)
	}
	if got := cookieValue(h, "other"); got != "2" {
		t.Errorf("cookieValue(other) = %q, want 2", got)
	}
	if got := cookieValue(http.Header{"Cookie": {`gatehouse="q"`}}, "gatehouse"); got != "q" {
		t.Errorf("quoted cookieValue = %q, want q", got)
	}
	if got := cookieValue(http.Header{"Cookie": {"xgatehouse=1; gatehouse2=2"}}, "gatehouse"); got != "" {
		t.Errorf("cookieValue matched a longer name: %q", got)
	}
}

func TestStripCookie(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
	}{
		{[]string{"a=1; gatehouse=secret; b=2"}, []string{"a=1; b=2"}},
		{[]string{"gatehouse=secret"}, nil},
		{[]string{"gatehouse=secret", "theme=dark"}, []string{"theme=dark"}},
		{[]string{"gatehouse_login_x=1; gatehouse2=2"}, []string{"gatehouse_login_x=1; gatehouse2=2"}},
		{[]string{"x=gatehouse=1"}, []string{"x=gatehouse=1"}},
	}
	for _, tt := range tests {
		h := http.Header{"Cookie": append([]string(nil), tt.in...)}
		stripCookie(h, "gatehouse")
		if got := h["Cookie"]; !slices.Equal(got, tt.want) {
			t.Errorf("stripCookie(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Regression (issue 6, item 11): a group named "staff,gatehouse-admins"
// reached the upstream as two groups.
func TestJoinGroupsCannotBeSplitIntoOtherGroups(t *testing.T) {
	tests := []struct {
		groups []string
		want   string
	}{
		{nil, ""},
		{[]string{"staff"}, "staff"},
		{[]string{"staff", "ops"}, "staff,ops"},
		{[]string{"staff,gatehouse-admins"}, "staff%2Cgatehouse-admins"},
		{[]string{"100%", "a,b", "x"}, "100%25,a%2Cb,x"},
		{[]string{"line\r\nX-Forwarded-User: root"}, "line%0D%0AX-Forwarded-User: root"},
		{[]string{"Ünïcode grüppe"}, "Ünïcode grüppe"},
	}
	for _, tt := range tests {
		got := JoinGroups(tt.groups)
		if got != tt.want {
			t.Errorf("JoinGroups(%q) = %q, want %q", tt.groups, got, tt.want)
		}
		if len(tt.groups) == 0 {
			continue
		}
		// What an upstream does: split on commas, percent-decode.
		var back []string
		for _, part := range strings.Split(got, ",") {
			d, err := url.PathUnescape(part)
			if err != nil {
				t.Fatalf("part %q of %q does not decode: %v", part, got, err)
			}
			back = append(back, d)
		}
		if !slices.Equal(back, tt.groups) {
			t.Errorf("decoding %q gives %q, want %q", got, back, tt.groups)
		}
	}
	h := http.Header{}
	setIdentity(h, "u\nx", "e@example.com", "", []string{"a,b"})
	if got := h.Get(HeaderUser); got != "u%0Ax" {
		t.Errorf("user header = %q, want control characters encoded", got)
	}
	if got := h.Get(HeaderGroups); got != "a%2Cb" {
		t.Errorf("groups header = %q", got)
	}
}
