package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/oidcflow"
	"github.com/gatehouse-proxy/gatehouse/internal/policy"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/web"
)

// endpoint serves the gateway's own paths under PathPrefix.
func (g *Gateway) endpoint(w http.ResponseWriter, r *http.Request, rest string) {
	w.Header().Set("Cache-Control", "no-store")
	switch rest {
	case "/backchannel-logout":
		// Server to server from the provider: no network policy for
		// browsers applies, the logout token is the credential.
		g.backchannelLogout(w, r)
		return
	case "/jwks.json":
		// Public keys, fetched by upstreams from wherever they run.
		g.serveJWKS(w, r)
		return
	}
	if !g.networkAllowed(w, r, g.cfg.ClientIP(r)) {
		return
	}
	switch rest {
	case "/login":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		c, _ := g.currentSession(r)
		g.startLogin(w, r, r.URL.Query().Get("rd"), c.ended)
	case "/callback":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
		g.callback(w, r)
	case "/logout":
		g.logout(w, r)
	case "/signed-out":
		g.page(w, r, http.StatusOK, "Signed out", "You have signed out.", "Sign in again", g.cfg.PathPrefix+"/login?rd=/")
	case "/auth":
		g.forwardAuth(w, r)
	default:
		g.serveAdmin(w, r)
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

// loginState is what the state cookie carries between the redirect to the
// provider and the callback.
type loginState struct {
	oidcflow.State
	Return  string    `json:"r"`
	Created time.Time `json:"t"`
	// Forced says the provider was asked for a fresh login (prompt=login,
	// max_age=0), so an answer that is not fresh is refused rather than
	// asked for again.
	Forced bool `json:"f,omitempty"`
}

func (g *Gateway) redirectURL(r *http.Request) string {
	return g.origin(r) + g.cfg.PathPrefix + "/callback"
}

// stateCookieName is unique per sign-in, so that two tabs signing in at
// once do not overwrite each other's state.
func (g *Gateway) stateCookieName(state string) string {
	sum := sha256.Sum256([]byte(state))
	return g.cfg.CookieName + "_login_" + base64.RawURLEncoding.EncodeToString(sum[:6])
}

// startLogin sends the browser to the provider, remembering where it
// wanted to go. A browser whose session has ended (ended) must prove who it
// is again: without prompt=login the provider's own single sign-on would
// sign it straight back in, and revoking the session of a lost laptop
// would achieve nothing.
func (g *Gateway) startLogin(w http.ResponseWriter, r *http.Request, rd string, ended bool) {
	authURL, st, err := g.oidc.AuthCodeURL(r.Context(), g.redirectURL(r), ended)
	if err != nil {
		g.rt.cfg.OnError(err)
		w.Header().Set("Retry-After", "5")
		g.page(w, r, http.StatusBadGateway, "Sign-in unavailable",
			"The identity provider cannot be reached right now. Please try again in a moment.", "", "")
		return
	}
	ls := loginState{State: st, Return: web.SafeReturn(rd), Created: g.rt.cfg.Now(), Forced: ended}
	b, _ := json.Marshal(ls)
	g.setCookie(w, r, g.stateCookieName(st.State),
		base64.RawURLEncoding.EncodeToString(g.rt.states.Seal(b, []byte(g.site(r)))),
		g.cfg.PathPrefix+"/callback", "", stateTTL)
	http.Redirect(w, r, authURL, http.StatusFound)
}

// providerDown tells a provider that did not answer (refused, reset,
// timed out) or failed (a 5xx) from one that answered and refused.
func providerDown(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.Response != nil && re.Response.StatusCode >= 500
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// loginFailed answers a callback that cannot sign anyone in: a 400 page
// with a link to try again (never an automatic restart, which could loop)
// and a login_failed event.
func (g *Gateway) loginFailed(w http.ResponseWriter, r *http.Request, reason string, status int, msg string, e activity.Event) {
	e.Type = activity.LoginFailed
	e.Reason = reason
	e.Site = g.site(r)
	e.IP = addrString(g.cfg.ClientIP(r))
	if e.Country == "" {
		loc := g.rt.locate(g.cfg.ClientIP(r))
		e.City, e.Country = loc.City, loc.Country
	}
	e.Device = g.rt.describe(r.UserAgent()).Label()
	g.rt.recordLimited(r.Context(), g, e)
	g.page(w, r, status, "Sign-in failed", msg, "Try again", g.cfg.PathPrefix+"/login?rd=/")
}

func (g *Gateway) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 512 {
		g.loginFailed(w, r, activity.ReasonStateMismatch, http.StatusBadRequest,
			"This sign-in link is not valid.", activity.Event{})
		return
	}
	name := g.stateCookieName(state)
	c, err := r.Cookie(name)
	var ls loginState
	if err == nil {
		err = g.openState(c.Value, g.site(r), &ls)
	}
	// The state cookie is single use whatever happens next.
	g.setCookie(w, r, name, "", g.cfg.PathPrefix+"/callback", "", -1)
	now := g.rt.cfg.Now()
	switch {
	case err != nil || !ls.CheckState(state):
		g.loginFailed(w, r, activity.ReasonStateMismatch, http.StatusBadRequest,
			"This sign-in attempt does not belong to this browser, or it has already been used.", activity.Event{})
		return
	case now.Sub(ls.Created) > stateTTL || ls.Created.After(now.Add(time.Minute)):
		g.loginFailed(w, r, activity.ReasonStateMismatch, http.StatusBadRequest,
			"This sign-in attempt has expired.", activity.Event{})
		return
	}
	first, err := g.rt.store.ClaimOnce(r.Context(), "state:"+state, stateTTL+time.Minute)
	if err != nil {
		g.rt.cfg.OnError(err)
		g.unavailable(w, r)
		return
	}
	if !first {
		g.loginFailed(w, r, activity.ReasonStateMismatch, http.StatusBadRequest,
			"This sign-in attempt has already been used.", activity.Event{})
		return
	}
	if e := q.Get("error"); e != "" {
		g.loginFailed(w, r, activity.ReasonIDPError, http.StatusBadRequest,
			"The identity provider refused the sign-in.", activity.Event{})
		return
	}
	code := q.Get("code")
	if code == "" {
		g.loginFailed(w, r, activity.ReasonIDPError, http.StatusBadRequest,
			"The identity provider returned no authorization code.", activity.Event{})
		return
	}
	res, err := g.oidc.Exchange(r.Context(), g.redirectURL(r), code, ls.State)
	if err != nil && providerDown(err) {
		// Not the user's fault nor a refusal: a 502 that says so, as
		// startLogin's, rather than a 400 that reads as a rejection.
		g.rt.cfg.OnError(err)
		w.Header().Set("Retry-After", "5")
		g.loginFailed(w, r, activity.ReasonIDPError, http.StatusBadGateway,
			"The identity provider cannot be reached right now, so the sign-in could not be completed. Please try again in a moment.", activity.Event{})
		return
	}
	if err != nil {
		reason := activity.ReasonIDPError
		if errors.Is(err, oidcflow.ErrTokenInvalid) {
			reason = activity.ReasonTokenInvalid
		}
		g.rt.cfg.OnError(err)
		g.loginFailed(w, r, reason, http.StatusBadRequest,
			"The sign-in could not be completed.", activity.Event{})
		return
	}
	id := res.Identity
	who := activity.Event{User: id.Subject, Email: id.Email}
	after, err := g.rt.store.Reauth(r.Context(), id.Subject)
	if err != nil {
		g.rt.cfg.OnError(err)
		g.unavailable(w, r)
		return
	}
	if stale(id.AuthTime, after) {
		g.reauthRequired(w, r, ls, who)
		return
	}
	email := id.Email
	if !id.EmailVerified && !g.cfg.InsecureUnverifiedEmail {
		// An unverified email grants nothing: anyone may have typed it.
		email = ""
	}
	if d := g.cfg.Identity.Decide(email, id.Groups); !d.Allow {
		reason := d.Reason
		if email == "" && id.Email != "" && g.cfg.Identity.Decide(id.Email, id.Groups).Allow {
			reason = activity.ReasonEmailUnverified
		}
		g.loginFailed(w, r, reason, http.StatusForbidden,
			"Your account is not allowed to use this site.", who)
		return
	}
	if g.cfg.RequireMFA && !policy.MFA(id.AMR) {
		g.loginFailed(w, r, activity.ReasonMFARequired, http.StatusForbidden, mfaMessage, who)
		return
	}
	s, sec, err := g.createSession(r, res)
	if err != nil {
		g.rt.cfg.OnError(err)
		if errors.Is(err, session.ErrUnavailable) {
			g.unavailable(w, r)
			return
		}
		g.loginFailed(w, r, activity.ReasonStoreError, http.StatusInternalServerError,
			"The session could not be saved.", who)
		return
	}
	g.rt.sites.learn(g, r)
	e := eventFor(s, activity.LoginSucceeded)
	e.Actor = s.Email
	e.MFA = s.MFA
	e.IssuerKey = s.IssuerKey
	g.rt.Record(r.Context(), e)
	g.setSessionCookie(w, r, sec.Cookie(), g.cfg.MaxLifetime)
	g.setLogoutHint(w, r, s.ID, res.IDToken)
	g.limitSessions(r, s)
	http.Redirect(w, r, ls.Return, http.StatusFound)
}

// stale reports whether an authentication at authTime may be older than
// the re-authentication mark after (zero: none). auth_time has whole
// seconds, so an authentication in the mark's own second may have come
// before it and counts as stale: forgiving that second let a single
// sign-on session from just before a revocation straight back in. A token
// without auth_time is stale whenever there is a mark. The Forced flag
// bounds what this costs to one extra prompt.
func stale(authTime, after time.Time) bool {
	if after.IsZero() {
		return false
	}
	return authTime.IsZero() || authTime.Unix() <= after.Unix()
}

// reauthRequired refuses an ID token older than the user's
// re-authentication mark: an admin or the user ended sessions since, and
// the provider answered from its single sign-on. The refusal is recorded;
// unless the provider was already asked for a fresh login, it is asked
// now, once (prompt=login, max_age=0); a provider that still answers with
// an old authentication gets a 400, not a loop.
func (g *Gateway) reauthRequired(w http.ResponseWriter, r *http.Request, ls loginState, who activity.Event) {
	if ls.Forced {
		g.loginFailed(w, r, activity.ReasonReauthRequired, http.StatusBadRequest,
			"You must sign in again, but the identity provider did not ask for your credentials.", who)
		return
	}
	who.Type = activity.LoginFailed
	who.Reason = activity.ReasonReauthRequired
	who.Site = g.site(r)
	who.IP = addrString(g.cfg.ClientIP(r))
	g.rt.recordLimited(r.Context(), g, who)
	g.startLogin(w, r, ls.Return, true)
}

func (g *Gateway) openState(v, site string, ls *loginState) error {
	if len(v) > 4096 {
		return session.ErrSealed
	}
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return session.ErrSealed
	}
	b, err := g.rt.states.Open(raw, []byte(site))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, ls)
}

