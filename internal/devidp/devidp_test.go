package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func TestMain(m *testing.M) {
	// The op library reports every refused request through slog's default
	// logger; the refusals here are deliberate.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// testKey spares each provider a 2048-bit key generation, slow under -race.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const (
	rpHost       = "rp.test" // never dialled: the browser stops at redirects to it
	redirectURI  = "http://rp.test/callback"
	postLogout   = "http://rp.test/signed-out"
	clientID     = "rp"
	clientSecret = "rp-secret"
)

// fixture is a provider on a loopback server, a relying party registered
// with it, and a back-channel logout receiver.
type fixture struct {
	idp      *Provider
	issuer   string
	provider *oidc.Provider
	oauth    oauth2.Config
	logouts  chan string // logout_token values received
	receiver *httptest.Server
}

func newFixture(t *testing.T, opts ...func(*Config)) *fixture {
	t.Helper()
	f := &fixture{logouts: make(chan string, 16)}
	f.receiver = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad logout request", http.StatusBadRequest)
			return
		}
		f.logouts <- r.PostForm.Get("logout_token")
	}))
	t.Cleanup(f.receiver.Close)

	// The issuer must be known before New, so listen first.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.issuer = "http://" + l.Addr().String()
	cfg := Config{Issuer: f.issuer, Users: DemoUsers(), SigningKey: testKey()}
	for _, o := range opts {
		o(&cfg)
	}
	f.idp, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(f.idp)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)

	// Registered after start, as tests that learn the RP's URL late do.
	f.idp.AddClient(Client{
		ID: clientID, Secret: clientSecret,
		RedirectURIs:           []string{redirectURI},
		PostLogoutRedirectURIs: []string{postLogout},
		BackchannelLogoutURI:   f.receiver.URL + "/backchannel",
	})
	f.provider, err = oidc.NewProvider(context.Background(), f.issuer)
	if err != nil {
		t.Fatal(err)
	}
	f.oauth = oauth2.Config{
		ClientID: clientID, ClientSecret: clientSecret,
		Endpoint:    f.provider.Endpoint(),
		RedirectURL: redirectURI,
		Scopes:      []string{oidc.ScopeOpenID, "email", "profile", "groups"},
	}
	return f
}

