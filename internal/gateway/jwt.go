package gateway

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// Signed identity for upstreams (jwt_header): a short-lived ES256 JWT,
// signed with a key pair that every instance on the store shares, and whose
// public half is served at PathPrefix/jwks.json.
//
// Keys follow a fixed daily schedule: the key of day p (UTC days since the
// epoch) signs during day p; it is made during day p-1 so that JWKS caches
// know it before it signs, and stays published through day p+1, long
// after the last of its tokens (5 minutes) has expired. Every instance
// derives the same schedule from the clock; a key is stored under its
// day with a set-if-absent, so of instances racing to make one, one wins
// and the others load the winner.
const (
	// AssertionTTL is how long a token is valid: short, because it
	// outlives a revocation at the upstream, which cannot ask us.
	AssertionTTL = 5 * time.Minute
	// assertionReuse is how long a token is handed out again, so that it
	// is minted once per session, site and minute, not per request; the
	// upstream always gets one with at least 4 minutes left.
	assertionReuse = time.Minute
	// keyPeriod is the rotation schedule.
	keyPeriod = 24 * time.Hour
	// keyCheckEvery is how often an instance reloads the keys, makes the
	// next one and retires old ones.
	keyCheckEvery = time.Minute
	// jwksMaxAge lets upstreams cache the key set for a few minutes; the
	// next key is published a day before it signs.
	jwksMaxAge = 5 * time.Minute
	// maxAssertions bounds the minted tokens kept for reuse.
	maxAssertions = 10_000
)

// KeyStore keeps the signing keys of jwt_header where every instance sees
// them. Records are opaque to it: the gateway seals the private keys with
// AES-GCM under the app secret before they reach it. Both stores
// implement it (the memory store for one instance only).
type KeyStore interface {
	// SigningKeys returns every stored record by id.
	SigningKeys(ctx context.Context) (map[string][]byte, error)
	// AddSigningKey stores rec under id unless id is taken and reports
	// whether it did: of instances racing, exactly one wins.
	AddSigningKey(ctx context.Context, id string, rec []byte) (bool, error)
	// RemoveSigningKey deletes the record id; a missing one is no error.
	RemoveSigningKey(ctx context.Context, id string) error
}

// jwtSigner mints the tokens of every site of a runtime.
type jwtSigner struct {
	store KeyStore // nil: the session store keeps no keys
	seal  *session.Sealer
	now   func() time.Time
	// period is the rotation schedule, keyPeriod; tests shorten it.
	period time.Duration

	// enabled is set by the first site with jwt_header; until then the
	// background check does nothing.
	enabled atomic.Bool
	keys    atomic.Pointer[keySet]
	loadMu  sync.Mutex // one reload at a time

	mu     sync.Mutex
	minted map[assertionKey]*assertion
}

// keySet is the keys loaded from the store, by period number.
type keySet struct {
	byPeriod map[int64]*signingKey
	jwks     []byte
}

type signingKey struct {
	kid    string
	period int64
	signer jose.Signer
	public jose.JSONWebKey
}

// keyRecord is what the store keeps of a key.
type keyRecord struct {
	KID string `json:"kid"`
	// Key is the PKCS #8 private key sealed with the record's id and kid
	// as additional data, so a record cannot be moved to another period.
	Key []byte `json:"key"`
}

// assertionKey names a minted token. host is the request's Host, clipped
// like a site name: computing the site itself costs an allocation when
// Host has no port, and two spellings of a host merely mint twice.
type assertionKey struct {
	g     *Gateway
	sid   string
	host  string
	https bool
}

// assertion is a minted token and what it was minted from.
type assertion struct {
	// value is the header's value, ready to set; requests share it, so
	// nothing may write to it.
	value    []string
	minted   time.Time
	email    string
	username string
	groups   []string
	amr      []string
}

// claims are the token's claims.
type claims struct {
	Issuer    string   `json:"iss"`
	Audience  string   `json:"aud"`
	Subject   string   `json:"sub"`
	Email     string   `json:"email,omitempty"`
	Username  string   `json:"preferred_username,omitempty"`
	Groups    []string `json:"groups"`
	SessionID string   `json:"sid"`
	AMR       []string `json:"amr,omitempty"`
	IssuedAt  int64    `json:"iat"`
	Expiry    int64    `json:"exp"`
}