func (g *Gateway) createSession(r *http.Request, res *oidcflow.Result) (*session.Session, session.Secret, error) {
	sec := session.NewSecretFor(res.Identity.Subject)
	now := g.rt.cfg.Now().UTC().Truncate(time.Millisecond)
	ip := g.cfg.ClientIP(r)
	ipStr := addrString(ip)
	id := res.Identity
	s := &session.Session{
		ID:            sec.ID(),
		User:          id.Subject,
		Email:         id.Email,
		EmailVerified: id.EmailVerified,
		Name:          id.Name,
		Username:      id.Username,
		Groups:        id.Groups,
		Site:          g.site(r),
		CreatedAt:     now,
		LastAccess:    now,
		ExpiresAt:     now.Add(g.cfg.MaxLifetime),
		IdleTimeout:   g.cfg.IdleTimeout,
		IP:            ipStr,
		LastIP:        ipStr,
		Device:        g.rt.describe(r.UserAgent()),
		Location:      g.rt.locate(ip),
		IDPSessionID:  id.SID,
		IssuerKey:     g.issuerKey,
		AMR:           id.AMR,
		MFA:           policy.MFA(id.AMR),
	}
	// The ID token, used only as id_token_hint at logout, stays in the
	// browser (see setLogoutHint). With refresh on, the refresh and
	// access tokens are kept sealed in the store (never in a cookie),
	// bound to the session id; without it the store keeps no tokens,
	// which keeps each session's Redis footprint under 1 KiB.
	if g.cfg.Refresh {
		s.Tokens = g.sealTokens(s.ID, sealedTokens{Refresh: res.RefreshToken, Access: res.AccessToken}, res.Expiry, now)
	}
	if err := g.rt.store.Create(r.Context(), s); err != nil {
		return nil, sec, err
	}
	return s, sec, nil
}

