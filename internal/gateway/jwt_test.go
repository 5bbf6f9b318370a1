package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
	"github.com/gatehouse-proxy/gatehouse/internal/store/redisstore"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// Interface guards: both stores keep signing keys.
var (
	_ KeyStore = (*memstore.Store)(nil)
	_ KeyStore = (*redisstore.Store)(nil)
)

const testJWTHeader = "X-Gatehouse-Assertion"

// countingKeys counts the key store calls.
type countingKeys struct {
	KeyStore
	calls atomic.Int64
}

func (c *countingKeys) SigningKeys(ctx context.Context) (map[string][]byte, error) {
	c.calls.Add(1)
	return c.KeyStore.SigningKeys(ctx)
}

func (c *countingKeys) AddSigningKey(ctx context.Context, id string, rec []byte) (bool, error) {
	c.calls.Add(1)
	return c.KeyStore.AddSigningKey(ctx, id, rec)
}

func (c *countingKeys) RemoveSigningKey(ctx context.Context, id string) error {
	c.calls.Add(1)
	return c.KeyStore.RemoveSigningKey(ctx, id)
}

// newJWTHarness is a harness whose runtime keeps keys in the store mk
// makes (the harness's failingStore hides them), counted.
func newJWTHarness(t *testing.T, mk func(t *testing.T, now func() time.Time) backend) (*harness, *countingKeys) {
	t.Helper()
	var raw backend
	keys := &countingKeys{}
	h := newHarnessRT(t, func(t *testing.T, now func() time.Time) backend {
		raw = mk(t, now)
		return raw
	}, func(c *RuntimeConfig) {
		keys.KeyStore = raw.(KeyStore)
		c.Keys = keys
	})
	return h, keys
}

// jwtSite is a site with jwt_header on the harness's runtime, in front of
// an upstream that answers with what it got in that header.
type jwtSite struct {
	srv *httptest.Server
	gw  *Gateway
}

// jwtEcho is what the upstream of a jwtSite saw.
type jwtEcho struct {
	// Tokens are the values of the header under its canonical name.
	Tokens []string `json:"tokens"`
	// Others are the values of every other spelling of it.
	Others []string `json:"others"`
}

func (h *harness) jwtSite() *jwtSite {
	h.t.Helper()
	st := &jwtSite{}
	st.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := st.gw.Serve(w, r); s == nil {
			return
		}
		var e jwtEcho
		for k, v := range r.Header {
			switch {
			case k == testJWTHeader:
				e.Tokens = v
			case equalFoldDash(k, testJWTHeader):
				e.Others = append(e.Others, v...)
			}
		}
		_ = json.NewEncoder(w).Encode(e)
	}))
	h.t.Cleanup(st.srv.Close)
	id := "jwt-" + st.srv.Listener.Addr().String()
	cfg := h.baseConfig(id)
	cfg.JWTHeader = strings.ToLower(testJWTHeader) // New canonicalizes it
	gw, err := New(cfg, h.rt)
	if err != nil {
		h.t.Fatal(err)
	}
	st.gw = gw
	h.register(id, st.srv.URL)
	return st
}

// token asks the site for path as b and returns the one token the
// upstream got.
func (st *jwtSite) token(t *testing.T, b *browser, hdr ...string) string {
	t.Helper()
	p := b.Do(http.MethodGet, st.srv.URL+"/x", nil, false, hdr...)
	if p.Status != http.StatusOK {
		t.Fatalf("request: %d %.200s", p.Status, p.Body)
	}
	var e jwtEcho
	mustJSON(t, p.Body, &e)
	if len(e.Others) > 0 || len(e.Tokens) != 1 {
		t.Fatalf("upstream got tokens %q and other spellings %q, want exactly one token", e.Tokens, e.Others)
	}
	return e.Tokens[0]
}

// upstreamClaims is what an upstream reads from the token.
type upstreamClaims struct {
	jwt.Claims
	Email    string   `json:"email"`
	Username string   `json:"preferred_username"`
	Groups   []string `json:"groups"`
	SID      string   `json:"sid"`
	AMR      []string `json:"amr"`
}

// fetchJWKS fetches a site's key set as an upstream would, checking its
// cache headers.
func fetchJWKS(t *testing.T, siteURL string) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(siteURL + "/.gatehouse/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jwks.json: %d", resp.StatusCode)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("jwks.json Cache-Control = %q, want public, max-age=300", cc)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatalf("decoding jwks.json: %v", err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || k.Algorithm != "ES256" || k.Use != "sig" {
			t.Errorf("published key %q: public %v alg %q use %q, want a public ES256 signing key", k.KeyID, k.IsPublic(), k.Algorithm, k.Use)
		}
	}
	return set
}

