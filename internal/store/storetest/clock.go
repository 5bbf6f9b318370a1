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
//     after its deadline, so that the sweep can record the expiry;
//   - Query.Sites and activity.Filter.Sites restrict listings when
//     non-nil, and an empty one matches nothing, across cursor pages;
//   - UserByEmail follows each subject's latest sign-in: a later sign-in
//     with another email or the same one unverified takes the subject out,
//     and an unverified email never resolves (not even to someone else);
//   - a user known only from SetReauth is not listed by Users, and
//     Reauth survives the user's sign-ins and sign-outs;
//   - subjects, emails, sites and group lists longer than 64 bytes (and
//     multi-byte characters) survive every operation.
package storetest

import (
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/testclock"
)

// Clock is the manual clock stores are tested with.
type Clock = testclock.Clock

// NewClock returns a clock that stands at t until advanced.
func NewClock(t time.Time) *Clock { return testclock.New(t) }
