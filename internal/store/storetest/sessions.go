package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// SessionOpener opens a fresh, empty store whose clock is now and returns
// two handles on it, as two gateway instances would have: for a networked
// store two separately connected clients, for an in-process store the same
// value twice.
type SessionOpener func(t *testing.T, now func() time.Time) (a, b session.Store)

// T0 is the suite's starting time; its sub-millisecond part checks that
// stores round to milliseconds.
var T0 = time.Date(2025, 3, 1, 10, 0, 0, 123456789, time.UTC)

// Session returns a realistic session: the field sizes match what a
// provider such as Keycloak and a desktop Chrome produce. i makes it unique.
func Session(i int, user string, at time.Time) *session.Session {
	return &session.Session{
		ID:          SessionID(i, user), // 22 characters, like session.IDLen
		User:        user,
		Email:       user + "@example.com",
		Name:        "Alice Example",
		Username:    user,
		Groups:      []string{"staff", "gatehouse-admins"},
		Site:        "app.example.com",
		CreatedAt:   at,
		LastAccess:  at,
		ExpiresAt:   at.Add(12 * time.Hour),
		IdleTimeout: 30 * time.Minute,
		IP:          "203.0.113.45",
		LastIP:      "203.0.113.45",
		Device: session.Device{
			UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			Browser:   "Chrome",
			OS:        "Windows",
			Device:    "desktop",
		},
		Location: session.Location{
			City:      "Amsterdam",
			Region:    "North Holland",
			Country:   "NL",
			Latitude:  52.3676,
			Longitude: 4.9041,
		},
		IDPSessionID: "8a7b6c5d-4e3f-2a1b-0c9d-8e7f6a5b4c3d",
		IssuerKey:    session.IssuerKey("https://idp.example.com/realms/main"),
		AMR:          []string{"pwd", "otp"},
		MFA:          true,
	}
}

// normal is s as a store returns it: UTC, milliseconds.
func normal(s *session.Session) *session.Session {
	c := s.Clone()
	ms := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return t.Truncate(time.Millisecond).UTC()
	}
	c.CreatedAt, c.LastAccess, c.ExpiresAt = ms(c.CreatedAt), ms(c.LastAccess), ms(c.ExpiresAt)
	c.IdleTimeout = c.IdleTimeout.Truncate(time.Millisecond)
	if len(c.Groups) == 0 {
		c.Groups = nil
	}
	if len(c.Tokens) == 0 {
		c.Tokens = nil
	}
	if len(c.AMR) == 0 {
		c.AMR = nil
	}
	return c
}

func withoutTokens(s *session.Session) *session.Session {
	c := s.Clone()
	c.Tokens = nil
	return c
}

