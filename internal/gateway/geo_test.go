package gateway

import (
	"context"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/geo"
	"github.com/gatehouse-proxy/gatehouse/internal/geo/geotest"
	"github.com/gatehouse-proxy/gatehouse/internal/policy"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
)

// testIPHeader stands in for Caddy's client IP (which honours
// trusted_proxies) so that tests can come "from" anywhere.
const testIPHeader = "X-Test-Client-Ip"

func headerIP(r *http.Request) netip.Addr {
	a, err := netip.ParseAddr(r.Header.Get(testIPHeader))
	if err != nil {
		return peerIP(r)
	}
	return a
}

func geoHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "city.mmdb")
	geotest.WriteCity(t, path, []geotest.Entry{
		geotest.London,
		{Network: "2001:db8:1::/48", City: "Amsterdam", Region: "North Holland", Country: "NL", Latitude: 52.37, Longitude: 4.89},
		{Network: "198.51.100.0/24", Country: "KP"},
	})
	db, err := geo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	mem := func(t *testing.T, now func() time.Time) backend { return memstore.New(memstore.Options{Now: now}) }
	return newHarnessRT(t, mem, func(c *RuntimeConfig) {
		c.Locate = db.Lookup
		c.Describe = geo.ParseUserAgent
	}, append([]harnessOption{func(c *Config) { c.ClientIP = headerIP }}, opts...)...)
}

func TestSessionLocationAndDevice(t *testing.T) {
	h := geoHarness(t, func(c *Config) { c.TouchInterval = time.Minute })
	b := h.browser()
	b.UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	// Sign in from London (IPv4): every hop carries the address.
	p := b.Do(http.MethodGet, h.site.URL+"/", nil, true, testIPHeader, "81.2.69.142")
	idpPage := b.Follow(p.Header.Get("Location"))
	cb := b.CallbackURL(idpPage, "alice")
	if r := b.Do(http.MethodGet, cb, nil, true, testIPHeader, "81.2.69.142"); r.Status != http.StatusFound {
		t.Fatalf("callback: %d", r.Status)
	}
	s, err := h.store.Get(context.Background(), b.sessionID())
	if err != nil {
		t.Fatal(err)
	}
	want := session.Location{City: "London", Region: "England", Country: "GB", Latitude: 51.5142, Longitude: -0.0931}
	if s.Location != want || s.IP != "81.2.69.142" {
		t.Errorf("session location = %+v from %s, want %+v", s.Location, s.IP, want)
	}
	if s.Browser != "Chrome" || s.OS != "Windows" || s.Device.Device != "desktop" {
		t.Errorf("session device = %+v", s.Device)
	}
	ev := h.eventsOf(activity.LoginSucceeded)
	if len(ev) != 1 || ev[0].City != "London" || ev[0].Country != "GB" || ev[0].Device != "Chrome on Windows" {
		t.Errorf("login event = %+v", ev)
	}
	// Later the same session is used from Amsterdam over IPv6 on a phone:
	// last_ip, location and device follow on the next touch; the login IP
	// stays.
	h.clock.Advance(2 * time.Minute)
	b.UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	if r := b.Do(http.MethodGet, h.site.URL+"/x", nil, false, testIPHeader, "2001:db8:1::7"); r.Status != http.StatusOK {
		t.Fatalf("request from IPv6: %d", r.Status)
	}
	waitFor(t, "touch with the new address", func() bool {
		s, err := h.store.Get(context.Background(), b.sessionID())
		return err == nil && s.LastIP == "2001:db8:1::7" && h.touchDone(s.ID)
	})
	s, _ = h.store.Get(context.Background(), b.sessionID())
	if s.City != "Amsterdam" || s.Country != "NL" || s.IP != "81.2.69.142" || s.OS != "iOS" || s.Device.Device != "mobile" {
		t.Errorf("after moving: %+v", s)
	}
	// An address the database does not know leaves the location empty.
	h.clock.Advance(2 * time.Minute)
	if r := b.Do(http.MethodGet, h.site.URL+"/x", nil, false, testIPHeader, "203.0.113.5"); r.Status != http.StatusOK {
		t.Fatalf("request from unknown address: %d", r.Status)
	}
	waitFor(t, "touch from unknown address", func() bool {
		s, err := h.store.Get(context.Background(), b.sessionID())
		return err == nil && s.LastIP == "203.0.113.5" && h.touchDone(s.ID)
	})
	s, _ = h.store.Get(context.Background(), b.sessionID())
	if s.Location != (session.Location{}) {
		t.Errorf("unknown address kept a location: %+v", s.Location)
	}
}

func TestNetworkPolicy(t *testing.T) {
	allowed, _ := policy.ParsePrefixes([]string{"81.2.69.0/24", "2001:db8::/32", "198.51.100.0/24"})
	denied, _ := policy.ParsePrefixes([]string{"81.2.69.66"})
	h := geoHarness(t, func(c *Config) {
		c.Network = policy.Network{AllowIP: allowed, DenyIP: denied, DenyCountry: []string{"KP"}}
	})
	tests := []struct {
		ip     string
		status int
		reason string
	}{
		{"81.2.69.142", http.StatusFound, ""},
		{"81.2.69.66", http.StatusForbidden, activity.ReasonIPRestricted},
		{"203.0.113.9", http.StatusForbidden, activity.ReasonIPRestricted},
		{"198.51.100.4", http.StatusForbidden, activity.ReasonCountry},
	}
	for _, tt := range tests {
		b := h.browser()
		p := b.Do(http.MethodGet, h.site.URL+"/", nil, true, testIPHeader, tt.ip)
		if p.Status != tt.status {
			t.Errorf("from %s: %d, want %d", tt.ip, p.Status, tt.status)
		}
		// Sign-in is not even offered: the login endpoint refuses too.
		if tt.status == http.StatusForbidden {
			if r := b.Do(http.MethodGet, h.site.URL+"/.gatehouse/login", nil, true, testIPHeader, tt.ip); r.Status != http.StatusForbidden {
				t.Errorf("login from %s: %d, want 403", tt.ip, r.Status)
			}
		}
	}
	// One event per network, reason and site per minute, whatever the
	// requests; each with its own reason.
	ev := h.eventsOf(activity.AccessDenied)
	if len(ev) != 3 {
		t.Fatalf("access_denied events = %d (%+v), want 3", len(ev), ev)
	}
	want := map[string]string{}
	for _, tt := range tests {
		if tt.reason != "" {
			want[tt.ip] = tt.reason
		}
	}
	for _, e := range ev {
		if e.Site == "" || want[e.IP] == "" {
			t.Errorf("unexpected or incomplete event %+v", e)
			continue
		}
		if e.Reason != want[e.IP] {
			t.Errorf("access_denied from %s: reason %q, want %q", e.IP, e.Reason, want[e.IP])
		}
	}
	// A minute later: the repeat (the login attempt) of each network is
	// reported in one event with its count, and new requests count
	// again.
	h.clock.Advance(61 * time.Second)
	h.browser().Do(http.MethodGet, h.site.URL+"/", nil, true, testIPHeader, "203.0.113.9")
	h.rt.FlushAggregated(context.Background())
	ev = h.eventsOf(activity.AccessDenied)
	if len(ev) != 7 {
		t.Fatalf("after a minute: %d events (%+v), want 3 + 3 summaries + 1", len(ev), ev)
	}
	summaries := 0
	for _, e := range ev[3:] {
		if strings.Contains(e.Detail, "repeated 1 more times") {
			summaries++
		}
	}
	if summaries != 3 {
		t.Errorf("summaries = %d, want 3: %+v", summaries, ev[3:])
	}
}
