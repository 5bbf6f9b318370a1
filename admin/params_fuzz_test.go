package admin

import (
	"net/url"
	"slices"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// maxErrorLen bounds a parse error's message: errors quote the caller's
// input, and must not echo it back at any length.
const maxErrorLen = 200

// FuzzQueryParams feeds one raw query string to the three API query
// parsers. None may panic; each either refuses with a bad request (400)
// whose message stays short, or returns a query the stores can take as
// is: a limit within bounds, from ≤ to, only known event types, every
// string within maxParam. The seed corpus is testdata/fuzz/FuzzQueryParams.
func FuzzQueryParams(f *testing.F) {
	f.Add("user=bob&ip=192.0.2.&country=NL&site=app.example.com&sort=-created_at&limit=1000")
	f.Add("from=2025-03-01&to=2025-03-01&type=login_succeeded,login_failed&type=logout")
	f.Fuzz(func(t *testing.T, raw string) {
		// A request carries whatever ParseQuery made of it, errors and all.
		q, _ := url.ParseQuery(raw)
		check := func(name string, err error, limit int, strs ...string) bool {
			t.Helper()
			if err != nil {
				if !isBadRequest(err) {
					t.Fatalf("%s(%q): error %v is not a bad request", name, raw, err)
				}
				if len(err.Error()) > maxErrorLen {
					t.Fatalf("%s(%q): %d-byte error message", name, raw, len(err.Error()))
				}
				return false
			}
			if limit < 1 || limit > activity.MaxLimit || limit > session.MaxLimit {
				t.Fatalf("%s(%q): limit %d out of bounds", name, raw, limit)
			}
			for _, s := range strs {
				if len(s) > maxParam {
					t.Fatalf("%s(%q): %d-byte value accepted", name, raw, len(s))
				}
			}
			return true
		}

		sq, err := sessionQuery(q)
		if check("sessionQuery", err, sq.Limit, sq.User, sq.IPPrefix, sq.Country, sq.Site, sq.Sort, sq.Cursor) {
			if _, err := sq.ByCreated(); err != nil {
				t.Fatalf("sessionQuery(%q): sort %q accepted but unknown to the stores", raw, sq.Sort)
			}
			if sq.Sites != nil {
				t.Fatalf("sessionQuery(%q): the query chose its own reach %v", raw, sq.Sites)
			}
		}

		uq, err := userQuery(q)
		check("userQuery", err, uq.Limit, uq.Prefix, uq.Cursor)

		ef, err := eventFilter(q)
		if check("eventFilter", err, ef.Limit, append([]string{ef.User, ef.IPPrefix, ef.Site, ef.Cursor}, ef.Types...)...) {
			if !ef.From.IsZero() && !ef.To.IsZero() && ef.To.Before(ef.From) {
				t.Fatalf("eventFilter(%q): from %v after to %v", raw, ef.From, ef.To)
			}
			for i, typ := range ef.Types {
				if !slices.Contains(activity.Types, typ) || slices.Contains(ef.Types[:i], typ) {
					t.Fatalf("eventFilter(%q): type %q unknown or repeated", raw, typ)
				}
			}
			if ef.Sites != nil {
				t.Fatalf("eventFilter(%q): the filter chose its own reach %v", raw, ef.Sites)
			}
		}
	})
}
