package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/oidcflow"
	"github.com/gatehouse-proxy/gatehouse/internal/policy"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/web"
)

// Config is one protected site's settings; caddymodule fills it from the
// handler's configuration. Every field's zero value is its default.
type Config struct {
	// Issuer is the provider's issuer URL, exactly as its discovery
	// document spells it. Required.
	Issuer string
	// ClientID is this site's client at the provider. Required.
	ClientID string
	// ClientSecret authenticates the client; empty for a public client.
	ClientSecret string
	// Scopes requested; "openid" is added when missing.
	Scopes []string
	// GroupsClaim names the claim listing the user's groups. Default: groups.
	GroupsClaim string
	// PathPrefix is where the gateway's own endpoints live.
	// Default: /.gatehouse
	PathPrefix string
	// IdleTimeout ends a session unused this long, on this site's
	// requests; 0 disables it here (a session born on a site with one still
	// ends by its own).
	IdleTimeout time.Duration
	// MaxLifetime ends any session this long after sign-in, on this
	// site's requests, whatever the site it was born on allowed.
	// Default: 12h.
	MaxLifetime time.Duration
	// TouchInterval throttles last-access writes; it is capped at a quarter
	// of IdleTimeout so that an active session never looks idle.
	// Default: 30s.
	TouchInterval time.Duration
	// CookieName is the session cookie's name; on HTTPS without
	// CookieDomain the cookie is sent as "__Host-" + CookieName, which no
	// sibling subdomain can set. Default: gatehouse.
	CookieName string
	// CookieDomain shares the cookie with subdomains when set.
	// Default: this host only.
	CookieDomain string
	// CookieSecure forces the Secure attribute on (true) or off (false);
	// nil decides by the request's scheme (see Scheme).
	CookieSecure *bool
	// AdminGroups and AdminEmails say who administers this site: they may
	// see and end the sessions and events of the sites whose admin rules
	// they also pass. Emails count only when verified.
	AdminGroups []string
	AdminEmails []string
	// AuditorGroups and AuditorEmails say who audits this site: they see
	// what its admins see and end nothing. Emails count only when
	// verified.
	AuditorGroups []string
	AuditorEmails []string
	// MaxSessions limits a user's sessions across every site on the
	// store: a sign-in beyond it ends the least recently used ones
	// (session_ended_new_login). 0: no limit.
	MaxSessions int
	// BindIP ties a session to its login address: "exact", "subnet" (the
	// /24 or /64), or "" (off). A request from elsewhere ends the session
	// with ip_conflict.
	BindIP string
	// RequireMFA refuses sign-ins, and sessions on every request, whose
	// amr shows a single factor (login_failed mfa_required).
	RequireMFA bool
	// MFAACR, when set, is sent as acr_values to ask the provider for a
	// second factor.
	MFAACR string
	// Refresh keeps the refresh token (sealed, in the store) and refreshes
	// the access token before it expires; a refused refresh ends the
	// session (refresh_failed).
	Refresh bool
	// PassAccessToken sends the current access token to the upstream in
	// X-Forwarded-Access-Token (needs Refresh). Default: never.
	PassAccessToken bool
	// JWTHeader, when set, names a request header that carries a signed
	// identity JWT (ES256, keys at PathPrefix/jwks.json) for the upstream.
	JWTHeader string
	// Network holds the IP and country rules, checked before sign-in is
	// offered and on every request. Default: everyone.
	Network policy.Network
	// Identity holds who may use the site, checked at the callback and on
	// every request. Default: everyone the provider signs in.
	Identity policy.Identity
	// InsecureUnverifiedEmail lets emails the provider does not mark
	// email_verified count for Identity and the admin emails. Dangerous:
	// with a provider where users type their own email, anyone can claim
	// an admin's address. Default: false.
	InsecureUnverifiedEmail bool
	// HTTPClient talks to the provider. Default: 10 s timeout.
	HTTPClient *http.Client
	// ClientIP returns the client's address; caddymodule passes Caddy's,
	// which honours trusted_proxies. Default: the connection's peer.
	ClientIP func(*http.Request) netip.Addr
	// Scheme returns "https" or "http" for a request; caddymodule passes
	// one that believes X-Forwarded-Proto only from trusted proxies.
	// Default: "https" exactly when the connection is TLS.
	Scheme func(*http.Request) string
	// Admin serves the pages and the JSON API under PathPrefix (the "my
	// sessions" page, /admin/ and /api/). It receives requests from signed-in
	// users with a web.Viewer in the context; nil answers 404.
	Admin http.Handler
}