// logout ends the browser's session, then sends it to the provider's
// end_session_endpoint so the provider's session ends too. A GET from
// another site (a link or image there; see web.FromElsewhere) only gets a
// confirmation form, so nobody can sign users out from elsewhere.
func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if web.FromElsewhere(r, g.origin(r)) {
			g.confirmLogout(w, r)
			return
		}
	case http.MethodPost:
		if !web.StateChangeAllowed(r, g.origin(r)) {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
	default:
		methodNotAllowed(w, "GET, POST")
		return
	}
	var idToken string
	var vals [maxSessionCookies]string
	for _, v := range vals[:cookieValues(r.Header, g.sessionCookieName(r), &vals, session.WellFormedCookie)] {
		// Even when the session has already ended (revoked, expired),
		// the provider's session should end with the sign-out. The hint
		// is sealed to its session's id, so only the right cookie opens
		// it.
		if sec, err := session.DecodeCookie(v); err == nil && idToken == "" {
			idToken = g.logoutHint(r, sec.ID())
		}
	}
	c, err := g.currentSession(r)
	// A session this site refuses may still sign out here.
	if s := c.s; err == nil && s != nil {
		if _, err := g.rt.End(r.Context(), s.ID, session.EndLogout, s.Email, g.site(r)); err != nil && !errors.Is(err, session.ErrNotFound) {
			g.rt.cfg.OnError(err)
			g.unavailable(w, r)
			return
		}
	}
	g.clearSessionCookie(w, r)
	g.clearLogoutHint(w, r)
	signedOut := g.origin(r) + g.cfg.PathPrefix + "/signed-out"
	if idToken != "" {
		if u, err := g.oidc.EndSessionURL(r.Context(), idToken, signedOut); err == nil && u != "" {
			http.Redirect(w, r, u, http.StatusFound)
			return
		}
	}
	http.Redirect(w, r, g.cfg.PathPrefix+"/signed-out", http.StatusFound)
}