// verify checks tok as an upstream of siteURL would, against set, at now:
// ES256 only, the key by kid, iss the site's origin, aud the site, not
// expired, at most 5 minutes long. It returns the claims and the kid.
func verify(t *testing.T, tok string, set jose.JSONWebKeySet, siteURL string, now time.Time) (upstreamClaims, string) {
	t.Helper()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("parsing token: %v", err)
	}
	if typ := parsed.Headers[0].ExtraHeaders["typ"]; typ != "JWT" {
		t.Errorf("typ = %v, want JWT", typ)
	}
	var c upstreamClaims
	if err := parsed.Claims(set, &c); err != nil {
		t.Fatalf("token does not verify against jwks.json: %v", err)
	}
	u, _ := url.Parse(siteURL)
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: siteURL, AnyAudience: jwt.Audience{u.Host}, Time: now}, 0); err != nil {
		t.Errorf("claims iss %q aud %v: %v", c.Issuer, c.Audience, err)
	}
	if c.IssuedAt == nil || c.Expiry == nil || c.Expiry.Time().Sub(c.IssuedAt.Time()) > 5*time.Minute || !c.Expiry.Time().After(c.IssuedAt.Time()) {
		t.Errorf("iat %v exp %v: want a lifetime of at most 5 minutes", c.IssuedAt, c.Expiry)
	}
	return c, parsed.Headers[0].KeyID
}

// The upstream verifies the token with go-jose against jwks.json and finds
// the identity in it; client-supplied copies of the header never reach
// it; an unverified email is left out; forward-auth hands out the same.
func TestJWTHeaderVerifiedByUpstream(t *testing.T) {
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			h, _ := newJWTHarness(t, mk)
			st := h.jwtSite()
			bob := h.browser()
			bob.Login(st.srv.URL, "/", "bob")
			id := bob.sessionID()
			tok := st.token(t, bob)
			c, kid := verify(t, tok, fetchJWKS(t, st.srv.URL), st.srv.URL, h.clock.Now())
			if kid == "" {
				t.Error("token has no kid")
			}
			if c.Subject != "bob" || c.Email != "bob@example.com" || c.Username != "bob" || !slices.Contains(c.Groups, "staff") || c.SID != id {
				t.Errorf("claims = %+v, want bob, bob@example.com, groups with staff, sid %s", c, id)
			}

			// Spoofed copies, also with "_" for "-", are replaced by
			// the real token (st.token fails on any other value).
			spoofed := st.token(t, bob, testJWTHeader, "forged", "X_Gatehouse_Assertion", "forged", "x-gatehouse_assertion", "forged")
			verify(t, spoofed, fetchJWKS(t, st.srv.URL), st.srv.URL, h.clock.Now())

			carol := h.browser()
			carol.Login(st.srv.URL, "/", "carol")
			if c, _ := verify(t, st.token(t, carol), fetchJWKS(t, st.srv.URL), st.srv.URL, h.clock.Now()); c.Email != "" || c.Subject != "carol" {
				t.Errorf("carol's claims: sub %q email %q, want carol and no (unverified) email", c.Subject, c.Email)
			}

			// Forward-auth answers with the token too, for nginx and
			// Traefik to copy onto the upstream's request.
			fa := bob.Do(http.MethodGet, st.srv.URL+"/.gatehouse/auth", nil, false)
			if fa.Status != http.StatusOK || len(fa.Header.Values(testJWTHeader)) != 1 {
				t.Fatalf("forward-auth: %d with %q, want 200 with one token", fa.Status, fa.Header.Values(testJWTHeader))
			}
			if c, _ := verify(t, fa.Header.Get(testJWTHeader), fetchJWKS(t, st.srv.URL), st.srv.URL, h.clock.Now()); c.Subject != "bob" {
				t.Errorf("forward-auth token for %q, want bob", c.Subject)
			}

			// A site without jwt_header publishes no keys.
			resp, err := http.Get(h.site.URL + "/.gatehouse/jwks.json")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("jwks.json on a site without jwt_header: %d, want 404", resp.StatusCode)
			}
		})
	}
}