// Defaults.
const (
	DefaultPathPrefix    = web.DefaultPathPrefix
	DefaultCookieName    = "gatehouse"
	DefaultMaxLifetime   = 12 * time.Hour
	DefaultTouchInterval = 30 * time.Second
	stateTTL             = 10 * time.Minute
)

// Gateway guards one site.
type Gateway struct {
	cfg  Config
	rt   *Runtime
	oidc *oidcflow.Client
	// hostCookieName is "__Host-" + CookieName.
	hostCookieName string
	// issuerKey is session.IssuerKey(cfg.Issuer): the sessions this site
	// accepts.
	issuerKey string
	// scope names the admin rules (see adminScope).
	scope string
	// clientKey names this site's provider and client in session tokens
	// (see sealTokens).
	clientKey [clientKeyLen]byte
	// lastHost is the Host header last learned for the runtime's site
	// registry, so that learning costs a comparison per request.
	lastHost atomic.Pointer[string]
}

// New returns a Gateway for cfg sharing rt. It does no network I/O: the
// provider is discovered on first need.
func New(cfg Config, rt *Runtime) (*Gateway, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("issuer is required")
	}
	if cfg.ClientID == "" {
		return nil, errors.New("client_id is required")
	}
	if cfg.PathPrefix == "" {
		cfg.PathPrefix = DefaultPathPrefix
	}
	if !strings.HasPrefix(cfg.PathPrefix, "/") || strings.HasSuffix(cfg.PathPrefix, "/") {
		return nil, fmt.Errorf("path_prefix %q must start with / and not end with /", cfg.PathPrefix)
	}
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultCookieName
	}
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = DefaultMaxLifetime
	}
	if cfg.TouchInterval <= 0 {
		cfg.TouchInterval = DefaultTouchInterval
	}
	if cfg.IdleTimeout > 0 && cfg.TouchInterval > cfg.IdleTimeout/4 {
		cfg.TouchInterval = cfg.IdleTimeout / 4
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = peerIP
	}
	if cfg.Scheme == nil {
		cfg.Scheme = tlsScheme
	}
	if cfg.PassAccessToken && !cfg.Refresh {
		// Without refresh the store keeps no token to pass.
		return nil, errors.New("pass_access_token needs refresh on")
	}
	g := &Gateway{cfg: cfg, rt: rt, hostCookieName: "__Host-" + cfg.CookieName, issuerKey: session.IssuerKey(cfg.Issuer),
		clientKey: clientKey(cfg.Issuer, cfg.ClientID)}
	g.scope = adminScope(&g.cfg)
	if err := g.initJWT(); err != nil {
		return nil, err
	}
	rt.sites.add(g)
	g.oidc = oidcflow.New(oidcflow.Config{
		Issuer:       cfg.Issuer,
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Scopes:       cfg.Scopes,
		GroupsClaim:  cfg.GroupsClaim,
		HTTPClient:   cfg.HTTPClient,
		Now:          rt.cfg.Now,
		ACRValues:    cfg.MFAACR,
	})
	return g, nil
}

// addrString is an address as events record it: "" when unknown (the
// zero netip.Addr prints as "invalid IP").
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func tlsScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func peerIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap().WithZone("")
}

// Config returns the effective configuration.
func (g *Gateway) Config() Config { return g.cfg }

