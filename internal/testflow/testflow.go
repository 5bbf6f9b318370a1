// Package testflow drives sign-ins the way a browser does, for tests: a
// cookie jar, HTML Accept headers on navigations, redirects followed hop
// by hop, and the development provider's login form filled in. It is
// imported only by _test.go files.
package testflow

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// FirefoxUA is the User-Agent browsers send unless a test sets another.
const FirefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

// Browser is an HTTP client that behaves like a browser.
type Browser struct {
	T      testing.TB
	Jar    *cookiejar.Jar
	Client *http.Client
	UA     string
}

// New returns a browser with an empty cookie jar that does not follow
// redirects by itself, so tests can look at each hop.
func New(t testing.TB) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{T: t, Jar: jar, UA: FirefoxUA, Client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}}
}

// Page is a response, read.
type Page struct {
	Status int
	URL    string
	Header http.Header
	Body   string
}

// Do sends one request, as a navigation (Accept: text/html) or as an API
// call (Accept: application/json), with extra headers as name, value pairs.
func (b *Browser) Do(method, u string, form url.Values, nav bool, hdr ...string) Page {
	b.T.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.T.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", b.UA)
	if nav {
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.Client.Do(req)
	if err != nil {
		b.T.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return Page{Status: resp.StatusCode, URL: u, Header: resp.Header, Body: string(data)}
}

// Follow navigates to u and follows redirects, returning the last page.
func (b *Browser) Follow(u string) Page {
	b.T.Helper()
	for range 20 {
		p := b.Do(http.MethodGet, u, nil, true)
		if p.Status < 300 || p.Status >= 400 {
			return p
		}
		u = b.Resolve(u, p.Header.Get("Location"))
	}
	b.T.Fatal("too many redirects")
	return Page{}
}

// Resolve resolves a Location against the URL it came from.
func (b *Browser) Resolve(base, ref string) string {
	bu, _ := url.Parse(base)
	ru, err := url.Parse(ref)
	if err != nil {
		b.T.Fatalf("bad Location %q: %v", ref, err)
	}
	return bu.ResolveReference(ru).String()
}

// CallbackPath marks gatehouse's callback among the redirects (the
// provider has a /authorize/callback of its own).
const CallbackPath = "/.gatehouse/callback?"

var (
	// FormAction finds the provider's login form.
	FormAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	formID     = regexp.MustCompile(`name="id" value="([^"]*)"`)
)

// postLogin fills in the provider's login form on p.
func (b *Browser) postLogin(p Page, user, password string) (Page, string) {
	b.T.Helper()
	a := FormAction.FindStringSubmatch(p.Body)
	id := formID.FindStringSubmatch(p.Body)
	if a == nil || id == nil {
		b.T.Fatalf("no login form at %s (status %d): %.300s", p.URL, p.Status, p.Body)
	}
	action := b.Resolve(p.URL, html.UnescapeString(a[1]))
	form := url.Values{"id": {html.UnescapeString(id[1])}, "username": {user}, "password": {password}}
	return b.Do(http.MethodPost, action, form, true), action
}

// SubmitLogin fills in the login form on p and follows the redirects; it
// returns the final page and the gatehouse callback URL it passed.
func (b *Browser) SubmitLogin(p Page, user, password string) (final Page, callback string) {
	b.T.Helper()
	resp, u := b.postLogin(p, user, password)
	for range 20 {
		if resp.Status < 300 || resp.Status >= 400 {
			return resp, callback
		}
		u = b.Resolve(u, resp.Header.Get("Location"))
		if strings.Contains(u, CallbackPath) {
			callback = u
		}
		resp = b.Do(http.MethodGet, u, nil, true)
	}
	b.T.Fatal("too many redirects after login")
	return Page{}, ""
}

// CallbackURL signs in at the provider and returns the callback URL it
// sends the browser to, without visiting it.
func (b *Browser) CallbackURL(p Page, user string) string {
	b.T.Helper()
	r, u := b.postLogin(p, user, "demo")
	for range 10 {
		loc := r.Header.Get("Location")
		if loc == "" {
			b.T.Fatalf("provider stopped at %s with %d: %.200s", u, r.Status, r.Body)
		}
		u = b.Resolve(u, loc)
		if strings.Contains(u, CallbackPath) {
			return u
		}
		r = b.Do(http.MethodGet, u, nil, true)
	}
	b.T.Fatal("no callback")
	return ""
}

// Login navigates to siteURL+path, signs in as user with the demo
// password, and returns the final page, which must be a 200.
func (b *Browser) Login(siteURL, path, user string) Page {
	b.T.Helper()
	p := b.Follow(siteURL + path)
	final, _ := b.SubmitLogin(p, user, "demo")
	if final.Status != http.StatusOK {
		b.T.Fatalf("after login: status %d: %.300s", final.Status, final.Body)
	}
	return final
}

// Cookie returns the value of the cookie name the jar holds for siteURL.
func (b *Browser) Cookie(siteURL, name string) string {
	u, _ := url.Parse(siteURL)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// SetCookie puts a cookie for siteURL into the jar.
func (b *Browser) SetCookie(siteURL, name, value string) {
	u, _ := url.Parse(siteURL)
	b.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// WaitFor polls cond for up to five seconds.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
