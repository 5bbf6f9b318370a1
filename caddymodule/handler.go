package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/gatehouse-proxy/gatehouse/internal/gateway"
	"github.com/gatehouse-proxy/gatehouse/internal/geo"
	"github.com/gatehouse-proxy/gatehouse/internal/policy"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler protects a site: it signs people in with OpenID Connect, checks
// their session on every request, applies the site's policy and passes the
// identity to the next handler (usually reverse_proxy).
type Handler struct {
	// Issuer is the provider's issuer URL, exactly as its discovery
	// document spells it. Required.
	Issuer string `json:"issuer,omitempty"`
	// ClientID is this site's client at the provider. Required.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret authenticates the client; placeholders such as
	// {env.GATEHOUSE_CLIENT_SECRET} are expanded.
	ClientSecret string `json:"client_secret,omitempty"`
	// Scopes requested. Default: openid email profile. With refresh on,
	// some providers (Auth0, Okta, Azure AD, Google with its own
	// parameter) issue a refresh token only when offline_access is
	// among them; Keycloak and the dev provider issue one regardless.
	Scopes []string `json:"scopes,omitempty"`
	// PathPrefix is where gatehouse's own endpoints and pages live.
	// Default: /.gatehouse
	PathPrefix string `json:"path_prefix,omitempty"`
	// IdleTimeout ends a session unused this long; 0 turns it off.
	// Default: 30m.
	IdleTimeout *caddy.Duration `json:"idle_timeout,omitempty"`
	// MaxLifetime ends any session this long after sign-in. Default: 12h.
	MaxLifetime caddy.Duration `json:"max_lifetime,omitempty"`
	// AllowIP lists the client ranges (CIDR or address) that may use the
	// site. Default: all.
	AllowIP []string `json:"allow_ip,omitempty"`
	// DenyIP lists client ranges refused even when AllowIP matches.
	DenyIP []string `json:"deny_ip,omitempty"`
	// AllowCountry lists ISO 3166-1 alpha-2 codes that may use the site;
	// needs the app's geoip database. Unknown locations are refused.
	AllowCountry []string `json:"allow_country,omitempty"`
	// DenyCountry lists country codes that are refused.
	DenyCountry []string `json:"deny_country,omitempty"`
	// MaxSessions limits how many sessions one user keeps across every
	// site on the store: a sign-in beyond it ends the user's least
	// recently used sessions (event session_ended_new_login, actor
	// system). Default: 0, no limit.
	MaxSessions int `json:"max_sessions,omitempty"`
	// BindIP ties a session to the address it signed in from: "exact"
	// (the same address), "subnet" (the same /24 for IPv4, /64 for
	// IPv6) or "off". A request from elsewhere ends the session (event
	// ip_conflict) and must sign in again. Default: off.
	BindIP string `json:"bind_ip,omitempty"`
	// AllowGroups, AllowEmails and AllowDomains restrict who may sign in;
	// a user matching any entry of any list passes. Default: everyone the
	// provider signs in.
	AllowGroups  []string `json:"allow_groups,omitempty"`
	AllowEmails  []string `json:"allow_emails,omitempty"`
	AllowDomains []string `json:"allow_domains,omitempty"`
	// RequireMFA refuses sign-ins whose ID token amr (RFC 8176) shows a
	// single factor (login_failed, reason mfa_required), and sessions
	// signed in that way on another site, on every request (403,
	// access_denied mfa_required). Default: off.
	RequireMFA bool `json:"require_mfa,omitempty"`
	// Refresh keeps each session's refresh token, encrypted (AES-GCM
	// under the app's secret) in the store and never in a cookie, and
	// refreshes the access token in the background before it expires
	// (a tenth of its lifetime before, at least a minute), one instance
	// at a time. A provider that refuses the refresh (the user disabled,
	// consent revoked, invalid_grant) ends the session (event
	// refresh_failed); one that is down does not, and is retried with
	// backoff. A session is refreshed only on sites of the client that
	// signed it in. Some providers need offline_access in scopes to
	// issue a refresh token. Default: off.
	Refresh bool `json:"refresh,omitempty"`
	// PassAccessToken sends the session's current access token to the
	// upstream in X-Forwarded-Access-Token (and in the forward-auth
	// answer). Needs refresh on. A client's copy of the header is
	// deleted on every site, whatever this says. Default: off.
	PassAccessToken bool `json:"pass_access_token,omitempty"`
	// MFAACR is sent to the provider as acr_values on every sign-in, to
	// ask it for a second factor; the values are the provider's own (for
	// example Keycloak's level names). Space separated. Default: none.
	MFAACR string `json:"mfa_acr,omitempty"`
	// AdminGroups and AdminEmails say who may use the admin page and API.
	AdminGroups []string `json:"admin_groups,omitempty"`
	AdminEmails []string `json:"admin_emails,omitempty"`
	// AuditorGroups and AuditorEmails say who may read the admin page and
	// the API's GETs without ending anything (but their own sessions).
	// As for admins, their reach is the sites whose rules also name them
	// (as auditors or admins), and emails count only when verified.
	// Default: nobody.
	AuditorGroups []string `json:"auditor_groups,omitempty"`
	AuditorEmails []string `json:"auditor_emails,omitempty"`
	// GroupsClaim names the token claim listing the user's groups.
	// Default: groups.
	GroupsClaim string `json:"groups_claim,omitempty"`
	// CookieName is the session cookie's name. Default: gatehouse.
	CookieName string `json:"cookie_name,omitempty"`
	// CookieDomain shares the session with subdomains (single sign-on
	// across sites on one store). Default: this host only.
	CookieDomain string `json:"cookie_domain,omitempty"`
	// CookieSecure forces the Secure attribute of gatehouse's cookies on
	// (true) or off (false). Default: unset, which marks them Secure
	// exactly when the client's scheme is https: a TLS connection, or a
	// trusted proxy's X-Forwarded-Proto (the server's trusted_proxies).
	// Set it to true behind a TLS-terminating proxy that Caddy does not
	// trust; false only for plain-HTTP development setups.
	CookieSecure *bool `json:"cookie_secure,omitempty"`
	// InsecureUnverifiedEmail lets emails that the provider does not mark
	// email_verified: true count on this site for allow_emails,
	// allow_domains and admin_emails. Dangerous: with a provider where
	// users can set or change their own email without proving they own it
	// (self-registration, an editable profile, a social login that passes
	// emails through), anyone can claim an allowed address or an admin's
	// and be let in, or made an admin, as that person. Turn it on only for
	// a provider that checks every email yet omits the claim.
	// Default: off.
	InsecureUnverifiedEmail bool `json:"insecure_unverified_email,omitempty"`
	// JWTHeader names a request header in which the upstream gets a
	// signed identity token: a JWT (ES256, valid 5 minutes, minted at most
	// once a minute per session) with iss, aud, sub, email (verified only),
	// groups, sid, amr, iat and exp; the public keys are at
	// <path_prefix>/jwks.json. Client-supplied copies are deleted.
	// Default: none.
	JWTHeader string `json:"jwt_header,omitempty"`

	gw *gateway.Gateway
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.gatehouse",
		New: func() caddy.Module { return new(Handler) },
	}
}

