package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/gateway"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
	"github.com/gatehouse-proxy/gatehouse/internal/store/storetest"
	"github.com/gatehouse-proxy/gatehouse/internal/web"
)

// The gateway's runtime is the Backend in production.
var _ Backend = (*gateway.Runtime)(nil)

const prefix = "/.gatehouse"

var epoch = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

// flakyStore is the in-memory store with a switch that makes it
// unreachable, for the 503 paths.
type flakyStore struct {
	*memstore.Store
	down atomic.Bool
}

func (f *flakyStore) err() error {
	if f.down.Load() {
		return fmt.Errorf("dialing: %w", session.ErrUnavailable)
	}
	return nil
}

func (f *flakyStore) Get(ctx context.Context, id string) (*session.Session, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, id)
}

func (f *flakyStore) Delete(ctx context.Context, id string) (*session.Session, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.Delete(ctx, id)
}

func (f *flakyStore) List(ctx context.Context, q session.Query) (session.Page, error) {
	if err := f.err(); err != nil {
		return session.Page{}, err
	}
	return f.Store.List(ctx, q)
}

func (f *flakyStore) Users(ctx context.Context, q session.UserQuery) (session.UserPage, error) {
	if err := f.err(); err != nil {
		return session.UserPage{}, err
	}
	return f.Store.Users(ctx, q)
}

func (f *flakyStore) Query(ctx context.Context, q activity.Filter) (activity.Page, error) {
	if err := f.err(); err != nil {
		return activity.Page{}, err
	}
	return f.Store.Query(ctx, q)
}

// backend is the runtime as the handlers see it, with two test hooks:
//
//   - every session query and event filter the handlers send is recorded,
//     so tests can check that the admin's reach reaches the store;
//   - with usersGap, Users answers the first page of every search with no
//     items and a cursor, as redisstore's chunked scan may.
type backend struct {
	*gateway.Runtime
	usersGap atomic.Bool

	mu      sync.Mutex
	queries []session.Query
	filters []activity.Filter
}

func (b *backend) ListSessions(ctx context.Context, q session.Query) (session.Page, error) {
	b.mu.Lock()
	b.queries = append(b.queries, q)
	b.mu.Unlock()
	return b.Runtime.ListSessions(ctx, q)
}

func (b *backend) Events(ctx context.Context, f activity.Filter) (activity.Page, error) {
	b.mu.Lock()
	b.filters = append(b.filters, f)
	b.mu.Unlock()
	return b.Runtime.Events(ctx, f)
}

// gapCursor is the cursor of the empty first page usersGap serves.
const gapCursor = "gap"

func (b *backend) Users(ctx context.Context, q session.UserQuery) (session.UserPage, error) {
	if b.usersGap.Load() {
		switch q.Cursor {
		case "":
			return session.UserPage{Next: gapCursor}, nil
		case gapCursor:
			q.Cursor = ""
		}
	}
	return b.Runtime.Users(ctx, q)
}

// sent returns the session queries and event filters recorded so far and
// forgets them.
func (b *backend) sent() ([]session.Query, []activity.Filter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, f := b.queries, b.filters
	b.queries, b.filters = nil, nil
	return q, f
}

