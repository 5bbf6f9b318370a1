package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/testclock"
	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
	"github.com/gatehouse-proxy/gatehouse/internal/web"
)

// backend is what the flow tests need of a store.
type backend interface {
	session.Store
	activity.Store
}

// harness is a protected site in front of an echo upstream, signed in
// through the real development provider.
type harness struct {
	t      *testing.T
	clock  *testclock.Clock
	idp    *devidp.Provider
	idpSrv *httptest.Server
	site   *httptest.Server
	store  backend
	rt     *Runtime
	gw     *Gateway
	events []activity.Event
	evMu   sync.Mutex
	// errs are the gateway's reported errors; any that no expectErrors
	// pattern allows fails the test.
	errs     []error
	expected []string
	// failList and failAppend make the store's List and event Append
	// fail, as an unreachable store's would.
	failList, failAppend atomic.Bool
	// looseList makes List ignore the query's user, as a store whose
	// user filter matched loosely would.
	looseList atomic.Bool

	// tamper, when set, rewrites the claims of ID tokens the provider
	// returns from its token endpoint, and re-signs them (with a foreign
	// key when foreignKey is set).
	tamper     func(claims map[string]any)
	foreignKey bool

	// tokenDown makes the provider's token endpoint answer 503, as a
	// provider that is down would; refreshCalls counts the refresh
	// requests it received (answered or not).
	tokenDown    atomic.Bool
	refreshCalls atomic.Int64
	// keysDown makes the provider's key set answer 503.
	keysDown atomic.Bool
	// calls counts the store calls by method (see failingStore).
	calls storeCalls
}

// storeCalls counts store round trips by method.
type storeCalls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *storeCalls) add(method string) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[method]++
	c.mu.Unlock()
}

func (c *storeCalls) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

type harnessOption func(*Config)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

func newHarness(t *testing.T, mkStore func(t *testing.T, now func() time.Time) backend, opts ...harnessOption) *harness {
	t.Helper()
	return newHarnessRT(t, mkStore, nil, opts...)
}

// newHarnessRT is newHarness with a hook to adjust the runtime's
// configuration (GeoIP, user agents).
func newHarnessRT(t *testing.T, mkStore func(t *testing.T, now func() time.Time) backend, rtOpt func(*RuntimeConfig), opts ...harnessOption) *harness {
	t.Helper()
	return newHarnessIDP(t, mkStore, rtOpt, nil, opts...)
}

// newHarnessIDP is newHarnessRT with a hook to adjust the provider's
// configuration (token lifetimes).
func newHarnessIDP(t *testing.T, mkStore func(t *testing.T, now func() time.Time) backend, rtOpt func(*RuntimeConfig), idpOpt func(*devidp.Config), opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, clock: testclock.New(time.Now())}
	t.Cleanup(h.checkErrors)
	h.store = &failingStore{backend: mkStore(t, h.clock.Now), h: h}
	h.idpSrv = httptest.NewServer(http.HandlerFunc(h.serveIDP))
	t.Cleanup(h.idpSrv.Close)
	idpCfg := devidp.Config{Issuer: h.idpSrv.URL, Users: devidp.DemoUsers(), Now: h.clock.Now}
	if idpOpt != nil {
		idpOpt(&idpCfg)
	}
	idp, err := devidp.New(idpCfg)
	if err != nil {
		t.Fatal(err)
	}
	h.idp = idp
	h.rt = h.newRuntime(rtOpt)
	h.site = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := h.gw.Serve(w, r); s != nil {
			upstream(w, r)
		}
	}))
	t.Cleanup(h.site.Close)
	cfg := h.baseConfig("site")
	for _, o := range opts {
		o(&cfg)
	}
	h.gw, err = New(cfg, h.rt)
	if err != nil {
		t.Fatal(err)
	}
	h.register("site", h.site.URL)
	return h
}

// baseConfig is a site's configuration before options.
func (h *harness) baseConfig(clientID string) Config {
	return Config{
		Issuer:       h.idpSrv.URL,
		ClientID:     clientID,
		ClientSecret: clientID + "-secret",
		Scopes:       []string{"openid", "email", "profile", "groups"},
		IdleTimeout:  30 * time.Minute,
		AdminGroups:  []string{"gatehouse-admins"},
	}
}

// register makes a client of the site at siteURL at the provider.
func (h *harness) register(clientID, siteURL string) {
	h.idp.AddClient(devidp.Client{
		ID:                     clientID,
		Secret:                 clientID + "-secret",
		RedirectURIs:           []string{siteURL + "/.gatehouse/callback"},
		PostLogoutRedirectURIs: []string{siteURL + "/.gatehouse/signed-out"},
		BackchannelLogoutURI:   siteURL + "/.gatehouse/backchannel-logout",
	})
}

// site is a further protected site on the harness's runtime and provider.
// Sites on 127.0.0.1 share cookies whatever their port, as sites sharing
// a cookie_domain do.
type site struct {
	srv *httptest.Server
	gw  *Gateway
}

func (st *site) URL() string { return st.srv.URL }

// addSite starts another site on the same runtime, with the harness's
// base configuration and opts; its Admin handler, unless an option sets
// one, answers with the viewer it was given as JSON.
func (h *harness) addSite(opts ...harnessOption) *site {
	h.t.Helper()
	st := &site{}
	st.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := st.gw.Serve(w, r); s != nil {
			upstream(w, r)
		}
	}))
	h.t.Cleanup(st.srv.Close)
	id := "site-" + st.srv.Listener.Addr().String()
	cfg := h.baseConfig(id)
	cfg.Admin = viewerEcho
	for _, o := range opts {
		o(&cfg)
	}
	gw, err := New(cfg, h.rt)
	if err != nil {
		h.t.Fatal(err)
	}
	st.gw = gw
	h.register(id, st.srv.URL)
	return st
}

