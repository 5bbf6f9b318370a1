package oidcflow

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-proxy/gatehouse/internal/testclock"
)

// fuzzIssuer is the provider of the logout token fuzz targets. It is
// served in process (handlerTransport), so that the seed tokens in
// testdata, signed with testKey for this issuer, stay valid, and no
// execution touches the network.
const fuzzIssuer = "https://idp.test"

// handlerTransport answers every request with h, in process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// fuzzKey signs the fuzzed claims sets: ES256, because signing with
// testKey (RSA 2048) took most of each execution, and minimising an input
// longer than the run. Like testKey, it is in testdata.
var fuzzKey = sync.OnceValue(func() *ecdsa.PrivateKey {
	b, err := os.ReadFile("testdata/fuzz-signing-key.pem")
	if err != nil {
		panic(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		panic(err)
	}
	return k.(*ecdsa.PrivateKey)
})

const fuzzKeyID = "fuzz-key"

// signES256 makes a compact JWS of payload with fuzzKey.
func signES256(t *testing.T, payload []byte) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: fuzzKey(), KeyID: fuzzKeyID}},
		(&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		t.Fatal(err)
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

// fuzzLogoutClient is a relying party of fuzzIssuer, whose key set is
// testKey's and fuzzKey's, on a clock that stands at t0.
func fuzzLogoutClient() *Client {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                fuzzIssuer,
			"authorization_endpoint":                fuzzIssuer + "/authorize",
			"token_endpoint":                        fuzzIssuer + "/token",
			"jwks_uri":                              fuzzIssuer + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &testKey().PublicKey, KeyID: fakeKeyID, Algorithm: "RS256", Use: "sig"},
			{Key: &fuzzKey().PublicKey, KeyID: fuzzKeyID, Algorithm: "ES256", Use: "sig"},
		}})
	})
	return New(Config{
		Issuer: fuzzIssuer, ClientID: fakeClientID, ClientSecret: "secret",
		HTTPClient: &http.Client{Transport: handlerTransport{mux}},
		Now:        testclock.New(t0).Now,
	})
}

// specLogoutToken applies the rules of OIDC Back-Channel Logout 1.0
// (sections 2.4 and 2.6) to a logout token's claims set, as JSON defines
// them: member names compare exactly, a repeated member's last value
// counts (RFC 7519, section 4). It returns whose sessions end, or why
// the token must be refused. The signature is the caller's to check.
// Beyond the letter of the spec it takes gatehouse's choices: iat within
// 5 minutes back and 1 minute ahead, exp optional but, when present, in
// the future.
func specLogoutToken(payload []byte, now time.Time) (LogoutClaims, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return LogoutClaims{}, errors.New("claims set is not a JSON object")
	}
	str := func(name string) (string, bool, error) {
		raw, ok := m[name]
		if !ok {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", true, errors.New(name + " is not a string")
		}
		return s, true, nil
	}
	num := func(name string) (float64, bool, error) {
		raw, ok := m[name]
		if !ok {
			return 0, false, nil
		}
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			return 0, true, errors.New(name + " is not a number")
		}
		return f, true, nil
	}
	// A NumericDate is seconds since the epoch, fractions allowed; one
	// outside years 1970 to 9999 is no date (and the far past here).
	at := func(f float64) time.Time {
		if !(f > 0 && f < 253402300800) {
			return time.Time{}
		}
		sec := math.Floor(f)
		return time.Unix(int64(sec), int64((f-sec)*1e9))
	}

	if iss, _, err := str("iss"); err != nil || iss != fuzzIssuer {
		return LogoutClaims{}, errors.New("wrong issuer")
	}
	var aud []string
	if raw, ok := m["aud"]; !ok {
		return LogoutClaims{}, errors.New("no audience")
	} else if err := json.Unmarshal(raw, &aud); err != nil {
		var one string
		if err := json.Unmarshal(raw, &one); err != nil {
			return LogoutClaims{}, errors.New("aud is neither a string nor strings")
		}
		aud = []string{one}
	}
	ours := false
	for _, a := range aud {
		ours = ours || a == fakeClientID
	}
	if !ours {
		return LogoutClaims{}, errors.New("not for this client")
	}
	iat, ok, err := num("iat")
	if err != nil || !ok {
		return LogoutClaims{}, errors.New("no iat")
	}
	if t := at(iat); now.Sub(t) > logoutMaxAge || t.Sub(now) > logoutMaxSkew {
		return LogoutClaims{}, errors.New("iat out of range")
	}
	if exp, ok, err := num("exp"); err != nil || ok && !at(exp).After(now) {
		return LogoutClaims{}, errors.New("expired")
	}
	if _, ok := m["nonce"]; ok {
		return LogoutClaims{}, errors.New("nonce present")
	}
	var events map[string]json.RawMessage
	if err := json.Unmarshal(m["events"], &events); err != nil {
		return LogoutClaims{}, errors.New("events is not an object")
	}
	var ev map[string]json.RawMessage
	if raw, ok := events[backchannelEvent]; !ok || json.Unmarshal(raw, &ev) != nil || ev == nil {
		return LogoutClaims{}, errors.New("no logout event")
	}
	var lc LogoutClaims
	var errs [3]error
	lc.Subject, _, errs[0] = str("sub")
	lc.SID, _, errs[1] = str("sid")
	lc.JTI, _, errs[2] = str("jti")
	if err := errors.Join(errs[:]...); err != nil {
		return LogoutClaims{}, err
	}
	if lc.Subject == "" && lc.SID == "" {
		return LogoutClaims{}, errors.New("neither sub nor sid")
	}
	if lc.JTI == "" {
		return LogoutClaims{}, errors.New("no jti")
	}
	return lc, nil
}