func sameSession(t *testing.T, what string, got, want *session.Session) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s = nil, want %+v", what, want)
	}
	g, w := normal(got), normal(want)
	if reflect.DeepEqual(g, w) {
		return
	}
	// Name the fields that differ: whole sessions with long values are
	// unreadable side by side.
	var diff []string
	gv, wv := reflect.ValueOf(g).Elem(), reflect.ValueOf(w).Elem()
	for i := range gv.NumField() {
		if gf, wf := gv.Field(i).Interface(), wv.Field(i).Interface(); !reflect.DeepEqual(gf, wf) {
			diff = append(diff, fmt.Sprintf("%s = %+v, want %+v", gv.Type().Field(i).Name, gf, wf))
		}
	}
	t.Fatalf("%s (session %s) differs:\n  %s", what, w.ID, strings.Join(diff, "\n  "))
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Sessions runs the session.Store conformance suite.
func Sessions(t *testing.T, open SessionOpener) {
	ctx := context.Background()
	type env struct {
		clock *Clock
		a, b  session.Store
	}
	setup := func(t *testing.T) env {
		c := NewClock(T0)
		a, b := open(t, c.Now)
		return env{c, a, b}
	}

	t.Run("CreateGetRoundTrip", func(t *testing.T) {
		e := setup(t)
		tests := []struct {
			name string
			s    *session.Session
		}{
			{"full", func() *session.Session {
				s := Session(1, "alice", T0)
				s.Tokens = make([]byte, 1500) // a sealed token set is about this size
				for i := range s.Tokens {
					s.Tokens[i] = byte(i * 7)
				}
				s.Location.Latitude, s.Location.Longitude = -33.86881234567, 151.20929876543
				return s
			}()},
			{"minimal", &session.Session{ID: string(session.IDStart("bob")) + "inimal000000000000000", User: "bob", CreatedAt: T0, LastAccess: T0, ExpiresAt: T0.Add(time.Hour)}},
			{"long values", func() *session.Session {
				s := Session(2, "carol", T0)
				s.Device.UserAgent = strings.Repeat("Mozilla/5.0 (X11; Linux x86_64) ", 20)
				s.Groups = []string{strings.Repeat("g", 100), "a,b", "with space", "ünïcödé"}
				s.Name = "Ñame with \"quotes\" and \\ backslash"
				s.AMR = []string{"pwd", "otp", "hwk", "swk", "user", "geo", strings.Repeat("x", 70)}
				return s
			}()},
			{"non-UTC times", func() *session.Session {
				s := Session(3, "dave", T0.In(time.FixedZone("X", 5*3600)))
				s.ExpiresAt = T0.Add(2 * time.Hour).In(time.FixedZone("Y", -7200))
				s.IdleTimeout = 1500*time.Millisecond + 17*time.Microsecond
				return s
			}()},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				must(t, "Create", e.a.Create(ctx, tt.s))
				for _, st := range []session.Store{e.a, e.b} {
					got, err := st.Get(ctx, tt.s.ID)
					must(t, "Get", err)
					sameSession(t, fmt.Sprintf("Get(%q)", tt.s.ID), got, tt.s)
					if got.CreatedAt.Location() != time.UTC {
						t.Fatalf("Get(%q).CreatedAt location = %v, want UTC", tt.s.ID, got.CreatedAt.Location())
					}
				}
			})
		}
	})

	// The store keeps its own copy of the amr: a caller changing the
	// slice it passed to Create or got from Get changes nothing stored.
	t.Run("CreateReplaces", func(t *testing.T) {
		// A session created again under its id replaces the old one:
		// no listing or filter finds the old values.
		e := setup(t)
		old := Session(1, "alice", T0)
		old.Site, old.IP, old.LastIP, old.Country = "old.example.com", "198.51.100.7", "2001:db8::7", "IS"
		must(t, "Create", e.a.Create(ctx, old))
		now := Session(1, "alice", T0.Add(time.Minute))
		now.IP, now.LastIP = "203.0.113.9", "203.0.113.9"
		must(t, "Create again", e.a.Create(ctx, now))
		got, err := e.b.Get(ctx, now.ID)
		must(t, "Get", err)
		sameSession(t, "Get after Create again", got, now)
		for _, q := range []session.Query{{Site: "old.example.com"}, {IPPrefix: "198.51."}, {IPPrefix: "2001:db8:"}, {Country: "is"}} {
			page, err := e.b.List(ctx, q)
			must(t, "List", err)
			if len(page.Items) != 0 {
				t.Errorf("List(%+v) after Create again = %d sessions, want none", q, len(page.Items))
			}
		}
		for _, q := range []session.Query{{}, {Site: now.Site}, {IPPrefix: "203.0."}, {Country: "nl"}, {Sort: session.SortCreated}} {
			page, err := e.b.List(ctx, q)
			must(t, "List", err)
			if len(page.Items) != 1 || page.Items[0].ID != now.ID {
				t.Errorf("List(%+v) after Create again = %d sessions, want the one", q, len(page.Items))
			}
		}
		_, err = e.a.Delete(ctx, now.ID)
		must(t, "Delete", err)
		for _, q := range []session.Query{{}, {IPPrefix: "203.0."}, {Country: "nl"}} {
			page, err := e.b.List(ctx, q)
			must(t, "List", err)
			if len(page.Items) != 0 {
				t.Errorf("List(%+v) after Delete = %d sessions, want none", q, len(page.Items))
			}
		}
	})

	t.Run("AMRCopied", func(t *testing.T) {
		e := setup(t)
		s := Session(1, "alice", T0)
		want := s.Clone()
		want.AMR = slices.Clone(s.AMR)
		must(t, "Create", e.a.Create(ctx, s))
		s.AMR[0] = "changed"
		got, err := e.a.Get(ctx, s.ID)
		must(t, "Get", err)
		sameSession(t, "Get after changing the created amr", got, want)
		got.AMR[0] = "changed"
		got, err = e.a.Get(ctx, s.ID)
		must(t, "Get", err)
		sameSession(t, "Get after changing a got amr", got, want)
	})

	t.Run("GetUnknown", func(t *testing.T) {
		e := setup(t)
		if _, err := e.a.Get(ctx, "nosuchsession000000000"); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get(unknown) error = %v, want ErrNotFound", err)
		}
	})

	t.Run("Touch", func(t *testing.T) {
		e := setup(t)
		s := Session(1, "alice", T0)
		s.Tokens = []byte("sealed")
		must(t, "Create", e.a.Create(ctx, s))

		at := T0.Add(10 * time.Minute)
		must(t, "Touch", e.a.Touch(ctx, s.ID, session.Access{At: at, IP: "198.51.100.7"}))
		want := s.Clone()
		want.LastAccess, want.LastIP = at, "198.51.100.7"
		got, err := e.b.Get(ctx, s.ID)
		must(t, "Get", err)
		sameSession(t, "Get after Touch without location", got, want)

		loc := session.Location{City: "Berlin", Region: "Land Berlin", Country: "DE", Latitude: 52.52, Longitude: 13.405}
		dev := session.Device{UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", Browser: "Safari", OS: "iOS", Device: "mobile"}
		at2 := at.Add(time.Minute)
		must(t, "Touch", e.b.Touch(ctx, s.ID, session.Access{At: at2, IP: "192.0.2.9", Location: &loc, Device: &dev}))
		want.LastAccess, want.LastIP, want.Location, want.Device = at2, "192.0.2.9", loc, dev
		got, err = e.a.Get(ctx, s.ID)
		must(t, "Get", err)
		sameSession(t, "Get after Touch with location and device", got, want)

		// A shorter user agent must replace a longer one completely.
		short := session.Device{UserAgent: "curl/8.5.0", Browser: "curl", OS: "", Device: "bot"}
		empty := session.Location{}
		must(t, "Touch", e.a.Touch(ctx, s.ID, session.Access{At: at2, IP: "203.0.113.45", Location: &empty, Device: &short}))
		want.LastIP, want.Location, want.Device = "203.0.113.45", empty, short
		got, err = e.a.Get(ctx, s.ID)
		must(t, "Get", err)
		sameSession(t, "Get after Touch back to the login IP", got, want)

		// Two instances may touch out of order; the latest access wins.
		must(t, "Touch", e.a.Touch(ctx, s.ID, session.Access{At: at, IP: "203.0.113.45"}))
		got, err = e.a.Get(ctx, s.ID)
		must(t, "Get", err)
		if !got.LastAccess.Equal(at2.Truncate(time.Millisecond)) {
			t.Fatalf("LastAccess after an older Touch = %v, want %v", got.LastAccess, at2)
		}
	})

	t.Run("TouchGone", func(t *testing.T) {
		e := setup(t)
		s := Session(1, "alice", T0)
		must(t, "Create", e.a.Create(ctx, s))
		_, err := e.a.Delete(ctx, s.ID)
		must(t, "Delete", err)
		if err := e.b.Touch(ctx, s.ID, session.Access{At: T0.Add(time.Second), IP: "192.0.2.1"}); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Touch(deleted) error = %v, want ErrNotFound", err)
		}
		if _, err := e.a.Get(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get after Touch(deleted) error = %v, want ErrNotFound (touch must not resurrect)", err)
		}
		if err := e.a.Touch(ctx, "nosuchsession000000000", session.Access{At: T0, IP: "192.0.2.1"}); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Touch(unknown) error = %v, want ErrNotFound", err)
		}
		page, err := e.a.List(ctx, session.Query{})
		must(t, "List", err)
		if len(page.Items) != 0 {
			t.Fatalf("List after Touch(deleted) has %d items, want 0", len(page.Items))
		}
	})

	t.Run("TouchExpired", func(t *testing.T) {
		e := setup(t)
		s := Session(1, "alice", T0)
		must(t, "Create", e.a.Create(ctx, s))
		e.clock.Advance(31 * time.Minute)
		late := T0.Add(31 * time.Minute)
		if err := e.a.Touch(ctx, s.ID, session.Access{At: late, IP: "192.0.2.1"}); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Touch after the idle deadline error = %v, want ErrNotFound", err)
		}
		due, err := e.a.Due(ctx, late, 10)
		must(t, "Due", err)
		if len(due) != 1 || due[0].ID != s.ID || !due[0].LastAccess.Equal(s.LastAccess.Truncate(time.Millisecond)) {
			t.Fatalf("Due after a refused Touch = %v, want the untouched session", ids(due))
		}
	})

	t.Run("SetTokens", func(t *testing.T) {
		e := setup(t)
		s := Session(1, "alice", T0)
		s.Tokens = []byte("sealed at sign-in")
		must(t, "Create", e.a.Create(ctx, s))
		refreshed := make([]byte, 2000) // longer than before, as after a refresh
		for i := range refreshed {
			refreshed[i] = byte(i * 13)
		}
		must(t, "SetTokens", e.b.SetTokens(ctx, s.ID, refreshed))
		want := s.Clone()
		want.Tokens = refreshed
		got, err := e.a.Get(ctx, s.ID)
		must(t, "Get", err)
		sameSession(t, "Get after SetTokens", got, want)

		// Nothing else changes, and the session stays listed.
		page, err := e.a.List(ctx, session.Query{User: "alice"})
		must(t, "List", err)
		if len(page.Items) != 1 {
			t.Fatalf("List after SetTokens has %d items, want 1", len(page.Items))
		}
		sameSession(t, "List item after SetTokens", page.Items[0], withoutTokens(s))

		must(t, "SetTokens", e.a.SetTokens(ctx, s.ID, nil))
		got, err = e.b.Get(ctx, s.ID)
		must(t, "Get", err)
		sameSession(t, "Get after SetTokens(nil)", got, withoutTokens(s))

		must(t, "SetTokens", e.a.SetTokens(ctx, s.ID, []byte("again")))
		got, err = e.a.Delete(ctx, s.ID)
		must(t, "Delete", err)
		if string(got.Tokens) != "again" {
			t.Fatalf("Delete after SetTokens returned tokens %q, want %q", got.Tokens, "again")
		}
		if err := e.b.SetTokens(ctx, s.ID, refreshed); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("SetTokens(deleted) error = %v, want ErrNotFound", err)
		}
		if _, err := e.a.Get(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get after SetTokens(deleted) error = %v, want ErrNotFound (SetTokens must not resurrect)", err)
		}
		if err := e.a.SetTokens(ctx, "nosuchsession000000000", refreshed); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("SetTokens(unknown) error = %v, want ErrNotFound", err)
		}
		page, err = e.a.List(ctx, session.Query{})
		must(t, "List", err)
		if len(page.Items) != 0 {
			t.Fatalf("List after SetTokens(deleted) has %d items, want 0", len(page.Items))
		}

		// A session past its deadline is over, only not yet swept.
		late := Session(2, "alice", T0)
		must(t, "Create", e.a.Create(ctx, late))
		e.clock.Advance(31 * time.Minute)
		if err := e.a.SetTokens(ctx, late.ID, refreshed); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("SetTokens after the idle deadline error = %v, want ErrNotFound", err)
		}
		got, err = e.a.Get(ctx, late.ID)
		must(t, "Get", err)
		if got.Tokens != nil {
			t.Fatalf("Get after a refused SetTokens has tokens %q, want none", got.Tokens)
		}
	})

	t.Run("DeleteOnce", func(t *testing.T) {
		e := setup(t)
		s := Session(1, "alice", T0)
		s.Tokens = []byte("sealed tokens")
		must(t, "Create", e.a.Create(ctx, s))
		got, err := e.a.Delete(ctx, s.ID)
		must(t, "Delete", err)
		sameSession(t, "Delete", got, s)
		if _, err := e.b.Delete(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("second Delete error = %v, want ErrNotFound", err)
		}
		if _, err := e.b.Get(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get after Delete error = %v, want ErrNotFound", err)
		}
	})

	t.Run("DeleteRace", func(t *testing.T) {
		// Exactly one of many concurrent deletes reports the end.
		e := setup(t)
		s := Session(1, "alice", T0)
		must(t, "Create", e.a.Create(ctx, s))
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 8 {
			st := e.a
			if i%2 == 1 {
				st = e.b
			}
			wg.Go(func() {
				_, err := st.Delete(ctx, s.ID)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, session.ErrNotFound):
					t.Errorf("Delete error = %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d concurrent deletes succeeded, want 1", wins)
		}
	})

	t.Run("LimitSessions", func(t *testing.T) { testLimitSessions(t, open) })

	t.Run("Subscribe", func(t *testing.T) {
		e := setup(t)
		sctx, cancel := context.WithCancel(ctx)
		got := make(chan string, 16)
		done := make(chan error, 1)
		go func() { done <- e.b.Subscribe(sctx, func(id string) { got <- id }) }()
		expect := func(want string) {
			t.Helper()
			select {
			case id := <-got:
				if id != want {
					t.Fatalf("ended(%q), want ended(%q)", id, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no ended(%q) within 5s", want)
			}
		}
		expect("") // listening
		for i := range 3 {
			s := Session(i, "alice", T0)
			must(t, "Create", e.a.Create(ctx, s))
			_, err := e.a.Delete(ctx, s.ID)
			must(t, "Delete", err)
			expect(s.ID)
		}
		// A failed delete publishes nothing.
		_, _ = e.a.Delete(ctx, Session(0, "alice", T0).ID)
		select {
		case id := <-got:
			t.Fatalf("ended(%q) after a delete of nothing", id)
		case <-time.After(50 * time.Millisecond):
		}
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Subscribe did not return after its context was cancelled")
		}
	})

	t.Run("List", func(t *testing.T) { testList(t, setup(t).a) })
	t.Run("ListCursor", func(t *testing.T) {
		e := setup(t)
		if _, err := e.a.List(ctx, session.Query{Cursor: "garbage!"}); err == nil {
			t.Fatal("List with a garbled cursor succeeded, want an error")
		}
		if _, err := e.a.List(ctx, session.Query{Sort: "ip"}); err == nil {
			t.Fatal("List with an unknown sort succeeded, want an error")
		}
	})
	t.Run("ListLimits", func(t *testing.T) {
		e := setup(t)
		for i := range 1005 {
			must(t, "Create", e.a.Create(ctx, Session(i, fmt.Sprintf("u%d", i%50), T0.Add(time.Duration(i)*time.Second))))
		}
		for _, tt := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {7, 7}, {5000, 1000}} {
			page, err := e.a.List(ctx, session.Query{Limit: tt.limit})
			must(t, "List", err)
			if len(page.Items) != tt.want || page.Next == "" {
				t.Fatalf("List(limit %d) = %d items, next %q; want %d items and a next cursor", tt.limit, len(page.Items), page.Next, tt.want)
			}
		}
	})

	t.Run("Users", func(t *testing.T) {
		e := setup(t)
		a1 := Session(1, "alice", T0)
		a2 := Session(2, "alice", T0.Add(time.Minute))
		a2.IP, a2.LastIP = "198.51.100.1", "198.51.100.1"
		b1 := Session(3, "bob", T0.Add(2*time.Minute))
		b1.Email = "Bob.Builder@Example.com"
		for _, s := range []*session.Session{a1, a2, b1} {
			must(t, "Create", e.a.Create(ctx, s))
		}
		e.clock.Advance(3 * time.Minute)
		must(t, "Touch", e.a.Touch(ctx, a1.ID, session.Access{At: e.clock.Now(), IP: "192.0.2.77"}))

		up, err := e.b.Users(ctx, session.UserQuery{})
		must(t, "Users", err)
		want := []session.User{
			{User: "bob", Email: b1.Email, LastLogin: b1.CreatedAt.Truncate(time.Millisecond), Status: "active", ActiveSessions: 1, LastIP: "203.0.113.45"},
			{User: "alice", Email: a2.Email, LastLogin: a2.CreatedAt.Truncate(time.Millisecond), Status: "active", ActiveSessions: 2, LastIP: "192.0.2.77"},
		}
		sameUsers(t, "Users", up.Items, want)
		if up.Next != "" {
			t.Fatalf("Users next = %q, want empty", up.Next)
		}

		e.clock.Advance(time.Minute)
		logout := e.clock.Now().Truncate(time.Millisecond)
		for _, s := range []*session.Session{a1, a2} {
			_, err := e.a.Delete(ctx, s.ID)
			must(t, "Delete", err)
		}
		up, err = e.a.Users(ctx, session.UserQuery{})
		must(t, "Users", err)
		want[1].Status, want[1].ActiveSessions, want[1].LastLogout = "signed_out", 0, logout
		sameUsers(t, "Users after alice signed out", up.Items, want)

		// Signing in again makes alice the most recent login and active.
		e.clock.Advance(time.Minute)
		a3 := Session(4, "alice", e.clock.Now())
		must(t, "Create", e.a.Create(ctx, a3))
		up, err = e.a.Users(ctx, session.UserQuery{})
		must(t, "Users", err)
		if len(up.Items) != 2 || up.Items[0].User != "alice" || up.Items[0].Status != "active" || up.Items[0].ActiveSessions != 1 || !up.Items[0].LastLogout.Equal(logout) {
			t.Fatalf("Users after alice signed in again = %+v", up.Items)
		}

		for _, tt := range []struct{ prefix, want string }{{"bo", "bob"}, {"BOB.b", "bob"}, {"ALI", "alice"}, {"zed", ""}} {
			up, err := e.a.Users(ctx, session.UserQuery{Prefix: tt.prefix})
			must(t, "Users", err)
			var got []string
			for _, u := range up.Items {
				got = append(got, u.User)
			}
			if tt.want == "" && len(got) != 0 || tt.want != "" && !slices.Equal(got, []string{tt.want}) {
				t.Fatalf("Users(prefix %q) = %v, want [%s]", tt.prefix, got, tt.want)
			}
		}
	})

	t.Run("UsersExpiredSessions", func(t *testing.T) {
		// A session that timed out but was not swept yet must not count
		// as active forever.
		e := setup(t)
		s := Session(1, "alice", T0)
		must(t, "Create", e.a.Create(ctx, s))
		e.clock.Advance(31 * time.Minute)
		up, err := e.a.Users(ctx, session.UserQuery{})
		must(t, "Users", err)
		if len(up.Items) != 1 || up.Items[0].ActiveSessions != 0 || up.Items[0].Status != "signed_out" {
			t.Fatalf("Users after the idle deadline = %+v, want alice signed_out with 0 active", up.Items)
		}
	})

	t.Run("UsersPages", func(t *testing.T) {
		e := setup(t)
		var want []string
		for i := range 25 {
			u := fmt.Sprintf("user%02d", i)
			must(t, "Create", e.a.Create(ctx, Session(i, u, T0.Add(time.Duration(i)*time.Second))))
			want = append([]string{u}, want...)
		}
		var got []string
		cursor := ""
		for range 10 {
			up, err := e.a.Users(ctx, session.UserQuery{Limit: 7, Cursor: cursor})
			must(t, "Users", err)
			for _, u := range up.Items {
				got = append(got, u.User)
			}
			if cursor = up.Next; cursor == "" {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Users pages = %v, want %v", got, want)
		}
		if _, err := e.a.Users(ctx, session.UserQuery{Cursor: "garbage!"}); err == nil {
			t.Fatal("Users with a garbled cursor succeeded, want an error")
		}
	})

	t.Run("Due", func(t *testing.T) {
		e := setup(t)
		idle := Session(1, "alice", T0) // idle deadline T0+30m
		life := Session(2, "bob", T0)
		life.IdleTimeout = 0
		// Lifetime deadline first. Both deadlines are less than the
		// stores' grace (10m by default) before now, so nothing vanished.
		life.ExpiresAt = T0.Add(28 * time.Minute)
		live := Session(3, "carol", T0)
		live.IdleTimeout = 0 // deadline T0+12h
		touched := Session(4, "dave", T0)
		for _, s := range []*session.Session{idle, life, live, touched} {
			must(t, "Create", e.a.Create(ctx, s))
		}
		e.clock.Advance(25 * time.Minute)
		must(t, "Touch", e.a.Touch(ctx, touched.ID, session.Access{At: e.clock.Now(), IP: "192.0.2.1"}))
		e.clock.Advance(10 * time.Minute)
		now := e.clock.Now()

		due, err := e.b.Due(ctx, now, 10)
		must(t, "Due", err)
		if got, want := ids(due), []string{life.ID, idle.ID}; !slices.Equal(got, want) {
			t.Fatalf("Due(now) = %v, want %v (earliest deadline first)", got, want)
		}
		sameSession(t, "Due[0]", due[0], life)
		if got := due[1].Expiry(now, 0); got != session.EndIdle {
			t.Fatalf("Due[1].Expiry = %q, want %q", got, session.EndIdle)
		}
		if got := due[0].Expiry(now, 0); got != session.EndLifetime {
			t.Fatalf("Due[0].Expiry = %q, want %q", got, session.EndLifetime)
		}
		due, err = e.b.Due(ctx, now, 1)
		must(t, "Due", err)
		if len(due) != 1 {
			t.Fatalf("Due(n=1) returned %d sessions", len(due))
		}
		due, err = e.b.Due(ctx, T0.Add(27*time.Minute), 10)
		must(t, "Due", err)
		if len(due) != 0 {
			t.Fatalf("Due(before any deadline) = %v, want none", ids(due))
		}
		// Ending a due session takes it off the list.
		_, err = e.a.Delete(ctx, life.ID)
		must(t, "Delete", err)
		due, err = e.b.Due(ctx, now, 10)
		must(t, "Due", err)
		if got, want := ids(due), []string{idle.ID}; !slices.Equal(got, want) {
			t.Fatalf("Due after Delete = %v, want %v", got, want)
		}
	})

	// Regression (issue 6, item 5): the Redis store built the user key
	// from the first 64-byte chunk of a longer subject, so Delete missed
	// the user's summary (the user stayed active after revocation) and
	// Touch wrote a stray one. Long subjects (also multi-byte characters
	// cut by a chunk boundary, and commas), long emails and long group
	// lists must survive every operation.
	t.Run("LongValues", func(t *testing.T) {
		groups := make([]string, 0, 205)
		for i := range 200 {
			groups = append(groups, fmt.Sprintf("group-%03d", i))
		}
		groups = append(groups, "with,comma", "a, b, c", "ünï,cödé", strings.Repeat("long-group/", 15), "")
		tests := []struct{ name, user, email string }{
			{"ascii", strings.Repeat("subject-", 15), strings.Repeat("very.long.local.part.", 5) + "@" + strings.Repeat("sub.", 10) + "example.com"},
			{"unicode", strings.Repeat("ü日本-", 12), strings.Repeat("ünïcödé", 10) + "@exämple.com"},
			{"commas", strings.Repeat("a,b,", 30), strings.Repeat("x", 64) + "," + strings.Repeat("y", 40) + "@example.com"},
		}
		longSite := strings.Repeat("long-site.", 8) + "example.com:8443"
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := setup(t)
				if len(tt.user) <= 100 || len(tt.email) <= 100 {
					t.Fatalf("test values too short: %d, %d bytes", len(tt.user), len(tt.email))
				}
				mk := func(i int) *session.Session {
					s := Session(i, tt.user, e.clock.Now())
					s.Email = tt.email
					s.EmailVerified = true
					s.Groups = slices.Clone(groups[:len(groups)-1])
					s.Name = strings.Repeat("Ñame ", 20)
					s.Site = longSite
					return s
				}
				s1, s2 := mk(1), mk(2)
				for _, s := range []*session.Session{s1, s2} {
					must(t, "Create", e.a.Create(ctx, s))
					got, err := e.b.Get(ctx, s.ID)
					must(t, "Get", err)
					sameSession(t, "Get", got, s)
				}
				e.clock.Advance(time.Minute)
				must(t, "Touch", e.b.Touch(ctx, s1.ID, session.Access{At: e.clock.Now(), IP: "192.0.2.8"}))
				want1 := s1.Clone()
				want1.LastAccess, want1.LastIP = e.clock.Now(), "192.0.2.8"
				got, err := e.a.Get(ctx, s1.ID)
				must(t, "Get", err)
				sameSession(t, "Get after Touch", got, want1)

				page, err := e.a.List(ctx, session.Query{User: tt.user})
				must(t, "List", err)
				if got, want := ids(page.Items), []string{s1.ID, s2.ID}; !slices.Equal(got, want) {
					t.Fatalf("List(user) = %v, want %v", got, want)
				}
				sameSession(t, "List(user) item", page.Items[1], s2)
				for _, q := range []session.Query{{Site: longSite}, {Sites: []string{"a.example.com", longSite}}, {Sites: []string{longSite}, Country: s2.Country}} {
					page, err := e.a.List(ctx, q)
					must(t, "List", err)
					if got, want := ids(page.Items), []string{s1.ID, s2.ID}; !slices.Equal(got, want) {
						t.Fatalf("List(%+v) = %v, want %v", q, got, want)
					}
				}
				for _, q := range []session.Query{{Site: longSite[:64]}, {Sites: []string{longSite[:64]}}, {Sites: []string{longSite[:64]}, Country: s2.Country}} {
					page, err := e.a.List(ctx, q)
					must(t, "List", err)
					if len(page.Items) != 0 {
						t.Fatalf("List(%+v) = %v, want none (only the whole site matches)", q, ids(page.Items))
					}
				}
				user := func(what string) session.User {
					t.Helper()
					up, err := e.b.Users(ctx, session.UserQuery{})
					must(t, "Users", err)
					if len(up.Items) != 1 || up.Items[0].User != tt.user {
						t.Fatalf("Users %s = %+v, want one item for %q", what, up.Items, tt.user)
					}
					return up.Items[0]
				}
				if got, err := e.a.UserByEmail(ctx, asciiUpper(tt.email)); err != nil || got != tt.user {
					t.Fatalf("UserByEmail(ASCII upper case) = %q, %v; want %q", got, err, tt.user)
				}
				if u := user("after Create"); u.Status != "active" || u.ActiveSessions != 2 || u.Email != tt.email || u.LastIP != "192.0.2.8" {
					t.Fatalf("Users after Create and Touch = %+v, want active with 2 sessions, email %q, last IP 192.0.2.8", u, tt.email)
				}

				for _, s := range []*session.Session{s1, s2} {
					_, err := e.a.Delete(ctx, s.ID)
					must(t, "Delete", err)
				}
				if u := user("after Delete"); u.Status != "signed_out" || u.ActiveSessions != 0 || u.LastLogout.IsZero() {
					t.Fatalf("Users after every session was deleted = %+v, want signed_out with 0 sessions and a last logout", u)
				}
				page, err = e.a.List(ctx, session.Query{User: tt.user})
				must(t, "List", err)
				if len(page.Items) != 0 {
					t.Fatalf("List(user) after Delete = %v, want none", ids(page.Items))
				}

				// The sweep's path: a session that timed out is due, and
				// ending it leaves the user signed out.
				s3 := mk(3)
				must(t, "Create", e.a.Create(ctx, s3))
				e.clock.Advance(s3.IdleTimeout + time.Second)
				due, err := e.b.Due(ctx, e.clock.Now(), 10)
				must(t, "Due", err)
				if len(due) != 1 || due[0].ID != s3.ID {
					t.Fatalf("Due = %v, want [%s]", ids(due), s3.ID)
				}
				sameSession(t, "Due[0]", due[0], s3)
				_, err = e.a.Delete(ctx, s3.ID)
				must(t, "Delete", err)
				if u := user("after the sweep"); u.Status != "signed_out" || u.ActiveSessions != 0 {
					t.Fatalf("Users after the sweep ended the last session = %+v, want signed_out", u)
				}
			})
		}
	})

	t.Run("ClaimOnce", func(t *testing.T) {
		e := setup(t)
		const ttl = 100 * time.Millisecond
		for _, tt := range []struct {
			st   session.Store
			key  string
			want bool
		}{
			{e.a, "state-1", true},
			{e.b, "state-1", false},
			{e.a, "state-1", false},
			{e.b, "state-2", true},
		} {
			got, err := tt.st.ClaimOnce(ctx, tt.key, ttl)
			must(t, "ClaimOnce", err)
			if got != tt.want {
				t.Fatalf("ClaimOnce(%q) = %v, want %v", tt.key, got, tt.want)
			}
		}
		// The claim lapses after ttl. A store may keep time by its
		// injected clock or by the server's, so both move on.
		e.clock.Advance(2 * ttl)
		time.Sleep(2 * ttl)
		got, err := e.b.ClaimOnce(ctx, "state-1", ttl)
		must(t, "ClaimOnce", err)
		if !got {
			t.Fatal("ClaimOnce after ttl = false, want true")
		}
	})

	t.Run("Claimed", func(t *testing.T) {
		e := setup(t)
		const ttl = 100 * time.Millisecond
		claimed := func(st session.Store, key string, want bool) {
			t.Helper()
			got, err := st.Claimed(ctx, key)
			must(t, "Claimed", err)
			if got != want {
				t.Fatalf("Claimed(%q) = %v, want %v", key, got, want)
			}
		}
		claimed(e.a, "state-1", false)
		// Looking does not mark: the claim is still the first.
		claimed(e.b, "state-1", false)
		first, err := e.a.ClaimOnce(ctx, "state-1", ttl)
		must(t, "ClaimOnce", err)
		if !first {
			t.Fatal("ClaimOnce after Claimed = false, want true (Claimed must not mark)")
		}
		claimed(e.b, "state-1", true)
		claimed(e.a, "state-1", true)
		claimed(e.a, "state-2", false)
		e.clock.Advance(2 * ttl)
		time.Sleep(2 * ttl)
		claimed(e.b, "state-1", false)
	})

	t.Run("Sites", func(t *testing.T) {
		e := setup(t)
		got, err := e.a.SiteScopes(ctx)
		must(t, "SiteScopes", err)
		if len(got) != 0 {
			t.Fatalf("SiteScopes of an empty store = %v", got)
		}
		long := strings.Repeat("x", 300) + ".example.com:8443"
		for _, p := range [][2]string{{"a.example.com", "s1"}, {"a.example.com", "s2"}, {"a.example.com", "s1"}, {"[2001:db8::1]:8443", "s1"}, {long, "s3"}} {
			must(t, "AddSite", e.a.AddSite(ctx, p[0], p[1]))
		}
		// Every instance sees what any recorded.
		got, err = e.b.SiteScopes(ctx)
		must(t, "SiteScopes", err)
		for _, scopes := range got {
			slices.Sort(scopes)
		}
		want := map[string][]string{"a.example.com": {"s1", "s2"}, "[2001:db8::1]:8443": {"s1"}, long: {"s3"}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("SiteScopes = %v, want %v", got, want)
		}
		// Bounded: hostile Host headers cannot grow it without end.
		for i := range session.MaxSites + 10 {
			must(t, "AddSite", e.a.AddSite(ctx, fmt.Sprintf("h%d.example.com", i), "s1"))
		}
		got, err = e.a.SiteScopes(ctx)
		must(t, "SiteScopes", err)
		if len(got) > session.MaxSites+2 {
			t.Fatalf("SiteScopes holds %d sites, bound %d", len(got), session.MaxSites)
		}
	})

	t.Run("UserByEmail", func(t *testing.T) {
		e := setup(t)
		n := 0
		signIn := func(user, email string, verified bool) {
			t.Helper()
			n++
			e.clock.Advance(time.Minute)
			s := Session(n, user, e.clock.Now())
			s.Email, s.EmailVerified = email, verified
			must(t, "Create", e.a.Create(ctx, s))
		}
		lookup := func(email, want string) {
			t.Helper()
			for _, st := range []session.Store{e.a, e.b} {
				got, err := st.UserByEmail(ctx, email)
				switch {
				case want == "" && !errors.Is(err, session.ErrNotFound):
					t.Fatalf("UserByEmail(%q) = %q, %v; want ErrNotFound", email, got, err)
				case want != "" && (err != nil || got != want):
					t.Fatalf("UserByEmail(%q) = %q, %v; want %q", email, got, err, want)
				}
			}
		}
		lookup("alice@example.com", "")
		lookup("", "")

		signIn("alice", "Alice@Example.com", true)
		lookup("alice@example.com", "alice")
		lookup("ALICE@EXAMPLE.COM", "alice")
		lookup("alice@example.co", "")
		lookup("alice@example.com ", "")
		signIn("uni", "Ünïcödé@Exämple.com", true)
		lookup("Ünïcödé@exämple.com", "uni")
		lookup("ÜNïCöDé@EXäMPLE.COM", "uni")
		// Case is folded in ASCII only: Unicode folding would let a
		// Kelvin sign (U+212A) stand for "k" (issue 6 review).
		lookup("ünïcödé@exämple.com", "")
		signIn("kate", "kate@example.com", true)
		lookup("\u212Aate@example.com", "")

		// A hostile user whose provider account carries an admin's
		// email, unverified, must not take the admin's place.
		signIn("mallory", "alice@example.com", false)
		lookup("alice@example.com", "alice")
		signIn("mallory", "mallory@example.com", false)
		lookup("mallory@example.com", "")

		// Several subjects with one verified email: the latest login.
		signIn("bob-old", "shared@example.com", true)
		signIn("bob-new", "Shared@example.com", true)
		lookup("shared@example.com", "bob-new")
		signIn("bob-old", "shared@example.com", true)
		lookup("shared@example.com", "bob-old")
		// The latest one signs in without it verified: it no longer
		// names them, and the other subject, still verified, remains.
		signIn("bob-old", "shared@example.com", false)
		lookup("shared@example.com", "bob-new")

		// Verified, then seen unverified: stops resolving.
		signIn("carol", "carol@example.com", true)
		lookup("carol@example.com", "carol")
		signIn("carol", "carol@example.com", false)
		lookup("carol@example.com", "")
		signIn("carol", "carol@example.com", true)
		lookup("carol@example.com", "carol")

		// A changed email: the old one no longer names the user.
		signIn("dave", "dave@old.example.com", true)
		signIn("dave", "dave@new.example.com", true)
		lookup("dave@old.example.com", "")
		lookup("dave@new.example.com", "dave")

		// Ended sessions leave the user findable (to end nothing, or to
		// look at their history), as Users keeps them.
		page, err := e.a.List(ctx, session.Query{User: "alice"})
		must(t, "List", err)
		for _, s := range page.Items {
			_, err := e.a.Delete(ctx, s.ID)
			must(t, "Delete", err)
		}
		lookup("alice@example.com", "alice")
	})

	t.Run("Reauth", func(t *testing.T) {
		e := setup(t)
		reauth := func(st session.Store, user string, want time.Time) {
			t.Helper()
			got, err := st.Reauth(ctx, user)
			must(t, "Reauth", err)
			if want = want.Truncate(time.Millisecond); !got.Equal(want) || !got.IsZero() && got.Location() != time.UTC {
				t.Fatalf("Reauth(%q) = %v, want %v in UTC", user, got, want)
			}
		}
		reauth(e.a, "alice", time.Time{})
		t1 := T0.Add(time.Hour)
		must(t, "SetReauth", e.a.SetReauth(ctx, "alice", t1))
		reauth(e.b, "alice", t1)
		reauth(e.b, "bob", time.Time{})
		// An earlier time (another instance, a late call) never lowers it.
		must(t, "SetReauth", e.b.SetReauth(ctx, "alice", T0))
		reauth(e.a, "alice", t1)
		must(t, "SetReauth", e.b.SetReauth(ctx, "alice", time.Time{}))
		reauth(e.a, "alice", t1)
		t2 := t1.Add(time.Minute)
		must(t, "SetReauth", e.b.SetReauth(ctx, "alice", t2.In(time.FixedZone("X", 3600))))
		reauth(e.a, "alice", t2)

		// A user known only by SetReauth is no user to list; signing in
		// and out keeps the time.
		up, err := e.a.Users(ctx, session.UserQuery{})
		must(t, "Users", err)
		if len(up.Items) != 0 {
			t.Fatalf("Users after SetReauth only = %+v, want none", up.Items)
		}
		s := Session(1, "alice", T0)
		must(t, "Create", e.a.Create(ctx, s))
		_, err = e.b.Delete(ctx, s.ID)
		must(t, "Delete", err)
		reauth(e.a, "alice", t2)
		up, err = e.a.Users(ctx, session.UserQuery{})
		must(t, "Users", err)
		if len(up.Items) != 1 || up.Items[0].User != "alice" || up.Items[0].Status != "signed_out" {
			t.Fatalf("Users after a sign-in and out = %+v, want alice signed_out", up.Items)
		}
	})
}