const defaultIdleTimeout = 30 * time.Minute

// Provision builds the site's gateway on the shared app. No network I/O:
// the provider is discovered on the first sign-in.
func (h *Handler) Provision(ctx caddy.Context) error {
	// config checks every field while building: one pass, and Validate,
	// which Caddy calls after Provision, does not build it again.
	cfg, err := h.config()
	if err != nil {
		return err
	}
	appIface, err := ctx.App("gatehouse")
	if err != nil {
		return fmt.Errorf("loading gatehouse app: %w", err)
	}
	app := appIface.(*App)
	if (len(h.AllowCountry) > 0 || len(h.DenyCountry) > 0) && !app.HasGeoIP() {
		return errors.New("gatehouse: allow_country and deny_country need the geoip option of the gatehouse app")
	}
	cfg.TouchInterval = time.Duration(app.TouchInterval)
	cfg.ClientIP = clientIP
	cfg.Scheme = scheme
	cfg.Admin = adminHandler(app)
	gw, err := gateway.New(cfg, app.rt)
	if err != nil {
		return fmt.Errorf("gatehouse: %w", err)
	}
	h.gw = gw
	return nil
}

// config checks the handler's fields and builds the site's gateway
// configuration from them (everything but what comes from the app).
func (h *Handler) config() (gateway.Config, error) {
	var cfg gateway.Config
	if h.Issuer == "" {
		return cfg, errors.New("gatehouse: issuer is required")
	}
	if h.ClientID == "" {
		return cfg, errors.New("gatehouse: client_id is required")
	}
	if err := checkPathPrefix(h.PathPrefix); err != nil {
		return cfg, fmt.Errorf("gatehouse: path_prefix: %w", err)
	}
	if h.IdleTimeout != nil && *h.IdleTimeout < 0 {
		return cfg, errors.New("gatehouse: idle_timeout must not be negative")
	}
	if h.MaxLifetime < 0 {
		return cfg, errors.New("gatehouse: max_lifetime must not be negative")
	}
	if h.JWTHeader != "" {
		if err := gateway.CheckJWTHeader(h.JWTHeader); err != nil {
			return cfg, fmt.Errorf("gatehouse: %w", err)
		}
	}
	for _, list := range [][]string{h.AllowCountry, h.DenyCountry} {
		for _, c := range list {
			if !geo.ValidCountry(strings.ToUpper(c)) {
				return cfg, fmt.Errorf("gatehouse: unknown country code %q", c)
			}
		}
	}
	repl := caddy.NewReplacer()
	idle := defaultIdleTimeout
	if h.IdleTimeout != nil {
		idle = time.Duration(*h.IdleTimeout)
	}
	scopes := h.Scopes
	if len(scopes) == 0 {
		scopes = []string{"openid", "email", "profile"}
	}
	cfg = gateway.Config{
		Issuer:                  repl.ReplaceKnown(h.Issuer, ""),
		ClientID:                repl.ReplaceKnown(h.ClientID, ""),
		ClientSecret:            repl.ReplaceKnown(h.ClientSecret, ""),
		Scopes:                  scopes,
		GroupsClaim:             h.GroupsClaim,
		PathPrefix:              h.PathPrefix,
		IdleTimeout:             idle,
		MaxLifetime:             time.Duration(h.MaxLifetime),
		CookieName:              h.CookieName,
		CookieDomain:            h.CookieDomain,
		CookieSecure:            h.CookieSecure,
		AdminGroups:             h.AdminGroups,
		AdminEmails:             h.AdminEmails,
		AuditorGroups:           h.AuditorGroups,
		AuditorEmails:           h.AuditorEmails,
		InsecureUnverifiedEmail: h.InsecureUnverifiedEmail,
		JWTHeader:               h.JWTHeader,
		Identity: policy.Identity{
			Groups:  h.AllowGroups,
			Emails:  h.AllowEmails,
			Domains: h.AllowDomains,
		},
	}
	// A placeholder may expand to nothing (an unset variable): say so
	// here, rather than let the gateway call a configured value missing.
	// Regression (found by FuzzUnmarshalCaddyfile): Validate passed
	// client_id {env.UNSET}, and only Provision refused it.
	for _, v := range []struct{ name, raw, got string }{{"issuer", h.Issuer, cfg.Issuer}, {"client_id", h.ClientID, cfg.ClientID}} {
		if v.got == "" {
			return cfg, fmt.Errorf("gatehouse: %s %q is empty once its placeholders are expanded", v.name, v.raw)
		}
	}
	cfg.RequireMFA, cfg.MFAACR = h.RequireMFA, h.MFAACR
	if h.PassAccessToken && !h.Refresh {
		return cfg, errors.New("gatehouse: pass_access_token needs refresh on")
	}
	cfg.Refresh, cfg.PassAccessToken = h.Refresh, h.PassAccessToken
	var err error
	if cfg.Network.AllowIP, err = policy.ParsePrefixes(h.AllowIP); err != nil {
		return cfg, fmt.Errorf("gatehouse: allow_ip: %w", err)
	}
	if cfg.Network.DenyIP, err = policy.ParsePrefixes(h.DenyIP); err != nil {
		return cfg, fmt.Errorf("gatehouse: deny_ip: %w", err)
	}
	cfg.Network.AllowCountry = upper(h.AllowCountry)
	cfg.Network.DenyCountry = upper(h.DenyCountry)
	if h.MaxSessions < 0 {
		return cfg, errors.New("gatehouse: max_sessions must not be negative")
	}
	cfg.MaxSessions = h.MaxSessions
	if cfg.BindIP, err = policy.ParseBind(h.BindIP); err != nil {
		return cfg, fmt.Errorf("gatehouse: %w", err)
	}
	return cfg, nil
}