// newBrowser is a cookie-keeping client that follows redirects on the
// provider and stops at the relying party.
func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == rpHost {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

type flow struct {
	state, nonce, verifier string
}

func newFlow() flow {
	return flow{state: rand.Text(), nonce: rand.Text(), verifier: oauth2.GenerateVerifier()}
}

// authorize starts sign-in and returns the response the browser ends on:
// the login form, or a redirect to the relying party.
func (f *fixture) authorize(t *testing.T, br *http.Client, fl flow, opts ...oauth2.AuthCodeOption) (*http.Response, string) {
	t.Helper()
	opts = append(opts, oidc.Nonce(fl.nonce), oauth2.S256ChallengeOption(fl.verifier))
	return get(t, br, f.oauth.AuthCodeURL(fl.state, opts...))
}

func get(t *testing.T, br *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := br.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp, readBody(t, resp)
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var formID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// submit posts the login form found in page.
func (f *fixture) submit(t *testing.T, br *http.Client, page, username, password string) (*http.Response, string) {
	t.Helper()
	m := formID.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no login form in page:\n%s", page)
	}
	resp, err := br.PostForm(f.issuer+"/login", url.Values{"id": {m[1]}, "username": {username}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

// code checks the redirect to the relying party and returns its code.
func code(t *testing.T, resp *http.Response, fl flow) string {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want a 302 to the relying party", resp.StatusCode)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirected to %s, want %s", loc, redirectURI)
	}
	q := loc.Query()
	if e := q.Get("error"); e != "" {
		t.Fatalf("authorization error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != fl.state {
		t.Fatalf("state %q, want %q", q.Get("state"), fl.state)
	}
	return q.Get("code")
}

// signIn runs the browser part of the code flow with the form and returns the code.
func (f *fixture) signIn(t *testing.T, br *http.Client, fl flow, username string) string {
	t.Helper()
	resp, page := f.authorize(t, br, fl)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorize: status %d, want the login form:\n%s", resp.StatusCode, page)
	}
	resp, _ = f.submit(t, br, page, username, "demo")
	return code(t, resp, fl)
}

func (f *fixture) exchange(codeValue, verifier string, opts ...oauth2.AuthCodeOption) (*oauth2.Token, error) {
	return f.oauth.Exchange(context.Background(), codeValue, append(opts, oauth2.VerifierOption(verifier))...)
}

type idClaims struct {
	Subject           string   `json:"sub"`
	Nonce             string   `json:"nonce"`
	SID               string   `json:"sid"`
	Email             string   `json:"email"`
	EmailVerified     bool     `json:"email_verified"`
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	Groups            []string `json:"groups"`
	AuthTime          int64    `json:"auth_time"`
	AMR               []string `json:"amr"`
}

// verifyIDToken checks signature, issuer, audience and expiry with go-oidc,
// and the nonce, which go-oidc leaves to the caller.
func (f *fixture) verifyIDToken(t *testing.T, tok *oauth2.Token, nonce string) idClaims {
	t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		t.Fatal("token response without id_token")
	}
	idt, err := f.provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Nonce != nonce {
		t.Fatalf("nonce %q, want %q", c.Nonce, nonce)
	}
	return c
}

func wantAlice(t *testing.T, c idClaims) {
	t.Helper()
	if c.Subject != "alice" || c.Email != "alice@example.com" || !c.EmailVerified ||
		c.Name != "Alice Admin" || c.PreferredUsername != "alice" ||
		!slices.Equal(c.Groups, []string{"gatehouse-admins", "staff"}) {
		t.Fatalf("claims %+v, want alice's", c)
	}
}

func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func TestDiscovery(t *testing.T) {
	f := newFixture(t) // oidc.NewProvider already insists that issuer matches
	var d struct {
		Issuer                  string   `json:"issuer"`
		EndSession              string   `json:"end_session_endpoint"`
		JWKS                    string   `json:"jwks_uri"`
		BackchannelLogout       bool     `json:"backchannel_logout_supported"`
		BackchannelLogoutSID    bool     `json:"backchannel_logout_session_supported"`
		CodeChallengeMethods    []string `json:"code_challenge_methods_supported"`
		Scopes                  []string `json:"scopes_supported"`
		TokenEndpointAuthMethod []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := f.provider.Claims(&d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != f.issuer || d.EndSession != f.issuer+"/end_session" || d.JWKS != f.issuer+"/keys" {
		t.Errorf("discovery %+v", d)
	}
	if !d.BackchannelLogout || !d.BackchannelLogoutSID {
		t.Errorf("back-channel logout not advertised: %+v", d)
	}
	if !slices.Equal(d.CodeChallengeMethods, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported %v, want [S256]", d.CodeChallengeMethods)
	}
	for _, want := range []string{"openid", "email", "profile", "groups", "offline_access"} {
		if !slices.Contains(d.Scopes, want) {
			t.Errorf("scopes_supported %v lacks %s", d.Scopes, want)
		}
	}
	for _, want := range []string{"client_secret_basic", "client_secret_post"} {
		if !slices.Contains(d.TokenEndpointAuthMethod, want) {
			t.Errorf("token_endpoint_auth_methods_supported %v lacks %s", d.TokenEndpointAuthMethod, want)
		}
	}
}

func TestCodeFlow(t *testing.T) {
	tests := []struct {
		name  string
		style oauth2.AuthStyle
	}{
		{"client_secret_basic", oauth2.AuthStyleInHeader},
		{"client_secret_post", oauth2.AuthStyleInParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.oauth.Endpoint.AuthStyle = tt.style
			ctx := context.Background()
			fl := newFlow()
			tok, err := f.exchange(f.signIn(t, newBrowser(t), fl, "alice"), fl.verifier)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			c := f.verifyIDToken(t, tok, fl.nonce)
			wantAlice(t, c)
			if c.SID == "" {
				t.Error("ID token without sid")
			}

			info, err := f.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			var uc idClaims
			if err := info.Claims(&uc); err != nil {
				t.Fatal(err)
			}
			uc.Nonce, uc.SID = fl.nonce, c.SID // userinfo carries neither
			wantAlice(t, uc)

			if tok.RefreshToken == "" {
				t.Fatal("no refresh token without offline_access: gateways rely on one")
			}
			refreshed, err := f.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			rc := f.verifyIDToken(t, refreshed, "")
			wantAlice(t, rc)
			if rc.SID != c.SID {
				t.Errorf("refreshed sid %q, want %q", rc.SID, c.SID)
			}
			if refreshed.RefreshToken == "" || refreshed.RefreshToken == tok.RefreshToken {
				t.Error("refresh token not rotated")
			}
			_, err = f.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if oauthErrorCode(err) != "invalid_grant" {
				t.Errorf("reused refresh token: %v, want invalid_grant", err)
			}
		})
	}
}

func TestScopesLimitClaims(t *testing.T) {
	f := newFixture(t)
	f.oauth.Scopes = []string{oidc.ScopeOpenID}
	fl := newFlow()
	tok, err := f.exchange(f.signIn(t, newBrowser(t), fl, "bob"), fl.verifier)
	if err != nil {
		t.Fatal(err)
	}
	c := f.verifyIDToken(t, tok, fl.nonce)
	if c.Subject != "bob" || c.Email != "" || c.Groups != nil || c.SID == "" {
		t.Fatalf("claims %+v for scope openid alone, want sub and sid only", c)
	}
}

func TestTokenRequestRefused(t *testing.T) {
	tests := []struct {
		name     string
		exchange func(f *fixture, code string, fl flow) error
		want     string
	}{
		{"replayed code", func(f *fixture, code string, fl flow) error {
			first, err := f.exchange(code, fl.verifier)
			if err != nil {
				return err
			}
			_, err = f.exchange(code, fl.verifier)
			// RFC 6749, 4.1.2: a replay revokes what the code gave.
			if _, uiErr := f.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(first)); uiErr == nil {
				return errors.New("access token still valid after code replay")
			}
			return err
		}, "invalid_grant"},
		{"wrong verifier", func(f *fixture, code string, _ flow) error {
			_, err := f.exchange(code, oauth2.GenerateVerifier())
			return err
		}, "invalid_grant"},
		{"missing verifier", func(f *fixture, code string, _ flow) error {
			_, err := f.oauth.Exchange(context.Background(), code)
			return err
		}, "invalid_request"},
		{"wrong client secret", func(f *fixture, code string, fl flow) error {
			f.oauth.ClientSecret = "nope"
			_, err := f.exchange(code, fl.verifier)
			return err
		}, "invalid_client"},
		{"other redirect_uri", func(f *fixture, code string, fl flow) error {
			f.oauth.RedirectURL = redirectURI + "/other"
			_, err := f.exchange(code, fl.verifier)
			return err
		}, "invalid_grant"},
		{"forged code", func(f *fixture, _ string, fl flow) error {
			_, err := f.exchange("forged", fl.verifier)
			return err
		}, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			fl := newFlow()
			err := tt.exchange(f, f.signIn(t, newBrowser(t), fl, "alice"), fl)
			if got := oauthErrorCode(err); got != tt.want {
				t.Fatalf("error %v (code %q), want %s", err, got, tt.want)
			}
		})
	}
}

