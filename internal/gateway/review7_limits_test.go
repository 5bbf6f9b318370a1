package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// plantSession creates a live session of user in h's store directly, as
// another site (or another instance) would have, and returns it.
func plantSession(t *testing.T, h *harness, user, issuer string, lastAccess time.Time) *session.Session {
	t.Helper()
	sec := session.NewSecretFor(user)
	now := h.clock.Now().UTC().Truncate(time.Millisecond)
	s := &session.Session{
		ID: sec.ID(), User: user, Site: "other.example", IP: "127.0.0.1",
		CreatedAt: now, LastAccess: lastAccess.UTC().Truncate(time.Millisecond), ExpiresAt: now.Add(time.Hour),
		IssuerKey: session.IssuerKey(issuer),
	}
	if err := h.store.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Review (issue 7, item 2): max_sessions counts a user's sessions by
// subject alone, but subjects are unique only per issuer (Session.IssuerKey
// says so, and issue 6 bound sessions to their provider). A sign-in of
// "bob" at provider A ends the session of a different person whose
// subject at provider B is also "bob": a hostile or merely sloppy
// provider (subjects that are usernames, small integers) can sign out
// users of another provider on the same store.
func TestReview7MaxSessionsSparesOtherIssuersSubject(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH(func(c *Config) { c.MaxSessions = 1 })
		foreign := plantSession(t, h, "bob", "https://other-idp.example", h.clock.Now())
		h.clock.Advance(time.Second)
		h.browser().login("bob", "/")
		if _, err := h.store.Get(context.Background(), foreign.ID); errors.Is(err, session.ErrNotFound) {
			t.Errorf("a sign-in of bob at %s ended the session of the other provider's bob", h.idpSrv.URL)
		} else if err != nil {
			t.Fatal(err)
		}
	})
}

// Review (issue 7, item 2): LimitSessions keeps the most recently *used*
// sessions and does not know which one the sign-in just created. When
// another session of the user was last used at a later instant by the
// store's clock than the new session's creation (an instance whose clock
// runs a little ahead touched it, or a touch landed within the same
// millisecond window), the sign-in ends its own new session: the user
// signs in successfully and is bounced back to the provider, and the
// sign-in "beyond N" does not end the least recently used session.
func TestReview7MaxSessionsKeepsTheNewSignIn(t *testing.T) {
	forEachStore(t, func(t *testing.T, newH func(...harnessOption) *harness) {
		h := newH(func(c *Config) { c.MaxSessions = 1 })
		// Touched by an instance whose clock is 2 s ahead.
		old := plantSession(t, h, "bob", h.idpSrv.URL, h.clock.Now().Add(2*time.Second))
		b := h.browser()
		p := b.Follow(h.site.URL + "/")
		b.SubmitLogin(p, "bob", "demo")
		id, err := session.ParseCookie(b.cookie("gatehouse"))
		if err != nil {
			t.Fatalf("no session cookie after sign-in: %v", err)
		}
		if _, err := h.store.Get(context.Background(), id); errors.Is(err, session.ErrNotFound) {
			t.Errorf("max_sessions 1 ended the session the sign-in just created, keeping %s", old.ID)
		} else if err != nil {
			t.Fatal(err)
		}
	})
}
