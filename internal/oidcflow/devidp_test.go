package oidcflow

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
)

const rpCallback = "http://rp.test/cb" // never dialled: the browser stops there

// devIdP is the development provider on a loopback server with this
// package's Client registered.
func devIdP(t *testing.T) (*devidp.Provider, *Client) {
	t.Helper()
	var idp *devidp.Provider
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { idp.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	var err error
	if idp, err = devidp.New(devidp.Config{Issuer: srv.URL, Users: devidp.DemoUsers()}); err != nil {
		t.Fatal(err)
	}
	idp.AddClient(devidp.Client{ID: "gh", Secret: "gh-secret", RedirectURIs: []string{rpCallback}})
	return idp, New(Config{Issuer: srv.URL, ClientID: "gh", ClientSecret: "gh-secret", Scopes: []string{"email", "profile", "groups"}})
}

func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == "rp.test" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

var formID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// signIn runs a sign-in in browser br as user and returns the result. With
// user "" the provider must not show the form (single sign-on).
func signIn(t *testing.T, c *Client, br *http.Client, user string, forceLogin bool) *Result {
	t.Helper()
	ctx := context.Background()
	u, st, err := c.AuthCodeURL(ctx, rpCallback, forceLogin)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := br.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := formID.FindSubmatch(page)
	switch {
	case user == "" && m != nil:
		t.Fatal("the provider showed the login form; want single sign-on")
	case user != "" && m == nil:
		t.Fatalf("no login form (status %d); want one", resp.StatusCode)
	case user != "":
		login := strings.TrimSuffix(resp.Request.URL.String(), "?"+resp.Request.URL.RawQuery)
		if resp, err = br.PostForm(login, url.Values{"id": {string(m[1])}, "username": {user}, "password": {"demo"}}); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("status %d, want a redirect to the relying party: %v", resp.StatusCode, err)
	}
	if !st.CheckState(loc.Query().Get("state")) {
		t.Fatalf("callback %s: state mismatch", loc)
	}
	res, err := c.Exchange(ctx, rpCallback, loc.Query().Get("code"), st)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return res
}

// The identity fields of issue 6 from the development provider: carol's
// email is unverified, alice's verified; auth_time stays with single
// sign-on and moves with a forced login; amr is ["pwd"].
func TestIdentityFromDevProvider(t *testing.T) {
	_, c := devIdP(t)
	for _, tt := range []struct {
		user     string
		verified bool
	}{{"alice", true}, {"carol", false}} {
		id := signIn(t, c, browser(t), tt.user, false).Identity
		if id.Subject != tt.user || id.Email != tt.user+"@example.com" || id.EmailVerified != tt.verified {
			t.Errorf("%s: identity %+v, want email verified %v", tt.user, id, tt.verified)
		}
		if !slices.Equal(id.AMR, []string{"pwd"}) || time.Since(id.AuthTime).Abs() > time.Minute {
			t.Errorf("%s: amr %v auth_time %v, want [pwd] and about now", tt.user, id.AMR, id.AuthTime)
		}
	}

	br := browser(t)
	first := signIn(t, c, br, "alice", false).Identity
	time.Sleep(1100 * time.Millisecond) // auth_time has whole seconds
	if sso := signIn(t, c, br, "", false).Identity; !sso.AuthTime.Equal(first.AuthTime) {
		t.Errorf("single sign-on: auth_time %v, want the original %v", sso.AuthTime, first.AuthTime)
	}
	// Item 3 of issue 6: a forced login shows the form despite the
	// provider session and yields a new auth_time.
	if forced := signIn(t, c, br, "alice", true).Identity; !forced.AuthTime.After(first.AuthTime) {
		t.Errorf("forced login: auth_time %v, want after %v", forced.AuthTime, first.AuthTime)
	}
}

// Regression (issue 6, item 3): only prompt=login was sent, which some
// providers ignore; max_age=0 is part of forcing a fresh login.
func TestAuthCodeURLForceLogin(t *testing.T) {
	_, c := devIdP(t)
	for _, force := range []bool{false, true} {
		u, st, err := c.AuthCodeURL(context.Background(), rpCallback, force)
		if err != nil {
			t.Fatal(err)
		}
		q := mustParse(t, u).Query()
		if q.Get("state") != st.State || q.Get("nonce") != st.Nonce || q.Get("code_challenge_method") != "S256" || q.Get("redirect_uri") != rpCallback {
			t.Errorf("AuthCodeURL(%v) = %s", force, u)
		}
		prompt, hasPrompt := q["prompt"]
		maxAge, hasMaxAge := q["max_age"]
		if force && (!slices.Equal(prompt, []string{"login"}) || !slices.Equal(maxAge, []string{"0"})) {
			t.Errorf("AuthCodeURL(forceLogin) = %s, want prompt=login and max_age=0", u)
		}
		if !force && (hasPrompt || hasMaxAge) {
			t.Errorf("AuthCodeURL(no forceLogin) = %s, want neither prompt nor max_age", u)
		}
	}
}
