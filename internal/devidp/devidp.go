// Package devidp is the development OpenID provider behind `gatehouse demo`
// and the project's tests. It is a real provider built on the certified
// zitadel/oidc op library: discovery, JWKS, the authorization code flow with
// PKCE, client_secret_basic/post, userinfo, refresh tokens, introspection,
// revocation, RP-initiated logout and OIDC Back-Channel Logout 1.0. Users,
// clients, sessions and tokens live in memory.
//
// Behaviour a relying party sees:
//   - Claims follow the requested scopes: "email" gives email and
//     email_verified (true unless the user has EmailUnverified, and then an
//     explicit false), "profile" gives name and preferred_username, "groups"
//     gives groups (a JSON array, possibly empty). userinfo returns the same
//     user claims. ID tokens also carry sid (the provider session),
//     auth_time (when the person last typed their password in that session:
//     a single sign-on reuse keeps the original time) and amr: ["pwd"], or
//     ["pwd", "otp"] for a user with SecondFactor, who types a one-time
//     code the provider shows on its own page after the password.
//   - A refresh token is issued with every code exchange, as Keycloak does,
//     because a gateway asks for "openid email profile groups" and still
//     expects `refresh on` to work; "offline_access" is therefore added to
//     the granted scopes. Refresh tokens rotate: each use returns a new one
//     and the old one is refused. All tokens of a provider session die with it.
//   - DisableUser makes the token endpoint refuse the user's refresh
//     tokens and codes with invalid_grant, as Keycloak does for a disabled
//     account, without ending provider sessions or sending logout tokens:
//     a relying party learns of it only at its next refresh. The login
//     form refuses the user too.
//   - Authorization codes are single use and live one minute; a replayed code
//     is refused and revokes the tokens issued for it (RFC 6749, 4.1.2). An
//     exchange refused for a wrong verifier or secret does not spend the code.
//     The plain PKCE method is refused: only S256 is advertised.
//   - A client with an empty Secret is public and must use PKCE.
//   - A successful sign-in sets a provider session cookie, so the next
//     sign-in of the same browser skips the form (SSO) until end_session,
//     EndUserSessions, prompt=login or an exceeded max_age (max_age=0
//     always shows the form). Signing in on the form again renews auth_time.
//   - Ending a provider session sends a logout token (sub and sid) to the
//     backchannel_logout_uri of every client signed in through it, before
//     end_session redirects, so tests can assert right after the redirect.
//
// The op library computes ID token iat/exp with the real clock; Config.Now
// drives everything this package decides itself (sessions, codes, access and
// refresh token expiry, logout tokens). expires_in, which the op library
// derives from the real clock too, is the access token lifetime whatever
// Config.Now says. The op library reports request
// errors through slog's default logger; this package does not log.
package devidp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is a person who can sign in.
type User struct {
	// Subject is the stable `sub` claim. Default: Username.
	Subject string
	// Username is what the person types on the login form; it is also the
	// preferred_username claim.
	Username string
	// Password is compared in constant time; it is stored in clear because
	// this provider is for development only.
	Password string
	Email    string
	// EmailUnverified makes the provider say email_verified false for
	// Email, as it would for an address nobody has confirmed. Default:
	// false (verified), since users come from the operator's own config.
	EmailUnverified bool
	Name            string
	Groups          []string
	// SecondFactor makes sign-in ask, after the password, for a one-time
	// code that the provider shows on its own page; the ID token's amr is
	// then ["pwd", "otp"] instead of ["pwd"]. Default: password only.
	SecondFactor bool
}

// Client is a registered relying party.
type Client struct {
	ID string
	// Secret authenticates the client at the token endpoint with
	// client_secret_basic or client_secret_post. Empty: a public client,
	// which must use PKCE.
	Secret string
	// RedirectURIs are compared with redirect_uri exactly.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the only places end_session sends a browser
	// back to; anything else is refused.
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI receives a logout_token POST when a provider
	// session this client signed in through ends. Empty: not notified.
	BackchannelLogoutURI string
}

// Config configures a Provider.
type Config struct {
	// Issuer is the provider's URL, exactly as discovery and the iss claim
	// spell it, e.g. "http://localhost:8081". http is allowed, since this is
	// a development provider. If it has a path, ServeHTTP expects requests
	// under that path.
	Issuer  string
	Users   []User
	Clients []Client
	// Now is the clock for sessions, codes, tokens and logout tokens.
	// Default: time.Now.
	Now func() time.Time
	// SigningKey signs ID tokens, logout tokens and SignJWT output.
	// Default: a fresh 2048-bit RSA key.
	SigningKey *rsa.PrivateKey
	// TokenLifetime is the lifetime of access and ID tokens. Default: 5m.
	TokenLifetime time.Duration
	// AccessTokenLifetime, when set, is the lifetime of access tokens
	// instead, so that tests can make them short (and refresh often)
	// while ID tokens, which the op library stamps with the real clock,
	// stay valid on a clock a test moves forward. Default: TokenLifetime.
	AccessTokenLifetime time.Duration
	// HTTPClient delivers back-channel logout tokens. Default: a client with
	// a 5s timeout.
	HTTPClient *http.Client
	// HideUsers keeps the users and their passwords off the sign-in page,
	// which otherwise lists them so that a newcomer to the demo knows whom
	// to sign in as. Default: listed (this provider is for development).
	HideUsers bool
}

