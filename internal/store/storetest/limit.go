package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// testLimitSessions pins down LimitSessions (max_sessions, issue 7 item
// 2): the least recently used live sessions beyond keep end as Delete
// ends them, atomically, and nothing else changes.
func testLimitSessions(t *testing.T, open SessionOpener) {
	ctx := context.Background()
	setup := func(t *testing.T) (*Clock, session.Store, session.Store) {
		c := NewClock(T0.Add(10 * time.Minute))
		a, b := open(t, c.Now)
		return c, a, b
	}
	userIDs := func(t *testing.T, st session.Store, user string) []string {
		t.Helper()
		page, err := st.List(ctx, session.Query{User: user, Limit: 1000})
		must(t, "List", err)
		got := ids(page.Items)
		slices.Sort(got)
		return got
	}
	sorted := func(ss ...string) []string {
		slices.Sort(ss)
		return ss
	}

	t.Run("ByLastAccess", func(t *testing.T) {
		_, a, b := setup(t)
		var made []*session.Session
		for i := range 5 {
			s := Session(i, "alice", T0.Add(time.Duration(i)*time.Minute))
			s.Tokens = []byte(fmt.Sprintf("sealed %d", i))
			must(t, "Create", a.Create(ctx, s))
			made = append(made, s)
		}
		// The oldest sign-in is the one used last: it stays.
		must(t, "Touch", a.Touch(ctx, made[0].ID, session.Access{At: T0.Add(20 * time.Minute)}))
		// Equal last access: the later created stays.
		must(t, "Touch", a.Touch(ctx, made[1].ID, session.Access{At: T0.Add(3 * time.Minute)}))
		ended, err := b.LimitSessions(ctx, session.Limit{User: "alice", Max: 2})
		must(t, "LimitSessions", err)
		if got, want := sorted(ids(ended)...), sorted(made[1].ID, made[2].ID, made[3].ID); !slices.Equal(got, want) {
			t.Fatalf("LimitSessions(alice, 2) ended %v, want %v", got, want)
		}
		for _, s := range ended {
			want := made[slices.IndexFunc(made, func(m *session.Session) bool { return m.ID == s.ID })].Clone()
			if want.ID == made[1].ID {
				want.LastAccess = T0.Add(3 * time.Minute)
			}
			// Returned as they were, tokens included, like Delete.
			sameSession(t, "ended session", s, want)
			if _, err := a.Get(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Get(%s) after LimitSessions error = %v, want ErrNotFound", s.ID, err)
			}
			if _, err := a.Delete(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Delete(%s) after LimitSessions error = %v, want ErrNotFound", s.ID, err)
			}
		}
		if got, want := userIDs(t, a, "alice"), sorted(made[0].ID, made[4].ID); !slices.Equal(got, want) {
			t.Fatalf("sessions left = %v, want %v", got, want)
		}
		// Gone from every listing, not only the user's.
		page, err := a.List(ctx, session.Query{Limit: 1000})
		must(t, "List", err)
		if got := sorted(ids(page.Items)...); !slices.Equal(got, sorted(made[0].ID, made[4].ID)) {
			t.Fatalf("List after LimitSessions = %v, want the two kept", got)
		}
		up, err := a.Users(ctx, session.UserQuery{})
		must(t, "Users", err)
		if len(up.Items) != 1 || up.Items[0].ActiveSessions != 2 || up.Items[0].LastLogout.IsZero() {
			t.Fatalf("Users after LimitSessions = %+v, want alice with 2 active and a last logout", up.Items)
		}
		// Within the limit: nothing more ends.
		ended, err = a.LimitSessions(ctx, session.Limit{User: "alice", Max: 2})
		must(t, "LimitSessions", err)
		if len(ended) != 0 {
			t.Fatalf("second LimitSessions(alice, 2) ended %v, want none", ids(ended))
		}
	})

	t.Run("KeepZeroOrLess", func(t *testing.T) {
		_, a, _ := setup(t)
		for i := range 3 {
			must(t, "Create", a.Create(ctx, Session(i, "alice", T0.Add(time.Duration(i)*time.Minute))))
		}
		for _, keep := range []int{0, -1, 3, 10} {
			ended, err := a.LimitSessions(ctx, session.Limit{User: "alice", Max: keep})
			must(t, "LimitSessions", err)
			if len(ended) != 0 {
				t.Fatalf("LimitSessions(alice, %d) ended %v, want none", keep, ids(ended))
			}
		}
		if got := userIDs(t, a, "alice"); len(got) != 3 {
			t.Fatalf("sessions left = %v, want all 3", got)
		}
		ended, err := a.LimitSessions(ctx, session.Limit{User: "nobody", Max: 1})
		must(t, "LimitSessions", err)
		if len(ended) != 0 {
			t.Fatalf("LimitSessions of an unknown user ended %v", ids(ended))
		}
	})

	// Review of issue 7: another provider's user of the same subject is
	// someone else, and the sign-in that asks must never end itself.
	t.Run("IssuerAndKeep", func(t *testing.T) {
		_, a, b := setup(t)
		var mine []*session.Session
		for i := range 3 {
			s := Session(i, "bob", T0.Add(time.Duration(i)*time.Minute))
			s.IssuerKey = "issuer-a"
			must(t, "Create", a.Create(ctx, s))
			mine = append(mine, s)
		}
		other := Session(9, "bob", T0.Add(5*time.Minute))
		other.IssuerKey = "issuer-b"
		must(t, "Create", a.Create(ctx, other))
		// The new sign-in (mine[2], the latest created) is used now;
		// another instance, its clock ahead, touched the others "in the
		// future". Those rank as now, and among equal ranks the later
		// created stays: taken at face value, the new sign-in would be the
		// least recently used and end itself.
		must(t, "Touch", a.Touch(ctx, mine[2].ID, session.Access{At: T0.Add(10 * time.Minute)}))
		must(t, "Touch", a.Touch(ctx, mine[0].ID, session.Access{At: T0.Add(12 * time.Minute)}))
		must(t, "Touch", a.Touch(ctx, mine[1].ID, session.Access{At: T0.Add(11 * time.Minute)}))
		ended, err := b.LimitSessions(ctx, session.Limit{User: "bob", IssuerKey: "issuer-a", Keep: mine[2].ID, Max: 2})
		must(t, "LimitSessions", err)
		if got, want := ids(ended), []string{mine[0].ID}; !slices.Equal(got, want) {
			t.Fatalf("LimitSessions ended %v, want %v (the other issuer's bob and the new sign-in stay)", got, want)
		}
		if got, want := userIDs(t, a, "bob"), sorted(mine[1].ID, mine[2].ID, other.ID); !slices.Equal(got, want) {
			t.Fatalf("bob's sessions = %v, want %v", got, want)
		}
	})

	t.Run("OtherUsersUntouched", func(t *testing.T) {
		_, a, b := setup(t)
		var bobs []string
		for i := range 3 {
			must(t, "Create", a.Create(ctx, Session(i, "alice", T0.Add(time.Duration(i)*time.Minute))))
			s := Session(10+i, "bob", T0.Add(time.Duration(i)*time.Minute))
			must(t, "Create", a.Create(ctx, s))
			bobs = append(bobs, s.ID)
		}
		ended, err := b.LimitSessions(ctx, session.Limit{User: "alice", Max: 1})
		must(t, "LimitSessions", err)
		if len(ended) != 2 {
			t.Fatalf("LimitSessions(alice, 1) ended %v, want 2", ids(ended))
		}
		for _, s := range ended {
			if s.User != "alice" {
				t.Fatalf("LimitSessions(alice, 1) ended %s of %q", s.ID, s.User)
			}
		}
		if got := userIDs(t, a, "bob"); !slices.Equal(got, sorted(bobs...)) {
			t.Fatalf("bob's sessions = %v, want %v", got, bobs)
		}
	})

	t.Run("ExpiredNeitherCountNorEnd", func(t *testing.T) {
		// A session past its deadline is over; the sweep must still find
		// it to record the expiry, so LimitSessions leaves it alone.
		c, a, _ := setup(t)
		old := Session(1, "alice", T0) // idle deadline T0+30m
		c.Advance(25 * time.Minute)    // past it, within the grace period
		must(t, "Create", a.Create(ctx, old))
		for i := 2; i <= 3; i++ {
			must(t, "Create", a.Create(ctx, Session(i, "alice", c.Now().Add(-time.Duration(i)*time.Minute))))
		}
		ended, err := a.LimitSessions(ctx, session.Limit{User: "alice", Max: 2})
		must(t, "LimitSessions", err)
		if len(ended) != 0 {
			t.Fatalf("LimitSessions(alice, 2) with 2 live and 1 expired ended %v, want none", ids(ended))
		}
		due, err := a.Due(ctx, c.Now(), 10)
		must(t, "Due", err)
		if got := ids(due); !slices.Equal(got, []string{old.ID}) {
			t.Fatalf("Due = %v, want the expired session %s", got, old.ID)
		}
	})

	t.Run("Publishes", func(t *testing.T) {
		_, a, b := setup(t)
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		got := make(chan string, 16)
		done := make(chan error, 1)
		go func() { done <- b.Subscribe(sctx, func(id string) { got <- id }) }()
		select {
		case id := <-got:
			if id != "" {
				t.Fatalf("first ended(%q), want ended(\"\")", id)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("not listening within 5s")
		}
		for i := range 4 {
			must(t, "Create", a.Create(ctx, Session(i, "alice", T0.Add(time.Duration(i)*time.Minute))))
		}
		ended, err := a.LimitSessions(ctx, session.Limit{User: "alice", Max: 1})
		must(t, "LimitSessions", err)
		want := sorted(ids(ended)...)
		var heard []string
		for len(heard) < len(want) {
			select {
			case id := <-got:
				heard = append(heard, id)
			case <-time.After(5 * time.Second):
				t.Fatalf("heard %v of the ended %v within 5s", heard, want)
			}
		}
		if slices.Sort(heard); !slices.Equal(heard, want) || len(want) != 3 {
			t.Fatalf("published %v, want the 3 ended %v", heard, want)
		}
		cancel()
		<-done
	})

	t.Run("ConcurrentSignIns", func(t *testing.T) {
		// Each sign-in creates its session and then limits, on either
		// instance; whatever the interleaving, exactly keep stay, the
		// newest, and every other session ends exactly once.
		const n, keep = 20, 3
		_, a, b := setup(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		endedBy := map[string]int{}
		for i := range n {
			st := a
			if i%2 == 1 {
				st = b
			}
			wg.Go(func() {
				if err := st.Create(ctx, Session(i, "alice", T0.Add(time.Duration(i)*time.Second))); err != nil {
					t.Errorf("Create: %v", err)
					return
				}
				ended, err := st.LimitSessions(ctx, session.Limit{User: "alice", Max: keep})
				if err != nil {
					t.Errorf("LimitSessions: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, s := range ended {
					endedBy[s.ID]++
				}
			})
		}
		wg.Wait()
		var want []string
		for i := n - keep; i < n; i++ {
			want = append(want, Session(i, "alice", T0).ID)
		}
		if got := userIDs(t, a, "alice"); !slices.Equal(got, sorted(want...)) {
			t.Fatalf("sessions left = %v, want the %d newest %v", got, keep, want)
		}
		if len(endedBy) != n-keep {
			t.Fatalf("%d sessions reported ended, want %d", len(endedBy), n-keep)
		}
		for id, c := range endedBy {
			if c != 1 {
				t.Fatalf("session %s reported ended %d times, want once", id, c)
			}
		}
	})
}