func TestConcurrentExchangesOfOneCode(t *testing.T) {
	f := newFixture(t)
	fl := newFlow()
	c := f.signIn(t, newBrowser(t), fl, "alice")
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { _, errs[i] = f.exchange(c, fl.verifier) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case oauthErrorCode(err) != "invalid_grant":
			t.Errorf("losing exchange: %v, want invalid_grant", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d exchanges of one code succeeded, want 1", won)
	}
}

func TestWrongCredentials(t *testing.T) {
	tests := []struct{ name, username, password string }{
		{"wrong password", "alice", "wrong"},
		{"unknown user", "mallory", "demo"},
		{"empty password", "alice", ""},
	}
	var pages []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Listed users are public anyway; the page must not tell
			// unlisted ones apart.
			f := newFixture(t, func(c *Config) { c.HideUsers = true })
			br := newBrowser(t)
			_, page := f.authorize(t, br, newFlow())
			resp, page := f.submit(t, br, page, tt.username, tt.password)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if !strings.Contains(page, "Invalid username or password.") || !formID.MatchString(page) {
				t.Fatalf("page does not re-show the form with the error:\n%s", page)
			}
			if c := resp.Header.Get("Set-Cookie"); c != "" {
				t.Fatalf("session cookie set on failure: %s", c)
			}
			pages = append(pages, strings.ReplaceAll(formID.ReplaceAllString(page, ""), tt.username, ""))
		})
	}
	// No user enumeration: a known and an unknown user get the same page.
	if len(pages) >= 2 && pages[0] != pages[1] {
		t.Error("the pages for a wrong password and an unknown user differ")
	}
}