// Provider is the development OpenID provider. Its methods are safe for
// concurrent use.
type Provider struct {
	issuer        string
	prefix        string // issuer path, stripped before routing
	siteOrigin    string // scheme://host of the issuer, for Origin checks
	secureCookie  bool
	now           func() time.Time
	key           *rsa.PrivateKey
	keyID         string
	tokenLifetime time.Duration
	// accessLifetime is the lifetime of access tokens.
	accessLifetime time.Duration
	httpClient     *http.Client
	op             *op.Provider
	pages          *template.Template

	// users and subjects are read-only after New, so read without mu.
	users    map[string]User // by username
	subjects map[string]User // by subject
	userList []User          // in Config order, for the sign-in page; nil with HideUsers

	mu            sync.Mutex
	clients       map[string]Client
	authRequests  map[string]*authRequest
	codes         map[string]string // unused code -> auth request id
	usedCodes     map[string]usedCode
	accessTokens  map[string]*accessToken
	refreshTokens map[string]*refreshToken
	sessions      map[string]*session // by sid
	cookies       map[string]string   // cookie secret -> sid
	disabled      map[string]bool     // by subject
}

const (
	// codeLifetime is short, like Keycloak's default: a code is exchanged by
	// the RP right after the redirect.
	codeLifetime = time.Minute
	// authRequestLifetime bounds how long a person may take on the login form.
	authRequestLifetime = 30 * time.Minute
	// refreshLifetime bounds a refresh token that outlives no session end.
	refreshLifetime = 24 * time.Hour
	// logoutTokenLifetime is short: a logout token is consumed on receipt.
	logoutTokenLifetime = 2 * time.Minute
)

// New builds a provider. It does no network I/O.
func New(cfg Config) (*Provider, error) {
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil || issuer.Host == "" || (issuer.Scheme != "http" && issuer.Scheme != "https") {
		return nil, fmt.Errorf("devidp: issuer %q is not an absolute http(s) URL", cfg.Issuer)
	}
	p := &Provider{
		issuer:         cfg.Issuer,
		prefix:         strings.TrimSuffix(issuer.Path, "/"),
		siteOrigin:     issuer.Scheme + "://" + issuer.Host,
		secureCookie:   issuer.Scheme == "https",
		now:            cfg.Now,
		key:            cfg.SigningKey,
		tokenLifetime:  cfg.TokenLifetime,
		accessLifetime: cfg.AccessTokenLifetime,
		httpClient:     cfg.HTTPClient,
		users:          make(map[string]User),
		subjects:       make(map[string]User),
		clients:        make(map[string]Client),
		authRequests:   make(map[string]*authRequest),
		codes:          make(map[string]string),
		usedCodes:      make(map[string]usedCode),
		accessTokens:   make(map[string]*accessToken),
		refreshTokens:  make(map[string]*refreshToken),
		sessions:       make(map[string]*session),
		cookies:        make(map[string]string),
		disabled:       make(map[string]bool),
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.tokenLifetime <= 0 {
		p.tokenLifetime = 5 * time.Minute
	}
	if p.accessLifetime <= 0 {
		p.accessLifetime = p.tokenLifetime
	}
	if p.httpClient == nil {
		p.httpClient = &http.Client{Timeout: 5 * time.Second}
	}
	for _, u := range cfg.Users {
		if u.Subject == "" {
			u.Subject = u.Username
		}
		if u.Username == "" {
			return nil, errors.New("devidp: user without a username")
		}
		if _, dup := p.users[u.Username]; dup {
			return nil, fmt.Errorf("devidp: duplicate username %q", u.Username)
		}
		if _, dup := p.subjects[u.Subject]; dup {
			return nil, fmt.Errorf("devidp: duplicate subject %q", u.Subject)
		}
		u.Groups = slices.Clone(u.Groups)
		p.users[u.Username] = u
		p.subjects[u.Subject] = u
		if !cfg.HideUsers {
			p.userList = append(p.userList, u)
		}
	}
	for _, c := range cfg.Clients {
		if c.ID == "" {
			return nil, errors.New("devidp: client without an id")
		}
		if _, dup := p.clients[c.ID]; dup {
			return nil, fmt.Errorf("devidp: duplicate client %q", c.ID)
		}
		p.clients[c.ID] = cloneClient(c)
	}
	if p.key == nil {
		if p.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, fmt.Errorf("devidp: generate signing key: %w", err)
		}
	}
	thumb, err := (&jose.JSONWebKey{Key: &p.key.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("devidp: key id: %w", err)
	}
	p.keyID = base64.RawURLEncoding.EncodeToString(thumb)
	if p.pages, err = parsePages(); err != nil {
		return nil, err
	}

	opConfig := &op.Config{
		DefaultLogoutRedirectURI: strings.TrimSuffix(p.issuer, "/") + "/logged-out",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes: []string{
			oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, scopeGroups, oidc.ScopeOfflineAccess,
		},
		SupportedClaims:                   append(slices.Clone(op.DefaultSupportedClaims), "sid", "groups"),
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
	}
	// The key encrypts authorization codes and opaque access tokens; a fresh
	// one per provider makes codes from another run worthless.
	if _, err := rand.Read(opConfig.CryptoKey[:]); err != nil {
		return nil, fmt.Errorf("devidp: generate crypto key: %w", err)
	}
	p.op, err = op.NewProvider(opConfig, &storage{p}, op.StaticIssuer(p.issuer),
		// The demo and tests serve plain http on loopback; op refuses
		// non-https issuers without this.
		op.WithAllowInsecure(),
	)
	if err != nil {
		return nil, fmt.Errorf("devidp: op provider: %w", err)
	}
	return p, nil
}

// DisableUser disables the user with subject, as an administrator
// disabling an account would: from now on the token endpoint refuses
// their refresh tokens and authorization codes with invalid_grant, and
// the login form refuses them. Provider sessions stay, and no logout token
// is sent, so relying parties learn of it only when they next refresh.
func (p *Provider) DisableUser(subject string) {
	p.mu.Lock()
	p.disabled[subject] = true
	p.mu.Unlock()
}

// EnableUser undoes DisableUser.
func (p *Provider) EnableUser(subject string) {
	p.mu.Lock()
	delete(p.disabled, subject)
	p.mu.Unlock()
}

// Issuer returns the issuer URL as configured.
func (p *Provider) Issuer() string { return p.issuer }

// ServeHTTP serves every provider endpoint: the op library's (discovery,
// /authorize, /oauth/token, /userinfo, /keys, /end_session, /revoke,
// /oauth/introspect) and this package's login pages (/login, /logged-out).
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, p.prefix)
	if !ok || (path != "" && path[0] != '/') {
		http.NotFound(w, r)
		return
	}
	if path == "" {
		path = "/"
	}
	r2 := r.WithContext(context.WithValue(r.Context(), browserKey{}, p.browser(w, r)))
	if p.prefix != "" {
		u := *r.URL
		u.Path, u.RawPath = path, ""
		r2.URL = &u
	}
	switch path {
	case "/":
		p.renderMessage(w, http.StatusOK, "Development OpenID provider",
			"This is gatehouse's development OpenID provider. Relying parties find it at "+
				strings.TrimSuffix(p.issuer, "/")+"/.well-known/openid-configuration.")
	case "/login":
		p.serveLogin(w, r2)
	case "/logged-out":
		p.renderMessage(w, http.StatusOK, "Signed out", "You have signed out of the development provider.")
	default:
		p.op.ServeHTTP(w, r2)
	}
}

