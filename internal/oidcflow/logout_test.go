package oidcflow

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"
)

// foreignKey signs tokens the provider never issued.
var foreignKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// logoutToken returns valid logout token claims for p, as of t0.
func (p *fakeIdP) logoutToken() map[string]any {
	return map[string]any{
		"iss":    p.srv.URL,
		"aud":    fakeClientID,
		"iat":    t0.Unix(),
		"exp":    t0.Add(2 * time.Minute).Unix(),
		"jti":    "jti-1",
		"sub":    "alice",
		"sid":    "sid-1",
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
}

// Each check of OIDC Back-Channel Logout 1.0, section 2.6, has a case that
// only it refuses. Regression (issue 6, item 7): tokens without jti were
// accepted, and no test noticed the iat window or sid handling removed.
func TestVerifyLogoutToken(t *testing.T) {
	p := newFakeIdP(t)
	c := p.client()
	tests := []struct {
		name   string
		edit   func(m map[string]any)
		key    *rsa.PrivateKey // default: the provider's
		want   LogoutClaims
		reject bool
	}{
		{name: "sub and sid", want: LogoutClaims{Subject: "alice", SID: "sid-1", JTI: "jti-1"}},
		{name: "sub only", edit: func(m map[string]any) { delete(m, "sid") }, want: LogoutClaims{Subject: "alice", JTI: "jti-1"}},
		{name: "sid only", edit: func(m map[string]any) { delete(m, "sub") }, want: LogoutClaims{SID: "sid-1", JTI: "jti-1"}},
		{name: "no exp", edit: func(m map[string]any) { delete(m, "exp") }, want: LogoutClaims{Subject: "alice", SID: "sid-1", JTI: "jti-1"}},
		{name: "iat 4 minutes old", edit: func(m map[string]any) { m["iat"] = t0.Add(-4 * time.Minute).Unix() }, want: LogoutClaims{Subject: "alice", SID: "sid-1", JTI: "jti-1"}},
		{name: "iat 30s ahead", edit: func(m map[string]any) { m["iat"] = t0.Add(30 * time.Second).Unix() }, want: LogoutClaims{Subject: "alice", SID: "sid-1", JTI: "jti-1"}},

		{name: "no jti", edit: func(m map[string]any) { delete(m, "jti") }, reject: true},
		{name: "empty jti", edit: func(m map[string]any) { m["jti"] = "" }, reject: true},
		{name: "nonce", edit: func(m map[string]any) { m["nonce"] = "n" }, reject: true},
		{name: "null nonce", edit: func(m map[string]any) { m["nonce"] = nil }, reject: true},
		{name: "no events", edit: func(m map[string]any) { delete(m, "events") }, reject: true},
		{name: "other event only", edit: func(m map[string]any) {
			m["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
		}, reject: true},
		{name: "logout event not an object", edit: func(m map[string]any) {
			m["events"] = map[string]any{backchannelEvent: "yes"}
		}, reject: true},
		{name: "logout event null", edit: func(m map[string]any) {
			m["events"] = map[string]any{backchannelEvent: nil}
		}, reject: true},
		{name: "neither sub nor sid", edit: func(m map[string]any) { delete(m, "sub"); delete(m, "sid") }, reject: true},
		{name: "iat 6 minutes old", edit: func(m map[string]any) { m["iat"] = t0.Add(-6 * time.Minute).Unix() }, reject: true},
		{name: "iat 2 minutes ahead", edit: func(m map[string]any) { m["iat"] = t0.Add(2 * time.Minute).Unix() }, reject: true},
		{name: "no iat", edit: func(m map[string]any) { delete(m, "iat") }, reject: true},
		{name: "expired", edit: func(m map[string]any) { m["exp"] = t0.Add(-time.Second).Unix() }, reject: true},
		{name: "wrong issuer", edit: func(m map[string]any) { m["iss"] = "http://evil.test" }, reject: true},
		{name: "wrong audience", edit: func(m map[string]any) { m["aud"] = "another-client" }, reject: true},
		{name: "foreign key, same kid", key: foreignKey(), reject: true},

		// Regression (found by FuzzLogoutToken): claim names are
		// case-sensitive, and encoding/json matched them regardless of
		// case, folding ſ to s as well.
		{name: "Sid for sid", edit: rename("sid", "Sid", "sub"), reject: true},
		{name: "ſub for sub", edit: rename("sub", "ſub", "sid"), reject: true},
		{name: "JTI for jti", edit: rename("jti", "JTI"), reject: true},
		{name: "Events for events", edit: rename("events", "Events"), reject: true},
		{name: "IAT for iat", edit: rename("iat", "IAT"), reject: true},
		{name: "ISS for iss", edit: rename("iss", "ISS"), reject: true},
		{name: "Aud for aud", edit: rename("aud", "Aud"), reject: true},
		{name: "Sub beside sub", edit: func(m map[string]any) { m["Sub"] = "mallory" }, want: LogoutClaims{Subject: "alice", SID: "sid-1", JTI: "jti-1"}},
		{name: "Nonce is not nonce", edit: func(m map[string]any) { m["Nonce"] = "n" }, want: LogoutClaims{Subject: "alice", SID: "sid-1", JTI: "jti-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := p.logoutToken()
			if tt.edit != nil {
				tt.edit(m)
			}
			key := tt.key
			if key == nil {
				key = testKey()
			}
			got, err := c.VerifyLogoutToken(context.Background(), sign(t, key, fakeKeyID, m))
			if tt.reject {
				if !errors.Is(err, ErrTokenInvalid) {
					t.Fatalf("VerifyLogoutToken(%v) = %+v, %v; want ErrTokenInvalid", m, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("VerifyLogoutToken(%v) = %+v, %v; want %+v", m, got, err, tt.want)
			}
		})
	}
}

// An ID token of the same provider and audience is no logout token.
func TestVerifyLogoutTokenRefusesIDToken(t *testing.T) {
	p := newFakeIdP(t)
	m := p.logoutToken()
	delete(m, "events")
	idToken := maps.Clone(m)
	idToken["nonce"] = fakeNonce
	for _, claims := range []map[string]any{m, idToken} {
		if _, err := p.client().VerifyLogoutToken(context.Background(), sign(t, testKey(), fakeKeyID, claims)); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("VerifyLogoutToken(%v) = %v, want ErrTokenInvalid", claims, err)
		}
	}
}

// rename returns an edit that moves claim from to the name to and deletes
// the claims drop.
func rename(from, to string, drop ...string) func(m map[string]any) {
	return func(m map[string]any) {
		m[to] = m[from]
		delete(m, from)
		for _, d := range drop {
			delete(m, d)
		}
	}
}
