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
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Errors that tell the caller which login_failed reason applies.
var (
	// ErrProvider means the provider could not be reached or refused a
	// request (discovery, code exchange, userinfo, refresh).
	ErrProvider = errors.New("identity provider error")
	// ErrTokenInvalid means a token failed a check: signature, issuer,
	// audience, expiry, nonce or a required claim.
	ErrTokenInvalid = errors.New("invalid token")
)

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
}

// Client runs the flow for one Config. It is safe for concurrent use and
// does no network I/O until first needed.
type Client struct {
	cfg Config

	mu      sync.Mutex
	disc    *discovery
	lastErr error
	lastTry time.Time
}

type discovery struct {
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	logoutVer  *oidc.IDTokenVerifier
	endSession string
}

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
	return &Client{cfg: cfg}
}

func (c *Client) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, c.cfg.HTTPClient)
}

// discover fetches the provider's metadata once it is first needed. A
// failure is remembered for RetryAfter, so a provider that is down costs one
// attempt per interval rather than one per request.
func (c *Client) discover(ctx context.Context) (*discovery, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disc != nil {
		return c.disc, nil
	}
	now := c.cfg.Now()
	if c.lastErr != nil && now.Sub(c.lastTry) < c.cfg.RetryAfter {
		return nil, c.lastErr
	}
	c.lastTry = now
	// The provider keeps the context for its key set fetches, so it must
	// outlive this request.
	bg := c.ctx(context.WithoutCancel(ctx))
	dctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, c.cfg.Issuer)
	if err != nil {
		c.lastErr = fmt.Errorf("%w: discovery of %s: %w", ErrProvider, c.cfg.Issuer, err)
		return nil, c.lastErr
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = p.Claims(&meta)
	d := &discovery{
		provider:   p,
		endSession: meta.EndSession,
		verifier: p.VerifierContext(bg, &oidc.Config{
			ClientID: c.cfg.ClientID,
			Now:      c.cfg.Now,
		}),
		// Logout tokens have no nonce and need not expire soon; their
		// freshness is checked on iat below.
		logoutVer: p.VerifierContext(bg, &oidc.Config{
			ClientID:        c.cfg.ClientID,
			Now:             c.cfg.Now,
			SkipExpiryCheck: true,
		}),
	}
	c.disc, c.lastErr = d, nil
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
// to authenticate the user again (prompt=login) instead of reusing its
// own single sign-on session.
func (c *Client) AuthCodeURL(ctx context.Context, redirectURL string, forceLogin bool) (string, State, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return "", State{}, err
	}
	st := State{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier()}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)}
	if forceLogin {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
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
	Identity     Identity
	IDToken      string
	AccessToken  string
	RefreshToken string
	Expiry       time.Time
}

type claims struct {
	Subject  string `json:"sub"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	Username string `json:"preferred_username"`
	SID      string `json:"sid"`
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
// it has ended the user's grant; the caller ends the session.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*Result, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	src := c.oauth2Config(d, "").TokenSource(c.ctx(ctx), &oauth2.Token{RefreshToken: refreshToken})
	tok, err := src.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: refreshing: %w", ErrProvider, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		// Providers may omit the ID token on refresh (OIDC Core 12.2).
		return &Result{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}, nil
	}
	return c.verify(ctx, d, raw, tok, "")
}

func (c *Client) verify(ctx context.Context, d *discovery, raw string, tok *oauth2.Token, nonce string) (*Result, error) {
	idt, err := d.verifier.Verify(c.ctx(ctx), raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
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
	var cl claims
	var all map[string]any
	if err := idt.Claims(&cl); err != nil {
		return nil, fmt.Errorf("%w: decoding claims: %w", ErrTokenInvalid, err)
	}
	if err := idt.Claims(&all); err != nil {
		return nil, fmt.Errorf("%w: decoding claims: %w", ErrTokenInvalid, err)
	}
	id := Identity{
		Subject:  idt.Subject,
		Email:    cl.Email,
		Name:     cl.Name,
		Username: cl.Username,
		SID:      cl.SID,
		Groups:   groups(all[c.cfg.GroupsClaim]),
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
		Expiry:       tok.Expiry,
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
	var cl claims
	var all map[string]any
	if err := ui.Claims(&cl); err != nil {
		return fmt.Errorf("%w: decoding userinfo: %w", ErrProvider, err)
	}
	_ = ui.Claims(&all)
	if id.Email == "" {
		id.Email = cl.Email
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

// groups reads a groups claim, which providers send as an array of strings
// or as one string (space or comma separated).
func groups(v any) []string {
	var out []string
	switch g := v.(type) {
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
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
// logout event, sub or sid, and no nonce.
func (c *Client) VerifyLogoutToken(ctx context.Context, raw string) (LogoutClaims, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return LogoutClaims{}, err
	}
	t, err := d.logoutVer.Verify(c.ctx(ctx), raw)
	if err != nil {
		return LogoutClaims{}, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	var cl struct {
		SID    string          `json:"sid"`
		JTI    string          `json:"jti"`
		Nonce  *string         `json:"nonce"`
		Events map[string]any  `json:"events"`
		Exp    *jsonNumberTime `json:"exp"`
	}
	if err := t.Claims(&cl); err != nil {
		return LogoutClaims{}, fmt.Errorf("%w: decoding logout token: %w", ErrTokenInvalid, err)
	}
	now := c.cfg.Now()
	switch {
	case cl.Nonce != nil:
		return LogoutClaims{}, fmt.Errorf("%w: logout token has a nonce", ErrTokenInvalid)
	case cl.Events == nil || cl.Events[backchannelEvent] == nil:
		return LogoutClaims{}, fmt.Errorf("%w: logout token lacks the logout event", ErrTokenInvalid)
	case t.Subject == "" && cl.SID == "":
		return LogoutClaims{}, fmt.Errorf("%w: logout token has neither sub nor sid", ErrTokenInvalid)
	case t.IssuedAt.IsZero() || now.Sub(t.IssuedAt) > 5*time.Minute || t.IssuedAt.Sub(now) > time.Minute:
		return LogoutClaims{}, fmt.Errorf("%w: logout token iat out of range", ErrTokenInvalid)
	case cl.Exp != nil && !time.Unix(int64(*cl.Exp), 0).After(now):
		return LogoutClaims{}, fmt.Errorf("%w: logout token expired", ErrTokenInvalid)
	}
	return LogoutClaims{Subject: t.Subject, SID: cl.SID, JTI: cl.JTI}, nil
}

type jsonNumberTime float64
