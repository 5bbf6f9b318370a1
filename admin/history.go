package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// Historian is what the login history needs from a Backend, beside it so
// that a Backend without it still serves everything else;
// *gateway.Runtime implements it. Without it the history answers 404.
type Historian interface {
	History(ctx context.Context, f activity.HistoryFilter) (activity.HistoryPage, error)
}

// errNoHistory is the answer of a backend that keeps no login history.
var errNoHistory = errors.New("no login history")

// HistoryColumns are the fields of a login history row, in the order of
// the SPEC; the JSON items and any table or export of rows use them.
var HistoryColumns = []string{
	"session_id", "user", "email", "site", "ip", "city", "country", "device", "browser", "os",
	"mfa", "login_time", "end_time", "duration", "inactivity_duration", "status",
}

// loginJSON is a login history row as the API shows it. Times are RFC 3339
// in UTC; end_time is "" while the session lasts (SPEC).
type loginJSON struct {
	SessionID  string `json:"session_id"`
	User       string `json:"user"`
	Email      string `json:"email"`
	Site       string `json:"site"`
	IP         string `json:"ip"`
	City       string `json:"city"`
	Country    string `json:"country"`
	Device     string `json:"device"`
	Browser    string `json:"browser"`
	OS         string `json:"os"`
	MFA        bool   `json:"mfa"`
	LoginTime  string `json:"login_time"`
	EndTime    string `json:"end_time"`
	Duration   int64  `json:"duration"`
	Inactivity int64  `json:"inactivity_duration"`
	Status     string `json:"status"`
}

func utcText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func toLoginJSON(l activity.Login) loginJSON {
	return loginJSON{
		SessionID: l.SessionID, User: l.User, Email: l.Email, Site: l.Site, IP: l.IP, City: l.City,
		Country: l.Country, Device: l.Device, Browser: l.Browser, OS: l.OS, MFA: l.MFA,
		LoginTime: utcText(l.LoginTime), EndTime: utcText(l.EndTime), Duration: l.Duration,
		Inactivity: l.Inactivity, Status: l.Status,
	}
}

// historyFilter reads the login history filters: user, from, to, site,
// cursor, limit.
func historyFilter(q url.Values) (activity.HistoryFilter, error) {
	var f activity.HistoryFilter
	var err error
	if f.From, err = parseTime(q, "from", false); err != nil {
		return f, err
	}
	if f.To, err = parseTime(q, "to", true); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return f, badf("to is before from")
	}
	if f.User, err = param(q, "user"); err != nil {
		return f, err
	}
	if f.Site, err = param(q, "site"); err != nil {
		return f, err
	}
	if f.Cursor, err = param(q, "cursor"); err != nil {
		return f, err
	}
	if f.Limit, err = parseLimit(q); err != nil {
		return f, err
	}
	return f, nil
}

// historyInReach returns one page of the login history matching f in c's
// reach; f.User may be an email, which is resolved to its subject first.
func historyInReach(ctx context.Context, b Backend, c caller, f activity.HistoryFilter) (activity.HistoryPage, error) {
	h, ok := b.(Historian)
	if !ok {
		return activity.HistoryPage{}, errNoHistory
	}
	f.Sites = c.within(f.Site)
	if f.Sites != nil && len(f.Sites) == 0 {
		return activity.HistoryPage{}, nil
	}
	if f.User != "" {
		sub, err := subjectOf(ctx, b, f.User)
		if err != nil {
			return activity.HistoryPage{}, err
		}
		f.User = sub
	}
	page, err := h.History(ctx, f)
	if err != nil {
		return page, err
	}
	// As in listInReach: the store filters, this only guards.
	page.Items = slices.DeleteFunc(page.Items, func(l activity.Login) bool { return !c.reaches(l.Site) })
	return page, nil
}

// ownHistory returns one page of c's own login history: their subject at
// their provider, on every site.
func ownHistory(ctx context.Context, b Backend, c caller, f activity.HistoryFilter) (activity.HistoryPage, error) {
	h, ok := b.(Historian)
	if !ok {
		return activity.HistoryPage{}, errNoHistory
	}
	f.User, f.Sites = c.self.User, nil
	page, err := h.History(ctx, f)
	if err != nil {
		return page, err
	}
	page.Items = slices.DeleteFunc(page.Items, func(l activity.Login) bool {
		return l.User != c.self.User || !sameIssuer(c.self.IssuerKey, l.IssuerKey)
	})
	return page, nil
}

func (a *api) listHistory(w http.ResponseWriter, r *http.Request, c caller, mine bool) {
	f, err := historyFilter(r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	var page activity.HistoryPage
	if mine {
		page, err = ownHistory(r.Context(), a.b, c, f)
	} else {
		page, err = historyInReach(r.Context(), a.b, c, f)
	}
	if errors.Is(err, errNoHistory) {
		writeError(w, http.StatusNotFound, codeNotFound, "this store keeps no login history")
		return
	}
	if err != nil {
		a.fail(w, fmt.Errorf("querying login history: %w", err))
		return
	}
	out := list[loginJSON]{Items: make([]loginJSON, 0, len(page.Items)), NextCursor: page.Next}
	for _, l := range page.Items {
		out.Items = append(out.Items, toLoginJSON(l))
	}
	writeJSON(w, http.StatusOK, out)
}
