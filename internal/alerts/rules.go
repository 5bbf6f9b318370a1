// Package alerts flags suspicious sign-ins (the anomaly rules of the
// alerts block) and posts alerts to a webhook. It is Caddy-free: the
// gateway runtime feeds it the events it records, and it reads history
// from the event store, so that every instance judges a sign-in against
// the same history, not against what it happened to see itself.
package alerts

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// Rule names: the reason of the anomaly events they write.
const (
	NewCountry       = "new_country"
	NewDevice        = "new_device"
	ImpossibleTravel = "impossible_travel"
	SharedIP         = "shared_ip"
	FailureBurst     = "failure_burst"
)

// Rules configures the anomaly rules. The zero value turns every rule off;
// Defaults returns SPEC's defaults.
type Rules struct {
	// NewCountry flags a user's first sign-in from a country after one or
	// more earlier sign-ins with a known country.
	NewCountry bool
	// NewDevice flags a sign-in from a browser+OS pair not seen for the
	// user before (after one or more earlier sign-ins with a known one).
	NewDevice bool
	// TravelKmh flags consecutive sign-ins more than MinTravelKm apart
	// whose great-circle speed exceeds it, in km/h. 0: off.
	TravelKmh float64
	// SharedIPUsers flags an address from which this many distinct users
	// signed in within SharedIPWindow. 0: off.
	SharedIPUsers  int
	SharedIPWindow time.Duration
	// FailureBurst flags this many login_failed events for one user, or
	// from one address, within FailureWindow. 0: off.
	FailureBurst  int
	FailureWindow time.Duration
}

// Defaults returns the rules as SPEC sets them when the alerts block is
// absent.
func Defaults() Rules {
	return Rules{
		NewCountry:     true,
		NewDevice:      true,
		TravelKmh:      900,
		SharedIPUsers:  3,
		SharedIPWindow: time.Hour,
		FailureBurst:   5,
		FailureWindow:  10 * time.Minute,
	}
}

// Any reports whether some rule is on.
func (r Rules) Any() bool {
	return r.NewCountry || r.NewDevice || r.TravelKmh > 0 || r.SharedIPUsers > 0 || r.FailureBurst > 0
}

// MinTravelKm is the distance below which impossible_travel never fires:
// GeoIP places an address only roughly, and a user switching between a
// phone network and a wired one can "move" a few hundred km at once.
const MinTravelKm = 300

// Look-back bounds: what one evaluation may read, so that its cost does
// not grow with a user's history or with a flood.
const (
	// historyLimit is how many of a user's latest sign-ins the per-user
	// rules compare against.
	historyLimit = 200
	// windowLimit bounds the events read for the windowed rules.
	windowLimit = 1000
	// historyAge is how far back the per-user rules look.
	historyAge = 90 * 24 * time.Hour
)