func newJWTSigner(cfg *RuntimeConfig) (*jwtSigner, error) {
	seal, err := session.NewSealer(cfg.Secret, "signing keys")
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	ks := cfg.Keys
	if ks == nil {
		ks, _ = cfg.Store.(KeyStore)
	}
	return &jwtSigner{store: ks, seal: seal, now: cfg.Now, period: keyPeriod, minted: make(map[assertionKey]*assertion)}, nil
}

// CheckJWTHeader tells whether name may carry the identity token: a valid
// header name that is none of the identity headers nor one the proxy or
// the session depend on.
func CheckJWTHeader(name string) error {
	if name == "" {
		return errors.New("jwt_header needs a header name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return fmt.Errorf("jwt_header %q is not a valid header name", name)
		}
	}
	if isIdentityHeader(name) {
		return fmt.Errorf("jwt_header %q is one of the identity headers", name)
	}
	for _, r := range []string{"Cookie", "Host", "Authorization", "Connection", "Content-Length", "Content-Type", "Transfer-Encoding", "Upgrade", "X-Forwarded-Access-Token", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
		if equalFoldDash(name, r) {
			return fmt.Errorf("jwt_header %q would replace a header the request needs", name)
		}
	}
	return nil
}

// initJWT readies the site's jwt_header, if any; New calls it.
func (g *Gateway) initJWT() error {
	if g.cfg.JWTHeader == "" {
		return nil
	}
	if err := CheckJWTHeader(g.cfg.JWTHeader); err != nil {
		return err
	}
	if g.rt.jwt.store == nil {
		return errors.New("jwt_header needs a store that keeps signing keys")
	}
	g.cfg.JWTHeader = http.CanonicalHeaderKey(g.cfg.JWTHeader)
	g.rt.jwt.enabled.Store(true)
	return nil
}

// setAssertion deletes every client-supplied copy of the site's JWT header
// (also spelled with "_", which CGI-style upstreams fold to the same
// name) and sets the token of s. It reports false when no token could be
// had, having answered 503: an upstream that relies on the token must not
// get a request without it.
func (g *Gateway) setAssertion(w http.ResponseWriter, r *http.Request, s *session.Session) bool {
	return g.putAssertion(w, r, s, r.Header)
}

// putAssertion sets the token of s in dst, deleting every other spelling
// of the header there first: the request's headers for the upstream, or
// the forward-auth response's, which nginx and Traefik copy onto theirs.
func (g *Gateway) putAssertion(w http.ResponseWriter, r *http.Request, s *session.Session, dst http.Header) bool {
	name := g.cfg.JWTHeader
	if name == "" {
		return true
	}
	for k := range dst {
		if equalFoldDash(k, name) {
			delete(dst, k)
		}
	}
	v, err := g.rt.jwt.assertion(r.Context(), g, r, s)
	if err != nil {
		g.rt.cfg.OnError(err)
		g.unavailable(w, r)
		return false
	}
	dst[name] = v
	return true
}

