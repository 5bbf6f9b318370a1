package session

import (
	"context"
	"errors"
	"fmt"
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
	// flights are the store lookups under way, by id: a miss joins one
	// that started less than ttl ago instead of asking the store again,
	// so that the parallel requests of a page, or of every connection
	// when a busy session's entry goes stale, cost one round trip. An
	// invalidation removes the id's flight, so that no caller arriving
	// after an end is handed what a lookup from before it found.
	flights map[string]*flight
	// onJoin, for tests, runs when a miss joins a flight.
	onJoin func()

	hits, misses atomic.Uint64
}

// flight is a store lookup others may wait for.
type flight struct {
	started time.Time
	done    chan struct{}
	s       *Session
	err     error
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
		store:   store,
		ttl:     ttl,
		now:     now,
		m:       make(map[string]cacheEntry),
		ended:   make(map[string]endMark),
		flights: make(map[string]*flight),
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
	return c.miss(ctx, id, now, e, ok)
}

// miss asks the store for id, or waits for a lookup of it that is under
// way and recent enough; e is the stale entry, if ok.
func (c *Cache) miss(ctx context.Context, id string, now time.Time, e cacheEntry, ok bool) (*Session, error) {
	c.misses.Add(1)
	c.mu.Lock()
	if f := c.flights[id]; f != nil && now.Sub(f.started) < c.ttl {
		c.mu.Unlock()
		if c.onJoin != nil {
			c.onJoin()
		}
		select {
		case <-f.done:
			if f.err == nil {
				return f.s, nil
			}
			// The lookup failed, perhaps only because its caller gave
			// up: try for ourselves.
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a lookup of the session: %w", ctx.Err())
		}
		c.mu.Lock()
	}
	var mine *flight
	if c.ttl > 0 && c.flights[id] == nil {
		mine = &flight{started: now, done: make(chan struct{})}
		c.flights[id] = mine
	}
	start := c.seq
	c.mu.Unlock()
	var s *Session
	var err error
	finished := false
	if mine != nil {
		defer func() {
			mine.s, mine.err = s, err
			if !finished {
				mine.err = errors.New("session lookup did not finish") // store.Get panicked
			}
			c.mu.Lock()
			if c.flights[id] == mine {
				delete(c.flights, id)
			}
			c.mu.Unlock()
			close(mine.done)
		}()
	}
	s, err = c.store.Get(ctx, id)
	finished = true
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
	return c.GetSecretAt(ctx, sec, c.now())
}

// GetSecretAt is GetSecret for a caller that has just read the cache's
// clock: now is the time it read.
func (c *Cache) GetSecretAt(ctx context.Context, sec Secret, now time.Time) (*Session, error) {
	var buf [IDLen]byte
	sec.id(&buf)
	c.mu.RLock()
	e, ok := c.m[string(buf[:])]
	c.mu.RUnlock()
	if ok && now.Sub(e.fetched) < c.ttl {
		c.hits.Add(1)
		return e.s, nil
	}
	return c.miss(ctx, string(buf[:]), now, e, ok)
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
		clear(c.flights)
		c.flushed = c.seq
	} else {
		delete(c.m, id)
		delete(c.flights, id)
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
