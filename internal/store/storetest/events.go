package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// EventOpener opens a fresh, empty event store whose clock is now.
type EventOpener func(t *testing.T, now func() time.Time) activity.Store

// Events runs the activity.Store conformance suite.
func Events(t *testing.T, open EventOpener) {
	ctx := context.Background()
	// Stores keep milliseconds; the reference log must match what they
	// keep for the time filters to agree.
	t0 := T0.Truncate(time.Millisecond)

	t.Run("AppendQueryRoundTrip", func(t *testing.T) {
		tests := []activity.Event{{
			Time: T0.In(time.FixedZone("X", 3600)), Type: activity.ExpiredIdle, User: "alice", Email: "alice@example.com",
			SessionID: "sess000000000000000001", Site: "app.example.com:8443", IP: "2001:db8::1", City: "Zürich",
			Country: "CH", Device: "desktop", Inactivity: 1860, Duration: 86399, Reason: "idle, \"really\"", Actor: activity.ActorSystem,
			Detail: "12 like events from 192.0.2.0/24, \"quoted\", ünïcödé",
		}, {
			// Regression (issue 7, item 5): login_succeeded carries mfa.
			Time: T0, Type: activity.LoginSucceeded, User: "bob", SessionID: "sess000000000000000002",
			Site: "app.example.com", IP: "192.0.2.1", MFA: true,
		}}
		for _, e := range tests {
			t.Run(e.Type, func(t *testing.T) {
				st := open(t, NewClock(T0).Now)
				in := e
				must(t, "Append", st.Append(ctx, &in))
				if in.ID == "" {
					t.Fatal("Append left Event.ID empty")
				}
				page, err := st.Query(ctx, activity.Filter{})
				must(t, "Query", err)
				want := e
				want.ID = in.ID
				want.Time = T0.Truncate(time.Millisecond).UTC()
				if len(page.Items) != 1 || page.Items[0] != want || page.Next != "" {
					t.Fatalf("Query = %+v, next %q; want [%+v]", page.Items, page.Next, want)
				}
			})
		}
	})

	// A log of 120 events, one a minute, cycling through users, types,
	// sites and IPs.
	fill := func(t *testing.T, st activity.Store) []activity.Event {
		types := []string{activity.LoginSucceeded, activity.LoginFailed, activity.Logout, activity.SessionRevoked, activity.AccessDenied}
		var all []activity.Event
		for i := range 120 {
			e := activity.Event{
				Time:    t0.Add(time.Duration(i) * time.Minute),
				Type:    types[i%len(types)],
				User:    fmt.Sprintf("user%d", i%3),
				Email:   fmt.Sprintf("User%d@Example.com", i%3),
				Site:    []string{"a.example.com", "b.example.com"}[i%2],
				IP:      fmt.Sprintf("10.%d.0.%d", i%4, i),
				Country: "NL",
				Actor:   activity.ActorSystem,
			}
			must(t, "Append", st.Append(ctx, &e))
			all = append(all, e)
		}
		slices.Reverse(all) // newest first
		return all
	}
	ref := func(all []activity.Event, f activity.Filter) []string {
		var out []string
		for i := range all {
			if f.Match(&all[i]) {
				out = append(out, all[i].ID)
			}
		}
		return out
	}

	t.Run("Filters", func(t *testing.T) {
		st := open(t, NewClock(T0).Now)
		all := fill(t, st)
		seen := map[string]bool{}
		for _, e := range all {
			if seen[e.ID] {
				t.Fatalf("Append assigned ID %q twice", e.ID)
			}
			seen[e.ID] = true
		}
		tests := []struct {
			name string
			f    activity.Filter
		}{
			{"all", activity.Filter{}},
			{"from", activity.Filter{From: t0.Add(100 * time.Minute)}},
			{"to", activity.Filter{To: t0.Add(10 * time.Minute)}},
			{"from to inclusive", activity.Filter{From: t0.Add(30 * time.Minute), To: t0.Add(40 * time.Minute)}},
			{"user subject", activity.Filter{User: "user1"}},
			{"user email any case", activity.Filter{User: "user2@example.COM"}},
			{"ip prefix", activity.Filter{IPPrefix: "10.2.0."}},
			{"one type", activity.Filter{Types: []string{activity.LoginFailed}}},
			{"two types", activity.Filter{Types: []string{activity.Logout, activity.AccessDenied}}},
			{"site", activity.Filter{Site: "b.example.com"}},
			{"combined", activity.Filter{User: "user0", Types: []string{activity.LoginSucceeded, activity.Logout}, Site: "a.example.com", From: t0.Add(20 * time.Minute)}},
			{"nothing", activity.Filter{User: "nobody"}},
			// Sites is an admin's reach: nil is everything, empty nothing.
			{"sites one", activity.Filter{Sites: []string{"b.example.com"}}},
			{"sites both", activity.Filter{Sites: []string{"a.example.com", "b.example.com"}}},
			{"sites unknown", activity.Filter{Sites: []string{"c.example.com"}}},
			{"sites empty", activity.Filter{Sites: []string{}}},
			{"sites excluding site", activity.Filter{Sites: []string{"a.example.com"}, Site: "b.example.com"}},
			{"sites and type", activity.Filter{Sites: []string{"a.example.com"}, Types: []string{activity.LoginFailed}}},
			// Combinations: the most selective field picks how a store
			// looks events up, the others still filter (issue 8, item 7).
			{"user and site", activity.Filter{User: "user1", Site: "a.example.com"}},
			{"email and types", activity.Filter{User: "USER2@example.com", Types: []string{activity.LoginFailed, activity.SessionRevoked}}},
			{"user and range", activity.Filter{User: "user0", From: t0.Add(30 * time.Minute), To: t0.Add(90 * time.Minute)}},
			{"user and ip prefix", activity.Filter{User: "user1", IPPrefix: "10.1."}},
			{"user outside sites", activity.Filter{User: "user0", Sites: []string{"c.example.com"}}},
			{"site and types", activity.Filter{Site: "a.example.com", Types: []string{activity.LoginSucceeded, activity.Logout}}},
			{"site and range", activity.Filter{Site: "b.example.com", To: t0.Add(50 * time.Minute)}},
			{"types and sites", activity.Filter{Types: []string{activity.Logout, activity.AccessDenied}, Sites: []string{"b.example.com"}}},
			{"types and range", activity.Filter{Types: []string{activity.AccessDenied}, From: t0.Add(15 * time.Minute), To: t0.Add(75 * time.Minute)}},
			{"type unknown", activity.Filter{Types: []string{"no_such_type"}}},
			{"site unknown", activity.Filter{Site: "c.example.com"}},
			{"sites with none", activity.Filter{Sites: []string{""}}},
			{"type none", activity.Filter{Types: []string{""}}},
			{"everything", activity.Filter{User: "user2", Site: "a.example.com", Types: []string{activity.LoginSucceeded, activity.SessionRevoked}, IPPrefix: "10.", Sites: []string{"a.example.com"}, From: t0.Add(10 * time.Minute), To: t0.Add(110 * time.Minute)}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				want := ref(all, tt.f)
				for _, limit := range []int{1000, 7} {
					f := tt.f
					f.Limit = limit
					var got []string
					for range 100 {
						page, err := st.Query(ctx, f)
						must(t, "Query", err)
						if len(page.Items) > limit {
							t.Fatalf("Query(limit %d) returned %d items", limit, len(page.Items))
						}
						for _, e := range page.Items {
							got = append(got, e.ID)
						}
						if f.Cursor = page.Next; f.Cursor == "" {
							break
						}
					}
					if !slices.Equal(got, want) {
						t.Fatalf("Query(%+v) pages of %d =\n  %v\nwant\n  %v", tt.f, limit, got, want)
					}
				}
				// Export hands over the same events in one pass, and
				// from a cursor on, the rest of them.
				if got := exportIDs(t, st, tt.f); !slices.Equal(got, want) {
					t.Fatalf("Export(%+v) =\n  %v\nwant\n  %v", tt.f, got, want)
				}
				if len(want) > 2 {
					f := tt.f
					f.Cursor = want[1]
					if got := exportIDs(t, st, f); !slices.Equal(got, want[2:]) {
						t.Fatalf("Export(%+v) from %s = %v, want %v", tt.f, f.Cursor, got, want[2:])
					}
				}
			})
		}
	})

	t.Run("Limits", func(t *testing.T) {
		st := open(t, NewClock(T0).Now)
		all := fill(t, st)
		for _, tt := range []struct{ limit, want int }{{0, activity.DefaultLimit}, {-5, activity.DefaultLimit}, {3, 3}, {5000, len(all)}} {
			page, err := st.Query(ctx, activity.Filter{Limit: tt.limit})
			must(t, "Query", err)
			if len(page.Items) != tt.want {
				t.Fatalf("Query(limit %d) = %d items, want %d", tt.limit, len(page.Items), tt.want)
			}
			if page.Items[0].ID != all[0].ID {
				t.Fatalf("Query(limit %d) starts with %s, want the newest %s", tt.limit, page.Items[0].ID, all[0].ID)
			}
		}
	})

	t.Run("MaxLimit", func(t *testing.T) {
		st := open(t, NewClock(T0).Now)
		for i := range activity.MaxLimit + 10 {
			must(t, "Append", st.Append(ctx, &activity.Event{Time: t0.Add(time.Duration(i) * time.Second), Type: activity.Logout}))
		}
		page, err := st.Query(ctx, activity.Filter{Limit: 5000})
		must(t, "Query", err)
		if len(page.Items) != activity.MaxLimit || page.Next == "" {
			t.Fatalf("Query(limit 5000) = %d items, next %q; want %d and a cursor", len(page.Items), page.Next, activity.MaxLimit)
		}
	})

	t.Run("Trim", func(t *testing.T) {
		st := open(t, NewClock(T0).Now)
		all := fill(t, st)
		cut := t0.Add(100 * time.Minute)
		must(t, "Trim", st.Trim(ctx, cut))
		page, err := st.Query(ctx, activity.Filter{Limit: 1000})
		must(t, "Query", err)
		want := ref(all, activity.Filter{From: cut})
		var got []string
		for _, e := range page.Items {
			got = append(got, e.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Query after Trim(%v) = %v, want %v", cut, got, want)
		}
	})

	// Regression (issue 8, item 7): a store that scans a bounded number of
	// events for a filter returned a short or empty first page for a value
	// that only old events have. 3,000 common events follow 15 rare ones;
	// every filter on the rare values gets a full first page and then the
	// rest.
	t.Run("RareValueFullPage", func(t *testing.T) {
		st := open(t, NewClock(T0).Now)
		var rare []string
		for i := range 15 {
			e := activity.Event{
				Time: t0.Add(time.Duration(i) * time.Second), Type: activity.SessionRevoked,
				User: "rare-user", Email: "Rare@Example.com", Site: "rare.example.com", IP: "192.0.2.7",
			}
			must(t, "Append", st.Append(ctx, &e))
			rare = append(rare, e.ID)
		}
		slices.Reverse(rare)
		for i := range 3000 {
			e := activity.Event{
				Time: t0.Add(time.Hour + time.Duration(i)*time.Second), Type: activity.LoginSucceeded,
				User: fmt.Sprintf("common%d", i%2), Email: "common@example.com", Site: "common.example.com", IP: "198.51.100.1",
			}
			must(t, "Append", st.Append(ctx, &e))
		}
		for _, f := range []activity.Filter{
			{User: "rare-user"},
			{User: "rare@example.COM"},
			{Site: "rare.example.com"},
			{Types: []string{activity.SessionRevoked}},
			{Types: []string{activity.SessionRevoked, activity.AccessDenied}},
			{Sites: []string{"rare.example.com"}},
			{User: "rare-user", Site: "rare.example.com", Types: []string{activity.SessionRevoked}},
		} {
			f.Limit = 10
			page, err := st.Query(ctx, f)
			must(t, "Query", err)
			var got []string
			for _, e := range page.Items {
				got = append(got, e.ID)
			}
			if !slices.Equal(got, rare[:10]) || page.Next == "" {
				t.Fatalf("first page of %+v = %v, next %q; want the 10 newest rare events %v and a cursor", f, got, page.Next, rare[:10])
			}
			f.Cursor = page.Next
			page, err = st.Query(ctx, f)
			must(t, "Query", err)
			got = got[:0]
			for _, e := range page.Items {
				got = append(got, e.ID)
			}
			if !slices.Equal(got, rare[10:]) || page.Next != "" {
				t.Fatalf("second page of %+v = %v, next %q; want %v and no cursor", f, got, page.Next, rare[10:])
			}
		}
	})

	// Pages follow one another without gaps or duplicates while events
	// are appended: a walk returns exactly the matching events from its
	// first item down, whatever was appended meanwhile.
	t.Run("PaginationConcurrentAppends", func(t *testing.T) {
		st := open(t, NewClock(T0).Now)
		types := []string{activity.LoginSucceeded, activity.Logout, activity.LoginFailed}
		event := func(i int) activity.Event {
			e := activity.Event{
				Time: t0.Add(time.Duration(i) * time.Second), Type: types[i%3],
				User: []string{"pager", "other"}[i%2], Email: []string{"Pager@example.com", "other@example.com"}[i%4/3],
				Site: []string{"a.example.com", "b.example.com", "c.example.com"}[i%5/2], IP: fmt.Sprintf("10.0.%d.%d", i%7, i%250),
			}
			if i%50 == 0 {
				e.Type = activity.SessionRevoked
			}
			return e
		}
		for i := range 2000 {
			e := event(i)
			must(t, "Append", st.Append(ctx, &e))
		}
		done := make(chan error, 1)
		stop := make(chan struct{})
		go func() {
			// A bounded number, paced, so that a memory store's log
			// stays within its capacity while the walks run.
			for i := 2000; i < 4000; i++ {
				select {
				case <-stop:
					done <- nil
					return
				case <-time.After(100 * time.Microsecond):
				}
				e := event(i)
				if err := st.Append(ctx, &e); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		filters := []activity.Filter{
			{},
			{User: "pager"},
			{User: "pager@EXAMPLE.com"},
			{Types: []string{activity.LoginFailed}},
			{Types: []string{activity.LoginSucceeded, activity.Logout}},
			{Site: "a.example.com"},
			{Sites: []string{"b.example.com"}},
			{User: "pager", Types: []string{activity.Logout}, Site: "a.example.com"},
			// A common and a rare type, filtered further: a walk that
			// merges a long and a short list over several reads.
			{Types: []string{activity.LoginFailed, activity.SessionRevoked}, IPPrefix: "10.0.3."},
			{User: "other@example.com", IPPrefix: "10.0.2."},
		}
		walks := make([][]string, 2*len(filters))
		for i, f := range filters {
			// An export of the same filter, in one pass, while appends go
			// on: walks[len(filters)+i].
			err := activity.Export(ctx, st, f, func(e *activity.Event) error {
				walks[len(filters)+i] = append(walks[len(filters)+i], e.ID)
				return nil
			})
			if err != nil {
				close(stop)
				<-done
				t.Fatalf("Export: %v", err)
			}
			f.Limit = 37
			for range 200 {
				page, err := st.Query(ctx, f)
				if err != nil {
					close(stop)
					<-done
					t.Fatalf("Query: %v", err)
				}
				for _, e := range page.Items {
					walks[i] = append(walks[i], e.ID)
				}
				if f.Cursor = page.Next; f.Cursor == "" {
					break
				}
			}
		}
		close(stop)
		must(t, "concurrent Append", <-done)

		// The whole log, newest first, now that it is still.
		var all []activity.Event
		for f := (activity.Filter{Limit: activity.MaxLimit}); ; {
			page, err := st.Query(ctx, f)
			must(t, "Query", err)
			all = append(all, page.Items...)
			if f.Cursor = page.Next; f.Cursor == "" {
				break
			}
		}
		for i, got := range walks {
			f := filters[i%len(filters)]
			if len(got) == 0 {
				t.Fatalf("walk of %+v returned nothing", f)
			}
			from := slices.IndexFunc(all, func(e activity.Event) bool { return e.ID == got[0] })
			if from < 0 {
				t.Fatalf("walk of %+v starts at %s, not in the log", f, got[0])
			}
			if want := ref(all[from:], f); !slices.Equal(got, want) {
				t.Fatalf("walk %d (pages, then exports) of %+v while appending: %d events, want %d (%s)", i, f, len(got), len(want), firstDiff(got, want))
			}
		}
	})

	t.Run("TrimFiltered", func(t *testing.T) {
		st := open(t, NewClock(T0).Now)
		all := fill(t, st)
		cut := t0.Add(60 * time.Minute)
		must(t, "Trim", st.Trim(ctx, cut))
		for _, f := range []activity.Filter{
			{User: "user1"}, {User: "user0@example.com"}, {Site: "a.example.com"},
			{Types: []string{activity.Logout}}, {Sites: []string{"b.example.com"}},
		} {
			want := ref(all, activity.Filter{From: cut, User: f.User, Site: f.Site, Types: f.Types, Sites: f.Sites})
			f.Limit = 1000
			page, err := st.Query(ctx, f)
			must(t, "Query", err)
			var got []string
			for _, e := range page.Items {
				got = append(got, e.ID)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("Query(%+v) after Trim(%v) = %v, want %v", f, cut, got, want)
			}
		}
	})

	t.Run("Stats", func(t *testing.T) { stats(t, open) })

	t.Run("BadCursor", func(t *testing.T) {
		st := open(t, NewClock(T0).Now)
		if _, err := st.Query(ctx, activity.Filter{Cursor: "garbage!"}); err == nil {
			t.Fatal("Query with a garbled cursor succeeded, want an error")
		}
	})
}

// firstDiff describes where two ID lists first differ.
// exportIDs is the IDs activity.Export hands over for f, in order.
func exportIDs(t *testing.T, st activity.Store, f activity.Filter) []string {
	t.Helper()
	var ids []string
	must(t, "Export", activity.Export(context.Background(), st, f, func(e *activity.Event) error {
		ids = append(ids, e.ID)
		return nil
	}))
	return ids
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: %s, want %s", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}