// assertion returns the header value for s on g's site, minting a token
// only when the last one is a minute old or the session's identity has
// changed since.
func (j *jwtSigner) assertion(ctx context.Context, g *Gateway, r *http.Request, s *session.Session) ([]string, error) {
	host := r.Host
	if len(host) > maxSiteLen {
		host = host[:maxSiteLen]
	}
	k := assertionKey{g: g, sid: s.ID, host: host, https: g.cfg.Scheme(r) == "https"}
	now := j.now()
	email := g.Email(s)
	j.mu.Lock()
	a := j.minted[k]
	j.mu.Unlock()
	if a != nil && a.fresh(now) && a.email == email && a.username == s.Username &&
		slices.Equal(a.groups, s.Groups) && slices.Equal(a.amr, s.AMR) {
		return a.value, nil
	}
	key, err := j.signingKey(ctx, now)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if k.https {
		scheme = "https"
	}
	site := g.site(r)
	c := claims{
		Issuer:    scheme + "://" + site,
		Audience:  site,
		Subject:   s.User,
		Email:     email,
		Username:  s.Username,
		Groups:    s.Groups,
		SessionID: s.ID,
		AMR:       s.AMR,
		IssuedAt:  now.Unix(),
		Expiry:    now.Add(AssertionTTL).Unix(),
	}
	if c.Groups == nil {
		c.Groups = []string{}
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding identity token: %w", err)
	}
	obj, err := key.signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("signing identity token: %w", err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("serializing identity token: %w", err)
	}
	a = &assertion{value: []string{tok}, minted: now, email: email, username: s.Username, groups: s.Groups, amr: s.AMR}
	j.mu.Lock()
	if len(j.minted) >= maxAssertions {
		j.pruneLocked(now, true)
	}
	j.minted[k] = a
	j.mu.Unlock()
	return a.value, nil
}

// fresh tells whether a is young enough to hand out again (a clock that
// went back counts as not).
func (a *assertion) fresh(now time.Time) bool {
	age := now.Sub(a.minted)
	return age >= 0 && age < assertionReuse
}

// pruneLocked drops the tokens too old to reuse and, when full is set and
// that was not enough, half of the others.
func (j *jwtSigner) pruneLocked(now time.Time, full bool) {
	for k, a := range j.minted {
		if !a.fresh(now) {
			delete(j.minted, k)
		}
	}
	if !full || len(j.minted) < maxAssertions {
		return
	}
	n := len(j.minted) / 2
	for k := range j.minted {
		if n == 0 {
			break
		}
		delete(j.minted, k)
		n--
	}
}

// periodOf numbers the period t is in. Key ids are these numbers, so
// every instance must use the same period.
func (j *jwtSigner) periodOf(t time.Time) int64 { return t.Unix() / int64(j.period/time.Second) }

func keyID(period int64) string { return strconv.FormatInt(period, 10) }

// signingKey is the key that signs at now: the period's own or, when that
// is not loaded (the store was down when it was made), the previous one,
// which is still published. The store is asked only when neither is
// loaded.
func (j *jwtSigner) signingKey(ctx context.Context, now time.Time) (*signingKey, error) {
	p := j.periodOf(now)
	pick := func(ks *keySet) *signingKey {
		if ks == nil {
			return nil
		}
		if k := ks.byPeriod[p]; k != nil {
			return k
		}
		return ks.byPeriod[p-1]
	}
	if k := pick(j.keys.Load()); k != nil {
		return k, nil
	}
	err := j.refresh(ctx, func(ks *keySet) bool { return pick(ks) != nil })
	if k := pick(j.keys.Load()); k != nil {
		return k, nil
	}
	if err == nil {
		err = errors.New("no signing key for the current period")
	}
	return nil, fmt.Errorf("identity token: %w", err)
}

// keySet returns the loaded keys, loading them first if need be.
func (j *jwtSigner) keySet(ctx context.Context) (*keySet, error) {
	if ks := j.keys.Load(); ks != nil {
		return ks, nil
	}
	err := j.refresh(ctx, func(ks *keySet) bool { return ks != nil })
	if ks := j.keys.Load(); ks != nil {
		return ks, nil
	}
	return nil, err
}

// maintain is the background check: reload, make the next key, retire old
// ones, and forget tokens too old to reuse.
func (j *jwtSigner) maintain(ctx context.Context) error {
	if !j.enabled.Load() {
		return nil
	}
	j.mu.Lock()
	j.pruneLocked(j.now(), false)
	j.mu.Unlock()
	return j.refresh(ctx, nil)
}

