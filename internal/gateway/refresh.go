package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/oidcflow"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// HeaderAccessToken carries the session's current access token to the
// upstream when the site sets pass_access_token; a client's copy is
// always deleted (see identityHeaders).
const HeaderAccessToken = "X-Forwarded-Access-Token"

// A session's tokens (refresh on) are kept in the store as Session.Tokens,
// in this layout:
//
//	[0]      tokenVersion
//	[1:9]    access token expiry, Unix ms, big endian
//	[9:17]   when the access token was obtained, Unix ms
//	[17:25]  clientKey of the provider and client that issued the tokens
//	[25:]    the Sealer("tokens") seal of sealedTokens as JSON, with
//	         additional data tokenAD(session id, bytes 0..25)
//
// The header is in the clear so that the request path can tell whether a
// refresh is due by reading 16 bytes of the cached session: no unsealing,
// no allocation, no store round trip. It says only when a token expires,
// nothing that lets anyone in, and the seal's additional data covers it,
// so a tampered header makes the blob unopenable. The expiry could have
// been an in-memory record per session instead, but every instance would
// then have to unseal the blob once to learn it, and would forget it on a
// restart; in the blob it travels with the session to every instance.
const (
	tokenVersion    = 1
	tokenHeaderLen  = 25
	clientKeyLen    = 8
	tokenAccessExp  = 1
	tokenObtained   = 9
	tokenClientKey  = 17
	tokenPurposeTag = "session tokens "
)

// sealedTokens is what the seal hides.
type sealedTokens struct {
	Refresh string `json:"r,omitempty"`
	Access  string `json:"a,omitempty"`
}

// Refresh timing.
const (
	// unknownLifetime is assumed for an access token whose expiry the
	// provider did not state: refreshing that often also checks that the
	// grant is still alive.
	unknownLifetime = 5 * time.Minute
	// refreshLockTTL is how long a refresh holds the lock in the store
	// (Store.ClaimOnce): longer than one refresh may take
	// (refreshTimeout), so two instances never refresh one session at
	// once. The lock names the session and the token being replaced
	// (its obtained time), so it needs no release: the next token has a
	// lock of its own, and instances still holding the old token in
	// their caches contend for the old lock and then find, in the store,
	// that the refresh is done. After a failure it spaces the retries of
	// all instances together.
	refreshLockTTL = 30 * time.Second
	refreshTimeout = 20 * time.Second
	// refreshRetry is the first wait after a failed refresh (provider
	// down); it doubles up to refreshMaxRetry.
	refreshRetry    = 5 * time.Second
	refreshMaxRetry = 5 * time.Minute
	// lockedRetry is the wait after finding another instance's lock: by
	// then its new tokens are in the store and, within cache_ttl, in our
	// cache.
	lockedRetry = 5 * time.Second
	// maxRefreshing bounds concurrent refreshes per process; a due
	// session beyond it waits for a later request.
	maxRefreshing = 16
)

// refreshMargin is how long before expiry a token of lifetime is
// refreshed: a tenth of its lifetime, at least a minute (time for a retry
// or two when the provider hiccups), at most half of it (a one-minute
// token is not refreshed on every request).
func refreshMargin(lifetime time.Duration) time.Duration {
	return min(max(lifetime/10, time.Minute), lifetime/2)
}

// clientKey names the issuer and client that issued a session's tokens:
// only a site of the same client may refresh them or pass them on (an
// access token is meant for its own client's upstreams).
func clientKey(issuer, clientID string) [clientKeyLen]byte {
	sum := sha256.Sum256([]byte(issuer + "\x00" + clientID))
	var k [clientKeyLen]byte
	copy(k[:], sum[:])
	return k
}

func tokenAD(id string, header []byte) []byte {
	return append([]byte(tokenPurposeTag+id+" "), header...)
}

// sealTokens builds a session's Tokens blob.
func (g *Gateway) sealTokens(id string, t sealedTokens, expiry, obtained time.Time) []byte {
	if expiry.IsZero() || !expiry.After(obtained) {
		expiry = obtained.Add(unknownLifetime)
	}
	plain, _ := json.Marshal(t)
	h := make([]byte, tokenHeaderLen)
	h[0] = tokenVersion
	binary.BigEndian.PutUint64(h[tokenAccessExp:], uint64(expiry.UnixMilli()))
	binary.BigEndian.PutUint64(h[tokenObtained:], uint64(obtained.UnixMilli()))
	copy(h[tokenClientKey:], g.clientKey[:])
	return append(h, g.rt.tokens.Seal(plain, tokenAD(id, h))...)
}

