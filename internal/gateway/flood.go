package gateway

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// Anonymous traffic must not be able to flood the activity log (issue 6,
// item 4): every bogus callback used to write a login_failed, and the
// access_denied limiter keyed on the full address, so one IPv6 /64 could
// write millions. Events of the kinds anyone can cause are aggregated
// per network (/24 for IPv4, /64 for IPv6), type, reason, gateway (not
// the client's Host header, which a client varies at will) and user, per
// minute: the first of a window is recorded at once (an admin sees
// it immediately), the rest of that window are counted and recorded as
// one event whose Detail says how many there were. So each network can
// write at most two events a minute per kind, whatever it sends.
const (
	floodWindow = time.Minute
	// floodFlushEvery is how often windows that have closed are
	// written out.
	floodFlushEvery = 10 * time.Second
	// maxFloodKeys bounds the limiter's memory. Past it, events of new
	// keys are only counted, per type, and reported in one event per
	// flush: a scan from very many networks costs a few events, not
	// memory.
	maxFloodKeys = 10000
)

type floodKey struct {
	gw                         *Gateway
	typ, reason, network, user string
}

// maxFloodText bounds every string the limiter keeps (subjects, sites,
// devices come from clients and providers): its memory is then bounded
// by maxFloodKeys times a few KiB, whatever the requests.
const maxFloodText = 256

func clip(s string) string {
	if len(s) > maxFloodText {
		return s[:maxFloodText]
	}
	return s
}

type floodWindowState struct {
	start time.Time
	// first is the event recorded when the window opened; its fields
	// describe the repeats.
	first activity.Event
	// repeats counts the events after the first within the window.
	repeats int
}

// floodLimiter keeps the windows of anonymous events apart from those of
// events that name a user (a signed-in session refused by a site, a
// sign-in refused after the provider's login), so that an anonymous
// flood that fills its table cannot hide a real user's denial in the
// overflow count.
type floodLimiter struct {
	mu       sync.Mutex
	windows  map[floodKey]*floodWindowState // anonymous
	users    map[floodKey]*floodWindowState // naming a user
	overflow map[string]int                 // type -> events not recorded individually
}

// network is the /24 or /64 an address belongs to, as text; "" when
// there is no address.
func network(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p.String()
}

// recordLimited records an event anyone can cause (login_failed,
// access_denied) on gateway gw through the flood limiter.
func (rt *Runtime) recordLimited(ctx context.Context, gw *Gateway, e activity.Event) {
	rt.cfg.CountEvent(e.Type, e.Reason)
	now := rt.cfg.Now()
	e.User, e.Email, e.Site, e.Device, e.City = clip(e.User), clip(e.Email), clip(e.Site), clip(e.Device), clip(e.City)
	k := floodKey{gw: gw, typ: e.Type, reason: e.Reason, network: network(e.IP), user: e.User}
	f := &rt.flood
	f.mu.Lock()
	if f.windows == nil {
		f.windows = make(map[floodKey]*floodWindowState)
		f.users = make(map[floodKey]*floodWindowState)
		f.overflow = make(map[string]int)
	}
	windows := f.windows
	if e.User != "" {
		windows = f.users
	}
	var closed *floodWindowState
	if w, ok := windows[k]; ok {
		if now.Sub(w.start) < floodWindow {
			w.repeats++
			f.mu.Unlock()
			return
		}
		closed = w
		delete(windows, k)
	}
	if len(windows) >= maxFloodKeys {
		f.overflow[e.Type]++
		f.mu.Unlock()
		rt.recordRepeats(ctx, closed)
		return
	}
	windows[k] = &floodWindowState{start: now, first: e}
	f.mu.Unlock()
	rt.recordRepeats(ctx, closed)
	rt.Record(ctx, e)
}

// FlushAggregated writes out the windows of the flood limiter that have
// closed, and what overflowed it. The runtime calls it every few seconds;
// tests call it after moving the clock.
func (rt *Runtime) FlushAggregated(ctx context.Context) {
	now := rt.cfg.Now()
	f := &rt.flood
	var closed []*floodWindowState
	var over map[string]int
	f.mu.Lock()
	for _, windows := range []map[floodKey]*floodWindowState{f.windows, f.users} {
		for k, w := range windows {
			if now.Sub(w.start) >= floodWindow {
				closed = append(closed, w)
				delete(windows, k)
			}
		}
	}
	if len(f.overflow) > 0 {
		over = f.overflow
		f.overflow = make(map[string]int)
	}
	f.mu.Unlock()
	for _, w := range closed {
		rt.recordRepeats(ctx, w)
	}
	for typ, n := range over {
		rt.Record(ctx, activity.Event{
			Type:   typ,
			Detail: fmt.Sprintf("%d more %s events from too many networks to list one by one", n, typ),
		})
	}
}

// recordRepeats writes the event that stands for a window's repeats, if
// it had any.
func (rt *Runtime) recordRepeats(ctx context.Context, w *floodWindowState) {
	if w == nil || w.repeats == 0 {
		return
	}
	e := w.first
	e.ID, e.Time = "", time.Time{}
	from := network(e.IP)
	if from == "" {
		from = "unknown addresses"
	}
	e.IP = ""
	if n := network(w.first.IP); n != "" {
		// The network, not the first address: the repeats came from
		// anywhere in it.
		e.IP = n
	}
	e.Detail = fmt.Sprintf("repeated %d more times from %s in the minute after %s",
		w.repeats, from, w.start.UTC().Format(time.RFC3339))
	rt.Record(ctx, e)
}
