package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// backend is what the flow tests need of a store.
type backend interface {
	session.Store
	activity.Store
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is a protected site in front of an echo upstream, signed in
// through the real development provider.
type harness struct {
	t      *testing.T
	clock  *clock
	idp    *devidp.Provider
	idpSrv *httptest.Server
	site   *httptest.Server
	store  backend
	rt     *Runtime
	gw     *Gateway
	events []activity.Event
	evMu   sync.Mutex

	// tamper, when set, rewrites the claims of ID tokens the provider
	// returns from its token endpoint, and re-signs them (with a foreign
	// key when foreignKey is set).
	tamper     func(claims map[string]any)
	foreignKey bool
}

type harnessOption func(*Config)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

func newHarness(t *testing.T, mkStore func(t *testing.T, now func() time.Time) backend, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{t: time.Now()}}
	h.store = mkStore(t, h.clock.Now)
	h.idpSrv = httptest.NewServer(http.HandlerFunc(h.serveIDP))
	t.Cleanup(h.idpSrv.Close)
	idp, err := devidp.New(devidp.Config{Issuer: h.idpSrv.URL, Users: devidp.DemoUsers(), Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.idp = idp
	h.rt = h.newRuntime()
	h.site = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := h.gw.Serve(w, r); s != nil {
			upstream(w, r)
		}
	}))
	t.Cleanup(h.site.Close)
	cfg := Config{
		Issuer:       h.idpSrv.URL,
		ClientID:     "site",
		ClientSecret: "site-secret",
		Scopes:       []string{"openid", "email", "profile", "groups"},
		IdleTimeout:  30 * time.Minute,
		AdminGroups:  []string{"gatehouse-admins"},
	}
	for _, o := range opts {
		o(&cfg)
	}
	h.gw, err = New(cfg, h.rt)
	if err != nil {
		t.Fatal(err)
	}
	idp.AddClient(devidp.Client{
		ID:                     "site",
		Secret:                 "site-secret",
		RedirectURIs:           []string{h.site.URL + "/.gatehouse/callback"},
		PostLogoutRedirectURIs: []string{h.site.URL + "/.gatehouse/signed-out"},
		BackchannelLogoutURI:   h.site.URL + "/.gatehouse/backchannel-logout",
	})
	return h
}

func (h *harness) newRuntime() *Runtime {
	rt, err := NewRuntime(RuntimeConfig{
		Store:    h.store,
		Events:   h.store,
		Secret:   testSecret,
		CacheTTL: 5 * time.Second,
		Now:      h.clock.Now,
		OnEvent: func(e activity.Event) {
			h.evMu.Lock()
			h.events = append(h.events, e)
			h.evMu.Unlock()
		},
		OnError: func(err error) { h.t.Logf("gateway error: %v", err) },
	})
	if err != nil {
		h.t.Fatal(err)
	}
	rt.Start()
	h.t.Cleanup(rt.Close)
	return rt
}

// upstream echoes what it was told about the user.
func upstream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	hdr := map[string][]string{}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-forwarded-") {
			hdr[k] = v
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.RequestURI(), "headers": hdr})
}

// serveIDP is the provider, with the token endpoint's ID token rewritten
// when a test asks for it.
func (h *harness) serveIDP(w http.ResponseWriter, r *http.Request) {
	if h.tamper == nil || r.URL.Path != "/oauth/token" {
		h.idp.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	h.idp.ServeHTTP(rec, r)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err == nil {
		if raw, ok := body["id_token"].(string); ok {
			body["id_token"] = h.retoken(raw)
		}
	}
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_ = json.NewEncoder(w).Encode(body)
}

func (h *harness) retoken(raw string) string {
	parts := strings.Split(raw, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		h.t.Fatalf("decoding id token: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		h.t.Fatal(err)
	}
	h.tamper(claims)
	if !h.foreignKey {
		tok, err := h.idp.SignJWT(claims)
		if err != nil {
			h.t.Fatal(err)
		}
		return tok
	}
	// Same kid as the provider's key, different key: only the signature
	// check can catch it.
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var head struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(hdr, &head)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: head.Kid}}, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	obj, err := signer.Sign(b)
	if err != nil {
		h.t.Fatal(err)
	}
	s, _ := obj.CompactSerialize()
	return s
}