func upper(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToUpper(s)
	}
	return out
}

// Validate checks the configuration without side effects; the Caddyfile
// adapter runs the same checks per line. After Provision there is nothing
// left to check: Provision built the configuration with the same checks.
func (h *Handler) Validate() error {
	if h.gw != nil {
		return nil
	}
	_, err := h.config()
	return err
}

func checkPathPrefix(p string) error {
	if p == "" {
		return nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "?#*{} ") {
		return fmt.Errorf("%q must start with / and not end with /", p)
	}
	return nil
}

// clientIP is Caddy's idea of the client address, which honours the
// server's trusted_proxies; X-Forwarded-For is never parsed by hand.
func clientIP(r *http.Request) netip.Addr {
	s, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// scheme is the scheme the client used: https on a TLS connection, or when
// the peer is one of the server's trusted_proxies (Caddy decided that
// before any handler ran) and its X-Forwarded-Proto says https. Anyone can
// send that header, so an untrusted peer's copy changes nothing. Like
// Caddy's reverse_proxy, it reads the last X-Forwarded-Proto field; of a
// comma list there, the first entry, the scheme the outermost proxy saw.
func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); !trusted {
		return "http"
	}
	v := r.Header["X-Forwarded-Proto"]
	if len(v) == 0 {
		return "http"
	}
	proto, _, _ := strings.Cut(v[len(v)-1], ",")
	if strings.EqualFold(strings.TrimSpace(proto), "https") {
		return "https"
	}
	return "http"
}

// ServeHTTP lets signed-in, allowed requests through with identity headers
// and placeholders; the gateway answers everything else itself.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	s := h.gw.Serve(w, r)
	if s == nil {
		return nil
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		// A provider answers lazily: most configs never read these, and
		// Set would box and store four values on every request.
		repl.Map(func(key string) (any, bool) {
			switch key {
			case "http.auth.user.id":
				return s.User, true
			case "http.auth.user.email":
				return h.gw.Email(s), true
			case "http.auth.user.groups":
				return gateway.JoinGroups(s.Groups), true
			case "http.auth.user.session_id":
				return s.ID, true
			}
			return nil, false
		})
	}
	// A response that turns out long-lived (WebSocket, server-sent
	// events, open for more than a second) is closed when the session
	// ends, on whichever instance; plain ones pay nothing for this.
	w, r, done := h.gw.Track(w, r, s)
	defer done()
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