// Serve decides a request. When it returns a session, the request may go on
// to the upstream: the identity headers are set and every client-supplied
// copy is gone. When it returns nil, Serve has written the response
// (a redirect to sign in, a 401, a 403, an endpoint of the gateway's own).
func (g *Gateway) Serve(w http.ResponseWriter, r *http.Request) *session.Session {
	stripIdentity(r.Header)
	if p := r.URL.Path; strings.HasPrefix(p, g.cfg.PathPrefix) &&
		(len(p) == len(g.cfg.PathPrefix) || p[len(g.cfg.PathPrefix)] == '/') {
		g.endpoint(w, r, p[len(g.cfg.PathPrefix):])
		return nil
	}
	ip := g.cfg.ClientIP(r)
	if !g.networkAllowed(w, r, ip) {
		return nil
	}
	c, err := g.check(r, ip)
	switch {
	case errors.Is(err, session.ErrUnavailable):
		g.unavailable(w, r)
		return nil
	case err != nil:
		g.rt.cfg.OnError(err)
		g.unavailable(w, r)
		return nil
	case c.denied != "":
		g.refuse(w, r, c, ip)
		return nil
	case c.s == nil:
		g.unauthenticated(w, r, c.ended)
		return nil
	}
	s := c.s
	setIdentity(r.Header, s.User, g.Email(s), s.Username, s.Groups)
	if g.cfg.PassAccessToken {
		if v := g.accessToken(s); v != nil {
			r.Header[HeaderAccessToken] = v
		}
	}
	if !g.setAssertion(w, r, s) {
		return nil
	}
	g.stripSessionCookies(r.Header)
	return s
}

// checked is the outcome of a session check.
type checked struct {
	// s is the browser's live session; nil when there is none.
	s *session.Session
	// ended tells that the browser carried the cookie of a session that
	// has ended (revoked, expired, signed out elsewhere).
	ended bool
	// denied, when set, is why this site's identity rules refuse s: the
	// session is alive, but not for this site.
	denied string
}

// maxSessionCookies bounds how many well-formed cookies of our name a
// request may have looked up; malformed ones (see
// session.WellFormedCookie) are skipped before counting, so planted
// garbage cannot push the real cookie out of reach. Cookies of valid
// shape that name no session do count, since each costs a store lookup:
// a host that can set more than seven for the parent domain, on paths
// that precede the real cookie's, can lock a user out of a plain-HTTP
// site. On HTTPS the cookie is __Host-, which no other host can set.
const maxSessionCookies = 8

// Results of a session check, as CountCheck receives them.
const (
	CheckValid  = "valid"  // a live session passed this site's rules
	CheckNone   = "none"   // no cookie, or none that names a session
	CheckEnded  = "ended"  // the cookie of an ended session, or one this check ended
	CheckDenied = "denied" // a live session this site's identity rules refuse
	CheckError  = "error"  // the store could not say
)

// check is lookup, counted.
func (g *Gateway) check(r *http.Request, ip netip.Addr) (checked, error) {
	c, err := g.lookup(r, ip)
	result := CheckNone
	switch {
	case err != nil:
		result = CheckError
	case c.denied != "":
		result = CheckDenied
	case c.s != nil:
		result = CheckValid
	case c.ended:
		result = CheckEnded
	}
	g.rt.cfg.CountCheck(result)
	return c, err
}

