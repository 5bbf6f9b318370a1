package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// The cookie value is cookiePrefix followed by the unpadded base64url
// encoding of a 32-byte random secret. The store never sees the secret: the
// session ID is a truncated SHA-256 of it, so a copy of the store lets no one
// in, while the secret leads straight to its session with one lookup.
const (
	cookiePrefix = "g1."
	secretLen    = 32
	// CookieLen is the exact length of a valid cookie value.
	CookieLen = len(cookiePrefix) + (secretLen*8+5)/6
	idBytes   = 16
	// IDLen is the length of a session ID.
	IDLen = (idBytes*8 + 5) / 6
)

// ErrMalformedCookie is returned for any cookie value that is not one this
// package wrote: wrong length, prefix or alphabet.
var ErrMalformedCookie = errors.New("malformed session cookie")

// Secret is the bearer secret a browser carries in its session cookie.
type Secret [secretLen]byte

// NewSecret returns a fresh random secret.
func NewSecret() Secret {
	var s Secret
	// crypto/rand.Read never returns an error (Go 1.24+); it aborts the
	// program if the system's source fails.
	_, _ = rand.Read(s[:])
	return s
}

// Cookie returns the cookie value for s.
func (s Secret) Cookie() string {
	buf := make([]byte, CookieLen)
	copy(buf, cookiePrefix)
	base64.RawURLEncoding.Encode(buf[len(cookiePrefix):], s[:])
	return string(buf)
}

// ID returns the public session ID derived from s.
func (s Secret) ID() string {
	var buf [IDLen]byte
	s.id(&buf)
	return string(buf[:])
}

func (s Secret) id(out *[IDLen]byte) {
	sum := sha256.Sum256(s[:])
	base64.RawURLEncoding.Encode(out[:], sum[:idBytes])
	// Ids are typed on command lines and land in CSV exports: one that
	// began with '-' (one in 64 of plain base64url) reads as a flag to a
	// CLI and as a formula prefix to a spreadsheet. '-' is the only CSV
	// formula character (= + - @ tab CR) in the base64url alphabet, so
	// mapping it alone to a letter is enough. This costs a fraction of a
	// bit of the 128, and every id that did not begin with '-' stays what
	// it was: on upgrade, only the sessions whose id began with '-' (one
	// in 64) no longer match their cookie; those users sign in again and
	// the orphaned sessions end by idle timeout or TTL.
	if out[0] == '-' {
		out[0] = idDashFirst
	}
}

// idDashFirst replaces a leading '-' of an id; see Secret.id.
const idDashFirst = 'A'

// formulaStart reports whether c begins a CSV formula (OWASP's list), or
// a command-line flag in the case of '-'. No id starts with one.
func formulaStart(c byte) bool {
	switch c {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

// ParseCookie checks a cookie value and returns the session ID it leads to.
// It allocates only the returned string.
func ParseCookie(v string) (id string, err error) {
	s, err := DecodeCookie(v)
	if err != nil {
		return "", err
	}
	return s.ID(), nil
}

// WellFormedCookie reports cheaply, without decoding, whether v has the
// length, prefix and alphabet (base64url) of a cookie this package
// writes: what a request carries beyond that is junk, which must not take
// the place of a real cookie among the few a request may have looked up.
func WellFormedCookie(v string) bool {
	if len(v) != CookieLen || v[:len(cookiePrefix)] != cookiePrefix {
		return false
	}
	for i := len(cookiePrefix); i < len(v); i++ {
		if !base64URLChar(v[i]) {
			return false
		}
	}
	return true
}

// base64URLChar reports whether c is in base64url's alphabet, which
// cookies and ids are written in.
func base64URLChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// DecodeCookie returns the secret in a cookie value.
func DecodeCookie(v string) (Secret, error) {
	var s Secret
	if len(v) != CookieLen || v[:len(cookiePrefix)] != cookiePrefix {
		return s, ErrMalformedCookie
	}
	// Copying into a stack array spares the allocation of []byte(v).
	var in [CookieLen - len(cookiePrefix)]byte
	copy(in[:], v[len(cookiePrefix):])
	var raw [secretLen + 2]byte
	n, err := base64.RawURLEncoding.Strict().Decode(raw[:], in[:])
	if err != nil || n != secretLen {
		return s, ErrMalformedCookie
	}
	copy(s[:], raw[:secretLen])
	return s, nil
}

// ValidID reports whether id has the shape of a session ID, so that
// handlers can refuse garbage before it reaches the store. An id that
// begins with '-' is refused: none is made any more (see Secret.id).
func ValidID(id string) bool {
	if len(id) != IDLen || formulaStart(id[0]) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !base64URLChar(id[i]) {
			return false
		}
	}
	return true
}
