package devidp

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// DisableUser makes the token endpoint refuse the user's refresh tokens
// with invalid_grant (what a gateway's refresh_failed tests rely on),
// leaves other users alone, sends no logout token, and EnableUser undoes
// it; the login form refuses a disabled user.
func TestDisableUser(t *testing.T) {
	f := newFixture(t)
	fl := newFlow()
	tok, err := f.exchange(f.signIn(t, newBrowser(t), fl, "alice"), fl.verifier)
	if err != nil {
		t.Fatal(err)
	}
	fl2 := newFlow()
	bobTok, err := f.exchange(f.signIn(t, newBrowser(t), fl2, "bob"), fl2.verifier)
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(rt string) (*oauth2.Token, error) {
		return f.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
	}
	f.idp.DisableUser("alice")
	if _, err := refresh(tok.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("refresh of a disabled user: %v, want invalid_grant", err)
	}
	if _, err := refresh(bobTok.RefreshToken); err != nil {
		t.Fatalf("refresh of another user: %v", err)
	}
	f.noLogout(t)
	resp, page := f.authorize(t, newBrowser(t), newFlow())
	if resp.StatusCode != 200 {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	if resp, _ := f.submit(t, newBrowser(t), page, "alice", "demo"); resp.StatusCode == 302 || resp.StatusCode == 303 {
		if loc, _ := resp.Location(); loc != nil && loc.Query().Get("code") != "" {
			t.Error("a disabled user signed in on the form")
		}
	}
	f.idp.EnableUser("alice")
	// The refused attempt did not spend the token.
	if _, err := refresh(tok.RefreshToken); err != nil {
		t.Fatalf("refresh after EnableUser: %v", err)
	}
}

// AccessTokenLifetime shortens access tokens only, and expires_in is the
// lifetime even on a clock ahead of the real one (the op library computes
// it against the real clock; a gateway's tests move theirs).
func TestAccessTokenLifetime(t *testing.T) {
	var c clock
	c.advance(3 * time.Hour)
	f := newFixture(t, func(cfg *Config) {
		cfg.Now = c.now
		cfg.AccessTokenLifetime = 2 * time.Minute
		cfg.TokenLifetime = time.Hour
	})
	fl := newFlow()
	tok, err := f.exchange(f.signIn(t, newBrowser(t), fl, "alice"), fl.verifier)
	if err != nil {
		t.Fatal(err)
	}
	// The op library truncates: a second may pass between its clock reads.
	if tok.ExpiresIn < 119 || tok.ExpiresIn > 120 {
		t.Errorf("code exchange: expires_in %d, want 120", tok.ExpiresIn)
	}
	refreshed, err := f.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if refreshed.ExpiresIn < 119 || refreshed.ExpiresIn > 120 {
		t.Errorf("refresh: expires_in %d, want 120", refreshed.ExpiresIn)
	}
	active := func() bool {
		_, body := f.postForm(t, "/oauth/introspect", url.Values{"token": {refreshed.AccessToken}})
		var in struct {
			Active bool `json:"active"`
		}
		_ = json.Unmarshal([]byte(body), &in)
		return in.Active
	}
	if !active() {
		t.Fatal("fresh access token inactive")
	}
	c.advance(3 * time.Minute)
	if active() {
		t.Error("access token active past AccessTokenLifetime")
	}
	// The ID token keeps TokenLifetime.
	f.verifyIDToken(t, refreshed, "")
}