// payloadOf returns the claims set of a compact JWS, or nil.
func payloadOf(raw string) []byte {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	return b
}

// FuzzLogoutToken feeds VerifyLogoutToken a fuzzed claims set signed with
// one of the provider's keys, so that every execution reaches the claim checks,
// and a fuzzed raw token, which must parse safely (the seeds in testdata
// are valid tokens the fuzzer mutates). Whatever is accepted must satisfy
// specLogoutToken, and the claims returned must be the token's. Every
// refusal is ErrTokenInvalid: the provider is up, so nothing is its fault.
func FuzzLogoutToken(f *testing.F) {
	c := fuzzLogoutClient()
	valid := func(edit func(m map[string]any)) []byte {
		m := map[string]any{
			"iss": fuzzIssuer, "aud": fakeClientID, "iat": t0.Unix(), "exp": t0.Add(2 * time.Minute).Unix(),
			"jti": "jti-1", "sub": "alice", "sid": "sid-1",
			"events": map[string]any{backchannelEvent: map[string]any{}},
		}
		if edit != nil {
			edit(m)
		}
		b, _ := json.Marshal(m)
		return b
	}
	f.Add(valid(nil), "")
	f.Add(valid(func(m map[string]any) { delete(m, "sub") }), "")
	f.Add(valid(func(m map[string]any) { delete(m, "sid"); m["aud"] = []string{"x", fakeClientID} }), "")
	f.Add(valid(func(m map[string]any) { m["nonce"] = nil }), "")
	f.Add(valid(func(m map[string]any) { m["iat"] = float64(t0.Unix()) - 299.5 }), "")
	f.Add([]byte(`{"iss":"https://idp.test","aud":"gatehouse","iat":1767225600,"jti":"j","sub":"a","sub":"",`+
		`"events":{"http://schemas.openid.net/event/backchannel-logout":{}}}`), "")
	f.Add([]byte(`{"iss":"https://idp.test","aud":"gatehouse","iat":1767225600,"jti":"j","Sid":"s",`+
		`"events":{"http://schemas.openid.net/event/backchannel-logout":{}}}`), "")
	f.Add([]byte(`{"ISS":"https://idp.test","aud":"gatehouse","iat":1767225600,"jti":"j","sid":"s",`+
		`"events":{"http://schemas.openid.net/event/backchannel-logout":{}}}`), "")
	f.Add([]byte(`[]`), "e30.e30.e30")
	f.Fuzz(func(t *testing.T, payload []byte, raw string) {
		check := func(what string, payload []byte, got LogoutClaims, err error) {
			t.Helper()
			want, specErr := specLogoutToken(payload, t0)
			if err != nil {
				if !errors.Is(err, ErrTokenInvalid) {
					t.Fatalf("%s %s: error %v is not ErrTokenInvalid", what, payload, err)
				}
				return
			}
			if specErr != nil {
				t.Fatalf("%s %s accepted as %+v, but the spec refuses it: %v", what, payload, got, specErr)
			}
			if got != want {
				t.Fatalf("%s %s = %+v, want %+v", what, payload, got, want)
			}
		}
		got, err := c.VerifyLogoutToken(context.Background(), signES256(t, payload))
		check("signed claims", payload, got, err)
		if raw != "" {
			got, err := c.VerifyLogoutToken(context.Background(), raw)
			check("raw token", payloadOf(raw), got, err)
		}
	})
}

