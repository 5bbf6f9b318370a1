package gateway

import (
	"net/http"
	"strings"
	"unicode"
)

// Identity headers for the upstream.
const (
	HeaderUser     = "X-Forwarded-User"
	HeaderEmail    = "X-Forwarded-Email"
	HeaderUsername = "X-Forwarded-Preferred-Username"
	HeaderGroups   = "X-Forwarded-Groups"
)

// identityHeaders are deleted from every request, whatever the site sets:
// the access token too, so that no client can hand the upstream a token
// of its choosing as if the gateway had passed it.
var identityHeaders = [...]string{HeaderUser, HeaderEmail, HeaderUsername, HeaderGroups, HeaderAccessToken}

// stripIdentity deletes every client-supplied copy of the identity headers,
// including spellings with "_" for "-": some upstreams (CGI, PHP, WSGI)
// fold both to the same variable, so a client could otherwise smuggle a
// user past us.
func stripIdentity(h http.Header) {
	for k := range h {
		if isIdentityHeader(k) {
			delete(h, k)
		}
	}
}

func isIdentityHeader(k string) bool {
	const prefix = "x-forwarded-"
	if len(k) < len(prefix)+4 {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if fold(k[i]) != prefix[i] {
			return false
		}
	}
	for _, name := range identityHeaders {
		if len(name) == len(k) && equalFoldDash(k[len(prefix):], name[len(prefix):]) {
			return true
		}
	}
	return false
}

// fold lower-cases ASCII and maps '_' to '-'.
func fold(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	if c == '_' {
		return '-'
	}
	return c
}

func equalFoldDash(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if fold(a[i]) != fold(b[i]) {
			return false
		}
	}
	return true
}

// setIdentity sets the identity headers; stripIdentity must run first.
// Control characters, which no header may carry, and spaces at a value's
// edges, which HTTP drops, are percent-encoded in every value; see
// JoinGroups for the groups list.
func setIdentity(h http.Header, user, email, username string, groups []string) {
	// One allocation for the four values; each header gets a slice of
	// capacity 1, so that appending to one cannot write into another.
	vals := make([]string, 4)
	vals[0] = escapeHeader(user, false)
	h[HeaderUser] = vals[0:1:1]
	if email != "" {
		vals[1] = escapeHeader(email, false)
		h[HeaderEmail] = vals[1:2:2]
	}
	if username != "" {
		vals[2] = escapeHeader(username, false)
		h[HeaderUsername] = vals[2:3:3]
	}
	if len(groups) > 0 {
		vals[3] = JoinGroups(groups)
		h[HeaderGroups] = vals[3:4:4]
	}
}

// JoinGroups is the comma list of X-Forwarded-Groups and the
// {http.auth.user.groups} placeholder. In each group "%", ",", control
// characters and a leading or trailing space are percent-encoded, so that
// a group named "staff,admins" cannot pass for two groups to an upstream
// that splits on commas (issue 6, item 11), nor " admins" for "admins":
// split on "," and percent-decode each part to get the names back.
func JoinGroups(groups []string) string {
	switch len(groups) {
	case 0:
		return ""
	case 1:
		return escapeHeader(groups[0], true)
	}
	var b strings.Builder
	n := len(groups) - 1
	for _, g := range groups {
		n += len(g)
	}
	b.Grow(n)
	for i, g := range groups {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(escapeHeader(g, true))
	}
	return b.String()
}

// escapeHeader percent-encodes control characters, a space that begins
// or ends s and, in a list item, "%" and ",". It returns s itself when
// nothing needs encoding. The spaces: HTTP drops them at a value's edges
// and upstreams trim list items, so a group " admins" would otherwise
// arrive as "admins", and a subject " alice" as "alice".
func escapeHeader(s string, item bool) string {
	special := func(i int) bool {
		c := s[i]
		return c < 0x20 || c == 0x7f || item && (c == '%' || c == ',') ||
			c == ' ' && (i == 0 || i == len(s)-1)
	}
	i := 0
	for i < len(s) && !special(i) {
		i++
	}
	if i == len(s) {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+8)
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		if c := s[i]; special(i) {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

// stripCookie removes the cookie name from the request's Cookie headers,
// keeping every other cookie: the upstream has no use for the session
// secret, and an upstream that logs or leaks headers must not be able to
// hand out sessions.
func stripCookie(h http.Header, name string) {
	lines := h["Cookie"]
	out := lines[:0]
	for _, line := range lines {
		if !strings.Contains(line, name) {
			out = append(out, line)
			continue
		}
		if v := stripCookieLine(line, name); v != "" {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = out
}

// stripCookieLine is line without the cookies called name: its other
// cookies, trimmed, joined by "; ". When they stand in line just so (the
// removed cookie came first or last), the result is that piece of line,
// which costs no allocation; otherwise one.
func stripCookieLine(line, name string) string {
	start, end := -1, 0 // the kept cookies so far are line[start:end]
	var b strings.Builder
	joined := false // b holds the kept cookies instead
	for off := 0; off < len(line); {
		part, _, _ := strings.Cut(line[off:], ";")
		p := strings.TrimSpace(part)
		ps := off + len(part) - len(strings.TrimLeftFunc(part, unicode.IsSpace))
		off += len(part) + 1
		switch {
		case p == "" || (strings.HasPrefix(p, name) && len(p) > len(name) && p[len(name)] == '='):
		case start < 0:
			start, end = ps, ps+len(p)
		case !joined && ps == end+2 && line[end:ps] == "; ":
			end = ps + len(p)
		default:
			if !joined {
				b.Grow(len(line))
				b.WriteString(line[start:end])
				joined = true
			}
			b.WriteString("; ")
			b.WriteString(p)
		}
	}
	switch {
	case joined:
		return b.String()
	case start >= 0:
		return line[start:end]
	}
	return ""
}