// maxHintCookie bounds the logout-hint cookie: browsers drop cookies over
// 4 KiB, and some providers issue ID tokens that large (many groups). Past
// it the sign-out goes without id_token_hint, with client_id only.
const maxHintCookie = 3800

func (g *Gateway) hintCookieName() string { return g.cfg.CookieName + "_logout" }

// setLogoutHint keeps the ID token, sealed and bound to the session id, in
// a cookie the browser sends only to the logout endpoint. It is needed
// only as id_token_hint when the user signs out, when the browser is
// there anyway; keeping it out of the store saves ~1.3 KB of Redis per
// session.
func (g *Gateway) setLogoutHint(w http.ResponseWriter, r *http.Request, sessionID, idToken string) {
	if idToken == "" {
		return
	}
	v := base64.RawURLEncoding.EncodeToString(g.rt.tokens.Seal([]byte(idToken), []byte("logout hint "+sessionID)))
	if len(v) > maxHintCookie {
		return
	}
	g.setCookie(w, r, g.hintCookieName(), v, g.cfg.PathPrefix+"/logout", g.cfg.CookieDomain, g.cfg.MaxLifetime)
}

// logoutHint returns the ID token kept for the session, or "".
func (g *Gateway) logoutHint(r *http.Request, sessionID string) string {
	v := cookieValue(r.Header, g.hintCookieName())
	if v == "" || len(v) > maxHintCookie {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return ""
	}
	b, err := g.rt.tokens.Open(raw, []byte("logout hint "+sessionID))
	if err != nil {
		return ""
	}
	return string(b)
}

func (g *Gateway) clearLogoutHint(w http.ResponseWriter, r *http.Request) {
	g.setCookie(w, r, g.hintCookieName(), "", g.cfg.PathPrefix+"/logout", g.cfg.CookieDomain, -1)
}

func (g *Gateway) confirmLogout(w http.ResponseWriter, r *http.Request) {
	g.render(w, http.StatusOK, "Sign out?", func(b *strings.Builder) {
		b.WriteString(`<p>Do you want to sign out of this site?</p><form method="post" action="`)
		b.WriteString(htmlEscape(g.cfg.PathPrefix + "/logout"))
		b.WriteString(`"><button type="submit">Sign out</button></form>`)
	})
}

// logoutTokenWindow is how long a consumed logout token's jti is kept:
// longer than the token's accepted age (oidcflow checks iat within 5
// minutes), so a replay is always either too old or remembered.
const logoutTokenWindow = 10 * time.Minute

