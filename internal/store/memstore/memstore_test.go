package memstore

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/storetest"
)

func TestSessions(t *testing.T) {
	storetest.Sessions(t, func(t *testing.T, now func() time.Time) (a, b session.Store) {
		s := New(Options{Now: now})
		return s, s
	})
}

func TestEvents(t *testing.T) {
	storetest.Events(t, func(t *testing.T, now func() time.Time) activity.Store {
		return New(Options{Now: now})
	})
}

func TestEventRingBounded(t *testing.T) {
	if got := New(Options{}).ev.max; got != DefaultEventMaxLen {
		t.Fatalf("default event cap = %d, want DefaultEventMaxLen (%d)", got, DefaultEventMaxLen)
	}
	s := New(Options{EventMaxLen: 10})
	for i := range 25 {
		if err := s.Append(t.Context(), &activity.Event{Time: storetest.T0.Add(time.Duration(i) * time.Second), Type: activity.Logout}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := s.Query(t.Context(), activity.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 10 || page.Items[0].Time.Unix() != storetest.T0.Add(24*time.Second).Unix() || page.Items[9].Time.Unix() != storetest.T0.Add(15*time.Second).Unix() {
		t.Fatalf("Query after 25 appends into a ring of 10 = %d items from %v to %v", len(page.Items), page.Items[0].Time, page.Items[len(page.Items)-1].Time)
	}
}

func TestGraceDropsUnsweptSessions(t *testing.T) {
	c := storetest.NewClock(storetest.T0)
	s := New(Options{Now: c.Now, Grace: time.Minute})
	sess := storetest.Session(1, "alice", storetest.T0)
	if err := s.Create(t.Context(), sess); err != nil {
		t.Fatal(err)
	}
	c.Advance(sess.IdleTimeout + 2*time.Minute)
	if _, err := s.Get(t.Context(), sess.ID); err != session.ErrNotFound {
		t.Fatalf("Get after deadline+grace error = %v, want ErrNotFound", err)
	}
}

// What expires in Redis by TTL must expire here too: claims, sessions
// nobody reads again, users past UserTTL with their email index entries
// and re-authentication times.
func TestMemoryBounded(t *testing.T) {
	ctx := t.Context()
	c := storetest.NewClock(storetest.T0)
	s := New(Options{Now: c.Now, UserTTL: 24 * time.Hour})
	for i := range 5000 {
		if _, err := s.ClaimOnce(ctx, fmt.Sprintf("state-%d", i), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		sess := storetest.Session(i, fmt.Sprintf("user%d", i), c.Now())
		sess.EmailVerified = true
		if err := s.Create(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := s.Delete(ctx, sess.ID); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetReauth(ctx, fmt.Sprintf("other%d", i), c.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// Past every deadline, grace and UserTTL: one more write expires
	// everything else.
	c.Advance(25*time.Hour + DefaultGrace)
	last := storetest.Session(1000, "last", c.Now())
	last.EmailVerified = true
	if err := s.Create(ctx, last); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.claims); n != 0 {
		t.Errorf("%d lapsed claims kept", n)
	}
	if n := len(s.sessions); n != 1 {
		t.Errorf("%d sessions kept, want only the last", n)
	}
	if n := len(s.users); n != 1 {
		t.Errorf("%d users kept, want only the last", n)
	}
	if n := len(s.emails); n != 1 {
		t.Errorf("%d emails indexed, want only the last user's", n)
	}
}

// A flood of claims within one expiry interval does not wait for it.
func TestClaimsExpireUnderFlood(t *testing.T) {
	ctx := t.Context()
	c := storetest.NewClock(storetest.T0)
	s := New(Options{Now: c.Now})
	for i := range 100_000 {
		if i%1000 == 0 {
			c.Advance(time.Second)
		}
		if _, err := s.ClaimOnce(ctx, strconv.Itoa(i), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.claims); n > 4096 {
		t.Errorf("%d claims kept, want about the 1,000 live ones (at most a few thousand)", n)
	}
}

func TestHistory(t *testing.T) {
	storetest.History(t, func(t *testing.T, now func() time.Time, maxLen int) storetest.HistoryBackend {
		return New(Options{Now: now, EventMaxLen: maxLen})
	})
}
