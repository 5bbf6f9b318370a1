package alerts

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/geo"
	"github.com/gatehouse-proxy/gatehouse/internal/geo/geotest"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
)

// Addresses of the test GeoIP database.
const (
	london    = "81.2.69.142"   // GB, London
	london2   = "81.2.69.7"     // same network
	amsterdam = "2001:db8:1::5" // NL, 360 km from London
	newYork   = "203.0.113.9"   // US, 5,570 km from London
	oxford    = "192.0.2.77"    // GB, 80 km from London
	noCoords  = "198.51.100.3"  // KP, country only
	chrome    = "Chrome on Windows"
	firefox   = "Firefox on Linux"
)

func testLocate(t *testing.T) func(netip.Addr) session.Location {
	t.Helper()
	path := filepath.Join(t.TempDir(), "city.mmdb")
	geotest.WriteCity(t, path, []geotest.Entry{
		geotest.London,
		{Network: "2001:db8:1::/48", City: "Amsterdam", Country: "NL", Latitude: 52.37, Longitude: 4.89},
		{Network: "203.0.113.0/24", City: "New York", Country: "US", Latitude: 40.71, Longitude: -74.01},
		{Network: "192.0.2.0/24", City: "Oxford", Country: "GB", Latitude: 51.75, Longitude: -1.26},
		{Network: "198.51.100.0/24", Country: "KP"},
	})
	db, err := geo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db.Lookup
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// ev is a shorthand event: at minutes after t0.
type ev struct {
	min    float64
	typ    string
	user   string
	ip     string
	device string
	detail string
}

func (e ev) event(loc func(netip.Addr) session.Location) activity.Event {
	typ := e.typ
	if typ == "" {
		typ = activity.LoginSucceeded
	}
	a := activity.Event{
		Type:   typ,
		Time:   t0.Add(time.Duration(e.min * float64(time.Minute))),
		User:   e.user,
		Email:  e.user + "@example.com",
		IP:     e.ip,
		Device: e.device,
		Detail: e.detail,
		Site:   "app.example.com",
	}
	if e.user == "" {
		a.Email = ""
	}
	if addr, err := netip.ParseAddr(e.ip); err == nil {
		l := loc(addr)
		a.City, a.Country = l.City, l.Country
	}
	return a
}

// evaluate stores history and then now, and returns the reasons of the
// anomalies now raises.
func evaluate(t *testing.T, rules Rules, history []ev, now ev) ([]string, []activity.Event) {
	t.Helper()
	ctx := context.Background()
	loc := testLocate(t)
	clock := t0.Add(time.Duration(now.min * float64(time.Minute)))
	st := memstore.New(memstore.Options{Now: func() time.Time { return clock }})
	for _, h := range append(slices.Clone(history), now) {
		e := h.event(loc)
		if err := st.Append(ctx, &e); err != nil {
			t.Fatal(err)
		}
	}
	page, err := st.Query(ctx, activity.Filter{Limit: 1})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("reading back the new event: %v %v", page, err)
	}
	cur := page.Items[0]
	ev := &Evaluator{Rules: rules, Events: st, Claims: st, Locate: loc}
	var out []activity.Event
	if cur.Type == activity.LoginFailed {
		out, err = ev.Failure(ctx, cur)
	} else {
		out, err = ev.SignIn(ctx, cur)
	}
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, a := range out {
		if a.Type != activity.Anomaly || a.User != cur.User || a.IP != cur.IP || a.Detail == "" {
			t.Errorf("anomaly %+v does not describe the event %+v", a, cur)
		}
		reasons = append(reasons, a.Reason)
	}
	return reasons, out
}

