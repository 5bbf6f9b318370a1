package main

// Browser tests: a real Chromium, driven through the DevTools protocol with
// chromedp, signs people in to the real demo (development provider, sample
// app, Caddy with gatehouse) and uses the session pages as they would.
//
// Each person or device gets its own browser context (its own cookies, as a
// separate profile would), with its own user agent, so the session lists
// show different browsers and operating systems. Screenshots of the key
// pages go to $GATEHOUSE_ARTIFACTS when it is set, else to a temporary
// directory; their paths are logged.
//
// Chromium is required, never skipped: the project's test command
// (scripts/test.sh) installs it when it is missing.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// actionTimeout bounds one browser step (a navigation with its redirects, a
// wait for an element). Steps take milliseconds on loopback; the bound only
// turns a hang into a clear failure.
const actionTimeout = 15 * time.Second

// A device is one browser that one person uses.
type device struct {
	// Name labels the device in logs and screenshot file names.
	Name string
	// UserAgent is what the browser says it is; the session pages derive
	// browser, OS and device class from it.
	UserAgent string
	// Platform is navigator.platform, kept consistent with UserAgent.
	Platform string
	// Width and Height are the viewport in CSS pixels. Default: 1280×800.
	Width, Height int64
	// Mobile emulates a phone: touch, mobile viewport, device scale 2.
	Mobile bool
	// ForwardedFor, when set, is sent as X-Forwarded-For on every request,
	// for sites that trust the loopback proxy (screenshots with locations).
	ForwardedFor string
}

// Realistic user agents, one per browser family the pages should tell apart.
var (
	chromeWindows = device{
		UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36",
		Platform:  "Win32",
	}
	firefoxLinux = device{
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
		Platform:  "Linux x86_64",
	}
	safariIPhone = device{
		UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1",
		Platform:  "iPhone",
		Width:     390, Height: 844, Mobile: true,
	}
	safariMac = device{
		UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15",
		Platform:  "MacIntel",
	}
	edgeWindows = device{
		UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36 Edg/138.0.0.0",
		Platform:  "Win32",
	}
	chromeAndroid = device{
		UserAgent: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Mobile Safari/537.36",
		Platform:  "Linux armv8l",
		Width:     412, Height: 915, Mobile: true,
	}
)

// named returns d with a name, for logs and file names.
func (d device) named(name string) device {
	d.Name = name
	return d
}

// chromium is one headless Chromium process for one test.
type chromium struct {
	t         *testing.T
	ctx       context.Context // has run once: the browser is up
	artifacts string
}

// chromiumPath finds the browser, failing (never skipping) when it is
// missing: a skipped browser test passes silently in CI.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium not found (looked for chromium, chromium-browser, google-chrome): " +
		"run the project's test command, ./scripts/test.sh, which installs it (apt-get install chromium)")
	return ""
}

// startChromium starts a headless Chromium with a fresh profile. It stops
// when the test ends.
func startChromium(t *testing.T) *chromium {
	t.Helper()
	path := chromiumPath(t)
	profile := t.TempDir() // before the Cleanup below, so removed after Chromium stops
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox, // tests may run as root, where the sandbox cannot start
		chromedp.DisableGPU,
		// No network traffic of its own: without these, Chromium reaches
		// for update and sync servers and stalls where there are none.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first Run starts the browser and binds its life to ctx, so it
	// must not carry a timeout; a watchdog turns a stalled start into a
	// failure instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting %s: %v", path, err)
		}
	case <-time.After(30 * time.Second):
		cancelBrowser()
		t.Fatalf("starting %s: no answer within 30s", path)
	}
	return &chromium{t: t, ctx: ctx, artifacts: artifactDir(t)}
}

// artifactDir is where a test's screenshots go: a directory per test under
// $GATEHOUSE_ARTIFACTS, or a temporary one.
func artifactDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("GATEHOUSE_ARTIFACTS")
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tab is one device's browser window, in a browser context of its own.
type tab struct {
	t   *testing.T
	c   *chromium
	dev device
	ctx context.Context

	mu      sync.Mutex
	dialogs []string // messages of the JavaScript dialogs accepted so far
	docs    []string // "METHOD URL" of every document request, redirects included
}

