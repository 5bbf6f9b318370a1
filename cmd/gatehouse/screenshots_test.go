//go:build screenshots

package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
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
// browser's X-Forwarded-For gives it its own address and place. Narrow
// (420 px) views of the same pages, for checking the small-screen layout,
// go to $GATEHOUSE_ARTIFACTS or a temporary directory.
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
	alice.navigate(d.SiteURL + "/.gatehouse/admin/activity")
	alice.shot(out, "activity")
	alice.navigate(d.SiteURL + "/.gatehouse/admin/alerts")
	alice.shot(out, "alerts")
	bobLaptop.navigate(d.SiteURL + "/.gatehouse/")
	bobLaptop.shot(out, "my-sessions")
	// An auditor sees the same sessions without revoke controls.
	sam := c.open(at(firefoxLinux, "sam-laptop", "203.0.113.70"))
	sam.signIn(d, "/", "sam", false)
	sam.navigate(d.SiteURL + "/.gatehouse/admin/")
	sam.shot(out, "admin-auditor")
	sam.navigate(d.SiteURL + "/.gatehouse/admin/users")
	sam.screenshot("review-auditor-users")
	// Login history (issue 8): everyone's, and one user's from the Users tab.
	alice.navigate(d.SiteURL + "/.gatehouse/admin/history")
	alice.shot(out, "login-history")
	alice.navigate(d.SiteURL + "/.gatehouse/admin/history?user=dave")
	alice.screenshot("review-login-history-dave")

	// Empty states and narrow windows, full pages, for review rather than
	// the README.
	alice.navigate(d.SiteURL + "/.gatehouse/admin/activity?type=anomaly")
	alice.screenshot("review-activity-none")
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
	} {
		p.tb.navigate(d.SiteURL + p.path)
		p.tb.screenshot(p.name)
	}
	// The Activity tab at 420 px, for the README: filters, chart, rows.
	alice.navigate(d.SiteURL + "/.gatehouse/admin/activity")
	alice.shot(out, "activity-narrow")
	alice.navigate(d.SiteURL + "/.gatehouse/admin/activity?type=login_failed")
	alice.screenshot("narrow-activity-failures")
}

// shot saves the viewport (not the full page) as dir/name.png.
func (tb *tab) shot(dir, name string) {
	tb.t.Helper()
	png := run(tb, "taking a screenshot", chromedp.CaptureScreenshot())
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
	listen, err := resolvePort("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
		upstream: appLn.Addr().String(), admin: freeAddr(t), geoip: geoDB,
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