// backchannelLogout implements OIDC Back-Channel Logout 1.0: the provider
// POSTs a signed logout token; sessions with its sid, or all of its sub
// when it has no sid, end.
func (g *Gateway) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, "POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	raw := r.PostForm.Get("logout_token")
	if raw == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "missing logout_token"})
		return
	}
	lc, err := g.oidc.VerifyLogoutToken(r.Context(), raw)
	if err != nil && !errors.Is(err, oidcflow.ErrTokenInvalid) {
		// The token could not be checked (discovery failed): a 400
		// would tell the provider the logout failed for good.
		g.rt.cfg.OnError(err)
		g.unavailable(w, r)
		return
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "invalid logout token"})
		return
	}
	if lc.JTI == "" {
		// Back-Channel Logout 1.0, 2.4: jti is required; without it a
		// replay cannot be told from a new token.
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "logout token has no jti"})
		return
	}
	// A replayed token must not end sessions created since. The jti is
	// consumed only once the sessions have ended (ending is idempotent):
	// a delivery that fails half-way may be retried by the provider
	// (issue 6, item 7).
	// jti values are unique per issuer only.
	key := "logout:" + g.issuerKey + ":" + lc.JTI
	used, err := g.rt.store.Claimed(r.Context(), key)
	if err != nil {
		g.rt.cfg.OnError(err)
		g.unavailable(w, r)
		return
	}
	if used {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "logout token replayed"})
		return
	}
	if err := g.endMatching(r, lc); err != nil {
		g.rt.cfg.OnError(err)
		g.unavailable(w, r)
		return
	}
	if _, err := g.rt.store.ClaimOnce(r.Context(), key, logoutTokenWindow); err != nil {
		g.rt.cfg.OnError(err)
		g.unavailable(w, r)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (g *Gateway) endMatching(r *http.Request, lc oidcflow.LogoutClaims) error {
	if lc.Subject == "" {
		// A sid alone: the sessions are found through their users, so
		// scan; back-channel logout is rare.
		return g.endWhere(r, session.Query{}, lc.SID)
	}
	return g.endWhere(r, session.Query{User: lc.Subject}, lc.SID)
}

func (g *Gateway) endWhere(r *http.Request, q session.Query, sid string) error {
	q.Limit = 1000
	for {
		page, err := g.rt.store.List(r.Context(), q)
		if err != nil {
			return err
		}
		for _, s := range page.Items {
			// Subjects and sids are the provider's: another provider's
			// sessions are not this token's to end.
			// The store filters by user already; the check here keeps a
			// store whose filter matched loosely (case, prefix) from
			// ending someone else's sessions.
			if !g.ownIssuer(s) || sid != "" && s.IDPSessionID != sid || q.User != "" && s.User != q.User {
				continue
			}
			if _, err := g.rt.End(r.Context(), s.ID, session.EndBackchannel, activity.ActorSystem, ""); err != nil && !errors.Is(err, session.ErrNotFound) {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		q.Cursor = page.Next
	}
}

// forwardAuth answers nginx auth_request and Traefik forwardAuth: 200 with
// the identity headers, 401 without a session, 403 for a session this
// site's identity rules refuse.
func (g *Gateway) forwardAuth(w http.ResponseWriter, r *http.Request) {
	c, err := g.currentSession(r)
	if err != nil {
		g.rt.cfg.OnError(err)
		g.unavailable(w, r)
		return
	}
	if c.denied != "" {
		e := eventFor(c.s, activity.AccessDenied)
		e.Site, e.IP, e.Reason = g.site(r), addrString(g.cfg.ClientIP(r)), c.denied
		g.rt.recordLimited(r.Context(), g, e)
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "reason": c.denied})
		return
	}
	s := c.s
	if s == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated"})
		return
	}
	if !g.putAssertion(w, r, s, w.Header()) {
		return
	}
	setIdentity(w.Header(), s.User, g.Email(s), s.Username, s.Groups)
	if g.cfg.PassAccessToken {
		// nginx and Traefik copy it onto the upstream's request, as
		// they do the identity headers.
		if v := g.accessToken(s); v != nil {
			w.Header()[HeaderAccessToken] = v
		}
	}
	w.WriteHeader(http.StatusOK)
}

// serveAdmin hands signed-in users to the pages and API.
func (g *Gateway) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if g.cfg.Admin == nil {
		http.NotFound(w, r)
		return
	}
	c, err := g.currentSession(r)
	switch {
	case err != nil:
		g.rt.cfg.OnError(err)
		g.unavailable(w, r)
		return
	case c.denied != "":
		g.refuse(w, r, c, g.cfg.ClientIP(r))
		return
	case c.s == nil:
		g.unauthenticated(w, r, c.ended)
		return
	}
	s := c.s
	v := &web.Viewer{Session: s, Admin: g.isAdmin(s), CSRF: g.rt.CSRFToken(s.ID), Prefix: g.cfg.PathPrefix, Origin: g.origin(r)}
	// An admin here is an admin, not an auditor: their reach is where
	// they may end sessions, and must not widen to where they only audit.
	v.Auditor = !v.Admin && g.isAuditor(s)
	if v.Admin || v.Auditor {
		v.Sites = g.rt.sites.reach(r.Context(), g.rt.store, s, v.Auditor)
	}
	g.cfg.Admin.ServeHTTP(w, r.WithContext(web.WithViewer(r.Context(), v)))
}