// open starts a device: a new browser context (no cookies shared with any
// other device) with one tab that claims to be dev.
func (c *chromium) open(dev device) *tab {
	t := c.t
	t.Helper()
	ctx, cancel := chromedp.NewContext(c.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab; see startChromium
		t.Fatalf("%s: opening a tab: %v", dev.Name, err)
	}
	tb := &tab{t: t, c: c, dev: dev, ctx: ctx}

	// The pages ask confirm() before signing anything out; accept as a
	// person clicking OK would, and remember what was asked.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.dialogs = append(tb.dialogs, ev.Message)
			tb.mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()

	// Page requests, to tell where a navigation went. Listen (unlike
	// Events) records each one before the navigation that caused it
	// returns, so the log is complete when the test reads it.
	err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*network.EventRequestWillBeSent); ok && ev.Type == network.ResourceTypeDocument {
			tb.mu.Lock()
			tb.docs = append(tb.docs, ev.Request.Method+" "+ev.Request.URL)
			tb.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("%s: listening to requests: %v", dev.Name, err)
	}

	w, h := dev.Width, dev.Height
	if w == 0 {
		w, h = 1280, 800
	}
	var vpOpts []chromedp.EmulateViewportOption
	if dev.Mobile {
		vpOpts = append(vpOpts, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	tb.do("setting up the device",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{
				UserAgent: dev.UserAgent, Platform: dev.Platform, AcceptLanguage: "en-GB,en;q=0.8",
			})
			return err
		}),
		setExtraHeaders(tb.ownHeaders()),
		chromedp.EmulateViewport(w, h, vpOpts...),
	)
	return tb
}

// fail ends the test with what the device shows: its URL, its text and a
// screenshot, so that a failure in CI can be understood afterwards.
func (tb *tab) fail(format string, args ...any) {
	tb.t.Helper()
	msg := fmt.Sprintf(format, args...)
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		p := filepath.Join(tb.c.artifacts, "FAILED-"+tb.dev.Name+".png")
		if os.WriteFile(p, png, 0o644) == nil {
			msg += "\nscreenshot: " + p
		}
	}
	tb.t.Fatalf("%s: %s\nat %s, page text:\n%s", tb.dev.Name, msg, loc, indent(body))
}

func indent(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 3000 {
		s = s[:3000] + "…"
	}
	return "\t" + strings.ReplaceAll(s, "\n", "\n\t")
}

// do runs steps with a timeout, failing the test with what step was.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.fail("%s: %v", what, err)
	}
}

// run is do for a step with a value.
func run[T any](tb *tab, what string, a chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.fail("%s: %v", what, err)
	}
	return v
}

// navigate loads u and returns the HTTP status of the final document.
func (tb *tab) navigate(u string) int64 {
	tb.t.Helper()
	resp := run(tb, "loading "+u, chromedp.NavigateResponse(u))
	if resp == nil {
		tb.fail("loading %s: no response", u)
	}
	return resp.Status
}

// mark returns the position in the device's request log; requestsSince
// lists the document requests made after it.
func (tb *tab) mark() int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return len(tb.docs)
}

func (tb *tab) requestsSince(mark int) []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.docs[mark:]...)
}

// clickAndLoad clicks the element sel (XPath or CSS) and waits for the page
// that follows (a form post, its redirects, confirm() included).
func (tb *tab) clickAndLoad(sel string) {
	tb.t.Helper()
	run(tb, "clicking "+sel, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.Search(sel), chromedp.NodeVisible)))
}

func (tb *tab) location() string {
	tb.t.Helper()
	return run(tb, "reading the location", chromedp.Location())
}

// text is the visible text of the first element matching the CSS selector,
// waiting for it to appear.
func (tb *tab) text(css string) string {
	tb.t.Helper()
	return strings.TrimSpace(run(tb, "reading "+css, chromedp.Text(chromedp.CSS(css), chromedp.NodeVisible)))
}

// texts is the visible text of every element matching the CSS selector, now
// (no wait: an empty list is an answer).
func (tb *tab) texts(css string) []string {
	tb.t.Helper()
	return run(tb, "listing "+css, chromedp.Evaluate[[]string](
		fmt.Sprintf(`Array.from(document.querySelectorAll(%q), e => e.innerText.trim())`, css)))
}

