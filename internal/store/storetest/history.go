package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// HistoryBackend is a store that keeps sessions, events and the login
// history they make.
type HistoryBackend interface {
	session.Store
	activity.Store
	activity.HistoryStore
}

// HistoryOpener opens a fresh, empty store whose clock is now and whose
// event cap is maxLen (0: the store's default).
type HistoryOpener func(t *testing.T, now func() time.Time, maxLen int) HistoryBackend

// loginEvent is the login_succeeded event the gateway writes for s.
func loginEvent(s *session.Session) activity.Event {
	return activity.Event{
		Time: s.CreatedAt, Type: activity.LoginSucceeded, User: s.User, Email: s.Email, SessionID: s.ID,
		Site: s.Site, IP: s.IP, City: s.City, Country: s.Country, Device: s.Device.Label(),
		Actor: s.Email, MFA: s.MFA, IssuerKey: s.IssuerKey,
	}
}

// History runs the activity.HistoryStore conformance suite (issue 8,
// item 2): one row per session, begun by login_succeeded and completed by
// the first event that ends it, newest login first.
func History(t *testing.T, open HistoryOpener) {
	ctx := context.Background()
	t0 := T0.Truncate(time.Millisecond)

	t.Run("RowsFromEvents", func(t *testing.T) {
		clock := NewClock(t0)
		st := open(t, clock.Now, 0)
		active := Session(1, "alice", t0)
		ended := Session(2, "alice", t0.Add(time.Minute))
		gone := Session(3, "bob", t0.Add(2*time.Minute))
		gone.MFA = false
		for _, s := range []*session.Session{active, ended, gone} {
			s.IdleTimeout = 0
			must(t, "Create", st.Create(ctx, s))
			e := loginEvent(s)
			must(t, "Append", st.Append(ctx, &e))
		}
		// Not sign-ins: no rows.
		for _, e := range []activity.Event{
			{Time: t0, Type: activity.LoginFailed, User: "mallory", Reason: activity.ReasonStateMismatch},
			{Time: t0, Type: activity.LoginSucceeded, User: "nosession"},
			{Time: t0, Type: activity.AccessDenied, User: "alice", SessionID: active.ID},
		} {
			must(t, "Append", st.Append(ctx, &e))
		}
		clock.Advance(time.Hour)
		must(t, "Touch", st.Touch(ctx, active.ID, session.Access{At: t0.Add(50 * time.Minute), IP: active.IP}))
		_, err := st.Delete(ctx, ended.ID)
		must(t, "Delete", err)
		end := activity.Event{Time: clock.Now(), Type: activity.Logout, User: "alice", SessionID: ended.ID, Duration: 3540, Inactivity: 3540}
		must(t, "Append", st.Append(ctx, &end))
		// A later end of the same session does not change its row.
		again := activity.Event{Time: clock.Now().Add(time.Second), Type: activity.SessionRevoked, User: "alice", SessionID: ended.ID, Duration: 1, Inactivity: 1}
		must(t, "Append", st.Append(ctx, &again))
		// bob's session vanishes without an end event (yet).
		_, err = st.Delete(ctx, gone.ID)
		must(t, "Delete", err)

		page, err := st.History(ctx, activity.HistoryFilter{})
		must(t, "History", err)
		now := clock.Now()
		want := []activity.Login{{
			SessionID: gone.ID, User: "bob", Email: "bob@example.com", Site: "app.example.com", IP: gone.IP,
			City: "Amsterdam", Country: "NL", Device: "Chrome on Windows", Browser: "Chrome", OS: "Windows",
			LoginTime: gone.CreatedAt, Status: activity.StatusEnded, IssuerKey: gone.IssuerKey,
		}, {
			SessionID: ended.ID, User: "alice", Email: "alice@example.com", Site: "app.example.com", IP: ended.IP,
			City: "Amsterdam", Country: "NL", Device: "Chrome on Windows", Browser: "Chrome", OS: "Windows", MFA: true,
			LoginTime: ended.CreatedAt, EndTime: now, Duration: 3540, Inactivity: 3540, Status: activity.Logout, IssuerKey: ended.IssuerKey,
		}, {
			SessionID: active.ID, User: "alice", Email: "alice@example.com", Site: "app.example.com", IP: active.IP,
			City: "Amsterdam", Country: "NL", Device: "Chrome on Windows", Browser: "Chrome", OS: "Windows", MFA: true,
			LoginTime: active.CreatedAt, Duration: 3600, Inactivity: 600, Status: activity.StatusActive, IssuerKey: active.IssuerKey,
		}}
		if len(page.Items) != len(want) || page.Next != "" {
			t.Fatalf("History = %d rows, next %q; want %d, none", len(page.Items), page.Next, len(want))
		}
		for i := range want {
			got := page.Items[i]
			if !got.LoginTime.Equal(want[i].LoginTime) || !got.EndTime.Equal(want[i].EndTime) {
				t.Errorf("row %d times: login %v end %v, want %v %v", i, got.LoginTime, got.EndTime, want[i].LoginTime, want[i].EndTime)
			}
			got.LoginTime, got.EndTime = want[i].LoginTime, want[i].EndTime
			if got != want[i] {
				t.Errorf("row %d:\n got %+v\nwant %+v", i, got, want[i])
			}
		}
	})

	// fill writes n logins of three users on two sites, a minute apart,
	// ending every third, and returns them newest first.
	fill := func(t *testing.T, st HistoryBackend, n int) []activity.Login {
		t.Helper()
		var all []activity.Login
		for i := range n {
			s := Session(100+i, fmt.Sprintf("user%d", i%3), t0.Add(time.Duration(i)*time.Minute))
			if i%2 == 1 {
				s.Site = "b.example.com"
			}
			e := loginEvent(s)
			must(t, "Append", st.Append(ctx, &e))
			l := activity.LoginFrom(&e)
			if i%3 == 0 {
				end := activity.Event{Time: s.CreatedAt.Add(30 * time.Second), Type: activity.ExpiredIdle, SessionID: s.ID, Duration: 30, Inactivity: 30}
				must(t, "Append", st.Append(ctx, &end))
				l.EndWith(&end)
			}
			all = append(all, l)
		}
		slices.Reverse(all)
		return all
	}
	idsOf := func(ls []activity.Login) []string {
		out := []string{}
		for _, l := range ls {
			out = append(out, l.SessionID)
		}
		return out
	}
	// The ended rows are compared; active ones (no session here) read as
	// ended, which this test does not look at.
	ref := func(all []activity.Login, f activity.HistoryFilter) []string {
		var out []activity.Login
		for _, l := range all {
			if f.Match(&l) {
				out = append(out, l)
			}
		}
		return idsOf(out)
	}

	t.Run("FiltersAndPages", func(t *testing.T) {
		st := open(t, NewClock(t0.Add(24*time.Hour)).Now, 0)
		all := fill(t, st, 40)
		filters := []struct {
			name string
			f    activity.HistoryFilter
		}{
			{"all", activity.HistoryFilter{}},
			{"user", activity.HistoryFilter{User: "user1"}},
			{"unknown user", activity.HistoryFilter{User: "nobody"}},
			{"site", activity.HistoryFilter{Site: "b.example.com"}},
			{"sites", activity.HistoryFilter{Sites: []string{"app.example.com"}}},
			{"no sites", activity.HistoryFilter{Sites: []string{}}},
			{"two sites", activity.HistoryFilter{Sites: []string{"b.example.com", "app.example.com", "c.example.com"}}},
			{"site within reach", activity.HistoryFilter{Site: "b.example.com", Sites: []string{"app.example.com", "b.example.com"}}},
			{"site beyond reach", activity.HistoryFilter{Site: "b.example.com", Sites: []string{"app.example.com"}}},
			{"user and reach", activity.HistoryFilter{User: "user1", Sites: []string{"b.example.com"}}},
			{"from", activity.HistoryFilter{From: t0.Add(25 * time.Minute)}},
			{"to", activity.HistoryFilter{To: t0.Add(10 * time.Minute)}},
			{"combined", activity.HistoryFilter{User: "user2", Site: "b.example.com", From: t0.Add(5 * time.Minute), To: t0.Add(35 * time.Minute)}},
		}
		for _, tc := range filters {
			t.Run(tc.name, func(t *testing.T) {
				want := ref(all, tc.f)
				for _, limit := range []int{3, 7, 1000} {
					f := tc.f
					f.Limit = limit
					var got []string
					for range 100 {
						page, err := st.History(ctx, f)
						must(t, "History", err)
						if len(page.Items) > limit {
							t.Fatalf("page of %d rows, limit %d", len(page.Items), limit)
						}
						got = append(got, idsOf(page.Items)...)
						if page.Next == "" {
							break
						}
						f.Cursor = page.Next
					}
					if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
						t.Fatalf("limit %d: got %v\nwant %v", limit, got, want)
					}
				}
			})
		}
		// Ended rows read as written.
		page, err := st.History(ctx, activity.HistoryFilter{User: "user0", Limit: 1000})
		must(t, "History", err)
		for _, l := range page.Items {
			if l.Status != activity.ExpiredIdle || l.Duration != 30 || l.Inactivity != 30 || !l.EndTime.Equal(l.LoginTime.Add(30*time.Second)) {
				t.Errorf("user0 row %+v, want ended idle after 30s", l)
			}
		}
	})

	t.Run("Trim", func(t *testing.T) {
		st := open(t, NewClock(t0.Add(24*time.Hour)).Now, 0)
		all := fill(t, st, 30)
		cut := t0.Add(12 * time.Minute)
		must(t, "Trim", st.Trim(ctx, cut))
		page, err := st.History(ctx, activity.HistoryFilter{Limit: 1000})
		must(t, "History", err)
		if got, want := idsOf(page.Items), ref(all, activity.HistoryFilter{From: cut}); !slices.Equal(got, want) {
			t.Fatalf("after Trim(%v): %v\nwant %v", cut, got, want)
		}
		// The user and site indexes lose the trimmed rows too.
		for _, f := range []activity.HistoryFilter{{User: "user0"}, {Site: "b.example.com"}, {Sites: []string{"app.example.com"}}} {
			f.Limit = 1000
			page, err = st.History(ctx, f)
			must(t, "History", err)
			want := f
			want.From = cut
			if got, want := idsOf(page.Items), ref(all, want); !slices.Equal(got, want) {
				t.Fatalf("%+v after Trim: %v\nwant %v", f, got, want)
			}
		}
	})

	t.Run("Cap", func(t *testing.T) {
		// Rows are capped at half the events' cap.
		st := open(t, NewClock(t0.Add(24*time.Hour)).Now, 40)
		all := fill(t, st, 60)
		page, err := st.History(ctx, activity.HistoryFilter{Limit: 1000})
		must(t, "History", err)
		// A sharded store keeps each shard's part of the cap, so it
		// may keep fewer than 20, but never more, never an older row
		// in place of a newer one of its shard, and always the newest.
		got := idsOf(page.Items)
		newest := idsOf(all[:20])
		if len(got) == 0 || len(got) > 20 || got[0] != newest[0] {
			t.Fatalf("capped at 20: %v\nwant the newest at most 20 of %v", got, newest)
		}
		var kept []activity.Login
		for _, l := range all {
			if slices.Contains(got, l.SessionID) {
				if !slices.Contains(newest, l.SessionID) {
					t.Fatalf("capped at 20: kept %s, not among the newest 20 %v", l.SessionID, newest)
				}
				kept = append(kept, l)
			}
		}
		for _, f := range []activity.HistoryFilter{{User: "user1"}, {Site: "b.example.com"}} {
			f.Limit = 1000
			page, err = st.History(ctx, f)
			must(t, "History", err)
			if got, want := idsOf(page.Items), ref(kept, f); !slices.Equal(got, want) {
				t.Fatalf("%+v capped: %v\nwant %v", f, got, want)
			}
		}
	})

	t.Run("BadCursor", func(t *testing.T) {
		st := open(t, NewClock(t0).Now, 0)
		if _, err := st.History(ctx, activity.HistoryFilter{Cursor: "garbage!"}); err == nil {
			t.Fatal("History with a garbled cursor succeeded, want an error")
		}
	})
}