func TestRules(t *testing.T) {
	failed := activity.LoginFailed
	tests := []struct {
		name    string
		rules   Rules
		history []ev
		now     ev
		want    []string
		detail  []string // substrings of the first anomaly's detail
	}{
		{name: "new country fires", rules: Rules{NewCountry: true},
			history: []ev{{min: 0, user: "alice", ip: london}},
			now:     ev{min: 600, user: "alice", ip: amsterdam},
			want:    []string{NewCountry}, detail: []string{"Amsterdam, NL", "GB"}},
		{name: "new country: first sign-in ever is not new", rules: Rules{NewCountry: true},
			now: ev{min: 0, user: "alice", ip: amsterdam}},
		{name: "new country: known country", rules: Rules{NewCountry: true},
			history: []ev{{min: 0, user: "alice", ip: amsterdam}, {min: 10, user: "alice", ip: london}},
			now:     ev{min: 600, user: "alice", ip: amsterdam}},
		{name: "new country: another user's country does not count", rules: Rules{NewCountry: true},
			history: []ev{{min: 0, user: "bob", ip: amsterdam}},
			now:     ev{min: 600, user: "alice", ip: amsterdam}},
		{name: "new country: earlier sign-ins without a country", rules: Rules{NewCountry: true},
			history: []ev{{min: 0, user: "alice", ip: "10.0.0.1"}},
			now:     ev{min: 600, user: "alice", ip: amsterdam}},
		{name: "new country off", rules: Rules{},
			history: []ev{{min: 0, user: "alice", ip: london}},
			now:     ev{min: 600, user: "alice", ip: amsterdam}},

		{name: "new device fires", rules: Rules{NewDevice: true},
			history: []ev{{min: 0, user: "alice", ip: london, device: chrome}},
			now:     ev{min: 5, user: "alice", ip: london, device: firefox},
			want:    []string{NewDevice}, detail: []string{firefox, chrome}},
		{name: "new device: seen before", rules: Rules{NewDevice: true},
			history: []ev{{min: 0, user: "alice", ip: london, device: firefox}, {min: 1, user: "alice", ip: london, device: chrome}},
			now:     ev{min: 5, user: "alice", ip: london, device: firefox}},
		{name: "new device: first sign-in", rules: Rules{NewDevice: true},
			now: ev{min: 5, user: "alice", ip: london, device: firefox}},

		{name: "impossible travel fires", rules: Rules{TravelKmh: 900},
			history: []ev{{min: 0, user: "alice", ip: london}},
			now:     ev{min: 60, user: "alice", ip: newYork},
			want:    []string{ImpossibleTravel}, detail: []string{"London, GB", "New York, US", "km/h", "limit 900"}},
		{name: "impossible travel: slow enough", rules: Rules{TravelKmh: 900},
			history: []ev{{min: 0, user: "alice", ip: london}},
			now:     ev{min: 8 * 60, user: "alice", ip: newYork}},
		{name: "impossible travel: under 300 km is never flagged", rules: Rules{TravelKmh: 900},
			history: []ev{{min: 0, user: "alice", ip: london}},
			now:     ev{min: 1, user: "alice", ip: oxford}},
		{name: "impossible travel: 360 km in 10 minutes", rules: Rules{TravelKmh: 900},
			history: []ev{{min: 0, user: "alice", ip: london}},
			now:     ev{min: 10, user: "alice", ip: amsterdam},
			want:    []string{ImpossibleTravel}, detail: []string{"Amsterdam"}},
		{name: "impossible travel: consecutive sign-ins only", rules: Rules{TravelKmh: 900},
			history: []ev{{min: 0, user: "alice", ip: newYork}, {min: 9 * 60, user: "alice", ip: london}},
			now:     ev{min: 9*60 + 30, user: "alice", ip: oxford}},
		{name: "impossible travel: no coordinates", rules: Rules{TravelKmh: 900},
			history: []ev{{min: 0, user: "alice", ip: london}},
			now:     ev{min: 1, user: "alice", ip: noCoords}},

		{name: "shared ip fires at the third user", rules: Rules{SharedIPUsers: 3, SharedIPWindow: time.Hour},
			history: []ev{{min: 0, user: "alice", ip: london}, {min: 5, user: "bob", ip: london}, {min: 6, user: "bob", ip: london}},
			now:     ev{min: 30, user: "carol", ip: london},
			want:    []string{SharedIP}, detail: []string{"3 distinct users", "alice", "bob", "carol"}},
		{name: "shared ip: two users", rules: Rules{SharedIPUsers: 3, SharedIPWindow: time.Hour},
			history: []ev{{min: 0, user: "alice", ip: london}, {min: 5, user: "alice", ip: london}},
			now:     ev{min: 30, user: "bob", ip: london}},
		{name: "shared ip: outside the window", rules: Rules{SharedIPUsers: 3, SharedIPWindow: time.Hour},
			history: []ev{{min: 0, user: "alice", ip: london}, {min: 5, user: "bob", ip: london}},
			now:     ev{min: 90, user: "carol", ip: london}},
		{name: "shared ip: neighbouring addresses are other IPs", rules: Rules{SharedIPUsers: 3, SharedIPWindow: time.Hour},
			history: []ev{{min: 0, user: "alice", ip: "81.2.69.14"}, {min: 5, user: "bob", ip: london2}},
			now:     ev{min: 30, user: "carol", ip: london}},

		{name: "failure burst of a user", rules: Rules{FailureBurst: 3, FailureWindow: 10 * time.Minute},
			history: []ev{{min: 0, typ: failed, user: "alice", ip: london}, {min: 1, typ: failed, user: "alice", ip: amsterdam}},
			now:     ev{min: 2, typ: failed, user: "alice", ip: newYork},
			want:    []string{FailureBurst}, detail: []string{"3 failed sign-ins of this user"}},
		{name: "failure burst from one address", rules: Rules{FailureBurst: 3, FailureWindow: 10 * time.Minute},
			history: []ev{{min: 0, typ: failed, ip: london}, {min: 1, typ: failed, ip: london}},
			now:     ev{min: 2, typ: failed, ip: london},
			want:    []string{FailureBurst}, detail: []string{"3 failed sign-ins from 81.2.69.142"}},
		{name: "failure burst counts the flood limiter's repeats", rules: Rules{FailureBurst: 5, FailureWindow: 10 * time.Minute},
			history: []ev{{min: 0, typ: failed, ip: london},
				{min: 1.2, typ: failed, ip: "81.2.69.0/24", detail: "repeated 3 more times from 81.2.69.0/24 in the minute after ..."}},
			now:  ev{min: 3, typ: failed, ip: london},
			want: []string{FailureBurst}, detail: []string{"5 failed sign-ins"}},
		{name: "failure burst: an aggregate completes its network's burst", rules: Rules{FailureBurst: 5, FailureWindow: 10 * time.Minute},
			history: []ev{{min: 0, typ: failed, ip: london}},
			now:     ev{min: 1.2, typ: failed, ip: "81.2.69.0/24", detail: "repeated 4 more times from 81.2.69.0/24 in the minute after ..."},
			want:    []string{FailureBurst}},
		{name: "failure burst: too few", rules: Rules{FailureBurst: 3, FailureWindow: 10 * time.Minute},
			history: []ev{{min: 0, typ: failed, user: "alice", ip: london}},
			now:     ev{min: 2, typ: failed, user: "alice", ip: amsterdam}},
		{name: "failure burst: outside the window", rules: Rules{FailureBurst: 3, FailureWindow: 10 * time.Minute},
			history: []ev{{min: 0, typ: failed, ip: london}, {min: 1, typ: failed, ip: london}},
			now:     ev{min: 20, typ: failed, ip: london}},
		{name: "failure burst: sign-ins are not failures", rules: Rules{FailureBurst: 3, FailureWindow: 10 * time.Minute},
			history: []ev{{min: 0, ip: london, user: "alice"}, {min: 1, ip: london, user: "alice"}},
			now:     ev{min: 2, typ: failed, ip: london}},

		{name: "defaults: several rules at once", rules: Defaults(),
			history: []ev{{min: 0, user: "alice", ip: london, device: chrome}},
			now:     ev{min: 30, user: "alice", ip: newYork, device: firefox},
			want:    []string{NewCountry, NewDevice, ImpossibleTravel}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, out := evaluate(t, tt.rules, tt.history, tt.now)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("anomalies = %v, want %v (%+v)", got, tt.want, out)
			}
			for _, s := range tt.detail {
				if !strings.Contains(out[0].Detail, s) {
					t.Errorf("detail %q lacks %q", out[0].Detail, s)
				}
			}
		})
	}
}