// lookup finds the request's session and applies this site's rules to it:
// its own idle timeout and maximum lifetime (a session that outlived them
// ends), and its identity rules, on every request, because a session
// born on a laxer site that shares the cookie must never pass a stricter
// one (issue 6, item 1). An error means the store could not say.
//
// Every cookie of our name counts, so that a shadowing cookie set for a
// parent domain by a sibling subdomain can neither lock the user out (a
// garbage or ended value first) nor sign them in as someone else: of
// several live sessions of different users the one born on this site
// wins, and without exactly one such the request has no session.
func (g *Gateway) lookup(r *http.Request, ip netip.Addr) (checked, error) {
	var c checked
	var vals [maxSessionCookies]string
	n := cookieValues(r.Header, g.sessionCookieName(r), &vals, session.WellFormedCookie)
	if n == 0 {
		return c, nil
	}
	now := g.rt.cfg.Now()
	var live [maxSessionCookies]*session.Session
	nl := 0
	for _, v := range vals[:n] {
		sec, err := session.DecodeCookie(v)
		if err != nil {
			continue
		}
		s, err := g.rt.cache.GetSecretAt(r.Context(), sec, now)
		if errors.Is(err, session.ErrNotFound) {
			c.ended = true
			continue
		}
		if err != nil {
			return c, fmt.Errorf("loading session: %w", err)
		}
		if !g.ownIssuer(s) {
			// Signed in through another provider, whose subjects may
			// name other people: not a session for this site.
			continue
		}
		if reason := g.expiry(s, now); reason != "" {
			_, err := g.rt.End(r.Context(), s.ID, reason, activity.ActorSystem, "")
			if err != nil && !errors.Is(err, session.ErrNotFound) {
				return c, fmt.Errorf("ending expired session: %w", err)
			}
			c.ended = true
			continue
		}
		if !g.bound(s, ip) {
			if err := g.endConflict(r, s, ip); err != nil {
				return c, err
			}
			c.ended = true
			continue
		}
		live[nl] = s
		nl++
	}
	switch nl {
	case 0:
		return c, nil
	case 1:
		c.s = live[0]
	default:
		c.s = g.pick(r, live[:nl])
		if c.s == nil {
			return c, nil
		}
	}
	if reason := g.refusal(c.s); reason != "" {
		c.denied = reason
		return c, nil
	}
	g.rt.sites.learn(g, r)
	if now.Sub(c.s.LastAccess) >= g.cfg.TouchInterval {
		g.touch(r, c.s, ip, now)
	}
	if g.cfg.Refresh {
		g.maybeRefresh(c.s, now)
	}
	c.ended = false
	return c, nil
}

// ownIssuer reports whether s was signed in through this site's
// provider (sessions from before issuers were recorded count as such).
func (g *Gateway) ownIssuer(s *session.Session) bool {
	return s.IssuerKey == "" || s.IssuerKey == g.issuerKey
}

// pick chooses among several live sessions a request carried: all of one
// user, the first; otherwise the one born on this site, if exactly one
// was; otherwise none.
func (g *Gateway) pick(r *http.Request, live []*session.Session) *session.Session {
	same := true
	for _, s := range live[1:] {
		same = same && s.User == live[0].User
	}
	if same {
		return live[0]
	}
	site := g.site(r)
	var found *session.Session
	for _, s := range live {
		if s.Site == site {
			if found != nil {
				return nil
			}
			found = s
		}
	}
	return found
}

// expiry tells whether s has ended by time under this site's rules: its
// own deadlines, this site's idle timeout, and this site's maximum
// lifetime counted from sign-in.
func (g *Gateway) expiry(s *session.Session, now time.Time) string {
	if reason := s.Expiry(now, g.cfg.IdleTimeout); reason != "" {
		return reason
	}
	if now.Sub(s.CreatedAt) >= g.cfg.MaxLifetime {
		return session.EndLifetime
	}
	return ""
}

// Email is the session's email as far as rules and the upstream may use
// it: empty unless the provider verified it (or the site opted out of
// that check). An upstream told an address the user merely typed would
// take them for its owner (Grafana's auth proxy signs users in by
// X-Forwarded-Email), so the identity headers, the signed assertion and
// the {http.auth.user.email} placeholder carry only this.
func (g *Gateway) Email(s *session.Session) string {
	if s.EmailVerified || g.cfg.InsecureUnverifiedEmail {
		return s.Email
	}
	return ""
}

// refusal is why this site's identity rules refuse s, or "".
func (g *Gateway) refusal(s *session.Session) string {
	if d := g.cfg.Identity.Decide(g.Email(s), s.Groups); !d.Allow {
		return d.Reason
	}
	if g.cfg.RequireMFA && !s.MFA {
		return activity.ReasonMFARequired
	}
	return ""
}