func (h *harness) eventsOf(typ string) []activity.Event {
	h.evMu.Lock()
	defer h.evMu.Unlock()
	var out []activity.Event
	for _, e := range h.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// browser is an HTTP client that behaves like one: a cookie jar, HTML
// Accept headers on navigations, and manual redirects so tests can look at
// each hop.
type browser struct {
	h      *harness
	jar    *cookiejar.Jar
	client *http.Client
	ua     string
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{h: h, jar: jar, ua: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}}
}

type page struct {
	status int
	url    string
	header http.Header
	body   string
}

// do sends one request as a browser navigation (or not) and reads the
// answer.
func (b *browser) do(method, u string, form url.Values, nav bool, hdr ...string) page {
	b.h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.h.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", b.ua)
	if nav {
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.h.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, url: u, header: resp.Header, body: string(data)}
}

// follow navigates to u and follows redirects, returning the last page.
func (b *browser) follow(u string) page {
	b.h.t.Helper()
	for range 20 {
		p := b.do(http.MethodGet, u, nil, true)
		if p.status < 300 || p.status >= 400 {
			return p
		}
		u = b.resolve(u, p.header.Get("Location"))
	}
	b.h.t.Fatal("too many redirects")
	return page{}
}

func (b *browser) resolve(base, ref string) string {
	bu, _ := url.Parse(base)
	ru, err := url.Parse(ref)
	if err != nil {
		b.h.t.Fatalf("bad Location %q: %v", ref, err)
	}
	return bu.ResolveReference(ru).String()
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	formID     = regexp.MustCompile(`name="id" value="([^"]*)"`)
)

// submitLogin fills the provider's login form on p and follows the
// redirects; it returns the final page and the callback URL it passed.
func (b *browser) submitLogin(p page, user, password string) (page, string) {
	b.h.t.Helper()
	a := formAction.FindStringSubmatch(p.body)
	id := formID.FindStringSubmatch(p.body)
	if a == nil || id == nil {
		b.h.t.Fatalf("no login form at %s (status %d): %.300s", p.url, p.status, p.body)
	}
	action := b.resolve(p.url, html.UnescapeString(a[1]))
	resp := b.do(http.MethodPost, action, url.Values{"id": {html.UnescapeString(id[1])}, "username": {user}, "password": {password}}, true)
	u := action
	var callback string
	for range 20 {
		if resp.status < 300 || resp.status >= 400 {
			return resp, callback
		}
		u = b.resolve(u, resp.header.Get("Location"))
		if strings.Contains(u, "/.gatehouse/callback") {
			callback = u
		}
		resp = b.do(http.MethodGet, u, nil, true)
	}
	b.h.t.Fatal("too many redirects after login")
	return page{}, ""
}

// login signs the browser in as user, starting at path, and returns the
// upstream's echo.
func (b *browser) login(user, path string) (echo, string) {
	b.h.t.Helper()
	p := b.follow(b.h.site.URL + path)
	final, callback := b.submitLogin(p, user, "demo")
	if final.status != http.StatusOK {
		b.h.t.Fatalf("after login: status %d: %.300s", final.status, final.body)
	}
	return parseEcho(b.h.t, final), callback
}

type echo struct {
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
}

func parseEcho(t *testing.T, p page) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal([]byte(p.body), &e); err != nil {
		t.Fatalf("not an upstream echo (status %d): %.300s", p.status, p.body)
	}
	return e
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.h.site.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.h.site.URL)
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// sessionID is the id of the browser's current session.
func (b *browser) sessionID() string {
	id, err := session.ParseCookie(b.cookie("gatehouse"))
	if err != nil {
		b.h.t.Fatalf("browser has no valid session cookie: %v", err)
	}
	return id
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.NewDecoder(bytes.NewReader([]byte(s))).Decode(v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
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

var _ = fmt.Sprintf
var _ = context.Background
