package gateway

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// signWithNewKey signs claims with a key and key id the provider has not
// published yet, as it would just after rotating its keys.
func signWithNewKey(t *testing.T, claims map[string]any) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "rotated-key"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A logout token under a key id the gateway has not seen makes it fetch
// the key set again. When that fetch fails (the provider rotated its keys
// and its key set is down), the token could not be checked: a 503 the
// provider retries (Back-Channel Logout 1.0, 2.8), not the 400 that tells
// it the logout failed for good and leaves the sessions alive. When the
// key set answers and has no such key, the token is bad: 400.
func TestBackchannelLogoutKeysUnreachable(t *testing.T) {
	h := newHarness(t, memBackend)
	b := h.browser()
	b.login("alice", "/") // the key set is fetched and cached
	claims := func(jti string) map[string]any {
		return map[string]any{"iss": h.idpSrv.URL, "aud": "site", "iat": h.clock.Now().Unix(), "jti": jti,
			"sub": "alice", "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
	}
	post := func(tok string) int {
		return b.Do(http.MethodPost, h.site.URL+"/.gatehouse/backchannel-logout", url.Values{"logout_token": {tok}}, false).Status
	}
	h.keysDown.Store(true)
	h.expectErrors("fetching the provider's keys")
	if st := post(signWithNewKey(t, claims("k-1"))); st != http.StatusServiceUnavailable {
		t.Errorf("logout token under a new key, key set down: %d, want 503", st)
	}
	// A token under the cached key still verifies with the key set down.
	if st := post(mustSign(t, h, claims("k-2"))); st != http.StatusOK {
		t.Errorf("logout token under the cached key, key set down: %d, want 200", st)
	}
	h.keysDown.Store(false)
	if st := post(signWithNewKey(t, claims("k-3"))); st != http.StatusBadRequest {
		t.Errorf("logout token under a key the key set does not have: %d, want 400", st)
	}
}