// FuzzLogoutClaims builds logout tokens claim by claim from fuzzed values
// (which claims are present, their values, times around the window's
// edges, and one more claim of any name) and checks that
// VerifyLogoutToken accepts exactly the tokens specLogoutToken accepts,
// returning the same claims. FuzzLogoutToken checks only that what is
// accepted is valid; this one also catches a valid token refused.
func FuzzLogoutClaims(f *testing.F) {
	c := fuzzLogoutClient()
	const all = 1<<1 | 1<<4 | 1<<5 | 1<<6 | 1<<7 // aud, exp, sub, sid, jti
	f.Add("alice", "sid-1", "jti-1", int64(0), int64(120), uint16(all), "")
	f.Add("alice", "", "jti-1", int64(-300), int64(1), uint16(all), "acr")
	f.Add("", "sid-1", "jti-1", int64(60), int64(0), uint16(all), "Sub")
	f.Add("alice", "sid-1", "jti-1", int64(-301), int64(120), uint16(all|1<<8), "NONCE")
	f.Add("alice", "sid-1", "", int64(61), int64(120), uint16(all|3<<9), "Jti")
	f.Fuzz(func(t *testing.T, sub, sid, jti string, iatOffset, expOffset int64, flags uint16, extra string) {
		m := map[string]any{"iss": fuzzIssuer}
		switch flags >> 1 & 3 {
		case 1:
			m["aud"] = fakeClientID
		case 2:
			m["aud"] = []string{"other", fakeClientID}
		case 3:
			m["aud"] = []string{"other"}
		}
		if flags&1 != 0 {
			m["iss"] = "https://evil.test"
		}
		// Offsets within ±15 minutes, in half seconds, reach every edge.
		at := func(off int64) float64 { return float64(t0.Unix()) + float64(off%1800)/2 }
		if flags&(1<<3) == 0 {
			m["iat"] = at(iatOffset)
		}
		if flags&(1<<4) != 0 {
			m["exp"] = at(expOffset)
		}
		for bit, kv := range map[int][2]string{5: {"sub", sub}, 6: {"sid", sid}, 7: {"jti", jti}} {
			if flags&(1<<bit) != 0 {
				m[kv[0]] = kv[1]
			}
		}
		if flags&(1<<8) != 0 {
			m["nonce"] = "n"
		}
		switch flags >> 9 & 3 {
		case 0:
			m["events"] = map[string]any{backchannelEvent: map[string]any{}}
		case 1:
			m["events"] = map[string]any{backchannelEvent: "yes"}
		case 2:
			m["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
		}
		// One more claim, as providers add their own. Names of time
		// claims and of go-oidc's structured ones are left out: a
		// string there is malformed for go-oidc whatever its case, a
		// refusal specLogoutToken need not predict.
		switch strings.ToLower(extra) {
		case "", "iss", "aud", "iat", "exp", "nbf", "events", "_claim_names", "_claim_sources":
		default:
			if _, ok := m[extra]; !ok {
				m[extra] = "x"
			}
		}
		payload, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		want, specErr := specLogoutToken(payload, t0)
		got, err := c.VerifyLogoutToken(context.Background(), signES256(t, payload))
		switch {
		case specErr == nil && err != nil:
			t.Fatalf("VerifyLogoutToken(%s) refused a valid token: %v", payload, err)
		case specErr != nil && err == nil:
			t.Fatalf("VerifyLogoutToken(%s) = %+v, but the spec refuses it: %v", payload, got, specErr)
		case err != nil && !errors.Is(err, ErrTokenInvalid):
			t.Fatalf("VerifyLogoutToken(%s): error %v is not ErrTokenInvalid", payload, err)
		case err == nil && got != want:
			t.Fatalf("VerifyLogoutToken(%s) = %+v, want %+v", payload, got, want)
		}
	})
}

// The raw seeds of FuzzLogoutToken are tokens signed with testKey; the
// valid ones must stay valid (same key, issuer and t0), or the fuzzer
// would mutate only tokens refused before the claim checks.
func TestLogoutTokenSeedsValid(t *testing.T) {
	c := fuzzLogoutClient()
	for name, want := range map[string]LogoutClaims{
		"raw_valid":        {Subject: "alice", SID: "sid-1", JTI: "jti-1"},
		"raw_sid_only":     {SID: "sid-1", JTI: "jti-1"},
		"raw_sub_only_arr": {Subject: "alice", JTI: "jti-1"},
	} {
		b, err := os.ReadFile("testdata/fuzz/FuzzLogoutToken/" + name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		raw, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[len(lines)-1], "string("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, err := c.VerifyLogoutToken(context.Background(), raw); err != nil || got != want {
			t.Errorf("seed %s: VerifyLogoutToken = %+v, %v; want %+v", name, got, err, want)
		}
	}
}
