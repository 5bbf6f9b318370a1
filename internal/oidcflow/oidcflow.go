// Package oidcflow is the relying-party side of OpenID Connect: lazy and
// retried discovery, the authorization code flow with PKCE (S256), state and
// nonce, ID token checks, userinfo, refresh, RP-initiated logout and
// back-channel logout tokens. It uses github.com/coreos/go-oidc and
// golang.org/x/oauth2 and knows nothing of sessions or HTTP handlers.
package oidcflow

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// Errors that tell the caller which login_failed reason applies.
var (
	// ErrProvider means the provider could not be reached or refused a
	// request (discovery, code exchange, userinfo, refresh).
	ErrProvider = errors.New("identity provider error")
	// ErrTokenInvalid means a token failed a check: signature, issuer,
	// audience, expiry, nonce or a required claim.
	ErrTokenInvalid = errors.New("invalid token")
	// ErrRefreshRefused means the provider answered a refresh with an
	// OAuth 2.0 error saying the grant is gone (invalid_grant: expired,
	// revoked or already used; the user disabled; consent withdrawn):
	// trying again cannot help, and the caller ends the session. Errors
	// that wrap only ErrProvider (the provider unreachable, a 5xx, an
	// answer that is not an OAuth error) are worth retrying. It wraps
	// ErrProvider too.
	ErrRefreshRefused = fmt.Errorf("%w: refresh refused", ErrProvider)
)

// refusals are the OAuth 2.0 error codes (RFC 6749 5.2, OIDC Core 3.1.2.6)
// with which a token endpoint says a refresh token will never work again.
// invalid_client is not one: it means this client's own credentials are
// wrong, a configuration mistake that must not end every user's session.
var refusals = map[string]bool{
	"invalid_grant":        true,
	"unauthorized_client":  true,
	"access_denied":        true,
	"consent_required":     true,
	"login_required":       true,
	"interaction_required": true,
}

// refused tells whether err is a token endpoint's definite refusal: a 4xx
// answer carrying one of the refusals codes. A 5xx is an outage, whatever
// its body says.
func refused(err error) bool {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || !refusals[re.ErrorCode] {
		return false
	}
	return re.Response == nil || (re.Response.StatusCode >= 400 && re.Response.StatusCode < 500)
}

// Config describes the relying party.
type Config struct {
	// Issuer is the provider's issuer URL, exactly as its discovery
	// document spells it (trailing slash included).
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes requested; "openid" is added when missing.
	Scopes []string
	// GroupsClaim names the claim that lists the user's groups.
	// Default: groups.
	GroupsClaim string
	// HTTPClient is used for every call to the provider.
	// Default: a client with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// RetryAfter is how long a failed discovery is remembered before the
	// next request tries again. Default: 5s.
	RetryAfter time.Duration
	// ACRValues, when set, is sent as acr_values (OIDC Core 3.1.2.1, space
	// separated) on every sign-in, to ask the provider for the level of
	// authentication named, such as a second factor. It is a request the
	// provider may ignore: whether a factor was used is read from amr.
	// Default: none.
	ACRValues string
}

// Client runs the flow for one Config. It is safe for concurrent use and
// does no network I/O until first needed.
type Client struct {
	cfg Config
	// bg carries the HTTP client for what outlives a request: the
	// discovery attempt, which waiters share, and the key set fetches of
	// the verifiers. It is never cancelled, so a request that ends cannot
	// break them, and no request's context is kept.
	bg context.Context

	disc   atomic.Pointer[discovery]
	flight singleflight.Group

	mu      sync.Mutex
	lastErr error
	lastEnd time.Time // when the failed attempt behind lastErr ended
}

type discovery struct {
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	logoutVer  *oidc.IDTokenVerifier
	endSession string
}

// discoveryTimeout bounds one discovery attempt, whoever waits for it.
const discoveryTimeout = 10 * time.Second

// New returns a Client for cfg.
func New(cfg Config) *Client {
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Second
	}
	hasOpenID := false
	for _, s := range cfg.Scopes {
		hasOpenID = hasOpenID || s == oidc.ScopeOpenID
	}
	if !hasOpenID {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	return &Client{cfg: cfg, bg: oidc.ClientContext(context.Background(), cfg.HTTPClient)}
}

func (c *Client) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, c.cfg.HTTPClient)
}

