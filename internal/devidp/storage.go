package devidp

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// scopeGroups asks for the groups claim; it is the one scope beyond the
// standard ones that clients may request.
const scopeGroups = "groups"

// authRequest is one /authorize call, from its arrival to its code exchange.
// The op library gets copies, so the login handler can change the stored one
// under the lock while the library reads its own.
type authRequest struct {
	id           string
	created      time.Time
	clientID     string
	redirectURI  string
	state        string
	nonce        string
	scopes       []string
	responseType oidc.ResponseType
	responseMode oidc.ResponseMode
	challenge    *oidc.CodeChallenge
	prompt       []string
	maxAge       *uint
	hintSubject  string // sub of a valid id_token_hint
	loginHint    string

	// Set once the password was right for a user with a second factor:
	// the one-time code shown next, and who typed the password.
	otpSubject string
	otpCode    string
	otpTries   int

	// Set once the person has signed in.
	done     bool
	subject  string
	sid      string
	authTime time.Time
	amr      []string
	code     string
	codeExp  time.Time
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return slices.Clone(a.amr) }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

func (a *authRequest) copy() *authRequest {
	c := *a
	return &c
}

// usedCode remembers a consumed code, so that a replay can be told apart
// from garbage and revoke what the first exchange issued.
type usedCode struct {
	authRequestID string
	expires       time.Time
}

type accessToken struct {
	id            string
	clientID      string
	subject       string
	sid           string
	scopes        []string
	authRequestID string
	issued        time.Time
	expires       time.Time
}

type refreshToken struct {
	token         string
	clientID      string
	subject       string
	sid           string
	scopes        []string // granted at sign-in; a refresh may narrow, never widen
	authTime      time.Time
	amr           []string
	authRequestID string
	expires       time.Time
}

// refreshRequest is the op library's view of a refresh token being redeemed.
type refreshRequest struct {
	refreshToken
	current []string
}

func (r *refreshRequest) GetAMR() []string            { return slices.Clone(r.amr) }
func (r *refreshRequest) GetAudience() []string       { return []string{r.clientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.authTime }
func (r *refreshRequest) GetClientID() string         { return r.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.current }
func (r *refreshRequest) GetSubject() string          { return r.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.current = s }

// storage implements op.Storage over the Provider's maps. It is a separate
// type so that the op interface does not widen Provider's API.
type storage struct{ p *Provider }

var errNotFound = errors.New("not found")

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, hintSubject string) (op.AuthRequest, error) {
	// Only S256 is advertised; plain would let a leaked challenge redeem a code.
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	scopes := slices.Clone([]string(req.Scopes))
	// Refresh tokens for every code flow: see the package documentation.
	if req.ResponseType == oidc.ResponseTypeCode && !slices.Contains(scopes, oidc.ScopeOfflineAccess) {
		scopes = append(scopes, oidc.ScopeOfflineAccess)
	}
	a := &authRequest{
		id:           randomID(),
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       scopes,
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		prompt:       slices.Clone([]string(req.Prompt)),
		maxAge:       req.MaxAge,
		hintSubject:  hintSubject,
		loginHint:    req.LoginHint,
	}
	if req.CodeChallenge != "" {
		a.challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	a.created = p.now()
	p.purgeLocked(a.created)
	p.authRequests[a.id] = a
	return a.copy(), nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.authRequests[id]
	if !ok || p.now().Sub(a.created) > authRequestLifetime {
		return nil, fmt.Errorf("auth request: %w", errNotFound)
	}
	return a.copy(), nil
}

// AuthRequestByCode finds the request behind a code. The code is spent only
// once the exchange has passed PKCE and client authentication (redeemLocked),
// so that a client retrying with another auth style still succeeds.
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if used, ok := p.usedCodes[code]; ok {
		p.revokeAuthRequestTokensLocked(used.authRequestID)
		return nil, errors.New("code already used")
	}
	id, ok := p.codes[code]
	if !ok {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	a, ok := p.authRequests[id]
	if !ok || p.now().After(a.codeExp) {
		return nil, errors.New("code expired")
	}
	return a.copy(), nil
}

// redeemLocked spends the code of auth request id; of two concurrent
// exchanges of one code, one wins. Caller holds p.mu.
func (p *Provider) redeemLocked(id string) error {
	a, ok := p.authRequests[id]
	if !ok || a.code == "" {
		return oidc.ErrInvalidGrant().WithDescription("invalid code")
	}
	if _, ok := p.codes[a.code]; !ok {
		p.revokeAuthRequestTokensLocked(id)
		return oidc.ErrInvalidGrant().WithDescription("code already used")
	}
	delete(p.codes, a.code)
	p.usedCodes[a.code] = usedCode{authRequestID: id, expires: p.now().Add(authRequestLifetime)}
	return nil
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.authRequests[id]
	if !ok || !a.done {
		return fmt.Errorf("auth request: %w", errNotFound)
	}
	// One code per sign-in: a reloaded callback URL must not mint a second.
	if a.code != "" {
		return oidc.ErrInvalidRequest().WithDescription("a code was already issued for this request")
	}
	a.code, a.codeExp = code, p.now().Add(codeLifetime)
	p.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.authRequests, id)
	return nil
}

