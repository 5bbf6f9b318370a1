package admin

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// historyCSV is GET /history.csv: every login history row matching the
// filters (limit is ignored) within c's reach, newest sign-in first,
// streamed page by page like events.csv, with the same neutralised cells,
// mask=true and admin_export event.
func (a *api) historyCSV(w http.ResponseWriter, r *http.Request, c caller) {
	qv := r.URL.Query()
	f, err := historyFilter(qv)
	if err != nil {
		a.fail(w, err)
		return
	}
	mask, rec, err := a.exportParts(qv)
	if err != nil {
		a.fail(w, err)
		return
	}
	f.Limit = activity.MaxLimit
	ctx := r.Context()
	page, err := historyInReach(ctx, a.b, c, f)
	if errors.Is(err, errNoHistory) {
		writeError(w, http.StatusNotFound, codeNotFound, "this store keeps no login history")
		return
	}
	if err != nil {
		a.fail(w, fmt.Errorf("exporting login history: %w", err))
		return
	}
	a.csvHeaders(w, "history")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	e := exportEvent(r, c, activity.Filter{}, false)
	e.Detail = "history.csv?" + historyQuery(f, mask != nil)
	rec.Record(ctx, e)
	cw := csv.NewWriter(w)
	flush := http.NewResponseController(w)
	if err := cw.Write(HistoryColumns); err != nil {
		return
	}
	row := make([]string, len(HistoryColumns))
	for {
		for i := range page.Items {
			historyRow(row, &page.Items[i], mask)
			if err := cw.Write(row); err != nil {
				return // the client has gone
			}
		}
		cw.Flush()
		if cw.Error() != nil {
			return
		}
		_ = flush.Flush()
		if page.Next == "" || page.Next == f.Cursor {
			return
		}
		f.Cursor = page.Next
		if page, err = historyInReach(ctx, a.b, c, f); err != nil {
			if ctx.Err() == nil {
				reportError(a.b, fmt.Errorf("exporting login history: %w", err))
			}
			// As in eventsCSV: a cut connection, not a file that looks
			// whole.
			panic(http.ErrAbortHandler)
		}
	}
}

// historyRow fills row (HistoryColumns' order) from l, every cell
// neutralised: subjects, devices and sites come from clients and
// providers, and the reader opens the file in a spreadsheet.
func historyRow(row []string, l *activity.Login, mask *activity.Mask) {
	user, email, ip := l.User, l.Email, l.IP
	if mask != nil {
		user, email, ip = mask.Email(user), mask.Email(email), mask.IP(ip)
	}
	j := toLoginJSON(*l)
	vals := []string{j.SessionID, user, email, j.Site, ip, j.City, j.Country, j.Device, j.Browser, j.OS,
		strconv.FormatBool(j.MFA), j.LoginTime, j.EndTime, strconv.FormatInt(j.Duration, 10),
		strconv.FormatInt(j.Inactivity, 10), j.Status}
	for i, v := range vals {
		row[i] = activity.NeutraliseCell(v)
	}
}

// historyQuery writes f back as the query that selects it, for the log.
func historyQuery(f activity.HistoryFilter, masked bool) string {
	q := url.Values{}
	if !f.From.IsZero() {
		q.Set("from", f.From.UTC().Format(time.RFC3339))
	}
	if !f.To.IsZero() {
		q.Set("to", f.To.UTC().Format(time.RFC3339))
	}
	if f.User != "" {
		q.Set("user", f.User)
	}
	if f.Site != "" {
		q.Set("site", f.Site)
	}
	if masked {
		q.Set("mask", "true")
	}
	return q.Encode()
}