func TestLoginPage(t *testing.T) {
	f := newFixture(t)
	resp, page := f.authorize(t, newBrowser(t), newFlow())
	for _, want := range []string{
		"Development provider — not for production", `name="username"`, `type="password"`, clientID,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("login page references an external resource")
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Error("login page may be framed")
	}
}

// TestLoginFormOriginFromBrowser guards a bug Chromium found: with
// Referrer-Policy no-referrer, browsers post the login form with
// "Origin: null", which the login CSRF check refuses, so nobody could
// sign in. The policy must let the page's own origin through.
func TestLoginFormOriginFromBrowser(t *testing.T) {
	f := newFixture(t)
	resp, _ := f.authorize(t, newBrowser(t), newFlow())
	switch rp := resp.Header.Get("Referrer-Policy"); rp {
	case "same-origin", "strict-origin", "strict-origin-when-cross-origin", "origin", "origin-when-cross-origin":
	default:
		t.Errorf("login page Referrer-Policy = %q: browsers would post the form with Origin: null", rp)
	}
}

func TestRedirectURIMustMatch(t *testing.T) {
	tests := []string{
		"http://evil.test/callback",
		redirectURI + "/",
		redirectURI + "?x=1",
		"http://rp.test:8080/callback",
		"https://rp.test/callback",
	}
	for _, uri := range tests {
		t.Run(uri, func(t *testing.T) {
			f := newFixture(t)
			f.oauth.RedirectURL = uri
			resp, _ := f.authorize(t, newBrowser(t), newFlow())
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d (Location %q), want 400 without redirect", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

func TestAuthorizeErrorsGoBackToRP(t *testing.T) {
	tests := []struct {
		name string
		opts []oauth2.AuthCodeOption
		flow func() flow
		want string
	}{
		{"plain PKCE", nil, func() flow {
			return flow{state: "s", nonce: "n"}
		}, "invalid_request"},
		{"prompt=none without session", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "none")}, newFlow, "login_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			fl := tt.flow()
			var resp *http.Response
			if fl.verifier == "" {
				u := f.oauth.AuthCodeURL(fl.state, oidc.Nonce(fl.nonce),
					oauth2.SetAuthURLParam("code_challenge", "abc"), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
				resp, _ = get(t, newBrowser(t), u)
			} else {
				resp, _ = f.authorize(t, newBrowser(t), fl, tt.opts...)
			}
			loc, err := resp.Location()
			if err != nil {
				t.Fatalf("status %d, want a redirect to the RP: %v", resp.StatusCode, err)
			}
			if got := loc.Query().Get("error"); got != tt.want || loc.Query().Get("state") != fl.state {
				t.Fatalf("redirect %s, want error=%s with state", loc, tt.want)
			}
		})
	}
}

func TestSSO(t *testing.T) {
	f := newFixture(t)
	br := newBrowser(t)
	fl := newFlow()
	tok, err := f.exchange(f.signIn(t, br, fl, "alice"), fl.verifier)
	if err != nil {
		t.Fatal(err)
	}
	first := f.verifyIDToken(t, tok, fl.nonce)

	// The same browser signs in again without the form.
	fl2 := newFlow()
	resp, _ := f.authorize(t, br, fl2)
	tok2, err := f.exchange(code(t, resp, fl2), fl2.verifier)
	if err != nil {
		t.Fatal(err)
	}
	second := f.verifyIDToken(t, tok2, fl2.nonce)
	if second.SID != first.SID || second.Subject != "alice" {
		t.Fatalf("SSO sign-in claims %+v, want alice in session %s", second, first.SID)
	}

	// prompt=none succeeds silently while the session lives.
	fl3 := newFlow()
	resp, _ = f.authorize(t, br, fl3, oauth2.SetAuthURLParam("prompt", "none"))
	if _, err := f.exchange(code(t, resp, fl3), fl3.verifier); err != nil {
		t.Fatalf("prompt=none with a session: %v", err)
	}

	// Each of these still shows the form.
	tests := []struct {
		name string
		br   *http.Client
		opts []oauth2.AuthCodeOption
	}{
		{"another browser", newBrowser(t), nil},
		{"prompt=login", br, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login")}},
		{"max_age=0", br, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "0")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, page := f.authorize(t, tt.br, newFlow(), tt.opts...)
			if resp.StatusCode != http.StatusOK || !formID.MatchString(page) {
				t.Fatalf("status %d, want the login form", resp.StatusCode)
			}
		})
	}
}

type logoutClaims struct {
	Issuer   string                    `json:"iss"`
	Subject  string                    `json:"sub"`
	Audience []string                  `json:"aud"`
	IssuedAt int64                     `json:"iat"`
	JTI      string                    `json:"jti"`
	SID      string                    `json:"sid"`
	Events   map[string]map[string]any `json:"events"`
	Nonce    *string                   `json:"nonce"`
}

// verifyLogoutToken checks a logout token as OIDC Back-Channel Logout 1.0,
// section 2.6 asks of a relying party, with the provider's JWKS.
func (f *fixture) verifyLogoutToken(t *testing.T, raw string) logoutClaims {
	t.Helper()
	keys := oidc.NewRemoteKeySet(context.Background(), f.issuer+"/keys")
	payload, err := keys.VerifySignature(context.Background(), raw)
	if err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	var c logoutClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("logout token claims: %v", err)
	}
	if c.Issuer != f.issuer || !slices.Equal(c.Audience, []string{clientID}) || c.IssuedAt == 0 || c.JTI == "" || c.Nonce != nil {
		t.Fatalf("logout token claims %+v", c)
	}
	if _, ok := c.Events["http://schemas.openid.net/event/backchannel-logout"]; !ok || len(c.Events) != 1 {
		t.Fatalf("logout token events %v", c.Events)
	}
	header, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(header), `"typ":"logout+jwt"`) {
		t.Errorf("logout token header %s, want typ logout+jwt", header)
	}
	return c
}