// origin is what every token request knows about the sign-in behind it.
type origin struct {
	clientID, subject, sid, authRequestID string
	scopes, granted                       []string
	authTime                              time.Time
	amr                                   []string
}

func originOf(req op.TokenRequest) (origin, error) {
	switch r := req.(type) {
	case *authRequest:
		return origin{r.clientID, r.subject, r.sid, r.id, r.scopes, r.scopes, r.authTime, r.amr}, nil
	case *refreshRequest:
		return origin{r.clientID, r.subject, r.sid, r.authRequestID, r.current, r.scopes, r.authTime, r.amr}, nil
	}
	return origin{}, oidc.ErrUnsupportedGrantType()
}

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	o, err := originOf(req)
	if err != nil {
		return "", time.Time{}, err
	}
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, alive := p.sessions[o.sid]; !alive {
		return "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("the provider session has ended")
	}
	if p.disabled[o.subject] {
		return "", time.Time{}, errDisabled()
	}
	if _, ok := req.(*authRequest); ok {
		if err := p.redeemLocked(o.authRequestID); err != nil {
			return "", time.Time{}, err
		}
	}
	at := p.newAccessTokenLocked(o)
	return at.id, p.opExpiry(at), nil
}

// opExpiry is the expiry to hand the op library for at: it computes
// expires_in as that minus the real time, so an expiry by p.now (a test's
// clock, ahead of the real one) would inflate it. This one makes
// expires_in the token's lifetime.
func (p *Provider) opExpiry(at *accessToken) time.Time {
	return time.Now().Add(at.expires.Sub(at.issued))
}

func errDisabled() error {
	return oidc.ErrInvalidGrant().WithDescription("the user account is disabled")
}

func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	o, err := originOf(req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if current != "" {
		// Rotation: of two concurrent redemptions of one token, one wins.
		if _, ok := p.refreshTokens[current]; !ok {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used or revoked")
		}
		delete(p.refreshTokens, current)
	}
	if _, alive := p.sessions[o.sid]; !alive {
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("the provider session has ended")
	}
	if p.disabled[o.subject] {
		return "", "", time.Time{}, errDisabled()
	}
	if _, ok := req.(*authRequest); ok {
		if err := p.redeemLocked(o.authRequestID); err != nil {
			return "", "", time.Time{}, err
		}
	}
	at := p.newAccessTokenLocked(o)
	rt := &refreshToken{
		token:         randomID(),
		clientID:      o.clientID,
		subject:       o.subject,
		sid:           o.sid,
		scopes:        o.granted,
		authTime:      o.authTime,
		amr:           o.amr,
		authRequestID: o.authRequestID,
		expires:       at.issued.Add(refreshLifetime),
	}
	p.refreshTokens[rt.token] = rt
	return at.id, rt.token, p.opExpiry(at), nil
}

