package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/policy"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// This file holds the access limits of issue 7: the app's IP rules
// applied before every site's own (allow_ip / deny_ip of the global
// options), the per-user session limit (max_sessions) and the binding of
// a session to its login address (bind_ip).

// decideNetwork applies the app's IP rules and then the site's IP and
// country rules to a client address. The location is looked up only when
// a country rule needs it.
func (g *Gateway) decideNetwork(ip netip.Addr) (policy.Decision, session.Location) {
	global, site := &g.rt.cfg.Network, &g.cfg.Network
	var loc session.Location
	if global.Empty() && site.Empty() {
		return policy.Decision{Allow: true}, loc
	}
	if global.NeedsCountry() || site.NeedsCountry() {
		loc = g.rt.locate(ip)
	}
	return policy.Layered(global, site, ip, loc.Country), loc
}

// bound reports whether a request from ip may use s under this site's
// bind_ip. It parses the stored login address on every call, which costs
// no allocation, rather than keeping a parsed copy in the session.
func (g *Gateway) bound(s *session.Session, ip netip.Addr) bool {
	if g.cfg.BindIP == policy.BindOff {
		return true
	}
	login, err := netip.ParseAddr(s.IP)
	if err != nil {
		// No usable login address (a session from before addresses
		// were known): nothing to bind to.
		return true
	}
	return policy.Bound(g.cfg.BindIP, login, ip)
}

// endConflict ends a session used from outside its login address
// (bind_ip): a stolen cookie replayed elsewhere must not work, and the
// rightful browser signs in again. The event names the address the
// request came from; Detail names the login address.
func (g *Gateway) endConflict(r *http.Request, s *session.Session, ip netip.Addr) error {
	_, err := g.rt.endBySystem(r.Context(), s.ID, session.EndIPConflict, g.site(r), func(e *activity.Event) {
		e.IP = addrString(ip)
		e.Detail = "signed in from " + s.IP + ", used from " + addrString(ip) + " (bind_ip " + g.cfg.BindIP + ")"
	})
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		return fmt.Errorf("ending session used from another address: %w", err)
	}
	return nil
}

// limitSessions applies max_sessions after a sign-in created s: the
// store ends the user's least recently used sessions beyond the limit in
// one atomic step, so that concurrent sign-ins on several instances leave
// exactly the limit. A failure leaves the sign-in standing (its session
// exists already) and is reported; the next sign-in limits again.
func (g *Gateway) limitSessions(r *http.Request, s *session.Session) {
	if g.cfg.MaxSessions <= 0 {
		return
	}
	ended, err := g.rt.store.LimitSessions(r.Context(), session.Limit{
		User: s.User, IssuerKey: g.issuerKey, Keep: s.ID, Max: g.cfg.MaxSessions,
	})
	if err != nil {
		g.rt.cfg.OnError(fmt.Errorf("limiting sessions of %q: %w", s.User, err))
	}
	detail := "new sign-in on " + g.site(r) + " (max_sessions " + fmt.Sprint(g.cfg.MaxSessions) + ")"
	for _, old := range ended {
		g.rt.recordEnd(r.Context(), old, session.EndNewLogin, "", func(e *activity.Event) { e.Detail = detail })
	}
}

// endBySystem ends a session for a reason of the system's own (no
// re-authentication mark: see End), records the event after note has
// adjusted it, and returns the ended session; session.ErrNotFound when
// it had already ended, in which case nothing is recorded.
func (rt *Runtime) endBySystem(ctx context.Context, id, reason, site string, note func(*activity.Event)) (*session.Session, error) {
	s, err := rt.store.Delete(ctx, id)
	rt.cache.Invalidate(id)
	if err != nil {
		return nil, err
	}
	rt.recordEnd(ctx, s, reason, site, note)
	return s, nil
}

// recordEnd records the end of a session the store has ended, as End
// does, and drops it from this instance's cache at once rather than when
// the store's publication arrives. site, when set, replaces the
// session's own; note may adjust the event.
func (rt *Runtime) recordEnd(ctx context.Context, s *session.Session, reason, site string, note func(*activity.Event)) {
	rt.cache.Invalidate(s.ID)
	e := eventFor(s, reason)
	e.Actor = activity.ActorSystem
	finalTimes(&e, s, rt.cfg.Now())
	if site != "" {
		e.Site = site
	}
	if note != nil {
		note(&e)
	}
	rt.Record(ctx, e)
}