// openTokens opens a session's Tokens blob.
func (rt *Runtime) openTokens(id string, blob []byte) (sealedTokens, error) {
	var t sealedTokens
	if len(blob) < tokenHeaderLen || blob[0] != tokenVersion {
		return t, session.ErrSealed
	}
	plain, err := rt.tokens.Open(blob[tokenHeaderLen:], tokenAD(id, blob[:tokenHeaderLen]))
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal(plain, &t); err != nil {
		return t, fmt.Errorf("decoding tokens: %w", err)
	}
	return t, nil
}

// ownTokens tells whether s holds tokens of g's client, and if so when
// its access token expires and was obtained. It reads the clear header
// only and allocates nothing.
func (g *Gateway) ownTokens(s *session.Session) (expiry, obtained int64, ok bool) {
	b := s.Tokens
	if len(b) < tokenHeaderLen || b[0] != tokenVersion || !bytes.Equal(b[tokenClientKey:tokenHeaderLen], g.clientKey[:]) {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(b[tokenAccessExp:])), int64(binary.BigEndian.Uint64(b[tokenObtained:])), true
}

// refreshDue tells whether s's access token should be refreshed at now.
func (g *Gateway) refreshDue(s *session.Session, now time.Time) bool {
	exp, got, ok := g.ownTokens(s)
	if !ok {
		return false
	}
	margin := refreshMargin(time.Duration(exp-got) * time.Millisecond)
	return now.UnixMilli() >= exp-margin.Milliseconds()
}

// refresher runs the background refreshes of one runtime and remembers
// per session what the request path needs: when to try again after a
// failure, and the opened access token for pass_access_token.
type refresher struct {
	// lockTTL is refreshLockTTL; tests shorten it.
	lockTTL time.Duration

	mu     sync.Mutex
	state  map[string]*refreshState
	closed bool
	wg     sync.WaitGroup
	slots  chan struct{}
}

type refreshState struct {
	running bool
	// next is when a refresh may be tried again (Unix ms); backoff the
	// wait that follows the next failure.
	next    int64
	backoff time.Duration
	// exp is the expiry header of the blob access was opened from: a
	// newer blob (refreshed elsewhere) has another.
	exp    int64
	access []string
	// seen is when the entry was last used, for pruning.
	seen int64
}

func newRefresher() *refresher {
	return &refresher{lockTTL: refreshLockTTL, state: make(map[string]*refreshState), slots: make(chan struct{}, maxRefreshing)}
}

// close stops new refreshes and waits for running ones.
func (f *refresher) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
}

// prune forgets sessions unused for an hour.
func (f *refresher) prune(now time.Time) {
	cut := now.Add(-time.Hour).UnixMilli()
	f.mu.Lock()
	for id, st := range f.state {
		if !st.running && st.seen < cut {
			delete(f.state, id)
		}
	}
	f.mu.Unlock()
}

func (f *refresher) forget(id string) {
	f.mu.Lock()
	delete(f.state, id)
	f.mu.Unlock()
}

// maybeRefresh starts a background refresh of s when one is due and none
// is running or waiting out a failure. It never blocks the request.
func (g *Gateway) maybeRefresh(s *session.Session, now time.Time) {
	if !g.refreshDue(s, now) {
		return
	}
	rt := g.rt
	f := rt.refresh
	ms := now.UnixMilli()
	f.mu.Lock()
	st := f.state[s.ID]
	if st == nil {
		st = &refreshState{backoff: refreshRetry}
		f.state[s.ID] = st
	}
	st.seen = ms
	if f.closed || st.running || ms < st.next {
		f.mu.Unlock()
		return
	}
	select {
	case f.slots <- struct{}{}:
	default:
		f.mu.Unlock()
		return
	}
	st.running = true
	f.wg.Add(1)
	f.mu.Unlock()
	go func() {
		defer f.wg.Done()
		defer func() { <-f.slots }()
		ctx := rt.bg
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		defer cancel()
		wait := g.runRefresh(ctx, s)
		f.mu.Lock()
		st.running = false
		switch {
		case wait < 0:
			st.backoff = refreshRetry
			st.next = 0
		case wait == 0:
			st.next = rt.cfg.Now().Add(st.backoff).UnixMilli()
			st.backoff = min(2*st.backoff, refreshMaxRetry)
		default:
			st.next = rt.cfg.Now().Add(wait).UnixMilli()
		}
		f.mu.Unlock()
	}()
}

// errRefreshIdentity means the provider's refreshed ID token names
// another user than the session's.
var errRefreshIdentity = errors.New("refreshed ID token is for another subject")