// lastDialog is the message of the latest confirm() the device accepted.
func (tb *tab) lastDialog() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.dialogs) == 0 {
		return ""
	}
	return tb.dialogs[len(tb.dialogs)-1]
}

// screenshot saves the whole page as name.png and logs where.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	png := run(tb, "taking a screenshot", chromedp.FullScreenshot(100))
	p := filepath.Join(tb.c.artifacts, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot %s: %s", tb.dev.Name, p)
}

// expectSignInPage checks that the device is on the provider's sign-in
// form, not on the app.
func (tb *tab) expectSignInPage(d *demo) {
	tb.t.Helper()
	if loc := tb.location(); !strings.HasPrefix(loc, d.IssuerURL+"/") {
		tb.fail("expected the provider's sign-in page (%s/…), got %s", d.IssuerURL, loc)
	}
	if h := tb.text("h1"); h != "Sign in" {
		tb.fail("sign-in page heading = %q, want %q", h, "Sign in")
	}
	run(tb, "waiting for the sign-in form", chromedp.WaitVisible(chromedp.CSS("#username")))
}

// expectSignedOut navigates to path on the site after the device's session
// was ended elsewhere: gatehouse must send it to the provider, and the
// provider must ask for a password again rather than sign it straight back
// in with its own single-sign-on session.
func (tb *tab) expectSignedOut(d *demo, path string) {
	tb.t.Helper()
	m := tb.mark()
	tb.navigate(d.SiteURL + path)
	chain := tb.requestsSince(m)
	if !slices.ContainsFunc(chain, func(r string) bool { return strings.HasPrefix(r, "GET "+d.IssuerURL+"/") }) {
		tb.fail("the ended session still reached the app without a detour to the provider: %q", chain)
	}
	if loc := tb.location(); !strings.HasPrefix(loc, d.IssuerURL+"/") {
		tb.fail("after the session was ended, %s went to the provider and straight back in "+
			"(the provider's single-sign-on session signed it in again without a password; "+
			"the sign-in after an ended session should carry prompt=login):\n\t%s",
			path, strings.Join(chain, "\n\t"))
	}
	tb.expectSignInPage(d)
}

// signIn opens path on the site, expects the provider's form, signs in as
// user and expects the app page for path. It takes a screenshot of the
// form when shot is set.
func (tb *tab) signIn(d *demo, path, user string, shot bool) {
	tb.t.Helper()
	tb.navigate(d.SiteURL + path)
	tb.expectSignInPage(d)
	if shot {
		tb.screenshot(tb.dev.Name + "-login")
	}
	tb.submitSignIn(user)
	if tb.refusedSignIn() {
		// Regression: the provider once sent Referrer-Policy: no-referrer,
		// so browsers posted its form with "Origin: null" and its
		// login-CSRF check refused every sign-in.
		tb.fail("the development provider refused its own sign-in form (\"posted from another site\")")
	}
	if loc := tb.location(); loc != d.SiteURL+path {
		tb.fail("after signing in as %s: at %s, want %s", user, loc, d.SiteURL+path)
	}
	if body := tb.text("main"); !strings.Contains(body, user+"@example.com") || !strings.Contains(body, path) {
		tb.fail("the app page does not show %s@example.com and %s", user, path)
	}
}

// submitSignIn fills the provider's form and submits it.
func (tb *tab) submitSignIn(user string) {
	tb.t.Helper()
	tb.do("filling the sign-in form",
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), "demo"),
	)
	tb.clickAndLoad(`form button[type="submit"]`)
}

// ownHeaders are the extra request headers the device always sends.
func (tb *tab) ownHeaders() network.Headers {
	h := network.Headers{}
	if tb.dev.ForwardedFor != "" {
		h["X-Forwarded-For"] = tb.dev.ForwardedFor
	}
	return h
}

// setExtraHeaders replaces the tab's extra request headers with h.
func setExtraHeaders(h network.Headers) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h})
		return err
	})
}