// env is a runtime on the in-memory store with two people signed in:
// alice (admin) on a Windows PC and an iPhone, bob (not admin) on a Linux
// laptop, an old Mac and an iPad.
type env struct {
	t     *testing.T
	clock *storetest.Clock
	store *flakyStore
	rt    *gateway.Runtime
	b     *backend
	h     http.Handler
	api   http.Handler

	alice, alicePhone      *session.Session
	bob, bobMac, bobTablet *session.Session
	adminEmails            map[string]bool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := storetest.NewClock(epoch)
	st := &flakyStore{Store: memstore.New(memstore.Options{Now: clock.Now})}
	rt, err := gateway.NewRuntime(gateway.RuntimeConfig{
		Store:  st,
		Events: st,
		Secret: []byte("0123456789abcdef0123456789abcdef"),
		Now:    clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{Runtime: rt}
	e := &env{t: t, clock: clock, store: st, rt: rt, b: b, h: New(b), api: NewAPI(b, "/gatehouse"),
		adminEmails: map[string]bool{"alice@example.com": true}}
	e.alice = e.login("alice", "alice@example.com", "Alice Admin", chromeWindows, amsterdam, "203.0.113.10", 2*time.Hour, 3*time.Minute)
	e.alicePhone = e.login("alice", "alice@example.com", "Alice Admin", safariIPhone, berlin, "198.51.100.7", 26*time.Hour, 5*time.Hour)
	e.bob = e.login("bob", "bob@example.com", "Bob Builder", firefoxLinux, london, "192.0.2.20", 30*time.Minute, time.Minute)
	e.bobMac = e.login("bob", "bob@example.com", "Bob Builder", safariMac, newYork, "192.0.2.99", 3*24*time.Hour, 2*24*time.Hour)
	e.bobTablet = e.login("bob", "bob@example.com", "Bob Builder", chromeTablet, london, "192.0.2.21", 5*time.Hour, 40*time.Minute)
	return e
}

var (
	chromeWindows = session.Device{UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36", Browser: "Chrome", OS: "Windows", Device: "desktop"}
	firefoxLinux  = session.Device{UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", Browser: "Firefox", OS: "Linux", Device: "desktop"}
	safariIPhone  = session.Device{UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", Browser: "Safari", OS: "iOS", Device: "mobile"}
	safariMac     = session.Device{UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", Browser: "Safari", OS: "macOS", Device: "desktop"}
	chromeTablet  = session.Device{UserAgent: "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36", Browser: "Chrome", OS: "Android", Device: "tablet"}

	amsterdam = session.Location{City: "Amsterdam", Region: "North Holland", Country: "NL", Latitude: 52.37, Longitude: 4.89}
	berlin    = session.Location{City: "Berlin", Region: "Land Berlin", Country: "DE", Latitude: 52.52, Longitude: 13.40}
	london    = session.Location{City: "London", Region: "England", Country: "GB", Latitude: 51.51, Longitude: -0.13}
	newYork   = session.Location{City: "New York", Region: "New York", Country: "US", Latitude: 40.71, Longitude: -74.01}
)

// siteA is where newEnv's sessions live.
const siteA = "app.example.com"

// login stores a session on siteA with a verified email, created age ago
// and last used idle ago, and records its login_succeeded event.
func (e *env) login(user, email, name string, dev session.Device, loc session.Location, ip string, age, idle time.Duration) *session.Session {
	e.t.Helper()
	return e.loginOn(siteA, true, user, email, name, dev, loc, ip, age, idle)
}

// loginOn is login on site, with the email verified or not.
func (e *env) loginOn(site string, verified bool, user, email, name string, dev session.Device, loc session.Location, ip string, age, idle time.Duration) *session.Session {
	e.t.Helper()
	now := e.clock.Now()
	s := &session.Session{
		ID:            session.NewSecretFor(user).ID(),
		User:          user,
		Email:         email,
		EmailVerified: verified,
		Name:          name,
		Username:      user,
		Groups:        []string{"staff"},
		Site:          site,
		CreatedAt:     now.Add(-age),
		LastAccess:    now.Add(-idle),
		ExpiresAt:     now.Add(-age).Add(7 * 24 * time.Hour),
		IP:            ip,
		LastIP:        ip,
		Device:        dev,
		Location:      loc,
		Tokens:        []byte("SEALED-TOKENS-MUST-NOT-LEAK"),
		IDPSessionID:  "sid-" + user,
	}
	if err := e.store.Create(context.Background(), s); err != nil {
		e.t.Fatal(err)
	}
	e.rt.Record(context.Background(), activity.Event{
		Time: s.CreatedAt, Type: activity.LoginSucceeded, User: user, Email: email,
		SessionID: s.ID, Site: s.Site, IP: ip, City: loc.City, Country: loc.Country,
		Device: dev.Browser + " on " + dev.OS, Actor: email,
	})
	return s
}

func (e *env) viewer(s *session.Session) *web.Viewer {
	return &web.Viewer{Session: s, Admin: e.adminEmails[s.Email], CSRF: e.rt.CSRFToken(s.ID), Prefix: prefix, Origin: "http://app.example.com"}
}

// req describes one request to the site handler.
type req struct {
	as     *session.Session
	method string
	path   string
	header map[string]string
	form   url.Values
	// sites, when not nil, is the viewer's reach (web.Viewer.Sites);
	// noSites gives a reach of no site at all.
	sites   []string
	noSites bool
	// auditor makes the viewer an auditor instead of what adminEmails
	// says.
	auditor bool
}

func (e *env) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	var body *strings.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	} else {
		body = strings.NewReader("")
	}
	hr := httptest.NewRequest(r.method, "http://app.example.com"+prefix+r.path, body)
	if r.form != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.as != nil {
		v := e.viewer(r.as)
		if r.auditor {
			v.Admin, v.Auditor = false, true
		}
		switch {
		case r.noSites:
			v.Sites = []string{}
		case r.sites != nil:
			v.Sites = slices.Clone(r.sites)
		}
		hr = hr.WithContext(web.WithViewer(hr.Context(), v))
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, hr)
	return w
}

// xhr is the header a script on our pages sends.
var xhr = map[string]string{"X-Requested-With": "XMLHttpRequest"}

func (e *env) exists(s *session.Session) bool {
	e.t.Helper()
	_, err := e.store.Get(context.Background(), s.ID)
	return err == nil
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %q: %v", w.Body.String(), err)
	}
	return v
}

// ids lists the "id" of each item of a JSON list.
func ids(t *testing.T, w *httptest.ResponseRecorder) []string {
	t.Helper()
	l := decode[struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
		Next string `json:"next_cursor"`
	}](t, w)
	var out []string
	for _, it := range l.Items {
		out = append(out, it.ID)
	}
	return out
}

func (e *env) events(types ...string) []activity.Event {
	e.t.Helper()
	p, err := e.store.Query(context.Background(), activity.Filter{Types: types, Limit: activity.MaxLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Items
}

func withViewer(r *http.Request, v *web.Viewer) context.Context {
	return web.WithViewer(r.Context(), v)
}