// discover fetches the provider's metadata once it is first needed. One
// attempt runs at a time and every request waiting meanwhile shares its
// result (issue 6, item 8: a mutex held across the network call made N
// waiting requests N sequential attempts). A failure is remembered for
// RetryAfter from the end of the attempt, so a provider that is down or
// hanging costs one attempt per interval rather than one per request. A
// request whose context ends stops waiting; the attempt goes on for the
// next one.
func (c *Client) discover(ctx context.Context) (*discovery, error) {
	if d := c.disc.Load(); d != nil {
		return d, nil
	}
	if err := c.recentFailure(); err != nil {
		return nil, err
	}
	ch := c.flight.DoChan("discover", func() (any, error) { return c.attempt() })
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*discovery), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for discovery of %s: %w", ErrProvider, c.cfg.Issuer, ctx.Err())
	}
}

// recentFailure returns the last failure while it is to be remembered.
func (c *Client) recentFailure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastErr != nil && c.cfg.Now().Sub(c.lastEnd) < c.cfg.RetryAfter {
		return c.lastErr
	}
	return nil
}

// attempt runs one discovery. It looks again at what an attempt that
// ended just before this one was started may have left, so that no
// second attempt follows a success or a fresh failure.
func (c *Client) attempt() (*discovery, error) {
	if d := c.disc.Load(); d != nil {
		return d, nil
	}
	if err := c.recentFailure(); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(c.bg, discoveryTimeout)
	defer cancel()
	p, err := oidc.NewProvider(dctx, c.cfg.Issuer)
	if err != nil {
		err = fmt.Errorf("%w: discovery of %s: %w", ErrProvider, c.cfg.Issuer, err)
		c.mu.Lock()
		c.lastErr, c.lastEnd = err, c.cfg.Now()
		c.mu.Unlock()
		return nil, err
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = p.Claims(&meta)
	verifier, logoutVer, err := c.newVerifiers(p)
	if err != nil {
		c.mu.Lock()
		c.lastErr, c.lastEnd = err, c.cfg.Now()
		c.mu.Unlock()
		return nil, err
	}
	d := &discovery{
		provider:   p,
		endSession: meta.EndSession,
		verifier:   verifier,
		logoutVer:  logoutVer,
	}
	c.disc.Store(d)
	c.mu.Lock()
	c.lastErr = nil
	c.mu.Unlock()
	return d, nil
}

func (c *Client) oauth2Config(d *discovery, redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		Endpoint:     d.provider.Endpoint(),
		RedirectURL:  redirectURL,
		Scopes:       c.cfg.Scopes,
	}
}

// State is what a sign-in must remember between the redirect to the
// provider and the callback. The caller keeps it in a sealed, short-lived
// cookie bound to the browser.
type State struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
}

func random() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// AuthCodeURL starts a sign-in: it returns the provider URL to send the
// browser to and the State to keep. With forceLogin the provider is asked
// to authenticate the user again instead of reusing its own single sign-on
// session: prompt=login, and max_age=0 for providers that ignore prompt
// (OIDC Core 3.1.2.1); max_age also obliges the provider to send auth_time,
// by which the caller can tell whether it complied.
func (c *Client) AuthCodeURL(ctx context.Context, redirectURL string, forceLogin bool) (string, State, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return "", State{}, err
	}
	st := State{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier()}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)}
	if forceLogin {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0"))
	}
	if c.cfg.ACRValues != "" {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", c.cfg.ACRValues))
	}
	return c.oauth2Config(d, redirectURL).AuthCodeURL(st.State, opts...), st, nil
}

// CheckState compares the state returned by the provider with the one kept,
// in constant time.
func (st State) CheckState(got string) bool {
	return st.State != "" && subtle.ConstantTimeCompare([]byte(st.State), []byte(got)) == 1
}

// Identity is who signed in, from the ID token merged with userinfo.
type Identity struct {
	Subject  string
	Email    string
	Name     string
	Username string
	Groups   []string
	// EmailVerified is the email_verified claim (from the ID token, or
	// from userinfo when that supplied the email).
	EmailVerified bool
	// AuthTime is the auth_time claim: when the user last authenticated
	// at the provider; zero when the token has none.
	AuthTime time.Time
	// AMR lists the authentication methods (RFC 8176), from the amr claim.
	AMR []string
	// SID is the provider's session id, for back-channel logout.
	SID string
}

