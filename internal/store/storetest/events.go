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

	t.Run("BadCursor", func(t *testing.T) {
		st := open(t, NewClock(T0).Now)
		if _, err := st.Query(ctx, activity.Filter{Cursor: "garbage!"}); err == nil {
			t.Fatal("Query with a garbled cursor succeeded, want an error")
		}
	})
}
