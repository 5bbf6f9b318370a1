package admin

import (
	"bytes"
	"encoding/csv"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// Issue 8, item 3: /api/history.csv has every row the history API has,
// in its order and reach, SPEC's fields as columns, formula cells
// neutralised, mask=true pseudonymised, and an admin_export event.
func TestHistoryCSV(t *testing.T) {
	e := newReachEnv(t)
	// A subject a spreadsheet would run as a formula.
	e.loginOn(siteA, true, "=HYPERLINK(\"http://evil\")", "mallory@example.com", "M", firefoxLinux, london, "192.0.2.99", 0, 0)
	read := func(r req) [][]string {
		t.Helper()
		w := e.do(r)
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv") {
			t.Fatalf("history.csv = %d %s", w.Code, w.Body)
		}
		recs, err := csv.NewReader(bytes.NewReader(w.Body.Bytes())).ReadAll()
		if err != nil {
			t.Fatalf("not CSV: %v", err)
		}
		if !slices.Equal(recs[0], HistoryColumns) {
			t.Fatalf("header = %q, want %q", recs[0], HistoryColumns)
		}
		return recs[1:]
	}
	col := func(rows [][]string, name string) []string {
		i := slices.Index(HistoryColumns, name)
		var out []string
		for _, r := range rows {
			out = append(out, r[i])
		}
		return out
	}
	api := historyIDs(t, e.do(req{as: e.alice, method: "GET", path: "/api/history?limit=1000", header: xhr}))
	rows := read(req{as: e.alice, method: "GET", path: "/api/history.csv", header: xhr})
	if got := col(rows, "session_id"); !slices.Equal(got, api) {
		t.Errorf("export rows %v, API rows %v", got, api)
	}
	if users := col(rows, "user"); !slices.Contains(users, "'=HYPERLINK(\"http://evil\")") || slices.Contains(users, "=HYPERLINK(\"http://evil\")") {
		t.Errorf("formula subject not neutralised: %q", users)
	}
	// Within reach: an admin of siteA only gets siteA's rows.
	for _, site := range col(read(e.onA("GET", "/api/history.csv")), "site") {
		if site != siteA {
			t.Errorf("a siteA admin's export has a row of %q", site)
		}
	}
	masked := read(req{as: e.alice, method: "GET", path: "/api/history.csv?mask=true", header: xhr})
	for _, r := range masked {
		for _, cell := range r {
			if strings.Contains(cell, "@example.com") || strings.Contains(cell, "192.0.2.99") {
				t.Fatalf("masked export leaks %q", cell)
			}
		}
	}
	var details []string
	for _, ev := range e.events(activity.AdminExport) {
		details = append(details, ev.Detail)
	}
	if len(details) != 3 || !slices.Contains(details, "history.csv?mask=true") {
		t.Errorf("admin_export details = %q, want one per export", details)
	}
	if w := e.do(req{as: e.bob, method: "GET", path: "/api/history.csv", header: xhr}); w.Code != 403 {
		t.Errorf("a non-admin's history.csv = %d, want 403", w.Code)
	}
}