// viewerEcho is an admin handler that shows what the gateway told it.
var viewerEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	v := web.ViewerFrom(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"user": v.Session.User, "admin": v.Admin, "auditor": v.Auditor, "sites": v.Sites, "origin": v.Origin})
})

func (h *harness) newRuntime(rtOpt func(*RuntimeConfig)) *Runtime {
	cfg := RuntimeConfig{
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
		OnError: func(err error) {
			h.evMu.Lock()
			h.errs = append(h.errs, err)
			h.evMu.Unlock()
		},
	}
	if rtOpt != nil {
		rtOpt(&cfg)
	}
	rt, err := NewRuntime(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	rt.Start()
	h.t.Cleanup(rt.Close)
	return rt
}

// failingStore is the harness's store with switches to make parts of it
// fail.
type failingStore struct {
	backend
	h *harness
}

func (f *failingStore) List(ctx context.Context, q session.Query) (session.Page, error) {
	if f.h.failList.Load() {
		return session.Page{}, errors.New("store down")
	}
	if f.h.looseList.Load() {
		q.User = ""
	}
	return f.backend.List(ctx, q)
}

func (f *failingStore) Get(ctx context.Context, id string) (*session.Session, error) {
	f.h.calls.add("Get")
	return f.backend.Get(ctx, id)
}

func (f *failingStore) Touch(ctx context.Context, id string, a session.Access) error {
	f.h.calls.add("Touch")
	return f.backend.Touch(ctx, id, a)
}

func (f *failingStore) SetTokens(ctx context.Context, id string, tokens []byte) error {
	f.h.calls.add("SetTokens")
	return f.backend.SetTokens(ctx, id, tokens)
}

func (f *failingStore) ClaimOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	f.h.calls.add("ClaimOnce")
	return f.backend.ClaimOnce(ctx, key, ttl)
}

func (f *failingStore) Append(ctx context.Context, e *activity.Event) error {
	if f.h.failAppend.Load() {
		return errors.New("event store down")
	}
	return f.backend.Append(ctx, e)
}

func memBackend(t *testing.T, now func() time.Time) backend { return stores["memory"](t, now) }

func redisBackend(t *testing.T, now func() time.Time) backend { return stores["redis"](t, now) }

// expectErrors allows gateway errors containing any of these texts: the
// test provokes them on purpose.
func (h *harness) expectErrors(patterns ...string) {
	h.evMu.Lock()
	h.expected = append(h.expected, patterns...)
	h.evMu.Unlock()
}

// checkErrors fails the test for every gateway error it did not expect:
// the gateway reports failures it answers generically (a 503, a lost
// event) only through OnError, so without this they would pass unseen.
func (h *harness) checkErrors() {
	h.evMu.Lock()
	defer h.evMu.Unlock()
	for _, err := range h.errs {
		ok := false
		for _, p := range h.expected {
			ok = ok || strings.Contains(err.Error(), p)
		}
		if !ok {
			h.t.Errorf("unexpected gateway error: %v", err)
		}
	}
}

// touchDone reports whether the runtime has finished recording the
// session's last access: written to the store, the cache updated and the
// pending mark cleared. Waiting only for the store write let the next
// request's touch be dropped as a duplicate while the mark was still set
// (TestIdleTimeoutAndLifetime failed about 3 runs in 40).
func (h *harness) touchDone(id string) bool {
	_, pending := h.rt.pending.Load(id)
	return !pending
}

// upstream echoes what it was told about the user.
func upstream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	hdr := map[string][]string{}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-forwarded-") || k == "Cookie" {
			hdr[k] = v
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.RequestURI(), "headers": hdr})
}

// serveIDP is the provider, with the token endpoint's ID token rewritten
// when a test asks for it.
func (h *harness) serveIDP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/keys" && h.keysDown.Load() {
		http.Error(w, "provider down", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path == "/oauth/token" {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, _ := url.ParseQuery(string(body)); form.Get("grant_type") == "refresh_token" {
			h.refreshCalls.Add(1)
		}
		if h.tokenDown.Load() {
			http.Error(w, "provider down", http.StatusServiceUnavailable)
			return
		}
	}
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

// browser is a testflow browser on the harness's site.
type browser struct {
	*testflow.Browser
	h *harness
}

func (h *harness) browser() *browser {
	return &browser{Browser: testflow.New(h.t), h: h}
}

// login signs the browser in as user, starting at path, and returns the
// upstream's echo.
func (b *browser) login(user, path string) echo {
	b.h.t.Helper()
	return parseEcho(b.h.t, b.Login(b.h.site.URL, path, user))
}

func (b *browser) cookie(name string) string { return b.Cookie(b.h.site.URL, name) }

// sessionID is the id of the browser's current session.
func (b *browser) sessionID() string {
	id, err := session.ParseCookie(b.cookie("gatehouse"))
	if err != nil {
		b.h.t.Fatalf("browser has no valid session cookie: %v", err)
	}
	return id
}

type echo struct {
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
}

func parseEcho(t *testing.T, p testflow.Page) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal([]byte(p.Body), &e); err != nil {
		t.Fatalf("not an upstream echo (status %d): %.300s", p.Status, p.Body)
	}
	return e
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.NewDecoder(bytes.NewReader([]byte(s))).Decode(v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
}

var waitFor = testflow.WaitFor