func ids(ss []*session.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

func sameUsers(t *testing.T, what string, got, want []session.User) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.User != w.User || g.Email != w.Email || !g.LastLogin.Equal(w.LastLogin) || !g.LastLogout.Equal(w.LastLogout) ||
			g.Status != w.Status || g.ActiveSessions != w.ActiveSessions || g.LastIP != w.LastIP {
			t.Fatalf("%s[%d] =\n  %+v\nwant\n  %+v", what, i, g, w)
		}
	}
}

// testList checks filters, both sort orders and paging against a reference
// computed here. Ties in the sort key are broken by ID, descending.
func testList(t *testing.T, st session.Store) {
	ctx := context.Background()
	var all []*session.Session
	countries := []string{"NL", "de", "US", ""}
	sites := []string{"a.example.com", "b.example.com:8443"}
	for i := range 60 {
		user := fmt.Sprintf("user%d", i%5)
		// Creation order and last access order differ, and some sessions
		// share a timestamp so that ties cross page boundaries.
		s := Session(i, user, T0.Add(time.Duration(i/3)*time.Second))
		s.IP = fmt.Sprintf("10.0.%d.%d", i%4, i)
		s.LastIP = s.IP
		s.Country = countries[i%len(countries)]
		s.Site = sites[i%len(sites)]
		must(t, "Create", st.Create(ctx, s))
		if i%3 != 0 {
			s.LastAccess = T0.Add(10*time.Minute + time.Duration((60-i)/2)*time.Second)
			s.LastIP = fmt.Sprintf("192.0.2.%d", i)
			must(t, "Touch", st.Touch(ctx, s.ID, session.Access{At: s.LastAccess, IP: s.LastIP}))
		}
		all = append(all, s)
	}

	ref := func(q session.Query) []string {
		var out []*session.Session
		for _, s := range all {
			if q.User != "" && s.User != q.User ||
				q.IPPrefix != "" && !strings.HasPrefix(s.IP, q.IPPrefix) && !strings.HasPrefix(s.LastIP, q.IPPrefix) ||
				q.Country != "" && !strings.EqualFold(s.Country, q.Country) ||
				q.Site != "" && s.Site != q.Site ||
				q.Sites != nil && !slices.Contains(q.Sites, s.Site) {
				continue
			}
			out = append(out, s)
		}
		key := func(s *session.Session) int64 {
			if strings.TrimPrefix(q.Sort, "-") == session.SortCreated {
				return s.CreatedAt.UnixMilli()
			}
			return s.LastAccess.UnixMilli()
		}
		slices.SortFunc(out, func(a, b *session.Session) int {
			if c := key(b) - key(a); c != 0 {
				return int(c)
			}
			return strings.Compare(b.ID, a.ID)
		})
		return ids(out)
	}

	queries := []struct {
		name string
		q    session.Query
	}{
		{"all", session.Query{}},
		{"created", session.Query{Sort: session.SortCreated}},
		{"minus last access", session.Query{Sort: "-" + session.SortLastAccess}},
		{"user", session.Query{User: "user3"}},
		{"user created", session.Query{User: "user3", Sort: session.SortCreated}},
		{"unknown user", session.Query{User: "nobody"}},
		{"login ip prefix", session.Query{IPPrefix: "10.0.1."}},
		{"last ip prefix", session.Query{IPPrefix: "192.0.2.1"}},
		{"country lower", session.Query{Country: "nl"}},
		{"country upper", session.Query{Country: "DE"}},
		{"site", session.Query{Site: "b.example.com:8443"}},
		{"combined", session.Query{User: "user2", Country: "us", Site: "a.example.com"}},
		{"combined no user", session.Query{IPPrefix: "10.0.2", Sort: session.SortCreated, Site: "a.example.com"}},
		// Sites is an admin's reach: nil is everything, empty nothing.
		{"sites one", session.Query{Sites: []string{"b.example.com:8443"}}},
		{"sites one created", session.Query{Sites: []string{"a.example.com"}, Sort: session.SortCreated}},
		{"sites both", session.Query{Sites: []string{"a.example.com", "b.example.com:8443"}}},
		{"sites unknown", session.Query{Sites: []string{"c.example.com", "a.example.com:8443"}}},
		{"sites empty", session.Query{Sites: []string{}}},
		{"sites and site", session.Query{Sites: []string{"a.example.com"}, Site: "a.example.com"}},
		{"sites excluding site", session.Query{Sites: []string{"a.example.com"}, Site: "b.example.com:8443"}},
		{"sites and country", session.Query{Sites: []string{"b.example.com:8443"}, Country: "de"}},
		{"sites and ip", session.Query{Sites: []string{"a.example.com"}, IPPrefix: "192.0.2.2"}},
		{"sites user", session.Query{Sites: []string{"a.example.com"}, User: "user2"}},
		{"sites empty user", session.Query{Sites: []string{}, User: "user2"}},
	}
	for _, tt := range queries {
		t.Run(tt.name, func(t *testing.T) {
			want := ref(tt.q)
			for _, limit := range []int{1000, 7, 1} {
				q := tt.q
				q.Limit = limit
				var got []string
				for range 200 {
					page, err := st.List(ctx, q)
					must(t, "List", err)
					if len(page.Items) > limit {
						t.Fatalf("List(limit %d) returned %d items", limit, len(page.Items))
					}
					for _, s := range page.Items {
						if s.Tokens != nil {
							t.Fatalf("List returned tokens for %s", s.ID)
						}
						got = append(got, s.ID)
					}
					if q.Cursor = page.Next; q.Cursor == "" {
						break
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("List(%+v) pages of %d =\n  %v\nwant\n  %v", tt.q, limit, got, want)
				}
			}
		})
	}

	t.Run("items are whole", func(t *testing.T) {
		page, err := st.List(ctx, session.Query{User: "user1", Limit: 1})
		must(t, "List", err)
		var want *session.Session
		for _, s := range all {
			if s.ID == page.Items[0].ID {
				want = s
			}
		}
		sameSession(t, "List item", page.Items[0], withoutTokens(want))
	})

	t.Run("stable under touches", func(t *testing.T) {
		// A session touched between pages moves to the top; it must not
		// appear twice.
		q := session.Query{Limit: 10}
		page, err := st.List(ctx, q)
		must(t, "List", err)
		seen := map[string]bool{}
		for _, s := range page.Items {
			seen[s.ID] = true
		}
		first := page.Items[0]
		must(t, "Touch", st.Touch(ctx, first.ID, session.Access{At: first.LastAccess.Add(time.Minute), IP: first.LastIP}))
		for q.Cursor = page.Next; q.Cursor != ""; q.Cursor = page.Next {
			page, err = st.List(ctx, q)
			must(t, "List", err)
			for _, s := range page.Items {
				if seen[s.ID] {
					t.Fatalf("List returned %s twice", s.ID)
				}
				seen[s.ID] = true
			}
		}
		if len(seen) != len(all) {
			t.Fatalf("List pages returned %d sessions, want %d", len(seen), len(all))
		}
	})
}

// asciiUpper upper-cases ASCII letters only, as stores fold email case.
func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// SessionID returns the id Session(i, user, ...) has: 22 characters,
// like session.IDLen, starting in the user's group (session.IDStart), as
// the stores require of ids.
func SessionID(i int, user string) string {
	return fmt.Sprintf("%cess%018d", session.IDStart(user), i)
}