// mfaMessage explains a refusal for want of a second factor.
const mfaMessage = "This site needs a sign-in with a second factor, such as a one-time code or a security key. Sign out, then sign in again using it."

// refuse answers a live session this site's identity rules refuse: 403,
// and an access_denied event (aggregated, so a busy script cannot flood
// the log). The session stays valid where it is allowed.
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, c checked, ip netip.Addr) {
	e := eventFor(c.s, activity.AccessDenied)
	e.Site = g.site(r)
	e.IP = addrString(ip)
	e.Reason = c.denied
	g.rt.recordLimited(r.Context(), g, e)
	msg := "Your account is not allowed to use this site."
	if c.denied == activity.ReasonMFARequired {
		msg = mfaMessage
	}
	g.page(w, r, http.StatusForbidden, "Access denied", msg, "Sign out", g.cfg.PathPrefix+"/logout")
}

func (g *Gateway) touch(r *http.Request, s *session.Session, ip netip.Addr, now time.Time) {
	a := session.Access{At: now}
	if ip.IsValid() {
		a.IP = ip.String()
		if a.IP != s.LastIP {
			loc := g.rt.locate(ip)
			a.Location = &loc
		}
	}
	// describe clips and caches; comparing its output spares a device
	// update on every touch for long User-Agents.
	if dev := g.rt.describe(r.UserAgent()); dev.UserAgent != s.UserAgent {
		a.Device = &dev
	}
	g.rt.queueTouch(s, a)
}

// cookieValues collects the values of the cookies called name in the
// Cookie headers that keep passes (nil: all) into out, without allocating
// (http.Request.Cookies would parse and copy every cookie), and returns
// how many it found.
func cookieValues(h http.Header, name string, out *[maxSessionCookies]string, keep func(string) bool) int {
	n := 0
	for _, line := range h["Cookie"] {
		for len(line) > 0 && n < len(out) {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
				v := part[len(name)+1:]
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				if keep == nil || keep(v) {
					out[n] = v
					n++
				}
			}
		}
	}
	return n
}

// cookieValue is the first value of the cookie called name, or "".
func cookieValue(h http.Header, name string) string {
	var vals [maxSessionCookies]string
	if cookieValues(h, name, &vals, nil) == 0 {
		return ""
	}
	return vals[0]
}

// networkAllowed applies the app's IP rules and then the site's IP and
// country rules, before sign-in is even offered.
func (g *Gateway) networkAllowed(w http.ResponseWriter, r *http.Request, ip netip.Addr) bool {
	d, loc := g.decideNetwork(ip)
	if d.Allow {
		return true
	}
	g.rt.recordLimited(r.Context(), g, activity.Event{
		Type:    activity.AccessDenied,
		Site:    g.site(r),
		IP:      addrString(ip),
		City:    loc.City,
		Country: loc.Country,
		Reason:  d.Reason,
	})
	what := "your network address"
	if d.Reason == policy.ReasonCountry {
		what = "your location"
	}
	g.page(w, r, http.StatusForbidden, "Access denied",
		"Access to this site is not allowed from "+what+".", "", "")
	return false
}

// isNavigation tells a browser loading a page, which may be redirected to
// sign in, from an API call or a sub-resource, which must get a 401.
func isNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && web.Navigation(r)
}

// unauthenticated answers a request without a live session; ended says
// whether it carried the cookie of an ended one (see startLogin).
func (g *Gateway) unauthenticated(w http.ResponseWriter, r *http.Request, ended bool) {
	if isNavigation(r) {
		g.startLogin(w, r, r.URL.RequestURI(), ended)
		return
	}
	loginURL := g.cfg.PathPrefix + "/login?rd=" + url.QueryEscape(web.SafeReturn(r.URL.RequestURI()))
	w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{
		"error":     "unauthenticated",
		"login_url": loginURL,
	})
}

