package session

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Cache keeps recently used sessions in process memory so that a request
// with a known cookie costs no store round trip. An entry is trusted for at
// most ttl; ends published through Store.Subscribe remove it at once, which
// is what makes revocation fast, and ttl bounds the damage when such a
// message is lost.
type Cache struct {
	store Store
	ttl   time.Duration
	now   func() time.Time

	mu sync.RWMutex
	m  map[string]cacheEntry
	// seq counts invalidations. A lookup notes it before asking the store
	// and fills the cache only if no invalidation of its id, and no flush,
	// came in between: otherwise a lookup racing with an end would put the
	// ended session back. Sequence numbers, unlike times, cannot tie.
	seq uint64
	// ended is the seq of recent invalidations by id; flushed the seq of
	// the last flush.
	ended   map[string]endMark
	flushed uint64

	hits, misses atomic.Uint64
}

type cacheEntry struct {
	s       *Session
	fetched time.Time
}

type endMark struct {
	seq uint64
	at  time.Time
}

// NewCache returns a cache in front of store. now is the clock (time.Now
// when nil); ttl <= 0 disables caching.
func NewCache(store Store, ttl time.Duration, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{
		store: store,
		ttl:   ttl,
		now:   now,
		m:     make(map[string]cacheEntry),
		ended: make(map[string]endMark),
	}
}

// Store returns the store behind the cache.
func (c *Cache) Store() Store { return c.store }

// Get returns the session with id, from memory when fresh, else from the
// store. The result is shared: do not modify it.
func (c *Cache) Get(ctx context.Context, id string) (*Session, error) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if ok && now.Sub(e.fetched) < c.ttl {
		c.hits.Add(1)
		return e.s, nil
	}
	c.misses.Add(1)
	c.mu.RLock()
	start := c.seq
	c.mu.RUnlock()
	s, err := c.store.Get(ctx, id)
	if err != nil {
		if ok {
			c.mu.Lock()
			if cur, still := c.m[id]; still && cur.s == e.s {
				delete(c.m, id)
			}
			c.mu.Unlock()
		}
		return nil, err
	}
	if c.ttl > 0 {
		c.mu.Lock()
		if e, gone := c.ended[id]; !(gone && e.seq > start) && c.flushed <= start {
			c.m[id] = cacheEntry{s: s, fetched: now}
		}
		c.mu.Unlock()
	}
	return s, nil
}

// GetSecret is Get for the session a cookie secret leads to. On a cache hit
// it allocates nothing, which keeps the per-request check cheap.
func (c *Cache) GetSecret(ctx context.Context, sec Secret) (*Session, error) {
	var buf [IDLen]byte
	sec.id(&buf)
	now := c.now()
	c.mu.RLock()
	e, ok := c.m[string(buf[:])]
	c.mu.RUnlock()
	if ok && now.Sub(e.fetched) < c.ttl {
		c.hits.Add(1)
		return e.s, nil
	}
	return c.Get(ctx, string(buf[:]))
}

// Put replaces the cached copy of a session (after a touch, say) without
// renewing its freshness.
func (c *Cache) Put(s *Session) {
	c.mu.Lock()
	if e, ok := c.m[s.ID]; ok {
		c.m[s.ID] = cacheEntry{s: s, fetched: e.fetched}
	}
	c.mu.Unlock()
}

// Update applies change to a copy of the cached session id, if it is
// cached, and caches the copy. Unlike Put of a copy made earlier, it
// keeps what others put meanwhile (a refresh's new tokens).
func (c *Cache) Update(id string, change func(s *Session)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return
	}
	s := e.s.Clone()
	change(s)
	c.m[id] = cacheEntry{s: s, fetched: e.fetched}
}

// Invalidate forgets a session; it is the Store.Subscribe callback. An
// empty id forgets everything.
func (c *Cache) Invalidate(id string) {
	now := c.now()
	c.mu.Lock()
	c.seq++
	if id == "" {
		clear(c.m)
		c.flushed = c.seq
	} else {
		delete(c.m, id)
		c.ended[id] = endMark{seq: c.seq, at: now}
	}
	c.mu.Unlock()
}

// Prune drops stale entries and old invalidation records; call it now and
// then to bound memory.
func (c *Cache) Prune() {
	now := c.now()
	c.mu.Lock()
	for id, e := range c.m {
		if now.Sub(e.fetched) >= c.ttl {
			delete(c.m, id)
		}
	}
	for id, e := range c.ended {
		// A lookup takes far less than this; keep the record a while.
		if now.Sub(e.at) > c.ttl+time.Minute {
			delete(c.ended, id)
		}
	}
	c.mu.Unlock()
}

// Len is the number of cached sessions.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Stats returns the hit and miss counts so far.
func (c *Cache) Stats() (hits, misses uint64) {
	return c.hits.Load(), c.misses.Load()
}
