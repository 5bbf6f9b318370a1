package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Issue 8, item 4, in Chromium: the Activity tab filters by user through
// its form, draws the chart, and its Export CSV link gives the rows the
// API lists for the same filter.
func TestBrowserActivityTab(t *testing.T) {
	d, c := startBrowserDemo(t, "")
	bob := c.open(firefoxLinux.named("bob-firefox"))
	alice := c.open(chromeWindows.named("alice-chrome"))
	bob.signIn(d, "/", "bob", false)
	alice.signIn(d, "/", "alice", false)

	alice.navigate(d.SiteURL + "/.gatehouse/admin/activity")
	alice.do("typing the user filter", chromedp.SendKeys(chromedp.CSS(`input[name="user"]`), "bob@example.com"))
	alice.clickAndLoad(`//form[contains(@class,"filters")]//button[normalize-space()="Apply"]`)
	if loc := alice.location(); !strings.Contains(loc, "user=bob%40example.com") {
		alice.fail("after Apply the page is %s, want the user filter in the query", loc)
	}
	// One row per event; the row below each, .event-more, is its detail.
	rows := alice.texts("table.rows tbody tr:not(.event-more)")
	if len(rows) == 0 {
		alice.fail("no rows for bob")
	}
	for _, r := range rows {
		if !strings.Contains(r, "bob@example.com") {
			alice.fail("row %q is not bob's", r)
		}
	}
	// Each row's detail is hidden until its "More" is opened, then shown
	// in the row below it.
	shown := func() []bool {
		return run(alice, "looking at the detail rows", chromedp.Evaluate[[]bool](
			`Array.from(document.querySelectorAll("table.rows tr.event-more"), r => r.getClientRects().length > 0)`))
	}
	if v := shown(); len(v) != len(rows) || slices.Contains(v, true) {
		alice.fail("detail rows shown before any More is opened: %v for %d rows", v, len(rows))
	}
	alice.do("opening the first row's detail", chromedp.Click(
		chromedp.CSS(`table.rows tbody tr:first-child details.event-detail > summary`), chromedp.NodeVisible))
	if v := shown(); !v[0] || slices.Contains(v[1:], true) {
		alice.fail("after opening the first row's More, detail rows shown: %v", v)
	}
	if detail := alice.text("table.rows tr.event-more"); !strings.Contains(detail, "Event id") || !strings.Contains(detail, "bob") {
		alice.fail("the first row's detail = %q", detail)
	}
	// The chart for wide screens is the one shown, with its lines drawn.
	box := run(alice, "measuring the chart", chromedp.Evaluate[[]float64](
		`(() => { const s = document.querySelector("svg.chart-wide"); const r = s.getBoundingClientRect();
		  return [r.width, r.height, s.querySelectorAll("polyline").length]; })()`))
	if box[0] < 300 || box[1] < 80 || box[2] != 3 {
		alice.fail("chart is %.0f × %.0f px with %.0f lines", box[0], box[1], box[2])
	}
	// The export link, fetched with the browser's cookies as a download
	// would be (the pages' CSP lets no script fetch), against the API.
	href := run(alice, "reading the export link", chromedp.Evaluate[string](
		`document.querySelector('a[href*="/api/events.csv"]').getAttribute("href")`))
	var cookies []*network.Cookie
	alice.do("reading the cookies", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{d.SiteURL}})
		if err == nil {
			cookies = r.Cookies
		}
		return err
	}))
	get := func(path string) []byte {
		req, err := http.NewRequest("GET", d.SiteURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cookies {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		req.Header.Set("User-Agent", chromeWindows.UserAgent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	recs, err := csv.NewReader(bytes.NewReader(get(href))).ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v", err)
	}
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := json.Unmarshal(get(strings.Replace(href, "/api/events.csv", "/api/events", 1)+"&limit=1000"), &list); err != nil {
		t.Fatal(err)
	}
	var csvIDs, apiIDs []string
	idCol := slices.Index(recs[0], "id")
	if idCol < 0 {
		t.Fatalf("export has no id column: %q", recs[0])
	}
	for _, r := range recs[1:] {
		csvIDs = append(csvIDs, r[idCol])
	}
	for _, it := range list.Items {
		apiIDs = append(apiIDs, it.ID)
	}
	if strings.Join(csvIDs, ",") != strings.Join(apiIDs, ",") || len(csvIDs) != len(rows) {
		t.Errorf("export ids %q, API ids %q, page rows %d", csvIDs, apiIDs, len(rows))
	}
}