// unavailable answers a request the session store could not serve: 503
// with Retry-After, and for a browser a page that names the store (a
// signed-in user or a sign-in cannot tell "the provider is down" from
// "gatehouse is down" otherwise), never a redirect, which would loop
// through the provider.
func (g *Gateway) unavailable(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "1")
	if isNavigation(r) {
		g.page(w, r, http.StatusServiceUnavailable, "Temporarily unavailable",
			"The session store cannot be reached right now, so sessions cannot be checked or started. Please try again in a moment.", "", "")
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// maxSiteLen bounds a site name: a DNS name (253) with a port.
const maxSiteLen = 260

// site is the request's site: its host, with the port when it is not the
// scheme's default.
func (g *Gateway) site(r *http.Request) string {
	host := r.Host
	if len(host) > maxSiteLen {
		// No real host is this long; a client's Host header may be.
		host = host[:maxSiteLen]
	}
	host = strings.ToLower(host)
	if h, port, err := net.SplitHostPort(host); err == nil {
		if s := g.cfg.Scheme(r); (s == "https" && port == "443") || (s == "http" && port == "80") {
			return h
		}
	}
	return host
}

// origin is the site's own origin, scheme included.
func (g *Gateway) origin(r *http.Request) string { return web.Origin(g.cfg.Scheme(r), r) }

// secure tells whether cookies get the Secure attribute (and the session
// cookie the __Host- prefix): on HTTPS as Caddy reports it, unless
// CookieSecure says otherwise.
func (g *Gateway) secure(r *http.Request) bool {
	if g.cfg.CookieSecure != nil {
		return *g.cfg.CookieSecure
	}
	return g.cfg.Scheme(r) == "https"
}

// setCookie writes one of gatehouse's cookies. All are HttpOnly, Secure
// on HTTPS and SameSite=Lax (Lax, not Strict: the callback is a top-level
// navigation from the provider). A negative maxAge deletes the cookie.
func (g *Gateway) setCookie(w http.ResponseWriter, r *http.Request, name, value, path, domain string, maxAge time.Duration) {
	age := int(maxAge / time.Second)
	if maxAge < 0 {
		age, value = -1, ""
	}
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     path,
		Domain:   domain,
		MaxAge:   age,
		HttpOnly: true,
		Secure:   g.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
}

// sessionCookieName is the session cookie's name for r: with the
// "__Host-" prefix when the cookie is Secure and host-only, because
// browsers then refuse it from anywhere but this host over HTTPS, so no
// sibling subdomain can plant or shadow it (issue 6, item 10).
func (g *Gateway) sessionCookieName(r *http.Request) string {
	if g.hostCookie(r) {
		return g.hostCookieName
	}
	return g.cfg.CookieName
}

func (g *Gateway) hostCookie(r *http.Request) bool {
	return g.cfg.CookieDomain == "" && g.secure(r)
}

// setSessionCookie gives the browser its session secret.
func (g *Gateway) setSessionCookie(w http.ResponseWriter, r *http.Request, value string, maxAge time.Duration) {
	g.setCookie(w, r, g.sessionCookieName(r), value, "/", g.cfg.CookieDomain, maxAge)
}

func (g *Gateway) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	g.setCookie(w, r, g.sessionCookieName(r), "", "/", g.cfg.CookieDomain, -1)
}

// stripSessionCookies keeps the session secret from the upstream, under
// either name.
func (g *Gateway) stripSessionCookies(h http.Header) {
	stripCookie(h, g.cfg.CookieName)
	stripCookie(h, g.hostCookieName)
}

// currentSession is the check for the gateway's own endpoints.
func (g *Gateway) currentSession(r *http.Request) (checked, error) {
	return g.check(r, g.cfg.ClientIP(r))
}

// isAdmin reports whether this site's admin rules make s an admin here;
// an unverified email grants nothing.
func (g *Gateway) isAdmin(s *session.Session) bool {
	return policy.Member(s.Groups, g.Email(s), g.cfg.AdminGroups, g.cfg.AdminEmails)
}