func (f *fixture) nextLogout(t *testing.T) string {
	t.Helper()
	select {
	case tok := <-f.logouts:
		return tok
	case <-time.After(5 * time.Second):
		t.Fatal("no back-channel logout token arrived")
		return ""
	}
}

func (f *fixture) noLogout(t *testing.T) {
	t.Helper()
	select {
	case tok := <-f.logouts:
		t.Fatalf("unexpected back-channel logout token %s", tok)
	default:
	}
}

func TestEndSession(t *testing.T) {
	f := newFixture(t)
	br := newBrowser(t)
	fl := newFlow()
	tok, err := f.exchange(f.signIn(t, br, fl, "alice"), fl.verifier)
	if err != nil {
		t.Fatal(err)
	}
	idc := f.verifyIDToken(t, tok, fl.nonce)
	hint := tok.Extra("id_token").(string)

	// An unregistered post-logout URI is refused and ends nothing.
	resp, _ := get(t, br, f.issuer+"/end_session?"+url.Values{
		"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://evil.test/"},
	}.Encode())
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unregistered post_logout_redirect_uri: status %d, want 400", resp.StatusCode)
	}
	f.noLogout(t)

	resp, _ = get(t, br, f.issuer+"/end_session?"+url.Values{
		"id_token_hint": {hint}, "post_logout_redirect_uri": {postLogout}, "state": {"bye"},
	}.Encode())
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != postLogout+"?state=bye" {
		t.Fatalf("end_session: status %d to %q, want 302 to %s?state=bye", resp.StatusCode, loc, postLogout)
	}
	lc := f.verifyLogoutToken(t, f.nextLogout(t))
	if lc.SID != idc.SID || lc.Subject != "alice" {
		t.Fatalf("logout token sid %q sub %q, want %q alice", lc.SID, lc.Subject, idc.SID)
	}

	// The session's tokens died with it, and the browser must sign in again.
	if _, err := f.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("refresh after logout: %v, want invalid_grant", err)
	}
	if _, err := f.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok)); err == nil {
		t.Error("access token still valid after logout")
	}
	resp, page := f.authorize(t, br, newFlow())
	if resp.StatusCode != http.StatusOK || !formID.MatchString(page) {
		t.Fatalf("after logout: status %d, want the login form", resp.StatusCode)
	}
}

func TestEndSessionWithoutHint(t *testing.T) {
	f := newFixture(t)
	br := newBrowser(t)
	f.signIn(t, br, newFlow(), "bob")
	resp, page := get(t, br, f.issuer+"/end_session")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "signed out") {
		t.Fatalf("status %d, want the provider's signed-out page", resp.StatusCode)
	}
	if lc := f.verifyLogoutToken(t, f.nextLogout(t)); lc.Subject != "bob" {
		t.Fatalf("logout token for %q, want bob", lc.Subject)
	}
}

