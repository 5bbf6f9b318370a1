package admin

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// maxErrorLen bounds a parse error's message: errors quote the caller's
// input, and must not echo it back at any length.
const maxErrorLen = 200

// FuzzQueryParams feeds one raw query string to the three API query
// parsers, the activity filter in four time zones. None may panic; each
// either refuses with a bad request (400) whose message stays short, or
// returns a query the stores can take as is: a limit within bounds, from ≤
// to, only known event types, every string within maxParam. And the query
// is the one asked for: each filter the trimmed parameter, the limit the
// number given (or the default), every known type listed once, a date as
// the whole day in the zone of the page, times in UTC. The seed corpus is
// testdata/fuzz/FuzzQueryParams.
func FuzzQueryParams(f *testing.F) {
	f.Add("user=bob&ip=192.0.2.&country=NL&site=app.example.com&sort=-created_at&limit=1000")
	f.Add("from=2025-03-01&to=2025-03-01&type=login_succeeded,login_failed&type=logout")
	f.Add("from=2025-03-30&to=2025-10-26&limit=+7")
	f.Add("from=1969-12-31&to=0001-01-01T00:00:00Z&type=%20logout%20,,logout")
	var zones []*time.Location
	for _, name := range []string{"UTC", "Europe/Amsterdam", "Pacific/Kiritimati", "America/St_Johns", "America/Santiago"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			f.Fatal(err)
		}
		zones = append(zones, loc)
	}
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
			want := activity.DefaultLimit
			if v := q.Get("limit"); v != "" {
				want, _ = strconv.Atoi(v)
			}
			if limit != want {
				t.Fatalf("%s(%q): limit %d, want %d", name, raw, limit, want)
			}
			for _, s := range strs {
				if len(s) > maxParam {
					t.Fatalf("%s(%q): %d-byte value accepted", name, raw, len(s))
				}
			}
			return true
		}
		asked := func(what string, got map[string]string) {
			t.Helper()
			for name, v := range got {
				if want := strings.TrimSpace(q.Get(name)); v != want {
					t.Fatalf("%s(%q): %s = %q, want %q", what, raw, name, v, want)
				}
			}
		}

		sq, err := sessionQuery(q)
		if check("sessionQuery", err, sq.Limit, sq.User, sq.IPPrefix, sq.Country, sq.Site, sq.Sort, sq.Cursor) {
			if _, err := sq.ByCreated(); err != nil {
				t.Fatalf("sessionQuery(%q): sort %q accepted but unknown to the stores", raw, sq.Sort)
			}
			if sq.Sites != nil {
				t.Fatalf("sessionQuery(%q): the query chose its own reach %v", raw, sq.Sites)
			}
			asked("sessionQuery", map[string]string{"user": sq.User, "ip": sq.IPPrefix, "country": sq.Country,
				"site": sq.Site, "sort": sq.Sort, "cursor": sq.Cursor})
		}

		uq, err := userQuery(q)
		if check("userQuery", err, uq.Limit, uq.Prefix, uq.Cursor) {
			asked("userQuery", map[string]string{"prefix": uq.Prefix, "cursor": uq.Cursor})
		}

		// The types asked for: every known one, once, in order.
		var types []string
		for _, v := range q["type"] {
			for typ := range strings.SplitSeq(v, ",") {
				if typ = strings.TrimSpace(typ); typ != "" && !slices.Contains(types, typ) {
					types = append(types, typ)
				}
			}
		}
		for _, loc := range zones {
			ef, err := eventFilterIn(q, loc)
			if !check("eventFilter", err, ef.Limit, append([]string{ef.User, ef.IPPrefix, ef.Site, ef.Cursor}, ef.Types...)...) {
				continue
			}
			if !ef.From.IsZero() && !ef.To.IsZero() && ef.To.Before(ef.From) {
				t.Fatalf("eventFilter(%q): from %v after to %v", raw, ef.From, ef.To)
			}
			if !slices.Equal(ef.Types, types) {
				t.Fatalf("eventFilter(%q): types %q, want %q", raw, ef.Types, types)
			}
			for _, typ := range ef.Types {
				if !slices.Contains(activity.Types, typ) {
					t.Fatalf("eventFilter(%q): type %q unknown", raw, typ)
				}
			}
			if ef.Sites != nil {
				t.Fatalf("eventFilter(%q): the filter chose its own reach %v", raw, ef.Sites)
			}
			asked("eventFilter", map[string]string{"user": ef.User, "ip": ef.IPPrefix, "site": ef.Site, "cursor": ef.Cursor})
			for name, at := range map[string]time.Time{"from": ef.From, "to": ef.To} {
				v := strings.TrimSpace(q.Get(name))
				if v == "" {
					if !at.IsZero() {
						t.Fatalf("eventFilter(%q): %s = %v without a %s", raw, name, at, name)
					}
					continue
				}
				if at.Location() != time.UTC {
					t.Fatalf("eventFilter(%q): %s = %v, not in UTC", raw, name, at)
				}
				if _, err := time.Parse(time.RFC3339, v); err == nil {
					continue
				}
				// A date: the whole day in loc, from its first instant
				// to its last.
				day, err := time.ParseInLocation(dateLayout, v, loc)
				if err != nil {
					t.Fatalf("eventFilter(%q): %s %q accepted, neither time nor date", raw, name, v)
				}
				// Civil dates as numbers; days a zone skipped (as
				// Kiritimati did 1994-12-31) have no instant at all.
				date := func(t time.Time) int {
					y, m, d := t.In(loc).Date()
					return y*10000 + int(m)*100 + d
				}
				want := date(day)
				switch {
				case day.Format(dateLayout) != v:
					// Such a skipped day: ParseInLocation normalised it.
				case name == "from" && (date(at) != want || date(at.Add(-time.Nanosecond)) >= want):
					t.Fatalf("eventFilter(%q) in %s: from = %v is not the start of %s", raw, loc, at.In(loc), v)
				case name == "to" && (date(at) != want || date(at.Add(time.Nanosecond)) <= want):
					t.Fatalf("eventFilter(%q) in %s: to = %v is not the end of %s", raw, loc, at.In(loc), v)
				}
			}
		}
	})
}

// Regression (found by FuzzQueryParams): error messages cut the input to
// n bytes before %q, which escapes invalid UTF-8 fourfold, and could cut
// a character in two.
func TestQuoteClip(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 40, `"abc"`},
		{"", 40, `""`},
		{strings.Repeat("\x86", 50), 8, `"\x86\x86…"`},
		{strings.Repeat("é", 30), 5, `"éé…"`},
		{"a\"b\n", 40, `"a\"b\n"`},
		{strings.Repeat("x", 41), 40, `"` + strings.Repeat("x", 40) + `…"`},
	}
	for _, tt := range tests {
		if got := quoteClip(tt.in, tt.n); got != tt.want {
			t.Errorf("quoteClip(%q, %d) = %s, want %s", tt.in, tt.n, got, tt.want)
		}
	}
	_, err := eventFilter(url.Values{"to": {"0" + strings.Repeat("\x86", 100)}})
	if err == nil || len(err.Error()) > maxErrorLen {
		t.Errorf("eventFilter: error %v, want one of at most %d bytes", err, maxErrorLen)
	}
}
