// Package storetest is the conformance suite every session.Store and
// activity.Store runs, so that the in-memory and Redis stores cannot drift
// apart. A store's own test calls Sessions and Events with a function that
// opens a fresh, empty store.
//
// Behaviour the suite pins down beyond the interface comments:
//   - times come back in UTC at millisecond precision;
//   - Touch keeps LastAccess from going backwards and refuses (ErrNotFound)
//     a session whose deadline has passed, so a late touch cannot revive a
//     session the sweep is about to end; SetTokens refuses one whose
//     deadline has passed by the store's clock, and changes nothing else;
//   - List, Due and Users leave Session.Tokens nil (they serve listings, not
//     the request path); Get and Delete return them;
//   - Subscribe calls ended("") once it is listening, which tells callers
//     (and this suite) that later ends will be delivered;
//   - cursors are opaque; a garbled one is an error;
//   - a session stays readable for a grace period of at least 10 minutes
//     after its deadline, so that the sweep can record the expiry.
package storetest

import (
	"sync"
	"time"
)

// Clock is a manual clock for stores under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that stands at t until advanced.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