// Result is the outcome of a code exchange or a refresh.
type Result struct {
	Identity Identity
	// IDToken is empty after a refresh whose answer had none (OIDC Core
	// 12.2 allows it); Identity is then empty too.
	IDToken     string
	AccessToken string
	// RefreshToken is empty when the provider issued none; after a
	// refresh, when it did not rotate the one used.
	RefreshToken string
	// Expiry is when the access token expires, by Config.Now (from the
	// answer's expires_in); zero when the provider did not say.
	Expiry time.Time
}

type claims struct {
	Email    string
	Name     string
	Username string
	SID      string
}

// readClaims takes the string claims by their exact names. Decoded into a
// struct, encoding/json matches names regardless of case (and folds ſ to
// s): a token with a claim "EMAIL" or "Sid" and no "email" or "sid" read
// as one with them, as the logout token's claims did (FuzzLogoutToken).
func readClaims(all map[string]any) claims {
	str := func(k string) string {
		v, _ := all[k].(string)
		return v
	}
	return claims{Email: str("email"), Name: str("name"), Username: str("preferred_username"), SID: str("sid")}
}

// Exchange finishes a sign-in: it trades the code for tokens (sending the
// PKCE verifier), checks the ID token including its nonce, and merges the
// userinfo claims.
func (c *Client) Exchange(ctx context.Context, redirectURL, code string, st State) (*Result, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := c.oauth2Config(d, redirectURL).Exchange(c.ctx(ctx), code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return nil, fmt.Errorf("%w: exchanging code: %w", ErrProvider, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("%w: no id_token in token response", ErrTokenInvalid)
	}
	res, err := c.verify(ctx, d, raw, tok, st.Nonce)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Refresh trades a refresh token for fresh tokens. A provider that refuses
// it has ended the user's grant: the error wraps ErrRefreshRefused and the
// caller ends the session. Any other error (ErrProvider alone, or
// ErrTokenInvalid for a bad refreshed ID token) may pass with a retry.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*Result, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	src := c.oauth2Config(d, "").TokenSource(c.ctx(ctx), &oauth2.Token{RefreshToken: refreshToken})
	tok, err := src.Token()
	if err != nil {
		if refused(err) {
			return nil, fmt.Errorf("%w: %w", ErrRefreshRefused, err)
		}
		return nil, fmt.Errorf("%w: refreshing: %w", ErrProvider, err)
	}
	if tok.RefreshToken == refreshToken {
		// Not rotated; x/oauth2 copies the old one in when the answer
		// has none.
		tok.RefreshToken = ""
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		// Providers may omit the ID token on refresh (OIDC Core 12.2).
		return &Result{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: c.expiry(tok)}, nil
	}
	return c.verify(ctx, d, raw, tok, "")
}

// expiry is when tok's access token expires by our clock: x/oauth2 adds
// expires_in to the real time, which an injected clock need not be.
func (c *Client) expiry(tok *oauth2.Token) time.Time {
	if tok.ExpiresIn > 0 {
		return c.cfg.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return tok.Expiry
}

func (c *Client) verify(ctx context.Context, d *discovery, raw string, tok *oauth2.Token, nonce string) (*Result, error) {
	idt, err := c.verifyToken(ctx, d.verifier, raw)
	if err != nil {
		return nil, err
	}
	// go-oidc leaves the nonce to us. A refreshed ID token need not carry
	// one (OIDC Core 12.2), but if it does it must be the original.
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, fmt.Errorf("%w: nonce mismatch", ErrTokenInvalid)
	}
	if idt.Subject == "" {
		return nil, fmt.Errorf("%w: no subject", ErrTokenInvalid)
	}
	if idt.AccessTokenHash != "" && tok.AccessToken != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
		}
	}
	var all map[string]any
	if err := idt.Claims(&all); err != nil {
		return nil, fmt.Errorf("%w: decoding claims: %w", ErrTokenInvalid, err)
	}
	cl := readClaims(all)
	id := Identity{
		Subject:  idt.Subject,
		Email:    cl.Email,
		Name:     cl.Name,
		Username: cl.Username,
		SID:      cl.SID,
		Groups:   groups(all[c.cfg.GroupsClaim]),
		// A flag without an email vouches for nothing, least of all for
		// an email userinfo may supply later.
		EmailVerified: cl.Email != "" && emailVerified(all["email_verified"]),
		AuthTime:      numericDate(all["auth_time"]),
		AMR:           strs(all["amr"]),
	}
	if d.provider.UserInfoEndpoint() != "" && tok.AccessToken != "" {
		if err := c.mergeUserInfo(ctx, d, tok, &id); err != nil {
			return nil, err
		}
	}
	return &Result{
		Identity:     id,
		IDToken:      raw,
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		Expiry:       c.expiry(tok),
	}, nil
}