// A windowed rule fires once per key and window, not at every later
// sign-in that still meets it, on whichever instance evaluates it.
func TestSharedIPFiresOncePerWindow(t *testing.T) {
	ctx := context.Background()
	loc := testLocate(t)
	clock := t0
	st := memstore.New(memstore.Options{Now: func() time.Time { return clock }})
	rules := Rules{SharedIPUsers: 2, SharedIPWindow: time.Hour}
	// Two evaluators on one store stand for two instances.
	a := &Evaluator{Rules: rules, Events: st, Claims: st, Locate: loc}
	b := &Evaluator{Rules: rules, Events: st, Claims: st, Locate: loc}
	fired := 0
	for i, user := range []string{"alice", "bob", "carol", "dave"} {
		clock = t0.Add(time.Duration(i) * time.Minute)
		e := ev{min: float64(i), user: user, ip: london}.event(loc)
		if err := st.Append(ctx, &e); err != nil {
			t.Fatal(err)
		}
		evr := a
		if i%2 == 1 {
			evr = b
		}
		out, err := evr.SignIn(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		fired += len(out)
	}
	if fired != 1 {
		t.Errorf("shared_ip fired %d times in one window, want 1", fired)
	}
}

func TestDistance(t *testing.T) {
	// London to New York is about 5,570 km.
	if d := Distance(51.5142, -0.0931, 40.71, -74.01); d < 5500 || d > 5650 {
		t.Errorf("Distance(London, New York) = %.0f km", d)
	}
	if d := Distance(1, 2, 1, 2); d != 0 {
		t.Errorf("Distance(same point) = %v", d)
	}
}
