// Package cursor is the position format both stores use for listings
// ordered by (score, member) descending: resuming from a position rather
// than an offset keeps pages free of duplicates and gaps while sessions
// are touched and move to the top.
package cursor

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// Tags name the listing a cursor belongs to, so that a cursor of one order
// is never silently applied to another.
const (
	LastAccess = "l"
	Created    = "c"
	Users      = "u"
)

// SortTag is the tag of a session listing by creation or last access.
func SortTag(byCreated bool) string {
	if byCreated {
		return Created
	}
	return LastAccess
}

// Cursor is the last item of a page.
type Cursor struct {
	Score  int64
	Member string
}

// After reports whether (score, member) comes after c in newest-first
// order.
func (c Cursor) After(score int64, member string) bool {
	return score < c.Score || score == c.Score && member < c.Member
}

// Encode returns the opaque cursor string for a listing.
func (c Cursor) Encode(tag string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tag + strconv.FormatInt(c.Score, 10) + ":" + c.Member))
}

// Decode parses a cursor of the listing tag. Errors wrap
// session.ErrInvalidQuery: a bad cursor is the caller's mistake.
func Decode(s, tag string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: cursor: %w", session.ErrInvalidQuery, err)
	}
	v, ok := strings.CutPrefix(string(raw), tag)
	if !ok {
		return Cursor{}, fmt.Errorf("%w: not a cursor for this listing", session.ErrInvalidQuery)
	}
	num, member, ok := strings.Cut(v, ":")
	if !ok {
		return Cursor{}, fmt.Errorf("%w: malformed cursor", session.ErrInvalidQuery)
	}
	score, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: cursor: %w", session.ErrInvalidQuery, err)
	}
	return Cursor{Score: score, Member: member}, nil
}
