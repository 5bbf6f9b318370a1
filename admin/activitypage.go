package admin

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/web"
)

// activityPageSize is the Activity tab's page: 100 rows, as the audit
// screens it follows show.
const activityPageSize = 100

// typeOption is one checkbox of the activity type filter.
type typeOption struct {
	Value, Label string
	Selected     bool
}

// rangePreset is a link to a date range ending now.
type rangePreset struct {
	Label, URL string
	Current    bool
}

type adminActivityData struct {
	From, To, User, IP, Site string
	Types                    []typeOption
	// TypesChosen counts the checked types, for the summary.
	TypesChosen int
	Presets     []rangePreset
	Rows        []activityRow
	NextURL     string
	FirstURL    string
	// ExportURL and MaskedURL download the current filters as CSV.
	ExportURL, MaskedURL string
	// Chart is the SVG of the range (first page only); ChartNote says
	// what it covers.
	Chart     template.HTML
	ChartNote string
	// Zone names the time zone the page shows.
	Zone string
}

// activityRow is an event row with what its detail panel shows.
type activityRow struct {
	eventRow
	// Full is the time in the page's zone, to the second.
	Full string
	// UserAgent and Coords come from the event's session while it exists
	// (events do not keep them).
	UserAgent, Coords string
	MFA               bool
}

func typeOptions(selected []string) []typeOption {
	opts := make([]typeOption, 0, len(activity.Types))
	for _, t := range activity.Types {
		opts = append(opts, typeOption{Value: t, Label: eventLabel(t), Selected: slices.Contains(selected, t)})
	}
	return opts
}

// presets are the date range links: today, 7, 30 and 90 days, each
// through now, with the other filters kept.
func presets(u *url.URL, now time.Time, loc *time.Location) []rangePreset {
	today := now.In(loc)
	q := u.Query()
	from, to := q.Get("from"), q.Get("to")
	var out []rangePreset
	for _, p := range []struct {
		label string
		days  int
	}{{"Today", 1}, {"7 days", 7}, {"30 days", 30}, {"90 days", 90}} {
		d := today.AddDate(0, 0, 1-p.days).Format(dateLayout)
		pq := u.Query()
		for _, k := range []string{"cursor", "flash", "n", "to"} {
			pq.Del(k)
		}
		pq.Set("from", d)
		out = append(out, rangePreset{Label: p.label, URL: u.EscapedPath() + "?" + pq.Encode(), Current: from == d && to == ""})
	}
	return out
}

// chartBucket picks a bucket that gives a readable number of points for
// the range.
func chartBucket(r time.Duration) time.Duration {
	switch {
	case r <= 2*24*time.Hour:
		return time.Hour
	case r <= 8*24*time.Hour:
		return 3 * time.Hour
	case r <= 32*24*time.Hour:
		return 12 * time.Hour
	}
	return 24 * time.Hour
}

func (p *pages) adminActivity(w http.ResponseWriter, r *http.Request, v *web.Viewer, prefix string) {
	vw := p.newView(r, v, prefix, "Activity")
	vw.Nav, vw.Tab = "admin", "activity"
	qv := r.URL.Query()
	loc := location(p.b)
	now := p.b.Now()
	d := &adminActivityData{
		From: qv.Get("from"),
		To:   qv.Get("to"),
		User: qv.Get("user"),
		IP:   qv.Get("ip"),
		Site: qv.Get("site"),
		Zone: zoneName(loc, now),
	}
	vw.Data = d
	d.Presets = presets(r.URL, now, loc)
	f, err := eventFilterIn(qv, loc)
	d.Types = typeOptions(f.Types)
	d.TypesChosen = len(f.Types)
	if err != nil {
		vw.Error = err.Error()
		p.render(w, r, http.StatusBadRequest, "activity", vw)
		return
	}
	if qv.Get("limit") == "" {
		f.Limit = activityPageSize
	}
	c := callerFor(v)
	ctx := r.Context()
	page, err := eventsInReach(ctx, p.b, c, f)
	if err != nil {
		p.failErr(w, r, v, prefix, fmt.Errorf("querying events: %w", err))
		return
	}
	d.Rows = p.activityRows(ctx, c, page.Items, now, loc)
	d.NextURL, d.FirstURL = pageLinks(r.URL, page.Next)
	ef := f
	ef.Cursor = ""
	d.ExportURL = prefix + "/api/events.csv?" + filterQuery(ef, false)
	d.MaskedURL = prefix + "/api/events.csv?" + filterQuery(ef, true)
	if f.Cursor == "" {
		p.activityChart(ctx, c, qv, f, now, loc, d)
	}
	p.render(w, r, http.StatusOK, "activity", vw)
}

// activityChart draws the chart of the filtered range (a week when no
// start is set). A range it cannot draw leaves the chart out rather than
// the page.
func (p *pages) activityChart(ctx context.Context, c caller, qv url.Values, f activity.Filter, now time.Time, loc *time.Location, d *adminActivityData) {
	to := f.To
	if to.IsZero() || to.After(now) {
		to = now
	}
	from := f.From
	if from.IsZero() {
		from = to.Add(-defaultStatsRange)
		d.ChartNote = "Last 7 days."
	}
	if !to.After(from) {
		return
	}
	sq := url.Values{
		"from":   {from.UTC().Format(time.RFC3339Nano)},
		"to":     {to.UTC().Format(time.RFC3339Nano)},
		"bucket": {chartBucket(to.Sub(from)).String()},
	}
	for _, k := range []string{"user", "ip", "site"} {
		if v := qv.Get(k); v != "" {
			sq.Set(k, v)
		}
	}
	st, err := statsFor(ctx, p.b, c, sq, loc)
	if err != nil {
		if !isBadRequest(err) {
			reportError(p.b, err)
		}
		return
	}
	d.Chart = renderChart(st, loc)
}

// activityRows adds the detail panels. The user agent and coordinates
// come from the sessions of the page's events while they exist, one
// lookup per distinct session in the viewer's reach.
func (p *pages) activityRows(ctx context.Context, c caller, events []activity.Event, now time.Time, loc *time.Location) []activityRow {
	rows := make([]activityRow, 0, len(events))
	sessions := map[string]*session.Session{}
	for i, er := range eventRows(events, now) {
		e := &events[i]
		row := activityRow{eventRow: er, Full: e.Time.In(loc).Format("2 Jan 2006, 15:04:05 MST"), MFA: e.MFA}
		if e.SessionID != "" && session.ValidID(e.SessionID) {
			s, seen := sessions[e.SessionID]
			if !seen {
				s, _ = p.b.GetSession(ctx, e.SessionID)
				if s != nil && !c.reaches(s.Site) {
					s = nil
				}
				sessions[e.SessionID] = s
			}
			if s != nil {
				row.UserAgent = s.Device.UserAgent
				if s.Latitude != 0 || s.Longitude != 0 {
					row.Coords = strconv.FormatFloat(s.Latitude, 'f', 4, 64) + ", " + strconv.FormatFloat(s.Longitude, 'f', 4, 64)
				}
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// zoneName is how the pages name their time zone: the IANA name, with the
// abbreviation in force now when it says more ("Europe/Amsterdam, CET").
func zoneName(loc *time.Location, now time.Time) string {
	abbr, _ := now.In(loc).Zone()
	if name := loc.String(); name != abbr && name != "" {
		return name + " (" + abbr + ")"
	}
	return abbr
}

// absTimeIn is absTime in the pages' zone, with the zone named.
func absTimeIn(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format("2 Jan 2006, 15:04 MST")
}
