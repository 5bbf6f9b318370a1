package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/web"
)

// Recorder may be implemented by a Backend to write events the pages and
// API cause themselves (admin_export); *gateway.Runtime does. Without it
// exports are refused: SPEC wants every export in the log.
type Recorder interface {
	Record(ctx context.Context, e activity.Event)
}

// Masker may be implemented by a Backend to pseudonymise exports with
// mask=true; *gateway.Runtime does, keyed from the app secret. Without it
// mask=true is refused rather than answered unmasked.
type Masker interface {
	Masker() *activity.Mask
}

// Locator may be implemented by a Backend to set the time zone the pages
// show times in (the global timezone option); the API is always UTC.
// Without it, or when it returns nil, pages use UTC.
type Locator interface {
	Location() *time.Location
}

// location is b's page time zone.
func location(b Backend) *time.Location {
	if l, ok := b.(Locator); ok {
		if loc := l.Location(); loc != nil {
			return loc
		}
	}
	return time.UTC
}

// eventsCSV is GET /events.csv: every event matching the filters (limit
// is ignored) within c's reach, newest first, streamed as the store
// hands them over, so an export of millions of rows needs the memory of a
// few pages.
func (a *api) eventsCSV(w http.ResponseWriter, r *http.Request, c caller) {
	qv := r.URL.Query()
	f, err := eventFilter(qv)
	if err != nil {
		a.fail(w, err)
		return
	}
	mask, rec, err := a.exportParts(qv)
	if err != nil {
		a.fail(w, err)
		return
	}
	ctx := r.Context()
	var cw *activity.CSVWriter
	flush := http.NewResponseController(w)
	rows := 0
	// start sends the status and the CSV header with the first row (or at
	// the end of an empty export), so that a bad cursor or an unreachable
	// store still gets its status code.
	start := func() error {
		a.csvHeaders(w, "events")
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusOK)
			return errExportDone
		}
		// Recorded before the rows, so that a download cut short is in
		// the log too; the export's reads have begun below it.
		rec.Record(ctx, exportEvent(r, c, f, mask != nil))
		cw = activity.NewCSVWriter(w, mask)
		if err := cw.WriteHeader(); err != nil {
			return clientGone{err}
		}
		return nil
	}
	err = exportInReach(ctx, a.b, c, f, func(e *activity.Event) error {
		if cw == nil {
			if err := start(); err != nil {
				return err
			}
		}
		if err := cw.Write(e); err != nil {
			return clientGone{err}
		}
		if rows++; rows%activity.MaxLimit == 0 {
			if err := cw.Flush(); err != nil {
				return clientGone{err}
			}
			_ = flush.Flush()
		}
		return nil
	})
	var gone clientGone
	switch {
	case errors.Is(err, errExportDone) || errors.As(err, &gone):
		return
	case err == nil && cw == nil:
		if start() == nil {
			_ = cw.Flush()
		}
	case err == nil:
		_ = cw.Flush()
	case cw == nil:
		a.fail(w, fmt.Errorf("exporting events: %w", err))
	default:
		if ctx.Err() == nil {
			reportError(a.b, fmt.Errorf("exporting events: %w", err))
		}
		// The status is sent: breaking the connection is the only way
		// left to tell the client that the file is incomplete, rather
		// than handing it a file that looks whole.
		panic(http.ErrAbortHandler)
	}
}

// errExportDone stops an export that needs no rows (HEAD).
var errExportDone = errors.New("export done")

// clientGone is a failed write of an export: the client has gone.
type clientGone struct{ err error }

func (g clientGone) Error() string { return "writing export: " + g.err.Error() }
func (g clientGone) Unwrap() error { return g.err }

// exportInReach calls each with every event matching f in c's reach,
// newest first: in one pass where the backend can, else page by page.
func exportInReach(ctx context.Context, b Backend, c caller, f activity.Filter, each func(*activity.Event) error) error {
	f.Sites = c.within(f.Site)
	if f.Sites != nil && len(f.Sites) == 0 {
		return nil
	}
	guarded := func(e *activity.Event) error {
		// As in listInReach: the store filters, this only guards.
		if !c.reaches(e.Site) {
			return nil
		}
		return each(e)
	}
	if x, ok := b.(EventExporter); ok {
		return x.ExportEvents(ctx, f, guarded)
	}
	return activity.Pages(ctx, b.Events, f, guarded)
}

