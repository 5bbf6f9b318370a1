package oidcflow

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-proxy/gatehouse/internal/testclock"
)

// t0 is the fake provider's clock at start, fixed so that the fuzz seed
// tokens in testdata stay fresh.
var t0 = time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z

const (
	fakeClientID = "gatehouse"
	fakeKeyID    = "test-key"
	fakeNonce    = "the-nonce"
)

// testKey is the fake provider's signing key. It is in testdata, not
// generated, because the fuzz seeds are signed with it.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	b, err := os.ReadFile("testdata/test-signing-key.pem")
	if err != nil {
		panic(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		panic(err)
	}
	return k.(*rsa.PrivateKey)
})

// fakeIdP is a provider whose tokens and userinfo a test writes by hand:
// discovery, JWKS, a token endpoint that answers any code with an ID token
// of the claims set, and userinfo.
type fakeIdP struct {
	srv *httptest.Server
	clk *testclock.Clock

	mu       sync.Mutex
	idClaims map[string]any // added to iss, aud, sub, iat, exp and nonce
	userinfo map[string]any // nil: no userinfo_endpoint
	// idKey and idKid, when set, sign the ID tokens instead of the
	// published key, as a provider does just after rotating its keys.
	idKey *rsa.PrivateKey
	idKid string
	// keysFail makes the key set fail: "503" answers 503, "404" 404,
	// "hangup" closes the connection without an answer.
	keysFail string
}

func newFakeIdP(t testing.TB) *fakeIdP {
	t.Helper()
	p := &fakeIdP{clk: testclock.New(t0)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss := p.srv.URL
		meta := map[string]any{
			"issuer":                                iss,
			"authorization_endpoint":                iss + "/authorize",
			"token_endpoint":                        iss + "/token",
			"jwks_uri":                              iss + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		}
		p.mu.Lock()
		if p.userinfo != nil {
			meta["userinfo_endpoint"] = iss + "/userinfo"
		}
		p.mu.Unlock()
		writeJSON(w, meta)
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		fail := p.keysFail
		p.mu.Unlock()
		switch fail {
		case "503":
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		case "404":
			http.NotFound(w, r)
			return
		case "hangup":
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = c.Close()
			}
			return
		}
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
			Key: &testKey().PublicKey, KeyID: fakeKeyID, Algorithm: "RS256", Use: "sig",
		}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		now := p.clk.Now()
		claims := map[string]any{
			"iss": p.srv.URL, "aud": fakeClientID, "sub": "alice",
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": fakeNonce,
		}
		p.mu.Lock()
		for k, v := range p.idClaims {
			claims[k] = v
		}
		key, kid := testKey(), fakeKeyID
		if p.idKey != nil {
			key, kid = p.idKey, p.idKid
		}
		p.mu.Unlock()
		writeJSON(w, map[string]any{
			"access_token": "access", "token_type": "Bearer", "expires_in": 300,
			"id_token": sign(t, key, kid, claims),
		})
	})
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer access" {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		writeJSON(w, p.userinfo)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// client returns a relying party for the fake provider, on its clock.
func (p *fakeIdP) client() *Client {
	return New(Config{Issuer: p.srv.URL, ClientID: fakeClientID, ClientSecret: "secret", Now: p.clk.Now})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// sign makes a compact JWS of claims with key under key id kid.
func sign(t testing.TB, key *rsa.PrivateKey, kid string, claims any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, ok := claims.([]byte)
	if !ok {
		if payload, err = json.Marshal(claims); err != nil {
			t.Fatal(err)
		}
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