func (p *Provider) newAccessTokenLocked(o origin) *accessToken {
	now := p.now()
	at := &accessToken{
		id:            randomID(),
		clientID:      o.clientID,
		subject:       o.subject,
		sid:           o.sid,
		scopes:        o.scopes,
		authRequestID: o.authRequestID,
		issued:        now,
		expires:       now.Add(p.accessLifetime),
	}
	p.accessTokens[at.id] = at
	return at
}

func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	rt, ok := p.refreshTokens[token]
	if !ok || p.now().After(rt.expires) {
		return nil, fmt.Errorf("refresh token: %w", errNotFound)
	}
	if p.disabled[rt.subject] {
		return nil, errDisabled()
	}
	return &refreshRequest{refreshToken: *rt, current: rt.scopes}, nil
}

// TerminateSession is the op library's fallback when
// TerminateSessionFromRequest is absent; it is here to satisfy op.Storage.
func (s *storage) TerminateSession(ctx context.Context, subject, _ string) error {
	return s.p.endSessions(ctx, func(sess *session) bool { return sess.subject == subject })
}

// TerminateSessionFromRequest ends the browser's provider session (from its
// cookie) and the one named by the id_token_hint's sid, then lets end_session
// redirect to the URI the op library validated against the client.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	p := s.p
	b, _ := ctx.Value(browserKey{}).(*browser)
	var hintSID string
	if req.IDTokenHintClaims != nil {
		hintSID = req.IDTokenHintClaims.SessionID
	}
	p.mu.Lock()
	browserSID := ""
	if b != nil {
		browserSID = p.cookies[b.secret]
	}
	p.mu.Unlock()
	// Delivery failures are the receiver's problem: they must not keep the
	// person from the post-logout page, and this package does not log.
	_ = p.endSessions(ctx, func(sess *session) bool {
		return sess.sid == browserSID || (sess.sid == hintSID && sess.subject == req.UserID)
	})
	if b != nil && b.secret != "" {
		b.forget()
	}
	return req.RedirectURI, nil
}

func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if rt, ok := p.refreshTokens[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(p.refreshTokens, tokenOrID)
		return nil
	}
	if at, ok := p.accessTokens[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(p.accessTokens, tokenOrID)
	}
	// RFC 7009, 2.2: an unknown token is not an error.
	return nil
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	rt, ok := p.refreshTokens[token]
	if !ok || rt.clientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, rt.token, nil
}

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

type publicKey struct {
	id  string
	key *rsa.PublicKey
}

func (k publicKey) ID() string                         { return k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.key }

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{s.p.keyID, s.p.key}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.p.keyID, &s.p.key.PublicKey}}, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q: %w", id, errNotFound)
	}
	return &opClient{c: c, p: p}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	p := s.p
	p.mu.Lock()
	c, ok := p.clients[id]
	p.mu.Unlock()
	if !ok || c.Secret == "" || !equalSecret(secret, c.Secret) {
		return errors.New("invalid client credentials")
	}
	return nil
}

// equalSecret compares in constant time; hashing first hides the length too.
func equalSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims and its sid.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	u, ok := s.p.subjects[req.GetSubject()]
	if !ok {
		return fmt.Errorf("user %q: %w", req.GetSubject(), errNotFound)
	}
	setUserClaims(info, u, scopes)
	switch r := req.(type) {
	case *authRequest:
		info.AppendClaims("sid", r.sid)
	case *refreshRequest:
		info.AppendClaims("sid", r.sid)
	}
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	p := s.p
	p.mu.Lock()
	at, ok := p.accessTokens[tokenID]
	valid := ok && at.subject == subject && p.now().Before(at.expires)
	p.mu.Unlock()
	if !valid {
		return errors.New("access token invalid or expired")
	}
	u, ok := p.subjects[subject]
	if !ok {
		return fmt.Errorf("user %q: %w", subject, errNotFound)
	}
	setUserClaims(info, u, at.scopes)
	return nil
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	p := s.p
	p.mu.Lock()
	at, ok := p.accessTokens[tokenID]
	valid := ok && at.subject == subject && at.clientID == clientID && p.now().Before(at.expires)
	p.mu.Unlock()
	if !valid {
		return errors.New("access token invalid, expired or of another client")
	}
	u := p.subjects[subject]
	info := new(oidc.UserInfo)
	setUserClaims(info, u, at.scopes)
	resp.SetUserInfo(info)
	resp.Scope = at.scopes
	resp.ClientID = at.clientID
	resp.Subject = at.subject
	resp.Audience = []string{at.clientID}
	resp.Issuer = p.issuer
	resp.IssuedAt = oidc.FromTime(at.issued)
	resp.Expiration = oidc.FromTime(at.expires)
	return nil
}