// runRefresh refreshes the tokens of session cached (as the cache has
// it) under the store lock. It returns how long to wait before trying
// again: negative when done (the tokens are fresh, or the session is
// gone), zero after a failure worth retrying with backoff, positive for
// a fixed wait.
func (g *Gateway) runRefresh(ctx context.Context, cached *session.Session) time.Duration {
	rt := g.rt
	id := cached.ID
	_, gen, _ := g.ownTokens(cached)
	report := func(err error) {
		if rt.bg != nil && rt.bg.Err() != nil {
			return // shutting down
		}
		rt.cfg.OnError(fmt.Errorf("refreshing tokens of session %s: %w", id, err))
	}
	won, err := rt.store.ClaimOnce(ctx, "refresh:"+id+":"+strconv.FormatInt(gen, 10), rt.refresh.lockTTL)
	if err != nil {
		report(err)
		return 0
	}
	if !won {
		// Another instance is refreshing it, or just has.
		return lockedRetry
	}
	// The cached copy may be stale: another instance may have refreshed
	// (and, with rotation, spent the refresh token we hold) since.
	s, err := rt.store.Get(ctx, id)
	if errors.Is(err, session.ErrNotFound) {
		rt.refresh.forget(id)
		return -1
	}
	if err != nil {
		report(err)
		return 0
	}
	now := rt.cfg.Now()
	if !g.refreshDue(s, now) {
		rt.cache.Put(s)
		return -1
	}
	old, err := rt.openTokens(id, s.Tokens)
	if err != nil {
		report(err)
		return refreshMaxRetry
	}
	if old.Refresh == "" {
		report(errors.New("the provider issued no refresh token at sign-in (some providers need the offline_access scope)"))
		return s.ExpiresAt.Sub(now)
	}
	res, err := g.oidc.Refresh(ctx, old.Refresh)
	if err == nil && res.IDToken != "" && res.Identity.Subject != s.User {
		err = errRefreshIdentity
	}
	if errors.Is(err, oidcflow.ErrRefreshRefused) && g.refreshedElsewhere(ctx, s) {
		// Our token was spent by a refresh we did not see (rotation):
		// the grant is alive.
		return -1
	}
	if errors.Is(err, oidcflow.ErrRefreshRefused) || errors.Is(err, errRefreshIdentity) {
		if _, err := rt.End(ctx, id, session.EndRefresh, activity.ActorSystem, ""); err != nil && !errors.Is(err, session.ErrNotFound) {
			report(fmt.Errorf("ending session after a refused refresh: %w", err))
			return 0
		}
		rt.refresh.forget(id)
		return -1
	}
	if err != nil {
		// Down, not refusing: the session lives on and we retry.
		report(err)
		return 0
	}
	next := sealedTokens{Refresh: res.RefreshToken, Access: res.AccessToken}
	if next.Refresh == "" {
		next.Refresh = old.Refresh
	}
	blob := g.sealTokens(id, next, res.Expiry, now)
	switch err := rt.store.SetTokens(ctx, id, blob); {
	case errors.Is(err, session.ErrNotFound):
		rt.refresh.forget(id)
		return -1
	case err != nil:
		report(fmt.Errorf("storing refreshed tokens: %w", err))
		return 0
	}
	c := s.Clone()
	c.Tokens = blob
	rt.cache.Put(c)
	return -1
}

// refreshedElsewhere tells whether the store holds newer tokens for s
// than s does.
func (g *Gateway) refreshedElsewhere(ctx context.Context, s *session.Session) bool {
	cur, err := g.rt.store.Get(ctx, s.ID)
	return err == nil && !bytes.Equal(cur.Tokens, s.Tokens)
}

// accessToken is the header value carrying s's current access token on
// g's site, or nil when s holds no token of g's client. The token is
// opened once per blob and instance, not per request.
func (g *Gateway) accessToken(s *session.Session) []string {
	exp, _, ok := g.ownTokens(s)
	if !ok {
		return nil
	}
	f := g.rt.refresh
	f.mu.Lock()
	st := f.state[s.ID]
	if st != nil && st.exp == exp && st.access != nil {
		v := st.access
		f.mu.Unlock()
		return v
	}
	f.mu.Unlock()
	t, err := g.rt.openTokens(s.ID, s.Tokens)
	if err != nil {
		g.rt.cfg.OnError(fmt.Errorf("opening tokens of session %s: %w", s.ID, err))
		return nil
	}
	if t.Access == "" {
		return nil
	}
	v := []string{escapeHeader(t.Access, false)}
	f.mu.Lock()
	if st = f.state[s.ID]; st == nil {
		st = &refreshState{backoff: refreshRetry}
		f.state[s.ID] = st
	}
	if st.exp <= exp {
		st.exp, st.access = exp, v
	}
	st.seen = g.rt.cfg.Now().UnixMilli()
	f.mu.Unlock()
	return v
}