func TestEndUserSessions(t *testing.T) {
	f := newFixture(t)
	var sids []string
	for range 2 { // two browsers, two provider sessions
		fl := newFlow()
		tok, err := f.exchange(f.signIn(t, newBrowser(t), fl, "alice"), fl.verifier)
		if err != nil {
			t.Fatal(err)
		}
		sids = append(sids, f.verifyIDToken(t, tok, fl.nonce).SID)
	}
	f.signIn(t, newBrowser(t), newFlow(), "bob")

	if err := f.idp.EndUserSessions("alice"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 2 {
		got = append(got, f.verifyLogoutToken(t, f.nextLogout(t)).SID)
	}
	slices.Sort(got)
	slices.Sort(sids)
	if !slices.Equal(got, sids) {
		t.Fatalf("logout tokens for sessions %v, want %v", got, sids)
	}
	f.noLogout(t) // bob stays signed in
}

func TestEndUserSessionsReportsDeliveryFailure(t *testing.T) {
	f := newFixture(t)
	f.signIn(t, newBrowser(t), newFlow(), "alice")
	f.receiver.Close()
	if err := f.idp.EndUserSessions("alice"); err == nil {
		t.Fatal("EndUserSessions hid a failed delivery")
	}
}

func TestSignJWT(t *testing.T) {
	idp, err := New(Config{Issuer: "http://127.0.0.1:1"}) // default key
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(idp)
	defer srv.Close()
	raw, err := idp.SignJWT(map[string]any{"iss": "http://wrong.test", "aud": "x", "nonce": "n"})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := oidc.NewRemoteKeySet(context.Background(), srv.URL+"/keys").VerifySignature(context.Background(), raw)
	if err != nil {
		t.Fatalf("SignJWT output does not verify with the JWKS: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if len(c) != 3 || c["iss"] != "http://wrong.test" {
		t.Fatalf("claims %v, want exactly the ones given", c)
	}
}

func TestIssuerWithPath(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + l.Addr().String() + "/idp"
	idp, err := New(Config{Issuer: issuer, SigningKey: testKey()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(idp)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	p, err := oidc.NewProvider(context.Background(), issuer)
	if err != nil {
		t.Fatal(err)
	}
	if p.Endpoint().AuthURL != issuer+"/authorize" {
		t.Fatalf("authorization endpoint %s", p.Endpoint().AuthURL)
	}
	if resp, _ := get(t, http.DefaultClient, srv.URL+"/.well-known/openid-configuration"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("outside the issuer path: status %d, want 404", resp.StatusCode)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no issuer", Config{}},
		{"relative issuer", Config{Issuer: "/idp"}},
		{"ftp issuer", Config{Issuer: "ftp://idp.test"}},
		{"duplicate username", Config{Issuer: "http://idp.test", Users: []User{{Username: "a"}, {Username: "a", Subject: "b"}}}},
		{"duplicate subject", Config{Issuer: "http://idp.test", Users: []User{{Username: "a", Subject: "s"}, {Username: "b", Subject: "s"}}}},
		{"client without id", Config{Issuer: "http://idp.test", Clients: []Client{{Secret: "x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SigningKey = testKey()
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}

// clock is a Config.Now that tests move forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func TestExpiry(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		use     func(f *fixture, tok *oauth2.Token) error
	}{
		{"code after a minute", 61 * time.Second, nil},
		{"access token at userinfo", 6 * time.Minute, func(f *fixture, tok *oauth2.Token) error {
			_, err := f.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
			return err
		}},
		{"refresh token after a day", 25 * time.Hour, func(f *fixture, tok *oauth2.Token) error {
			_, err := f.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c clock
			f := newFixture(t, func(cfg *Config) { cfg.Now = c.now })
			fl := newFlow()
			code := f.signIn(t, newBrowser(t), fl, "alice")
			if tt.use == nil {
				c.advance(tt.advance)
				if _, err := f.exchange(code, fl.verifier); oauthErrorCode(err) != "invalid_grant" {
					t.Fatalf("exchange: %v, want invalid_grant", err)
				}
				return
			}
			tok, err := f.exchange(code, fl.verifier)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.use(f, tok); err != nil {
				t.Fatalf("before expiry: %v", err)
			}
			c.advance(tt.advance)
			if err := tt.use(f, tok); err == nil {
				t.Fatal("still accepted after expiry")
			}
		})
	}
}

// postForm calls a client-authenticated endpoint of the provider.
func (f *fixture) postForm(t *testing.T, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, clientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

func TestRevokeAndIntrospect(t *testing.T) {
	f := newFixture(t)
	fl := newFlow()
	tok, err := f.exchange(f.signIn(t, newBrowser(t), fl, "alice"), fl.verifier)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := f.postForm(t, "/oauth/introspect", url.Values{"token": {tok.AccessToken}})
	var in struct {
		Active bool   `json:"active"`
		Sub    string `json:"sub"`
		Email  string `json:"email"`
	}
	if err := json.Unmarshal([]byte(body), &in); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: status %d %s", resp.StatusCode, body)
	}
	if !in.Active || in.Sub != "alice" || in.Email != "alice@example.com" {
		t.Fatalf("introspection %s", body)
	}

	resp, body = f.postForm(t, "/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: status %d %s", resp.StatusCode, body)
	}
	if _, err := f.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("refresh after revocation: %v, want invalid_grant", err)
	}
}

func TestPublicClient(t *testing.T) {
	f := newFixture(t)
	f.idp.AddClient(Client{ID: "spa", RedirectURIs: []string{redirectURI}})
	f.oauth.ClientID, f.oauth.ClientSecret = "spa", ""
	fl := newFlow()
	tok, err := f.exchange(f.signIn(t, newBrowser(t), fl, "bob"), fl.verifier)
	if err != nil {
		t.Fatalf("public client with PKCE: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if _, err := f.provider.Verifier(&oidc.Config{ClientID: "spa"}).Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}

	// Without PKCE a public client's code is worthless.
	br := newBrowser(t)
	resp, page := get(t, br, f.oauth.AuthCodeURL("s"))
	resp, _ = f.submit(t, br, page, "bob", "demo")
	c := code(t, resp, flow{state: "s"})
	if _, err := f.oauth.Exchange(context.Background(), c); err == nil {
		t.Fatal("public client redeemed a code without PKCE")
	}
}

func TestAnotherUserOnTheSameBrowser(t *testing.T) {
	f := newFixture(t)
	br := newBrowser(t)
	f.signIn(t, br, newFlow(), "alice")
	fl := newFlow()
	resp, page := f.authorize(t, br, fl, oauth2.SetAuthURLParam("prompt", "login"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("prompt=login: status %d, want the form", resp.StatusCode)
	}
	resp, _ = f.submit(t, br, page, "bob", "demo")
	code(t, resp, fl)
	// alice's session ended when bob signed in on her browser.
	if lc := f.verifyLogoutToken(t, f.nextLogout(t)); lc.Subject != "alice" {
		t.Fatalf("logout token for %q, want alice", lc.Subject)
	}
}

func TestLoginFormRefused(t *testing.T) {
	tests := []struct {
		name   string
		id     func(page string) string
		origin string
		want   int
	}{
		{"cross-site post", func(p string) string { return formID.FindStringSubmatch(p)[1] }, "http://evil.test", http.StatusForbidden},
		{"unknown request", func(string) string { return "nope" }, "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			br := newBrowser(t)
			_, page := f.authorize(t, br, newFlow())
			form := url.Values{"id": {tt.id(page)}, "username": {"alice"}, "password": {"demo"}}
			req, err := http.NewRequest(http.MethodPost, f.issuer+"/login", strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			resp, err := br.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if resp.StatusCode != tt.want || resp.Header.Get("Set-Cookie") != "" {
				t.Fatalf("status %d (cookie %q), want %d without a session", resp.StatusCode, resp.Header.Get("Set-Cookie"), tt.want)
			}
		})
	}
}

// Regression (issue 6, item 2): email_verified was always true. It follows
// the user, and an unverified email is said explicitly (false), in the ID
// token and in userinfo alike.
func TestEmailVerifiedPerUser(t *testing.T) {
	tests := []struct {
		user string
		want bool
	}{
		{"alice", true},
		{"bob", true},
		{"carol", false},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			f := newFixture(t)
			fl := newFlow()
			tok, err := f.exchange(f.signIn(t, newBrowser(t), fl, tt.user), fl.verifier)
			if err != nil {
				t.Fatal(err)
			}
			f.verifyIDToken(t, tok, fl.nonce)
			idt, err := f.provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(context.Background(), tok.Extra("id_token").(string))
			if err != nil {
				t.Fatal(err)
			}
			var idc map[string]any
			if err := idt.Claims(&idc); err != nil {
				t.Fatal(err)
			}
			info, err := f.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatal(err)
			}
			var uic map[string]any
			if err := info.Claims(&uic); err != nil {
				t.Fatal(err)
			}
			for src, c := range map[string]map[string]any{"ID token": idc, "userinfo": uic} {
				if got, ok := c["email_verified"].(bool); !ok || got != tt.want {
					t.Errorf("%s email_verified = %v (%T), want %v", src, c["email_verified"], c["email_verified"], tt.want)
				}
				if c["email"] != tt.user+"@example.com" {
					t.Errorf("%s email = %v", src, c["email"])
				}
			}
		})
	}
}

func TestDemoUsers(t *testing.T) {
	byName := map[string]User{}
	for _, u := range DemoUsers() {
		byName[u.Username] = u
	}
	if a := byName["alice"]; a.EmailUnverified || !slices.Contains(a.Groups, "gatehouse-admins") {
		t.Errorf("alice = %+v, want a verified admin", a)
	}
	if b := byName["bob"]; b.EmailUnverified || slices.Contains(b.Groups, "gatehouse-admins") {
		t.Errorf("bob = %+v, want a verified non-admin", b)
	}
	c, ok := byName["carol"]
	if !ok || !c.EmailUnverified || c.Email != "carol@example.com" || c.Password != "demo" || slices.Contains(c.Groups, "gatehouse-admins") {
		t.Errorf("carol = %+v, want a non-admin with an unverified email", c)
	}
}

// The ID token's auth_time is when the person typed their password: a
// single sign-on reuse keeps the original time (item 3 of issue 6 relies on
// it to refuse a sign-in that predates a revocation), while prompt=login
// and max_age=0 show the form again and give a new time. amr is ["pwd"].
func TestAuthTime(t *testing.T) {
	var clk clock
	f := newFixture(t, func(cfg *Config) { cfg.Now = clk.now })
	br := newBrowser(t)
	fl := newFlow()
	before := clk.now().Unix()
	tok, err := f.exchange(f.signIn(t, br, fl, "alice"), fl.verifier)
	if err != nil {
		t.Fatal(err)
	}
	first := f.verifyIDToken(t, tok, fl.nonce)
	if first.AuthTime < before || first.AuthTime > clk.now().Unix() {
		t.Fatalf("auth_time %d, want the time of the sign-in (%d)", first.AuthTime, before)
	}
	if !slices.Equal(first.AMR, []string{"pwd"}) {
		t.Errorf("amr %v, want [pwd]", first.AMR)
	}

	clk.advance(10 * time.Minute)
	fl2 := newFlow()
	resp, _ := f.authorize(t, br, fl2)
	tok2, err := f.exchange(code(t, resp, fl2), fl2.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if sso := f.verifyIDToken(t, tok2, fl2.nonce); sso.AuthTime != first.AuthTime || !slices.Equal(sso.AMR, []string{"pwd"}) {
		t.Errorf("SSO reuse: auth_time %d amr %v, want the original %d and [pwd]", sso.AuthTime, sso.AMR, first.AuthTime)
	}
	refreshed, err := f.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if rc := f.verifyIDToken(t, refreshed, ""); rc.AuthTime != first.AuthTime {
		t.Errorf("refresh: auth_time %d, want the original %d", rc.AuthTime, first.AuthTime)
	}

	tests := []struct {
		name string
		opt  oauth2.AuthCodeOption
	}{
		{"prompt=login", oauth2.SetAuthURLParam("prompt", "login")},
		{"max_age=0", oauth2.SetAuthURLParam("max_age", "0")},
	}
	last := first.AuthTime
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.advance(10 * time.Minute)
			fl := newFlow()
			resp, page := f.authorize(t, br, fl, tt.opt)
			if resp.StatusCode != http.StatusOK || !formID.MatchString(page) {
				t.Fatalf("status %d, want the login form", resp.StatusCode)
			}
			resp, _ = f.submit(t, br, page, "alice", "demo")
			tok, err := f.exchange(code(t, resp, fl), fl.verifier)
			if err != nil {
				t.Fatal(err)
			}
			c := f.verifyIDToken(t, tok, fl.nonce)
			if want := clk.now().Unix(); c.AuthTime <= last || c.AuthTime > want {
				t.Errorf("auth_time %d after a fresh login, want about %d (later than %d)", c.AuthTime, want, last)
			}
			last = c.AuthTime
		})
	}
}