// csvHeaders starts a CSV download named gatehouse-<what>-<time>.csv.
func (a *api) csvHeaders(w http.ResponseWriter, what string) {
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="gatehouse-`+what+`-`+a.b.Now().UTC().Format("20060102T150405Z")+`.csv"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// exportParts reads mask= and finds what every export needs: the masker
// (for mask=true) and the recorder of its admin_export event.
func (a *api) exportParts(qv url.Values) (*activity.Mask, Recorder, error) {
	var mask *activity.Mask
	switch qv.Get("mask") {
	case "", "false":
	case "true":
		m, ok := a.b.(Masker)
		if !ok {
			return nil, nil, badf("mask=true is not available here")
		}
		mask = m.Masker()
	default:
		return nil, nil, badf("mask must be true or false")
	}
	rec, ok := a.b.(Recorder)
	if !ok {
		return nil, nil, errors.New("exports need a backend that records events")
	}
	return mask, rec, nil
}

// exportEvent is the admin_export event of an export: who, from where,
// and in Detail the filter as a query string.
func exportEvent(r *http.Request, c caller, f activity.Filter, masked bool) activity.Event {
	e := activity.Event{Type: activity.AdminExport, Actor: c.actor, Detail: "events.csv?" + filterQuery(f, masked)}
	if c.self != nil {
		e.User, e.Email, e.SessionID = c.self.User, c.self.Email, c.self.ID
		e.Device, e.City, e.Country = c.self.Device.Label(), c.self.City, c.self.Country
	}
	if v := web.ViewerFrom(r.Context()); v != nil {
		// The site the export was made on, so that its admins see it.
		if u, err := url.Parse(v.Origin); err == nil {
			e.Site = strings.ToLower(u.Hostname())
			if p := u.Port(); p != "" && !(u.Scheme == "https" && p == "443" || u.Scheme == "http" && p == "80") {
				e.Site += ":" + p
			}
		}
	}
	return e
}

// filterQuery writes f back as the query that selects it, for the log.
func filterQuery(f activity.Filter, masked bool) string {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.From.IsZero() {
		set("from", f.From.UTC().Format(time.RFC3339))
	}
	if !f.To.IsZero() {
		set("to", f.To.UTC().Format(time.RFC3339))
	}
	set("user", f.User)
	set("ip", f.IPPrefix)
	set("type", strings.Join(f.Types, ","))
	set("site", f.Site)
	set("cursor", f.Cursor)
	if masked {
		q.Set("mask", "true")
	}
	return q.Encode()
}

// Stats defaults: a week in hours, what the chart opens on.
const (
	defaultBucket     = time.Hour
	defaultStatsRange = 7 * 24 * time.Hour
)

// statsJSON is GET /stats.
type statsJSON struct {
	From    jsonTime          `json:"from"`
	To      jsonTime          `json:"to"`
	Bucket  string            `json:"bucket"`
	Buckets []activity.Counts `json:"items"`
}

// stats is GET /stats?from=&to=&bucket=&site=: counts per bucket of the
// events the chart draws, within c's reach.
func (a *api) stats(w http.ResponseWriter, r *http.Request, c caller) {
	st, err := statsFor(r.Context(), a.b, c, r.URL.Query(), time.UTC)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := statsJSON{From: jsonTime(st.From), To: jsonTime(st.To), Bucket: st.Bucket.String(), Buckets: st.Buckets}
	writeJSON(w, http.StatusOK, out)
}

// statsFor reads the stats parameters (the user, ip and type filters of
// the activity tab apply too, except that the types are always the
// chart's) and counts, with buckets aligned in loc.
func statsFor(ctx context.Context, b Backend, c caller, qv url.Values, loc *time.Location) (activity.Stats, error) {
	f, err := eventFilterIn(qv, loc)
	if err != nil {
		return activity.Stats{}, err
	}
	bucket := defaultBucket
	if v := qv.Get("bucket"); v != "" {
		if bucket, err = parseBucket(v); err != nil {
			return activity.Stats{}, err
		}
	}
	if f.To.IsZero() {
		f.To = b.Now().UTC()
	}
	if f.From.IsZero() {
		f.From = f.To.Add(-defaultStatsRange)
	}
	f.Cursor = ""
	f.Sites = c.within(f.Site)
	query := func(ctx context.Context, f activity.Filter) (activity.Page, error) {
		return eventsInReach(ctx, b, c, f)
	}
	var counter activity.Counter
	if cs, ok := b.(CounterSource); ok {
		counter = cs.Counter()
	}
	st, err := activity.CountEvents(ctx, query, counter, f, f.From, f.To, bucket, loc)
	if errors.Is(err, activity.ErrStatsRange) {
		return st, badf("%s", err.Error())
	}
	if err != nil {
		return st, fmt.Errorf("counting events: %w", err)
	}
	return st, nil
}

// parseBucket reads a bucket size: a Go duration, or whole days as "1d".
func parseBucket(v string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(v, "d"); ok && days == "1" {
		d = 24 * time.Hour
	} else if d, err = time.ParseDuration(v); err != nil || d%time.Minute != 0 {
		return 0, badf("bucket must be a duration such as 5m, 1h or 1d")
	}
	if d < activity.MinBucket || d > activity.MaxBucket {
		return 0, badf("bucket must be from 5m to 1d")
	}
	return d, nil
}
