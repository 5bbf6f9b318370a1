package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// Regression (issue 8, item 1): every event that ends a session carries
// its final inactivity and duration in seconds; before, only expiries
// carried an inactivity, as a Go duration string, and none a duration.
// Each case ends a session created 2h before and last used 15m before,
// through one of the runtime's end paths.
func TestEndEventsCarryFinalTimes(t *testing.T) {
	ends := []struct {
		name, typ string
		end       func(rt *Runtime, s *session.Session) error
	}{
		{"End logout", activity.Logout, func(rt *Runtime, s *session.Session) error {
			_, err := rt.End(context.Background(), s.ID, session.EndLogout, s.Email, "")
			return err
		}},
		{"End revoked", activity.SessionRevoked, func(rt *Runtime, s *session.Session) error {
			_, err := rt.End(context.Background(), s.ID, session.EndRevoked, "admin@example.com", "")
			return err
		}},
		{"End others", activity.RevokedOthers, func(rt *Runtime, s *session.Session) error {
			_, err := rt.End(context.Background(), s.ID, session.EndOthers, s.Email, "")
			return err
		}},
		{"End refresh", activity.RefreshFailed, func(rt *Runtime, s *session.Session) error {
			_, err := rt.End(context.Background(), s.ID, session.EndRefresh, activity.ActorSystem, "")
			return err
		}},
		{"End backchannel", activity.BackchannelLogout, func(rt *Runtime, s *session.Session) error {
			_, err := rt.End(context.Background(), s.ID, session.EndBackchannel, activity.ActorSystem, "")
			return err
		}},
		{"endBySystem ip conflict", activity.IPConflict, func(rt *Runtime, s *session.Session) error {
			_, err := rt.endBySystem(context.Background(), s.ID, session.EndIPConflict, "", nil)
			return err
		}},
		{"recordEnd new login", activity.EndedNewLogin, func(rt *Runtime, s *session.Session) error {
			rt.recordEnd(context.Background(), s, session.EndNewLogin, "", nil)
			return nil
		}},
		{"Sweep idle", activity.ExpiredIdle, func(rt *Runtime, s *session.Session) error {
			rt.Sweep(context.Background())
			return nil
		}},
	}
	for _, tc := range ends {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, memBackend)
			now := h.clock.Now()
			s := &session.Session{
				ID: "final-times-session-0001", User: "alice", Email: "alice@example.com", Site: "app.example.com",
				CreatedAt: now.Add(-2 * time.Hour), LastAccess: now.Add(-15 * time.Minute), ExpiresAt: now.Add(time.Hour),
			}
			if tc.typ == activity.ExpiredIdle {
				s.IdleTimeout = 10 * time.Minute
			}
			if err := h.store.Create(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			if err := tc.end(h.rt, s); err != nil {
				t.Fatalf("ending: %v", err)
			}
			ev := h.eventsOf(tc.typ)
			if len(ev) != 1 {
				t.Fatalf("%s events = %+v, want one", tc.typ, ev)
			}
			if ev[0].Inactivity != 15*60 || ev[0].Duration != 2*60*60 {
				t.Errorf("%s: inactivity %d, duration %d; want 900, 7200", tc.typ, ev[0].Inactivity, ev[0].Duration)
			}
			if !activity.EndsSession(tc.typ) {
				t.Errorf("EndsSession(%q) = false", tc.typ)
			}
		})
	}
}

// Events that end no session carry no times.
func TestEndsSessionOnlyEnds(t *testing.T) {
	for _, typ := range []string{activity.LoginSucceeded, activity.LoginFailed, activity.AccessDenied, activity.Anomaly, activity.AdminExport} {
		if activity.EndsSession(typ) {
			t.Errorf("EndsSession(%q) = true", typ)
		}
	}
}
