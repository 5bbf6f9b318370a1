package oidcflow

import (
	"context"
	"errors"
	"net/url"
	"testing"
)

// A token under a key id the client has not seen makes it fetch the key
// set again. A fetch that fails (no answer, or a 5xx) is the provider's
// fault, ErrProvider, which callers answer with a retryable 503 or 502; a
// key set that answers without the key, or a 404 (a wrong jwks_uri, a
// configuration problem) leaves the token invalid. go-oidc's verifier
// reports all of these as one error; before keySet, a provider that
// rotated its keys while its key set was down looked like a forger.
func TestKeyFetchFailureIsProviderError(t *testing.T) {
	for _, tt := range []struct {
		fail         string
		wantProvider bool
	}{
		{"503", true},
		{"hangup", true},
		{"404", false},
		{"", false}, // answers, without the new key
	} {
		t.Run("keys "+tt.fail, func(t *testing.T) {
			p := newFakeIdP(t)
			c := p.client()
			// The first exchange fetches and caches the published key.
			if _, err := c.Exchange(context.Background(), "http://rp.test/cb", "code", State{State: "s", Nonce: fakeNonce, Verifier: "v"}); err != nil {
				t.Fatal(err)
			}
			p.mu.Lock()
			p.idKey, p.idKid, p.keysFail = foreignKey(), "rotated", tt.fail
			p.mu.Unlock()
			_, idErr := c.Exchange(context.Background(), "http://rp.test/cb", "code", State{State: "s", Nonce: fakeNonce, Verifier: "v"})
			_, logoutErr := c.VerifyLogoutToken(context.Background(), sign(t, foreignKey(), "rotated", p.logoutToken()))
			for name, err := range map[string]error{"ID token": idErr, "logout token": logoutErr} {
				var ue *url.Error
				switch {
				case err == nil:
					t.Errorf("%s under an unpublished key verified", name)
				case tt.wantProvider && (!errors.Is(err, ErrProvider) || errors.Is(err, ErrTokenInvalid) || !errors.As(err, &ue)):
					t.Errorf("%s, key set failing: %v; want ErrProvider wrapping the request's *url.Error, not ErrTokenInvalid", name, err)
				case !tt.wantProvider && (!errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrProvider)):
					t.Errorf("%s, key set answering without the key: %v; want ErrTokenInvalid only", name, err)
				}
			}
			// The published key still verifies with the key set failing:
			// one key set, cached, serves both verifiers.
			tok := sign(t, testKey(), fakeKeyID, p.logoutToken())
			if _, err := c.VerifyLogoutToken(context.Background(), tok); err != nil {
				t.Errorf("logout token under the cached key: %v", err)
			}
		})
	}
}