// GetPrivateClaimsFromScopes only matters for JWT access tokens; ours are opaque.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("private_key_jwt client authentication is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not supported")
}

func (s *storage) Health(context.Context) error { return nil }

// setUserClaims maps scopes to claims: email → email, email_verified;
// profile → name, preferred_username; groups → groups.
func setUserClaims(info *oidc.UserInfo, u User, scopes []string) {
	info.Subject = u.Subject
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeEmail:
			info.Email = u.Email
			verified := u.Email != "" && !u.EmailUnverified
			info.EmailVerified = oidc.Bool(verified)
			if u.Email != "" && !verified {
				// The op library omits a false email_verified; say it, so
				// that relying parties need not guess what absence means.
				info.AppendClaims("email_verified", false)
			}
		case oidc.ScopeProfile:
			info.Name = u.Name
			info.PreferredUsername = u.Username
		case scopeGroups:
			// Always an array, never null, so RPs need no special case.
			info.AppendClaims("groups", append([]string{}, u.Groups...))
		}
	}
}

// purgeLocked drops what can no longer be used, so a long-running demo does
// not grow without bound. Caller holds p.mu.
func (p *Provider) purgeLocked(now time.Time) {
	for id, a := range p.authRequests {
		if now.Sub(a.created) > authRequestLifetime {
			delete(p.authRequests, id)
			delete(p.codes, a.code)
		}
	}
	for code, u := range p.usedCodes {
		if now.After(u.expires) {
			delete(p.usedCodes, code)
		}
	}
	for id, at := range p.accessTokens {
		if now.After(at.expires) {
			delete(p.accessTokens, id)
		}
	}
	for t, rt := range p.refreshTokens {
		if now.After(rt.expires) {
			delete(p.refreshTokens, t)
		}
	}
}

// revokeAuthRequestTokensLocked answers a replayed code (RFC 6749, 4.1.2).
// Caller holds p.mu.
func (p *Provider) revokeAuthRequestTokensLocked(id string) {
	for k, at := range p.accessTokens {
		if at.authRequestID == id {
			delete(p.accessTokens, k)
		}
	}
	for k, rt := range p.refreshTokens {
		if rt.authRequestID == id {
			delete(p.refreshTokens, k)
		}
	}
}

// opClient presents a Client to the op library.
type opClient struct {
	c Client
	p *Provider
}

func (c *opClient) GetID() string                    { return c.c.ID }
func (c *opClient) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *opClient) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }

// ApplicationType is web even for public clients: the native type would
// accept any loopback port, and redirect URIs must match exactly.
func (c *opClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }

func (c *opClient) AuthMethod() oidc.AuthMethod {
	if c.c.Secret == "" {
		return oidc.AuthMethodNone
	}
	// Basic here; client_secret_post is accepted too (op.Config.AuthMethodPost).
	return oidc.AuthMethodBasic
}

func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *opClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

func (c *opClient) LoginURL(id string) string {
	return c.p.prefix + "/login?id=" + url.QueryEscape(id)
}

func (c *opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *opClient) IDTokenLifetime() time.Duration      { return c.p.tokenLifetime }

// DevMode lets a public client use an http redirect URI (still matched
// exactly); confidential clients may do so anyway with the code flow.
func (c *opClient) DevMode() bool { return c.c.Secret == "" }

func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *opClient) IsScopeAllowed(scope string) bool { return scope == scopeGroups }

// IDTokenUserinfoClaimsAssertion puts the user claims into the ID token even
// when an access token is issued, as gateways read them from there.
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *opClient) ClockSkew() time.Duration             { return 0 }