// refusedSignIn tells whether the provider answered the sign-in form with
// its cross-site refusal.
func (tb *tab) refusedSignIn() bool {
	tb.t.Helper()
	return strings.Contains(run(tb, "reading the page", chromedp.Evaluate[string](`document.body.innerText`)),
		"posted from another site")
}

// startBrowserDemo is startTestDemo with a Chromium next to it.
func startBrowserDemo(t *testing.T, redisURL string) (*demo, *chromium) {
	t.Helper()
	c := startChromium(t)
	d, _ := startTestDemo(t, redisURL)
	return d, c
}

// An admin revokes someone's session from the admin page; that person's
// browser must sign in again on its next navigation.
func TestBrowserAdminRevokesSession(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			redisURL := ""
			if store == "redis" {
				redisURL = "redis://" + testredis.Start(t)
			}
			d, c := startBrowserDemo(t, redisURL)
			bob := c.open(firefoxLinux.named("bob-firefox"))
			alice := c.open(chromeWindows.named("alice-chrome"))

			bob.signIn(d, "/orders?page=2", "bob", true)
			bob.screenshot("bob-app")
			alice.signIn(d, "/", "alice", false)

			if st := alice.navigate(d.SiteURL + "/.gatehouse/admin/"); st != 200 {
				alice.fail("admin page: status %d, want 200", st)
			}
			if h := alice.text("h1"); h != "Administration" {
				alice.fail("admin page heading = %q", h)
			}
			heads := strings.Join(alice.texts("table.rows thead th"), "|")
			for _, col := range []string{"USER", "DEVICE", "LOCATION", "IP ADDRESS", "LAST ACCESS"} {
				if !strings.Contains(strings.ToUpper(heads), col) {
					alice.fail("sessions table has no %s column (columns: %s)", col, heads)
				}
			}
			bobRow := `//table[contains(@class,"rows")]//tr[contains(., "bob@example.com")]`
			rows := alice.texts("table.rows tbody tr")
			if len(rows) != 2 {
				alice.fail("admin sessions: %d rows, want 2 (alice, bob)", len(rows))
			}
			bobText := alice.text("table.rows tbody tr:has(a[href*='user=bob'])")
			for _, want := range []string{"Bob Staff", "bob@example.com", "Firefox on Linux", "127.0.0.1"} {
				if !strings.Contains(bobText, want) {
					alice.fail("bob's row %q lacks %q", bobText, want)
				}
			}
			alice.screenshot("admin-sessions")

			alice.clickAndLoad(bobRow + `//button[normalize-space()="Revoke"]`)
			if q := alice.lastDialog(); !strings.Contains(q, "bob@example.com") || !strings.Contains(q, "Firefox on Linux") {
				alice.fail("confirm() asked %q, want the user and device named", q)
			}
			if msg := alice.text(".flash.ok"); msg != "The session was signed out." {
				alice.fail("flash after revoking = %q", msg)
			}
			rows = alice.texts("table.rows tbody tr")
			if len(rows) != 1 || !strings.Contains(rows[0], "alice@example.com") {
				alice.fail("after revoking bob: rows %q, want only alice's", rows)
			}
			alice.screenshot("admin-after-revoke")

			// The revocation is in the activity log, with who did it.
			alice.clickAndLoad(`//nav[contains(@class,"tabs")]//a[normalize-space()="Activity"]`)
			if first := alice.text("table.rows tbody tr"); !strings.Contains(first, "Session revoked") ||
				!strings.Contains(first, "bob@example.com") || !strings.Contains(first, "by alice@example.com") {
				alice.fail("newest activity row = %q, want bob's session revoked by alice", first)
			}
			alice.navigate(d.SiteURL + "/.gatehouse/admin/activity?type=session_revoked")
			if rows := alice.texts("table.rows tbody tr:not(.event-more)"); len(rows) != 1 {
				alice.fail("activity filtered to session_revoked: %d rows, want 1", len(rows))
			}
			if clear := alice.texts(`.filter-actions a`); len(clear) != 1 || clear[0] != "Clear" {
				alice.fail("a type filter offers no Clear link: %q", clear)
			}
			alice.screenshot("activity")

			// The revoked browser's next navigation must not reach the app.
			bob.expectSignedOut(d, "/orders")
			bob.screenshot("bob-after-revoke")
		})
	}
}