// Claimer marks a key as used across every instance (session.Store's
// ClaimOnce), so that a windowed rule fires once per window, not once per
// sign-in or per instance.
type Claimer interface {
	ClaimOnce(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Evaluator applies the rules to sign-ins and failures.
type Evaluator struct {
	Rules  Rules
	Events activity.Store
	Claims Claimer
	// Locate finds the coordinates of an address (GeoIP); nil turns
	// impossible_travel off. Events carry no coordinates, so earlier
	// sign-ins are located again by their address.
	Locate func(netip.Addr) session.Location
}

// SignIn evaluates a login_succeeded event that the store already holds
// (e.ID set) and returns the anomaly events it raises, not yet recorded.
func (ev *Evaluator) SignIn(ctx context.Context, e activity.Event) ([]activity.Event, error) {
	var out []activity.Event
	r := ev.Rules
	if e.User != "" && (r.NewCountry || r.NewDevice || (r.TravelKmh > 0 && ev.Locate != nil)) {
		page, err := ev.Events.Query(ctx, activity.Filter{
			From:  e.Time.Add(-historyAge),
			To:    e.Time,
			User:  e.User,
			Types: []string{activity.LoginSucceeded},
			Limit: historyLimit,
		})
		if err != nil {
			return nil, fmt.Errorf("reading sign-ins of %q: %w", e.User, err)
		}
		var earlier []activity.Event
		for _, p := range page.Items {
			// The user filter also matches an email; only this subject's
			// sign-ins are its history.
			if p.ID != e.ID && p.User == e.User {
				earlier = append(earlier, p)
			}
		}
		if r.NewCountry {
			if a, ok := newCountry(e, earlier); ok {
				out = append(out, a)
			}
		}
		if r.NewDevice {
			if a, ok := newDevice(e, earlier); ok {
				out = append(out, a)
			}
		}
		if r.TravelKmh > 0 && ev.Locate != nil && len(earlier) > 0 {
			if a, ok := ev.travel(e, earlier[0]); ok {
				out = append(out, a)
			}
		}
	}
	if r.SharedIPUsers > 0 && e.IP != "" {
		a, ok, err := ev.sharedIP(ctx, e)
		if err != nil {
			return out, err
		}
		if ok {
			out = append(out, a)
		}
	}
	return out, nil
}

func anomaly(e activity.Event, reason, detail string) activity.Event {
	return activity.Event{
		Type:      activity.Anomaly,
		User:      e.User,
		Email:     e.Email,
		SessionID: e.SessionID,
		Site:      e.Site,
		IP:        e.IP,
		City:      e.City,
		Country:   e.Country,
		Device:    e.Device,
		Reason:    reason,
		Actor:     activity.ActorSystem,
		Detail:    detail,
	}
}

func newCountry(e activity.Event, earlier []activity.Event) (activity.Event, bool) {
	if e.Country == "" {
		return activity.Event{}, false
	}
	var seen []string
	for _, p := range earlier {
		if p.Country == "" {
			continue
		}
		if strings.EqualFold(p.Country, e.Country) {
			return activity.Event{}, false
		}
		if !slices.Contains(seen, p.Country) {
			seen = append(seen, p.Country)
		}
	}
	// Without an earlier known country there is nothing to compare:
	// turning GeoIP on must not flag every user.
	if len(seen) == 0 {
		return activity.Event{}, false
	}
	slices.Sort(seen)
	return anomaly(e, NewCountry, fmt.Sprintf("first sign-in from %s; earlier sign-ins from %s",
		place(e.City, e.Country), strings.Join(seen, ", "))), true
}

func newDevice(e activity.Event, earlier []activity.Event) (activity.Event, bool) {
	if e.Device == "" {
		return activity.Event{}, false
	}
	var seen []string
	for _, p := range earlier {
		if p.Device == "" {
			continue
		}
		if strings.EqualFold(p.Device, e.Device) {
			return activity.Event{}, false
		}
		if !slices.Contains(seen, p.Device) && len(seen) < 10 {
			seen = append(seen, p.Device)
		}
	}
	if len(seen) == 0 {
		return activity.Event{}, false
	}
	return anomaly(e, NewDevice, fmt.Sprintf("first sign-in with %s; earlier with %s",
		e.Device, strings.Join(seen, ", "))), true
}

func (ev *Evaluator) travel(e, prev activity.Event) (activity.Event, bool) {
	from, ok1 := ev.coordinates(prev.IP)
	to, ok2 := ev.coordinates(e.IP)
	if !ok1 || !ok2 {
		return activity.Event{}, false
	}
	km := Distance(from.Latitude, from.Longitude, to.Latitude, to.Longitude)
	if km <= MinTravelKm {
		return activity.Event{}, false
	}
	dt := e.Time.Sub(prev.Time)
	speed := math.Inf(1)
	if dt > 0 {
		speed = km / dt.Hours()
	}
	if speed <= ev.Rules.TravelKmh {
		return activity.Event{}, false
	}
	speedText := "instantly"
	if !math.IsInf(speed, 1) {
		speedText = fmt.Sprintf("%.0f km/h", speed)
	}
	return anomaly(e, ImpossibleTravel, fmt.Sprintf(
		"%s (%s) at %s, then %s (%s) at %s: %.0f km in %s, %s (limit %.0f km/h)",
		place(from.City, from.Country), prev.IP, prev.Time.UTC().Format(time.RFC3339),
		place(to.City, to.Country), e.IP, e.Time.UTC().Format(time.RFC3339),
		km, dt.Round(time.Second), speedText, ev.Rules.TravelKmh)), true
}

func (ev *Evaluator) coordinates(ip string) (session.Location, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return session.Location{}, false
	}
	loc := ev.Locate(a)
	// A database without coordinates for the address gives 0,0, which is
	// "unknown", not a point in the Gulf of Guinea.
	if loc.Latitude == 0 && loc.Longitude == 0 {
		return loc, false
	}
	return loc, true
}

func place(city, country string) string {
	switch {
	case city != "" && country != "":
		return city + ", " + country
	case country != "":
		return country
	}
	return "an unknown place"
}

// Distance is the great-circle distance between two points in km
// (haversine on a sphere of the Earth's mean radius).
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	const earthKm = 6371.0088
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthKm * math.Asin(math.Min(1, math.Sqrt(h)))
}

func (ev *Evaluator) sharedIP(ctx context.Context, e activity.Event) (activity.Event, bool, error) {
	page, err := ev.Events.Query(ctx, activity.Filter{
		From:     e.Time.Add(-ev.Rules.SharedIPWindow),
		To:       e.Time,
		IPPrefix: e.IP,
		Types:    []string{activity.LoginSucceeded},
		Limit:    windowLimit,
	})
	if err != nil {
		return activity.Event{}, false, fmt.Errorf("reading sign-ins from %s: %w", e.IP, err)
	}
	users := []string{e.User}
	for _, p := range page.Items {
		// IPPrefix "192.0.2.1" also matches 192.0.2.10.
		if p.IP == e.IP && p.User != "" && !slices.Contains(users, p.User) {
			users = append(users, p.User)
		}
	}
	if len(users) < ev.Rules.SharedIPUsers {
		return activity.Event{}, false, nil
	}
	won, err := ev.claim(ctx, SharedIP+":"+e.IP, ev.Rules.SharedIPWindow)
	if err != nil || !won {
		return activity.Event{}, false, err
	}
	names := users
	if len(names) > 10 {
		names = names[:10]
	}
	return anomaly(e, SharedIP, fmt.Sprintf("%d distinct users signed in from %s within %s: %s",
		len(users), e.IP, ev.Rules.SharedIPWindow, strings.Join(names, ", "))), true, nil
}

