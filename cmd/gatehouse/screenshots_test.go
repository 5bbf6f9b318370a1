//go:build screenshots

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/geo/geotest"
)

// TestScreenshotTool is a tool, not a test: it writes the README's
// screenshots into the directory GATEHOUSE_SCREENSHOTS names (relative to
// the module root). The build tag keeps it out of normal test runs:
//
//	GATEHOUSE_SCREENSHOTS=docs/screenshots go test -tags screenshots ./cmd/gatehouse -run TestScreenshotTool -v
//
// It runs a demo with more people than alice and bob, a made-up GeoIP
// database and a site that trusts the loopback "proxy", so that each
// browser's X-Forwarded-For gives it its own address and place. The pages
// of the activity log (issue 8) are taken at 1280 px as name.png and at
// 420 px as name-narrow.png. Full-page views of every tab at 420 px, and a
// few empty states, for checking the small-screen layout, go to
// $GATEHOUSE_ARTIFACTS or a temporary directory.
func TestScreenshotTool(t *testing.T) {
	out := os.Getenv("GATEHOUSE_SCREENSHOTS")
	if out == "" {
		t.Fatal("set GATEHOUSE_SCREENSHOTS=docs/screenshots to say where to write the README screenshots")
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(moduleRoot(t), out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	d := startScreenshotDemo(t)
	c := startChromium(t)
	at := func(dev device, name, ip string) device {
		dev.Name, dev.ForwardedFor = name, ip
		return dev
	}

	// Everyone signs in; the first form is the login screenshot.
	alice := c.open(at(chromeWindows, "alice-windows", "198.51.100.23"))
	alice.navigate(d.SiteURL + "/")
	alice.expectSignInPage(d)
	alice.shot(out, "login")
	alice.signIn(d, "/", "alice", false)
	bobLaptop := c.open(at(firefoxLinux, "bob-laptop", "203.0.113.45"))
	bobLaptop.signIn(d, "/", "bob", false)
	bobPhone := c.open(at(safariIPhone, "bob-phone", "203.0.113.90"))
	bobPhone.signIn(d, "/", "bob", false)
	carol := c.open(at(edgeWindows, "fiona-windows", "192.0.2.14"))
	carol.signIn(d, "/reports", "fiona", false)
	carolMac := c.open(at(safariMac, "fiona-mac", "192.0.2.15"))
	carolMac.signIn(d, "/", "fiona", false)
	dave := c.open(at(chromeAndroid, "dave-android", "198.51.100.140"))
	dave.signIn(d, "/", "dave", false)
	daveOld := c.open(at(chromeWindows, "dave-windows", "198.51.100.141"))
	daveOld.signIn(d, "/", "dave", false)
	erin := c.open(at(safariMac, "erin-mac", "203.0.113.200"))
	erin.signIn(d, "/", "erin", false)
	erin.clickAndLoad(`//button[normalize-space()="Sign out"]`)
	// A forged callback: a failed sign-in from somewhere unusual.
	stranger := c.open(at(chromeWindows, "stranger", "192.0.2.200"))
	stranger.navigate(d.SiteURL + "/.gatehouse/callback?state=forged&code=forged")
	// alice again, minutes after Amsterdam, from New York: the anomaly
	// rules flag a new country and impossible travel (the others' second
	// devices are new devices).
	aliceTrip := c.open(at(chromeWindows, "alice-trip", "203.0.113.210"))
	aliceTrip.signIn(d, "/", "alice", false)

	// An admin ends dave's old session.
	alice.navigate(d.SiteURL + "/.gatehouse/admin/?user=dave")
	alice.screenshot("review-admin-one-user")
	alice.clickAndLoad(`//tr[contains(., "Chrome on Windows")]//button[normalize-space()="Revoke"]`)

	alice.navigate(d.SiteURL + "/.gatehouse/admin/")
	alice.shot(out, "admin-sessions")
	alice.navigate(d.SiteURL + "/.gatehouse/admin/users")
	alice.shot(out, "admin-users")
	// An auditor sees the same sessions without revoke controls.
	sam := c.open(at(firefoxLinux, "sam-laptop", "203.0.113.70"))
	sam.signIn(d, "/", "sam", false)
	sam.navigate(d.SiteURL + "/.gatehouse/admin/")
	sam.shot(out, "admin-auditor")
	sam.navigate(d.SiteURL + "/.gatehouse/admin/users")
	sam.screenshot("review-auditor-users")
	alice.navigate(d.SiteURL + "/.gatehouse/admin/history?user=dave")
	alice.screenshot("review-login-history-dave")
	alice.navigate(d.SiteURL + "/.gatehouse/admin/activity?type=anomaly")
	alice.screenshot("review-activity-none")

	// The pages of issue 8, each at 1280 px and at 420 px, as tall as
	// their content up to a limit: the Activity tab (filters and chart),
	// one of its rows with the full detail open, Login history, Alerts
	// and bob's own sessions and history.
	newPages := func(width string, maxHeight float64) {
		suffix := ""
		if width == "narrow" {
			suffix = "-narrow"
		}
		alice.navigate(d.SiteURL + "/.gatehouse/admin/activity")
		alice.shotPage(out, "activity"+suffix, maxHeight)
		// alice's two anomalies; the first is the impossible travel.
		alice.navigate(d.SiteURL + "/.gatehouse/admin/activity?type=anomaly&user=alice")
		alice.do("opening a row's detail", chromedp.Click(
			chromedp.Search(`//tr[.//div[normalize-space()="impossible travel"]]//details[@class="event-detail"]/summary`),
			chromedp.NodeVisible))
		alice.shotElement(out, "activity-detail"+suffix, ".table-wrap", maxHeight)
		alice.navigate(d.SiteURL + "/.gatehouse/admin/history")
		alice.shotPage(out, "login-history"+suffix, maxHeight)
		alice.navigate(d.SiteURL + "/.gatehouse/admin/alerts")
		alice.shotPage(out, "alerts"+suffix, maxHeight)
		bobLaptop.navigate(d.SiteURL + "/.gatehouse/")
		bobLaptop.shotPage(out, "my-sessions"+suffix, maxHeight)
	}
	newPages("wide", 1200)

	// Narrow windows, full pages, for review rather than the README,
	// then the README's narrow shots.
	for _, tb := range []*tab{alice, bobLaptop} {
		tb.do("narrowing the window", chromedp.EmulateViewport(420, 900))
	}
	for _, p := range []struct {
		tb   *tab
		path string
		name string
	}{
		{alice, "/.gatehouse/admin/", "narrow-admin-sessions"},
		{alice, "/.gatehouse/admin/users", "narrow-admin-users"},
		{alice, "/.gatehouse/admin/activity", "narrow-activity"},
		{alice, "/.gatehouse/admin/alerts", "narrow-alerts"},
		{alice, "/.gatehouse/admin/alerts?user=nobody", "narrow-alerts-none"},
		{bobLaptop, "/.gatehouse/", "narrow-my-sessions"},
		{alice, "/.gatehouse/admin/history", "narrow-login-history"},
		{alice, "/.gatehouse/admin/?country=KP", "narrow-admin-no-match"},
		{alice, "/.gatehouse/admin/users?prefix=zz", "narrow-admin-no-users"},
		{alice, "/.gatehouse/admin/activity?type=login_failed", "narrow-activity-failures"},
	} {
		p.tb.navigate(d.SiteURL + p.path)
		p.tb.screenshot(p.name)
	}
	newPages("narrow", 1400)
}

// shot saves the viewport (not the full page) as dir/name.png.
func (tb *tab) shot(dir, name string) {
	tb.t.Helper()
	tb.save(dir, name, run(tb, "taking a screenshot", chromedp.CaptureScreenshot()))
}

// shotPage saves the page from its top, as tall as its content but at most
// maxHeight CSS pixels, as dir/name.png. A longer page is cut below the last
// row, card or form that fits, not through one.
func (tb *tab) shotPage(dir, name string, maxHeight float64) {
	tb.t.Helper()
	h := run(tb, "measuring the page", chromedp.Evaluate[float64](fmt.Sprintf(`((max, margin) => {
		const h = document.documentElement.scrollHeight;
		if (h <= max) return h;
		let cut = 0;
		for (const e of document.querySelectorAll("main tr, main .card, main form, main figure, main h2")) {
			const b = e.getBoundingClientRect().bottom + window.scrollY;
			if (b + margin <= max && b > cut) cut = b;
		}
		return cut > 0 ? cut + margin : max;
	})(%g, 10)`, maxHeight)))
	tb.shotClip(dir, name, 0, h)
}

// shotElement saves the first element matching css, with a margin of the
// page around it, at most maxHeight CSS pixels tall, as dir/name.png.
func (tb *tab) shotElement(dir, name, css string, maxHeight float64) {
	tb.t.Helper()
	const margin = 16
	box := run(tb, "measuring "+css, chromedp.Evaluate[[]float64](fmt.Sprintf(
		`(r => [r.top + window.scrollY, r.height])(document.querySelector(%q).getBoundingClientRect())`, css)))
	if len(box) != 2 {
		tb.fail("measuring %s: got %v", css, box)
	}
	top := max(box[0]-margin, 0)
	tb.shotClip(dir, name, top, min(box[1]+2*margin, maxHeight))
}

// shotClip saves the window's full width from y down, h CSS pixels tall,
// whether or not it is in the viewport.
func (tb *tab) shotClip(dir, name string, y, h float64) {
	tb.t.Helper()
	w := run(tb, "measuring the window", chromedp.Evaluate[float64](`document.documentElement.clientWidth`))
	png := run(tb, "taking a screenshot", chromedp.Action[[]byte](func(ctx context.Context, target *chromedp.Target) ([]byte, error) {
		r, err := cdp.Call(ctx, target, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format:                page.CaptureScreenshotFormatPng,
			Clip:                  &page.Viewport{X: 0, Y: y, Width: w, Height: h, Scale: 1},
			FromSurface:           ptrTrue(),
			CaptureBeyondViewport: ptrTrue(),
		})
		if err != nil {
			return nil, fmt.Errorf("capturing %s: %w", name, err)
		}
		return r.Data, nil
	}))
	tb.save(dir, name, png)
}

func ptrTrue() *bool { v := true; return &v }

func (tb *tab) save(dir, name string, png []byte) {
	tb.t.Helper()
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("wrote %s (%d KB)", p, len(png)/1024)
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// startScreenshotDemo is startDemo with five people, a GeoIP database for
// the documentation address ranges, and loopback trusted as a proxy.
func startScreenshotDemo(t *testing.T) *demo {
	t.Helper()
	users := append(devidp.DemoUsers(),
		devidp.User{Subject: "fiona", Username: "fiona", Password: "demo", Email: "fiona@example.com", Name: "Fiona Finance", Groups: []string{"staff", "finance"}},
		devidp.User{Subject: "dave", Username: "dave", Password: "demo", Email: "dave@example.com", Name: "Dave Field", Groups: []string{"staff"}},
		devidp.User{Subject: "erin", Username: "erin", Password: "demo", Email: "erin@example.com", Name: "Erin Contractor", Groups: []string{"contractors"}},
		devidp.User{Subject: "sam", Username: "sam", Password: "demo", Email: "sam@example.com", Name: "Sam Security", Groups: []string{"security"}},
	)
	geoDB := filepath.Join(t.TempDir(), "city.mmdb")
	geotest.WriteCity(t, geoDB, []geotest.Entry{
		{Network: "198.51.100.0/25", City: "Amsterdam", Region: "North Holland", Country: "NL", Latitude: 52.37, Longitude: 4.89},
		{Network: "198.51.100.128/25", City: "Lisbon", Region: "Lisbon", Country: "PT", Latitude: 38.72, Longitude: -9.14},
		{Network: "203.0.113.0/26", City: "Berlin", Region: "Land Berlin", Country: "DE", Latitude: 52.52, Longitude: 13.40},
		{Network: "203.0.113.64/26", City: "Hamburg", Region: "Hamburg", Country: "DE", Latitude: 53.55, Longitude: 10.0},
		{Network: "203.0.113.192/26", City: "New York", Region: "New York", Country: "US", Latitude: 40.71, Longitude: -74.0},
		{Network: "192.0.2.0/25", City: "London", Region: "England", Country: "GB", Latitude: 51.51, Longitude: -0.09},
		{Network: "192.0.2.128/25", City: "São Paulo", Region: "São Paulo", Country: "BR", Latitude: -23.55, Longitude: -46.63},
	})

	idpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &demo{IssuerURL: "http://" + publicHost(idpLn.Addr().String())}
	admin := freeAddr(t)
	listen := freeAddr(t)
	d.SiteURL = "http://" + publicHost(listen)
	idp, err := devidp.New(devidp.Config{Issuer: d.IssuerURL, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	idpSrv := &http.Server{Handler: idp, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = idpSrv.Serve(idpLn) }()
	t.Cleanup(func() { _ = idpSrv.Close() })
	clientSecret := randomHex(16)
	idp.AddClient(devidp.Client{
		ID: "gatehouse-demo", Secret: clientSecret,
		RedirectURIs:           []string{d.SiteURL + "/.gatehouse/callback"},
		PostLogoutRedirectURIs: []string{d.SiteURL + "/.gatehouse/signed-out"},
		BackchannelLogoutURI:   d.SiteURL + "/.gatehouse/backchannel-logout",
	})
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appSrv := &http.Server{Handler: http.HandlerFunc(sampleApp), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = appSrv.Serve(appLn) }()
	t.Cleanup(func() { _ = appSrv.Close() })

	cfg, err := demoConfig(demoConfigInput{
		store: "memory", listen: listen, issuer: d.IssuerURL, clientSecret: clientSecret,
		upstream: appLn.Addr().String(), admin: admin, geoip: geoDB,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Trust the browsers' X-Forwarded-For: each gets its own address.
	var m map[string]any
	if err := json.Unmarshal(cfg, &m); err != nil {
		t.Fatal(err)
	}
	srv := m["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)["demo"].(map[string]any)
	srv["trusted_proxies"] = map[string]any{"source": "static", "ranges": []string{"127.0.0.1/32", "::1/128"}}
	// Sam audits: the read-only admin pages.
	setGatehouse(srv, "auditor_groups", []string{"security"})
	// The pages show times in the zone of the demo's people, named.
	if g, ok := m["apps"].(map[string]any)["gatehouse"].(map[string]any); ok {
		g["timezone"] = "Europe/Amsterdam"
	}
	if cfg, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	return d
}

// setGatehouse sets key on every gatehouse handler below v.
func setGatehouse(v any, key string, val any) {
	switch v := v.(type) {
	case map[string]any:
		if v["handler"] == "gatehouse" {
			v[key] = val
		}
		for _, x := range v {
			setGatehouse(x, key, val)
		}
	case []any:
		for _, x := range v {
			setGatehouse(x, key, val)
		}
	}
}