// AddClient registers a client, replacing one with the same ID. Tests call it
// once the relying party's URL is known.
func (p *Provider) AddClient(c Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients[c.ID] = cloneClient(c)
}

// SignJWT signs claims, exactly as given, with the provider's key and the key
// ID published in JWKS. Tests use it to forge tokens with a wrong issuer,
// audience, nonce or expiry that still carry a valid signature.
func (p *Provider) SignJWT(claims map[string]any) (string, error) {
	return p.sign(claims, "JWT")
}

// DemoUsers returns the users of `gatehouse demo`, all with the password
// "demo": alice (an admin, group gatehouse-admins), bob (staff), carol,
// whose email the provider reports as unverified (email_verified false), to
// show that an unverified email grants nothing, and olivia (staff), who
// also types a one-time code (SecondFactor), to show require_mfa.
func DemoUsers() []User {
	return []User{
		{
			Subject: "alice", Username: "alice", Password: "demo",
			Email: "alice@example.com", Name: "Alice Admin",
			Groups: []string{"gatehouse-admins", "staff"},
		},
		{
			Subject: "bob", Username: "bob", Password: "demo",
			Email: "bob@example.com", Name: "Bob Staff",
			Groups: []string{"staff"},
		},
		{
			Subject: "carol", Username: "carol", Password: "demo",
			Email: "carol@example.com", EmailUnverified: true, Name: "Carol Unverified",
			Groups: []string{"staff"},
		},
		{
			Subject: "olivia", Username: "olivia", Password: "demo",
			Email: "olivia@example.com", Name: "Olivia Two-Factor",
			Groups: []string{"staff"}, SecondFactor: true,
		},
	}
}

func cloneClient(c Client) Client {
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	return c
}

// sign serialises claims as a compact JWS with the provider key.
func (p *Provider) sign(claims any, typ jose.ContentType) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: p.key, KeyID: p.keyID}},
		(&jose.SignerOptions{}).WithType(typ),
	)
	if err != nil {
		return "", fmt.Errorf("devidp: signer: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("devidp: encode claims: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("devidp: sign: %w", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("devidp: serialise: %w", err)
	}
	return token, nil
}

// randomID returns 32 random bytes, base64url: unguessable handles for
// sessions, cookies and tokens.
func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return base64.RawURLEncoding.EncodeToString(b)
}
