package admin

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones the tests use, whatever the machine has

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/web"
)

// zoned is the test backend with a page time zone (the global timezone
// option).
type zoned struct {
	*backend
	loc *time.Location
}

func (z zoned) Location() *time.Location { return z.loc }

func (e *env) zonedPage(t *testing.T, loc *time.Location, path string) string {
	t.Helper()
	h := New(zoned{e.b, loc})
	r := httptest.NewRequest("GET", "http://app.example.com"+prefix+path, nil)
	r.Header.Set("Accept", "text/html")
	r = r.WithContext(web.WithViewer(r.Context(), e.viewer(e.alice)))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("GET %s = %d\n%s", path, w.Code, w.Body)
	}
	return w.Body.String()
}

// Issue 8, item 4: the pages show times in the configured zone, say
// which, and read the date filters as days of that zone; the export link
// carries the same range in UTC, as the API wants.
func TestActivityTimeZone(t *testing.T) {
	e := newEnv(t)
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	// 23:30 UTC on 13 March is 00:30 on the 14th in Amsterdam.
	late := time.Date(2025, 3, 13, 23, 30, 0, 0, time.UTC)
	e.rt.Record(context.Background(), activity.Event{Time: late, Type: activity.AccessDenied, Site: siteA, IP: "192.0.2.250"})

	body := e.zonedPage(t, ams, "/admin/activity?from=2025-03-14&to=2025-03-14&type=access_denied")
	for _, want := range []string{
		"Times in Europe/Amsterdam (CET).",
		"14 Mar 2025, 00:30 CET", // the event, in the zone
		"192.0.2.250",
		`href="/.gatehouse/api/events.csv?from=2025-03-13T23%3A00%3A00Z&amp;to=2025-03-14T22%3A59%3A59Z&amp;type=access_denied"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// In UTC the same day filter leaves the event out.
	if body := e.zonedPage(t, time.UTC, "/admin/activity?from=2025-03-14&type=access_denied"); strings.Contains(body, "192.0.2.250") {
		t.Error("UTC page shows an event of the 13th for from=2025-03-14")
	}
	// The API stays UTC.
	w := e.do(req{as: e.alice, method: "GET", path: "/api/events?from=2025-03-14&type=access_denied"})
	if strings.Contains(w.Body.String(), "192.0.2.250") {
		t.Error("the API read a date in a page's zone")
	}
}

// Issue 8, item 4: 100 rows a page, presets, the chart, and each row's
// detail with the session's user agent and coordinates.
func TestActivityPage(t *testing.T) {
	e := newEnv(t)
	for i := range 150 {
		e.rt.Record(context.Background(), activity.Event{Time: epoch.Add(-time.Duration(i) * time.Minute),
			Type: activity.LoginFailed, Site: siteA, IP: fmt.Sprintf("198.51.100.%d", i), Detail: "d-" + fmt.Sprint(i)})
	}
	w := e.do(req{as: e.alice, method: "GET", path: "/admin/activity?type=login_failed", header: html})
	body := w.Body.String()
	if n := strings.Count(body, `<td data-label="Time"`); n != activityPageSize {
		t.Errorf("%d rows on the first page, want %d", n, activityPageSize)
	}
	for _, want := range []string{`rel="next"`, ">Today<", ">7 days<", ">30 days<", ">90 days<",
		`href="/.gatehouse/admin/activity?from=2025-03-08&amp;type=login_failed"`, // 7 days, filters kept
		`<svg class="chart chart-narrow"`, "150 failures", "Last 7 days."} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	body = e.do(req{as: e.alice, method: "GET", path: "/admin/activity?type=login_succeeded&user=alice%40example.com", header: html}).Body.String()
	for _, want := range []string{"Session", e.alice.ID, "User agent", chromeWindows.UserAgent, "52.3700, 4.8900", "Second factor"} {
		if !strings.Contains(body, want) {
			t.Errorf("detail lacks %q", want)
		}
	}
}