// A token minted by a second instance on the same Redis verifies against
// the first instance's jwks.json: the instances share one key.
func TestJWTFromSecondInstance(t *testing.T) {
	srv := testredis.StartServer(t)
	h, _ := newJWTHarness(t, func(t *testing.T, now func() time.Time) backend { return newRedisStore(t, srv.Addr(), now) })
	st := h.jwtSite()
	b := h.browser()
	b.Login(st.srv.URL, "/", "bob")
	_, kidA := verify(t, st.token(t, b), fetchJWKS(t, st.srv.URL), st.srv.URL, h.clock.Now())

	storeB := newRedisStore(t, srv.Addr(), h.clock.Now)
	rtB, err := NewRuntime(RuntimeConfig{Store: storeB, Events: storeB, Secret: testSecret, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rtB.Start()
	t.Cleanup(rtB.Close)
	gwB, err := New(st.gw.cfg, rtB)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, st.srv.URL+"/x", nil)
	r.Header.Set("Cookie", "gatehouse="+b.Cookie(st.srv.URL, "gatehouse"))
	w := httptest.NewRecorder()
	if s := gwB.Serve(w, r); s == nil {
		t.Fatalf("instance B refused the session: %d %s", w.Code, w.Body)
	}
	tokB := r.Header.Get(testJWTHeader)
	c, kidB := verify(t, tokB, fetchJWKS(t, st.srv.URL), st.srv.URL, h.clock.Now())
	if kidB != kidA || c.Subject != "bob" {
		t.Errorf("instance B signed with kid %q for %q, want A's key %q for bob", kidB, c.Subject, kidA)
	}
}

// A token minted just before the daily rotation still verifies after it,
// against the key set then published, next to tokens of the new key, which
// a key set cached before the rotation already holds; keys are retired
// once their tokens have long expired.
func TestJWTKeyRotation(t *testing.T) {
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			h, _ := newJWTHarness(t, mk)
			// Periods of ten minutes, since the provider's tokens do
			// not follow the test clock for a day.
			j := h.rt.jwt
			j.period = 10 * time.Minute
			st := h.jwtSite()
			b := h.browser()
			b.Login(st.srv.URL, "/", "bob")
			// Two minutes before the next period begins.
			next := time.Unix((j.periodOf(h.clock.Now())+1)*int64(j.period/time.Second), 0)
			if d := next.Sub(h.clock.Now()) - 2*time.Minute; d > 0 {
				h.clock.Advance(d)
			}
			before := st.token(t, b)
			// What an upstream caches before the rotation.
			cached := fetchJWKS(t, st.srv.URL)

			h.clock.Advance(3 * time.Minute)
			if err := j.maintain(context.Background()); err != nil {
				t.Fatal(err)
			}
			after := st.token(t, b)
			set := fetchJWKS(t, st.srv.URL)
			_, kid1 := verify(t, before, set, st.srv.URL, h.clock.Now())
			_, kid2 := verify(t, after, set, st.srv.URL, h.clock.Now())
			if kid1 == kid2 {
				t.Fatalf("both tokens signed with %q, want a new key after the rotation", kid1)
			}
			// The new key was published a period before it signed, so a
			// key set cached for max-age already knows it.
			verify(t, after, cached, st.srv.URL, h.clock.Now())

			h.clock.Advance(2 * j.period)
			if err := j.maintain(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, k := range fetchJWKS(t, st.srv.URL).Keys {
				if k.KeyID == kid1 {
					t.Errorf("key %q still published two periods after it stopped signing", kid1)
				}
			}
		})
	}
}

// SPEC: 0 store round trips per request on the warm path, jwt_header
// included: a token is minted once per session, site and minute, from
// keys in memory.
func TestJWTNoStoreRoundTrip(t *testing.T) {
	var cs *countingStore
	h, keys := newJWTHarness(t, func(t *testing.T, now func() time.Time) backend {
		cs = &countingStore{Store: memstore.New(memstore.Options{Now: now})}
		return cs
	})
	st := h.jwtSite()
	b := h.browser()
	b.Login(st.srv.URL, "/", "bob")
	first := st.token(t, b)
	keys.calls.Store(0)
	cs.gets.Store(0)
	for i := range 200 {
		if i%50 == 0 {
			h.clock.Advance(time.Second)
		}
		if tok := st.token(t, b); tok != first {
			t.Fatalf("request %d got a new token within the minute", i)
		}
	}
	if n, g := keys.calls.Load(), cs.gets.Load(); n != 0 || g != 0 {
		t.Errorf("store calls for 200 warm requests: %d key, %d session; want 0", n, g)
	}
	// A minute on, a new token, still from the keys in memory.
	h.clock.Advance(time.Minute)
	if tok := st.token(t, b); tok == first {
		t.Error("token reused after a minute")
	}
	if n := keys.calls.Load(); n != 0 {
		t.Errorf("key store calls to mint a new token = %d, want 0", n)
	}
}