// claim makes a windowed rule fire once per key and window across every
// instance.
func (ev *Evaluator) claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ev.Claims == nil {
		return true, nil
	}
	won, err := ev.Claims.ClaimOnce(ctx, "alert-rule:"+key, ttl)
	if err != nil {
		return false, fmt.Errorf("claiming alert %s: %w", key, err)
	}
	return won, nil
}

// Failure evaluates a login_failed event that the store already holds and
// returns the failure_burst anomalies it raises: one for the user, one for
// the address, each at most once per window.
func (ev *Evaluator) Failure(ctx context.Context, e activity.Event) ([]activity.Event, error) {
	r := ev.Rules
	if r.FailureBurst <= 0 {
		return nil, nil
	}
	var out []activity.Event
	if e.User != "" {
		page, err := ev.Events.Query(ctx, activity.Filter{
			From: e.Time.Add(-r.FailureWindow), To: e.Time,
			User: e.User, Types: []string{activity.LoginFailed}, Limit: windowLimit,
		})
		if err != nil {
			return nil, fmt.Errorf("reading failures of %q: %w", e.User, err)
		}
		n := 0
		for _, p := range page.Items {
			if p.User == e.User {
				n += weight(p)
			}
		}
		if n >= r.FailureBurst {
			won, err := ev.claim(ctx, FailureBurst+":user:"+e.User, r.FailureWindow)
			if err != nil {
				return out, err
			}
			if won {
				out = append(out, anomaly(e, FailureBurst, fmt.Sprintf(
					"%d failed sign-ins of this user within %s; the latest from %s, reason %s",
					n, r.FailureWindow, orUnknown(e.IP), orUnknown(e.Reason))))
			}
		}
	}
	if e.IP == "" {
		return out, nil
	}
	n, err := ev.failuresFrom(ctx, e)
	if err != nil {
		return out, err
	}
	if n >= r.FailureBurst {
		won, err := ev.claim(ctx, FailureBurst+":ip:"+e.IP, r.FailureWindow)
		if err != nil {
			return out, err
		}
		if won {
			// The address is the evidence; the user of the latest
			// failure may be one of many.
			out = append(out, anomaly(e, FailureBurst, fmt.Sprintf(
				"%d failed sign-ins from %s within %s; the latest reason %s",
				n, e.IP, r.FailureWindow, orUnknown(e.Reason))))
		}
	}
	return out, nil
}

// failuresFrom counts the failures in the window from e's address: its
// own events plus the flood limiter's aggregates of its network (/24,
// /64), which stand for repeats from somewhere in it. For an aggregate
// itself (e.IP is a network) it counts the whole network: for IPv4 every
// address of the /24, for IPv6 the aggregates only (a /64 has no textual
// prefix the event filter could use).
func (ev *Evaluator) failuresFrom(ctx context.Context, e activity.Event) (int, error) {
	var queries []string
	var match func(ip string) bool
	if addr, err := netip.ParseAddr(e.IP); err == nil {
		netw := Network(addr)
		queries = []string{e.IP, netw}
		match = func(ip string) bool { return ip == e.IP || ip == netw }
	} else if pfx, err := netip.ParsePrefix(e.IP); err == nil {
		queries = []string{e.IP}
		if pfx.Addr().Is4() && pfx.Bits() == 24 {
			b := pfx.Addr().As4()
			queries = []string{fmt.Sprintf("%d.%d.%d.", b[0], b[1], b[2])}
		}
		match = func(ip string) bool {
			if ip == e.IP {
				return true
			}
			a, err := netip.ParseAddr(ip)
			return err == nil && pfx.Contains(a)
		}
	} else {
		return 0, nil
	}
	n := 0
	seen := map[string]bool{}
	for _, key := range queries {
		page, err := ev.Events.Query(ctx, activity.Filter{
			From: e.Time.Add(-ev.Rules.FailureWindow), To: e.Time,
			IPPrefix: key, Types: []string{activity.LoginFailed}, Limit: windowLimit,
		})
		if err != nil {
			return 0, fmt.Errorf("reading failures from %s: %w", key, err)
		}
		for _, p := range page.Items {
			if match(p.IP) && !seen[p.ID] {
				seen[p.ID] = true
				n += weight(p)
			}
		}
	}
	return n, nil
}

// weight is how many failures an event stands for: the flood limiter
// records repeats as one event whose detail counts them.
func weight(e activity.Event) int {
	var n int
	if _, err := fmt.Sscanf(e.Detail, "repeated %d more times", &n); err == nil && n > 0 {
		return n
	}
	return 1
}

// Network is the flood limiter's unit for an address: its /24 (IPv4) or
// /64 (IPv6), as the aggregated events write it.
func Network(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