// refresh loads the keys from the store, adds the current and the next
// period's key when missing, removes keys older than the previous
// period's, and installs what opened. done, when given, is checked first
// under the lock, so that requests waiting on one reload do not each do
// another.
func (j *jwtSigner) refresh(ctx context.Context, done func(*keySet) bool) error {
	j.loadMu.Lock()
	defer j.loadMu.Unlock()
	if done != nil && done(j.keys.Load()) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	recs, err := j.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("loading signing keys: %w", err)
	}
	p := j.periodOf(j.now())
	added := false
	for _, want := range [...]int64{p, p + 1} {
		id := keyID(want)
		if _, ok := recs[id]; ok {
			continue
		}
		rec, err := j.newRecord(id)
		if err != nil {
			return err
		}
		if _, err := j.store.AddSigningKey(ctx, id, rec); err != nil {
			return fmt.Errorf("storing signing key: %w", err)
		}
		added = true
	}
	if added {
		// Whether this instance won or another did, the store's copy is
		// the one every instance signs with.
		if recs, err = j.store.SigningKeys(ctx); err != nil {
			return fmt.Errorf("loading signing keys: %w", err)
		}
	}
	ks := &keySet{byPeriod: make(map[int64]*signingKey, len(recs))}
	var errs []error
	for id, rec := range recs {
		period, perr := strconv.ParseInt(id, 10, 64)
		if perr != nil || period < p-1 {
			// Retired: its tokens expired long ago. Failing to remove it
			// only leaves it for the next check.
			if err := j.store.RemoveSigningKey(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("removing signing key %s: %w", id, err))
			}
			continue
		}
		k, err := j.openRecord(id, period, rec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ks.byPeriod[period] = k
	}
	ks.jwks, err = encodeJWKS(ks)
	if err != nil {
		return err
	}
	j.keys.Store(ks)
	return errors.Join(errs...)
}

func (j *jwtSigner) newRecord(id string) ([]byte, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encoding signing key: %w", err)
	}
	// A random part makes every key's kid unique, even when a flushed
	// store makes a period's key anew: a cached key set must never
	// hold a different key under the same kid.
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	kid := id + "." + base64.RawURLEncoding.EncodeToString(nonce[:])
	rec, err := json.Marshal(keyRecord{KID: kid, Key: j.seal.Seal(der, keyAD(id, kid))})
	if err != nil {
		return nil, fmt.Errorf("encoding signing key: %w", err)
	}
	return rec, nil
}

func keyAD(id, kid string) []byte { return []byte("signing key " + id + " " + kid) }

func (j *jwtSigner) openRecord(id string, period int64, rec []byte) (*signingKey, error) {
	var kr keyRecord
	if err := json.Unmarshal(rec, &kr); err != nil {
		return nil, fmt.Errorf("signing key %s: decoding: %w", id, err)
	}
	der, err := j.seal.Open(kr.Key, keyAD(id, kr.KID))
	if err != nil {
		return nil, fmt.Errorf("signing key %s does not open (is the secret the same on every instance?): %w", id, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", id, err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("signing key %s is not a P-256 key", id)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: kr.KID, Algorithm: string(jose.ES256)}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", id, err)
	}
	return &signingKey{
		kid:    kr.KID,
		period: period,
		signer: signer,
		public: jose.JSONWebKey{Key: &priv.PublicKey, KeyID: kr.KID, Algorithm: string(jose.ES256), Use: "sig"},
	}, nil
}

// encodeJWKS is the key set's JSON, oldest key first.
func encodeJWKS(ks *keySet) ([]byte, error) {
	keys := make([]*signingKey, 0, len(ks.byPeriod))
	for _, k := range ks.byPeriod {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b *signingKey) int { return cmp.Compare(a.period, b.period) })
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public)
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encoding key set: %w", err)
	}
	return b, nil
}

// serveJWKS answers PathPrefix/jwks.json with the public keys, to anyone:
// they are public, and upstreams fetch them from wherever they run.
func (g *Gateway) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if g.cfg.JWTHeader == "" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	ks, err := g.rt.jwt.keySet(r.Context())
	if err != nil {
		g.rt.cfg.OnError(err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(jwksMaxAge/time.Second)))
	w.Header().Set("Content-Length", strconv.Itoa(len(ks.jwks)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(ks.jwks)
	}
}

// maintainKeys is the runtime's background key check.
func (rt *Runtime) maintainKeys(ctx context.Context) {
	if err := rt.jwt.maintain(ctx); err != nil {
		rt.cfg.OnError(err)
	}
}