// An instance whose secret differs cannot open the shared key: it answers
// 503 and says why, rather than sign with a key no one else publishes.
func TestJWTWrongSecret(t *testing.T) {
	st := memstore.New(memstore.Options{})
	mk := func(secret []byte) (*Gateway, *[]error) {
		var errs []error
		rt, err := NewRuntime(RuntimeConfig{Store: st, Events: st, Secret: secret, OnError: func(err error) { errs = append(errs, err) }})
		if err != nil {
			t.Fatal(err)
		}
		g, err := New(Config{Issuer: "http://127.0.0.1:1", ClientID: "c", JWTHeader: testJWTHeader}, rt)
		if err != nil {
			t.Fatal(err)
		}
		return g, &errs
	}
	gA, _ := mk(testSecret)
	gB, errsB := mk([]byte("another secret, also 32 bytes long......"))
	sec := session.NewSecretFor("bob")
	now := time.Now()
	if err := st.Create(context.Background(), &session.Session{ID: sec.ID(), User: "bob", CreatedAt: now, LastAccess: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	req := func(g *Gateway) (*session.Session, *httptest.ResponseRecorder) {
		r := httptest.NewRequest(http.MethodGet, "http://app.example.com/x", nil)
		r.Header.Set("Cookie", "gatehouse="+sec.Cookie())
		w := httptest.NewRecorder()
		return g.Serve(w, r), w
	}
	if s, w := req(gA); s == nil {
		t.Fatalf("instance A: %d", w.Code)
	}
	if s, w := req(gB); s != nil || w.Code != http.StatusServiceUnavailable {
		t.Errorf("instance B with another secret: session %v, status %d; want none and 503", s != nil, w.Code)
	}
	if len(*errsB) == 0 || !strings.Contains((*errsB)[0].Error(), "does not open") {
		t.Errorf("instance B reported %v, want a key that does not open", *errsB)
	}
}

func TestCheckJWTHeader(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"X-Gatehouse-Assertion", true},
		{"x-jwt-assertion", true},
		{"", false},
		{"X Assertion", false},
		{"X-Assertion:", false},
		{"X-Forwarded-User", false},
		{"x_forwarded_email", false},
		{"Cookie", false},
		{"authorization", false},
		{"X-Forwarded-Access-Token", false},
	}
	for _, tt := range tests {
		if err := CheckJWTHeader(tt.name); (err == nil) != tt.ok {
			t.Errorf("CheckJWTHeader(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// jwt_header needs a store that keeps keys; without one New says so
// rather than serve requests it cannot sign.
func TestJWTHeaderNeedsKeyStore(t *testing.T) {
	st := memstore.New(memstore.Options{})
	rt, err := NewRuntime(RuntimeConfig{Store: struct{ session.Store }{st}, Events: st, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Issuer: "http://127.0.0.1:1", ClientID: "c", JWTHeader: testJWTHeader}, rt); err == nil || !strings.Contains(err.Error(), "signing keys") {
		t.Errorf("New with jwt_header on a store without keys = %v, want an error", err)
	}
}

// BenchmarkServeWarmJWT is BenchmarkServeWarm with jwt_header: the token
// comes from the minted cache, a spoofed copy is deleted.
func BenchmarkServeWarmJWT(b *testing.B) {
	g0, r := benchGateway(b, memstore.New(memstore.Options{}), time.Hour)
	cfg := g0.cfg
	cfg.JWTHeader = testJWTHeader
	g, err := New(cfg, g0.rt)
	if err != nil {
		b.Fatal(err)
	}
	cookie := r.Header.Get("Cookie")
	r.Header = http.Header{"Cookie": {cookie}}
	if s := g.Serve(nil, r); s == nil || r.Header.Get(testJWTHeader) == "" {
		b.Fatal("no token")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Header = http.Header{"Cookie": {cookie}, "X-Forwarded-User": {"mallory"}, testJWTHeader: {"forged"}}
		if s := g.Serve(nil, r); s == nil {
			b.Fatal("no session")
		}
	}
}

// Instances that start at once on an empty Redis race to make the first
// key; every one of them signs with the one that won.
func TestJWTFirstKeyRace(t *testing.T) {
	addr := testredis.Start(t)
	var signers []*jwtSigner
	for range 4 {
		st := newRedisStore(t, addr, nil)
		rt, err := NewRuntime(RuntimeConfig{Store: st, Events: st, Secret: testSecret})
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, rt.jwt)
	}
	kids := make([]string, 4*5)
	var wg sync.WaitGroup
	for i := range kids {
		wg.Go(func() {
			k, err := signers[i%4].signingKey(context.Background(), time.Now())
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = k.kid
		})
	}
	wg.Wait()
	for i, kid := range kids {
		if kid != kids[0] {
			t.Fatalf("instance %d signs with %q, instance 0 with %q: want one shared key", i%4, kid, kids[0])
		}
	}
}