// mergeUserInfo fills what the ID token left out. The userinfo subject must
// be the ID token's (OIDC Core 5.3.2), or the response is not about this
// user.
func (c *Client) mergeUserInfo(ctx context.Context, d *discovery, tok *oauth2.Token, id *Identity) error {
	ui, err := d.provider.UserInfo(c.ctx(ctx), oauth2.StaticTokenSource(tok))
	if err != nil {
		return fmt.Errorf("%w: userinfo: %w", ErrProvider, err)
	}
	if ui.Subject != id.Subject {
		return fmt.Errorf("%w: userinfo subject differs from id token", ErrTokenInvalid)
	}
	var all map[string]any
	if err := ui.Claims(&all); err != nil {
		return fmt.Errorf("%w: decoding userinfo: %w", ErrProvider, err)
	}
	cl := readClaims(all)
	if id.Email == "" {
		// The email and its verified flag come from one source: a flag
		// from the ID token says nothing about userinfo's email.
		id.Email = cl.Email
		id.EmailVerified = cl.Email != "" && emailVerified(all["email_verified"])
	}
	if id.Name == "" {
		id.Name = cl.Name
	}
	if id.Username == "" {
		id.Username = cl.Username
	}
	if len(id.Groups) == 0 {
		id.Groups = groups(all[c.cfg.GroupsClaim])
	}
	return nil
}

// emailVerified reads an email_verified claim. Some providers (AWS Cognito)
// send it as the string "true" or "false" instead of a JSON boolean;
// anything else is not a verification.
func emailVerified(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return b == "true"
	}
	return false
}

// maxNumericDate is 9999-12-31T23:59:59Z: a later claim is garbage, and
// converting a larger float to int64 would be undefined.
const maxNumericDate = 253402300799

