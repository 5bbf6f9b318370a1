package memstore

import (
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
	s := New(Options{MaxEvents: 10})
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
