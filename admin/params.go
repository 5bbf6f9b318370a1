package admin

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// badRequest is a problem with the caller's input; its message is safe to
// show.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error {
	return &badRequest{msg: fmt.Sprintf(format, args...)}
}

func isBadRequest(err error) bool {
	var b *badRequest
	return errors.As(err, &b) || errors.Is(err, session.ErrInvalidQuery) || errors.Is(err, activity.ErrInvalidCursor)
}

// maxParam bounds every query value: filters are short, and a cursor or
// filter of megabytes is either a mistake or an attack on the store.
const maxParam = 512

func param(q url.Values, name string) (string, error) {
	v := strings.TrimSpace(q.Get(name))
	if len(v) > maxParam {
		return "", badf("%s is too long", name)
	}
	return v, nil
}

// quoteClip quotes v, as %q does, for a message, keeping at most n bytes
// of the quoted text: a message quotes the caller's input and must not
// echo it at any length. Regression (found by FuzzQueryParams): cutting v
// itself to n bytes left up to 4n once %q escaped invalid UTF-8 (\x86),
// and could cut a character in two.
func quoteClip(v string, n int) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); {
		_, size := utf8.DecodeRuneInString(v[i:])
		q := strconv.Quote(v[i : i+size])
		q = q[1 : len(q)-1]
		if b.Len()-1+len(q) > n {
			b.WriteString("…")
			break
		}
		b.WriteString(q)
		i += size
	}
	b.WriteByte('"')
	return b.String()
}

// parseLimit reads limit: default activity.DefaultLimit, at most
// activity.MaxLimit. The same bounds apply to every listing so that a
// script written against one endpoint works against the others.
func parseLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return activity.DefaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > activity.MaxLimit {
		return 0, badf("limit must be a number from 1 to %d", activity.MaxLimit)
	}
	return n, nil
}

// sessionQuery reads the session list filters.
func sessionQuery(q url.Values) (session.Query, error) {
	var sq session.Query
	var err error
	fields := []struct {
		name string
		dst  *string
	}{
		{"user", &sq.User},
		{"ip", &sq.IPPrefix},
		{"country", &sq.Country},
		{"site", &sq.Site},
		{"sort", &sq.Sort},
		{"cursor", &sq.Cursor},
	}
	for _, f := range fields {
		if *f.dst, err = param(q, f.name); err != nil {
			return sq, err
		}
	}
	switch strings.TrimPrefix(sq.Sort, "-") {
	case "", session.SortLastAccess, session.SortCreated:
	default:
		return sq, badf("sort must be %s or %s", session.SortLastAccess, session.SortCreated)
	}
	if sq.Limit, err = parseLimit(q); err != nil {
		return sq, err
	}
	return sq, nil
}

// userQuery reads the user list filters.
func userQuery(q url.Values) (session.UserQuery, error) {
	var uq session.UserQuery
	var err error
	if uq.Prefix, err = param(q, "prefix"); err != nil {
		return uq, err
	}
	if uq.Cursor, err = param(q, "cursor"); err != nil {
		return uq, err
	}
	if uq.Limit, err = parseLimit(q); err != nil {
		return uq, err
	}
	return uq, nil
}

// eventFilter reads the activity filters. type may repeat and each value
// may be a comma list, so that both scripts (type=a,b) and forms (a select
// whose options are lists) work.
func eventFilter(q url.Values) (activity.Filter, error) {
	return eventFilterIn(q, time.UTC)
}

// eventFilterIn is eventFilter with YYYY-MM-DD dates read as days in loc:
// the pages' date inputs mean the days of the time zone they show.
func eventFilterIn(q url.Values, loc *time.Location) (activity.Filter, error) {
	var f activity.Filter
	var err error
	if f.From, err = parseTimeIn(q, "from", false, loc); err != nil {
		return f, err
	}
	if f.To, err = parseTimeIn(q, "to", true, loc); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return f, badf("to is before from")
	}
	if f.User, err = param(q, "user"); err != nil {
		return f, err
	}
	if f.IPPrefix, err = param(q, "ip"); err != nil {
		return f, err
	}
	if f.Site, err = param(q, "site"); err != nil {
		return f, err
	}
	if f.Cursor, err = param(q, "cursor"); err != nil {
		return f, err
	}
	if f.Types, err = eventTypes(q["type"]); err != nil {
		return f, err
	}
	if f.Limit, err = parseLimit(q); err != nil {
		return f, err
	}
	return f, nil
}

func eventTypes(values []string) ([]string, error) {
	var types []string
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			if !slices.Contains(activity.Types, t) {
				return nil, badf("unknown event type %s", quoteClip(t, 64))
			}
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	return types, nil
}

// dateLayout is what HTML date inputs send.
const dateLayout = "2006-01-02"

// parseTime reads an RFC 3339 time or a YYYY-MM-DD date (UTC). A date as
// the upper bound means the end of that day, since "to 2024-05-01" reads
// as including the 1st.
func parseTime(q url.Values, name string, end bool) (time.Time, error) {
	return parseTimeIn(q, name, end, time.UTC)
}

// parseTimeIn is parseTime with dates as days in loc; the result is UTC.
func parseTimeIn(q url.Values, name string, end bool, loc *time.Location) (time.Time, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	d, err := time.ParseInLocation(dateLayout, v, loc)
	if err != nil {
		return time.Time{}, badf("%s must be an RFC 3339 time or a YYYY-MM-DD date, not %s", name, quoteClip(v, 40))
	}
	if end {
		d = d.AddDate(0, 0, 1).Add(-time.Nanosecond)
	}
	return d.UTC(), nil
}