// numericDate reads a NumericDate claim (RFC 7519, 2) such as auth_time:
// seconds since the epoch, possibly fractional. Anything else, or a time
// not after the epoch, gives the zero time.
func numericDate(v any) time.Time {
	f, ok := v.(float64)
	if !ok || !(f > 0 && f <= maxNumericDate) {
		return time.Time{}
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

// strs reads a claim that is an array of strings, such as amr, skipping
// elements that are not strings.
func strs(v any) []string {
	a, ok := v.([]any)
	if !ok {
		return nil
	}
	var out []string
	for _, x := range a {
		if s, ok := x.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}

// groups reads a groups claim, which providers send as an array of strings
// or as one string (space or comma separated).
func groups(v any) []string {
	var out []string
	switch g := v.(type) {
	case []any:
		out = strs(g)
	case string:
		out = strings.FieldsFunc(g, func(r rune) bool { return r == ',' || r == ' ' })
	}
	return out
}

// EndSessionURL returns where to send the browser to end the provider's
// session (RP-initiated logout 1.0), or "" when the provider has no
// end_session_endpoint.
func (c *Client) EndSessionURL(ctx context.Context, idTokenHint, postLogoutRedirect string) (string, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	if d.endSession == "" {
		return "", nil
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		return "", fmt.Errorf("%w: bad end_session_endpoint: %w", ErrProvider, err)
	}
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	q.Set("client_id", c.cfg.ClientID)
	if postLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirect)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// LogoutClaims are the parts of a back-channel logout token that say whose
// sessions end.
type LogoutClaims struct {
	Subject string
	SID     string
	JTI     string
}

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// VerifyLogoutToken checks a back-channel logout token (OIDC Back-Channel
// Logout 1.0, section 2.6): signature, issuer, audience, a recent iat, the
// logout event, sub or sid, a jti, and no nonce.
func (c *Client) VerifyLogoutToken(ctx context.Context, raw string) (LogoutClaims, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return LogoutClaims{}, err
	}
	t, err := c.verifyToken(ctx, d.logoutVer, raw)
	if err != nil {
		return LogoutClaims{}, err
	}
	var claims map[string]json.RawMessage
	var cl logoutTokenClaims
	if err := t.Claims(&claims); err != nil {
		return LogoutClaims{}, fmt.Errorf("%w: decoding logout token: %w", ErrTokenInvalid, err)
	}
	if err := cl.decode(claims); err != nil {
		return LogoutClaims{}, fmt.Errorf("%w: decoding logout token: %w", ErrTokenInvalid, err)
	}
	// go-oidc read iss and aud case-insensitively too (see decode): what
	// it checked must be what the token says under those exact names.
	if !sameIssuer(claims["iss"], t.Issuer) || !sameAudience(claims["aud"], t.Audience) {
		return LogoutClaims{}, fmt.Errorf("%w: logout token has iss or aud under another spelling", ErrTokenInvalid)
	}
	if err := cl.check(c.cfg.Now()); err != nil {
		return LogoutClaims{}, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	return LogoutClaims{Subject: cl.Subject, SID: cl.SID, JTI: cl.JTI}, nil
}

// logoutTokenClaims are the claims section 2.4 defines. Issuer, audience
// and signature are the verifier's.
type logoutTokenClaims struct {
	Subject string
	SID     string
	JTI     string
	Nonce   json.RawMessage // null counts as present
	Events  map[string]json.RawMessage
	IAT     any // NumericDate: float64
	Exp     any
}

// decode reads the claims by their exact names. JSON member names are
// case-sensitive (RFC 8259, 4; RFC 7519, 4), but encoding/json matches
// struct fields regardless of case, and folds ſ to s and K (Kelvin) to
// k: decoded into a struct, a token with "Sid" (or "ſid") and no sid read
// as one with a sid, and ended sessions (found by FuzzLogoutToken).
func (cl *logoutTokenClaims) decode(claims map[string]json.RawMessage) error {
	for _, c := range []struct {
		name string
		dst  any
	}{{"sub", &cl.Subject}, {"sid", &cl.SID}, {"jti", &cl.JTI}, {"events", &cl.Events}, {"iat", &cl.IAT}, {"exp", &cl.Exp}} {
		if v, ok := claims[c.name]; ok {
			if err := json.Unmarshal(v, c.dst); err != nil {
				return fmt.Errorf("claim %s: %w", c.name, err)
			}
		}
	}
	cl.Nonce = claims["nonce"]
	return nil
}

// sameIssuer tells whether the iss member raw is the string iss.
func sameIssuer(raw json.RawMessage, iss string) bool {
	var s string
	return raw != nil && json.Unmarshal(raw, &s) == nil && s == iss
}

// sameAudience tells whether the aud member raw, a string or an array of
// strings, is aud.
func sameAudience(raw json.RawMessage, aud []string) bool {
	var list []string
	if raw == nil {
		return false
	}
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return false
		}
		list = []string{s}
	}
	return slices.Equal(list, aud)
}

// The window for iat: a logout token is sent the moment a session ends,
// so an old one is a replay, and one from the future a clock to distrust.
const (
	logoutMaxAge  = 5 * time.Minute
	logoutMaxSkew = time.Minute
)

// check applies the rules of section 2.6 that concern the claims alone.
func (cl *logoutTokenClaims) check(now time.Time) error {
	if len(cl.Nonce) != 0 {
		// A nonce marks an ID token; section 2.4 forbids it here so that
		// one cannot be passed off as the other.
		return errors.New("logout token has a nonce")
	}
	ev, ok := cl.Events[backchannelEvent]
	if !ok || !isJSONObject(ev) {
		return errors.New("logout token lacks the logout event")
	}
	if cl.Subject == "" && cl.SID == "" {
		return errors.New("logout token has neither sub nor sid")
	}
	// Regression (issue 6, item 7): without a jti the receiver cannot
	// refuse a replayed token, and section 2.4 requires one.
	if cl.JTI == "" {
		return errors.New("logout token has no jti")
	}
	// A missing or malformed iat reads as the zero time, far outside.
	iat := numericDate(cl.IAT)
	if now.Sub(iat) > logoutMaxAge || iat.Sub(now) > logoutMaxSkew {
		return errors.New("logout token iat out of range")
	}
	if cl.Exp != nil && !numericDate(cl.Exp).After(now) {
		return errors.New("logout token expired")
	}
	return nil
}

// isJSONObject tells whether raw is a JSON object, as section 2.4 requires
// of the logout event's value ("SHOULD be the empty JSON object").
func isJSONObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && m != nil
}
