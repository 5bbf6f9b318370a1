package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/web"
)

// loginRow is a login history row as the pages show it.
type loginRow struct {
	activity.Login
	Location string
	When     string
	// Ended is how the session ended in words ("Active" while it lasts),
	// Tone its badge colour.
	Ended, Tone string
	// Lasted is the duration, Idle the final inactivity, in words.
	Lasted, Idle string
	// HistoryURL opens the user's history (admin tab only).
	HistoryURL string
}

func loginRows(logins []activity.Login, now time.Time, prefix string, admin bool) []loginRow {
	rows := make([]loginRow, 0, len(logins))
	for _, l := range logins {
		row := loginRow{
			Login:    l,
			Location: place(l.City, "", l.Country),
			When:     ago(now, l.LoginTime),
			Lasted:   span(time.Duration(l.Duration) * time.Second),
			Idle:     idleText(l.Inactivity),
		}
		switch l.Status {
		case activity.StatusActive:
			row.Ended, row.Tone = "Active", "ok"
		case activity.StatusEnded:
			row.Ended, row.Tone = "Ended", "neutral"
		default:
			row.Ended, row.Tone = eventLabel(l.Status), eventTone(l.Status)
		}
		if admin {
			row.HistoryURL = historyURL(prefix, l.User)
		}
		rows = append(rows, row)
	}
	return rows
}

// historyURL is the Login history tab of one user.
func historyURL(prefix, user string) string {
	return prefix + "/admin/history?" + url.Values{"user": {user}}.Encode()
}

// ownLogins is the "my sessions" page's history: the viewer's latest
// sessions, nil when the backend keeps no history.
func (p *pages) ownLogins(r *http.Request, v *web.Viewer, prefix string) ([]loginRow, error) {
	page, err := ownHistory(r.Context(), p.b, callerFor(v), activity.HistoryFilter{Limit: historyLen})
	if errors.Is(err, errNoHistory) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading login history: %w", err)
	}
	return loginRows(page.Items, p.b.Now(), prefix, false), nil
}

type adminHistoryData struct {
	From, To, User, Site string
	Rows                 []loginRow
	NextURL, FirstURL    string
	// Unavailable is set when the store keeps no login history.
	Unavailable bool
}

// adminHistory is the Login history tab: one row per session in the
// viewer's reach, filtered like /api/history.
func (p *pages) adminHistory(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix string) {
	vw := p.newView(r, v, prefix, "Login history")
	vw.Nav, vw.Tab = "admin", "history"
	qv := r.URL.Query()
	d := &adminHistoryData{From: qv.Get("from"), To: qv.Get("to"), User: qv.Get("user"), Site: qv.Get("site")}
	vw.Data = d
	f, err := historyFilter(qv)
	if err != nil {
		vw.Error = err.Error()
		p.render(w, r, http.StatusBadRequest, "history", vw)
		return
	}
	if qv.Get("limit") == "" {
		f.Limit = adminPageSize
	}
	page, err := historyInReach(r.Context(), p.b, callerFor(v), f)
	if errors.Is(err, errNoHistory) {
		d.Unavailable = true
		p.render(w, r, http.StatusOK, "history", vw)
		return
	}
	if err != nil {
		p.failErr(w, r, v, prefix, fmt.Errorf("querying login history: %w", err))
		return
	}
	d.Rows = loginRows(page.Items, p.b.Now(), prefix, true)
	d.NextURL, d.FirstURL = pageLinks(r.URL, page.Next)
	p.render(w, r, http.StatusOK, "history", vw)
}
