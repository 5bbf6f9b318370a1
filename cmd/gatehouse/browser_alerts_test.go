package main

import (
	"strings"
	"testing"
	"time"
)

// Issue 8, item 4, in Chromium: a sign-in from a browser the user has not
// used before shows on the Alerts tab as a new device, with its evidence.
func TestBrowserAlertsTabShowsAnomaly(t *testing.T) {
	d, c := startBrowserDemo(t, "")
	first := c.open(chromeWindows.named("alice-chrome"))
	first.signIn(d, "/", "alice", false)
	second := c.open(firefoxLinux.named("alice-firefox"))
	second.signIn(d, "/", "alice", false)
	// The rules run off the request path: the alert appears shortly.
	deadline := time.Now().Add(10 * time.Second)
	for {
		first.navigate(d.SiteURL + "/.gatehouse/admin/alerts")
		rows := first.texts("table.rows tbody tr")
		for _, r := range rows {
			if strings.Contains(r, "New device") && strings.Contains(r, "alice@example.com") &&
				strings.Contains(r, "Firefox on Linux") && strings.Contains(r, "Chrome on Windows") {
				return
			}
		}
		if time.Now().After(deadline) {
			first.fail("no new-device alert for alice on the Alerts tab; rows: %q", rows)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