// Someone signed in on two devices signs out "all other sessions" from
// one; the other must sign in again while the first stays signed in.
func TestBrowserSignOutOtherSessions(t *testing.T) {
	d, c := startBrowserDemo(t, "")
	laptop := c.open(firefoxLinux.named("bob-laptop"))
	phone := c.open(safariIPhone.named("bob-phone"))
	laptop.signIn(d, "/", "bob", false)
	phone.signIn(d, "/", "bob", false)

	if st := phone.navigate(d.SiteURL + "/.gatehouse/"); st != 200 {
		phone.fail("my sessions: status %d, want 200", st)
	}
	if h := phone.text("h1"); h != "Your sessions" {
		phone.fail("my sessions heading = %q", h)
	}
	cards := phone.texts("li.card")
	if len(cards) != 2 {
		phone.fail("my sessions: %d cards, want 2", len(cards))
	}
	current := phone.text("li.card.current")
	for _, want := range []string{"Safari on iOS", "This device", "Mobile"} {
		if !strings.Contains(current, want) {
			phone.fail("current session card %q lacks %q", current, want)
		}
	}
	other := phone.text("li.card:not(.current)")
	if !strings.Contains(other, "Firefox on Linux") || strings.Contains(other, "This device") {
		phone.fail("other session card = %q, want Firefox on Linux without the this-device mark", other)
	}
	phone.screenshot("my-sessions-two-devices")

	phone.clickAndLoad(`//button[normalize-space()="Sign out all other sessions"]`)
	if q := phone.lastDialog(); !strings.Contains(q, "other sessions") {
		phone.fail("confirm() asked %q", q)
	}
	if msg := phone.text(".flash.ok"); msg != "Signed out of 1 other session." {
		phone.fail("flash = %q", msg)
	}
	if cards := phone.texts("li.card"); len(cards) != 1 || !strings.Contains(cards[0], "This device") {
		phone.fail("after signing out the others: cards %q, want only this device", cards)
	}
	phone.screenshot("my-sessions-after")

	phone.navigate(d.SiteURL + "/inventory")
	if loc := phone.location(); loc != d.SiteURL+"/inventory" {
		phone.fail("the device that signed out the others is at %s, want the app", loc)
	}
	if body := phone.text("main"); !strings.Contains(body, "bob@example.com") {
		phone.fail("the app does not show bob on the remaining device")
	}

	laptop.expectSignedOut(d, "/inventory")
	laptop.screenshot("laptop-after")
}

// The admin page is for admins: anyone else gets the 403 page, no data.
func TestBrowserAdminPageForbidden(t *testing.T) {
	d, c := startBrowserDemo(t, "")
	alice := c.open(chromeWindows.named("alice"))
	alice.signIn(d, "/", "alice", false) // so that there is someone else's data to leak
	bob := c.open(firefoxLinux.named("bob"))
	bob.signIn(d, "/", "bob", false)

	if st := bob.navigate(d.SiteURL + "/.gatehouse/admin/"); st != 403 {
		bob.fail("admin page for a non-admin: status %d, want 403", st)
	}
	if h := bob.text("h1"); h != "Administrators only" {
		bob.fail("403 page heading = %q", h)
	}
	body := bob.text("body")
	for _, leak := range []string{"alice", "Revoke", "Sessions of", "IP address"} {
		if strings.Contains(body, leak) {
			bob.fail("403 page shows %q", leak)
		}
	}
	if n := bob.texts("table, .tabs, form.filters"); len(n) != 0 {
		bob.fail("403 page has admin UI: %q", n)
	}
	if links := bob.texts(`nav.nav a[href$="/admin/"]`); len(links) != 0 {
		bob.fail("a non-admin sees an Admin link")
	}
	bob.screenshot("admin-forbidden")

	// The JSON behind the page is refused too.
	if st := bob.navigate(d.SiteURL + "/.gatehouse/api/sessions"); st != 403 {
		bob.fail("GET /.gatehouse/api/sessions as bob: %d, want 403", st)
	}
	if body := bob.text("body"); strings.Contains(body, "alice") {
		bob.fail("the sessions API shows alice's data to bob: %s", body)
	}
}
