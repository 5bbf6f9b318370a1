package activity_test

import (
	"context"
	"errors"
	"testing"
	"time"
	_ "time/tzdata" // the zones the tests use, whatever the machine has

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
)

func TestCountEvents(t *testing.T) {
	ctx := context.Background()
	st := memstore.New(memstore.Options{})
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	add := func(at time.Duration, typ, detail string) {
		t.Helper()
		if err := st.Append(ctx, &activity.Event{Time: t0.Add(at), Type: typ, Site: "a", Detail: detail}); err != nil {
			t.Fatal(err)
		}
	}
	add(10*time.Minute, activity.LoginSucceeded, "")
	add(20*time.Minute, activity.LoginSucceeded, "")
	add(30*time.Minute, activity.LoginFailed, "")
	add(40*time.Minute, activity.LoginFailed, "repeated 7 more times from 192.0.2.0/24 in the minute after x")
	add(70*time.Minute, activity.AccessDenied, "")
	add(80*time.Minute, activity.Anomaly, "new country")
	add(90*time.Minute, activity.Logout, "")      // not counted
	add(3*time.Hour, activity.LoginSucceeded, "") // after to
	// More than one page of the store, so the walk must follow cursors.
	for i := range activity.MaxLimit + 5 {
		add(2*time.Hour+time.Duration(i)*time.Millisecond, activity.AccessDenied, "")
	}

	s, err := activity.CountEvents(ctx, st.Query, nil, activity.Filter{}, t0.Add(5*time.Minute), t0.Add(150*time.Minute), time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []activity.Counts{
		{Start: t0, LoginSucceeded: 2, LoginFailed: 1 + 7},
		{Start: t0.Add(time.Hour), AccessDenied: 1, Anomaly: 1},
		{Start: t0.Add(2 * time.Hour), AccessDenied: activity.MaxLimit + 5},
	}
	if len(s.Buckets) != len(want) {
		t.Fatalf("got %d buckets %+v, want %d", len(s.Buckets), s.Buckets, len(want))
	}
	for i := range want {
		if s.Buckets[i] != want[i] {
			t.Errorf("bucket %d = %+v, want %+v", i, s.Buckets[i], want[i])
		}
	}

	// Days of the pages' time zone start at its midnight.
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	s, err = activity.CountEvents(ctx, st.Query, nil, activity.Filter{}, t0, t0.Add(48*time.Hour), 24*time.Hour, ams)
	if err != nil {
		t.Fatal(err)
	}
	if got, wantStart := s.Buckets[0].Start, time.Date(2026, 4, 30, 22, 0, 0, 0, time.UTC); !got.Equal(wantStart) {
		t.Errorf("first daily bucket in Amsterdam starts %v, want %v", got, wantStart)
	}
}

func TestCountEventsBounds(t *testing.T) {
	st := memstore.New(memstore.Options{})
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		from, to time.Time
		bucket   time.Duration
	}{
		{"bucket too small", t0, t0.Add(time.Hour), time.Minute},
		{"bucket too large", t0, t0.Add(30 * 24 * time.Hour), 48 * time.Hour},
		{"to before from", t0, t0.Add(-time.Hour), time.Hour},
		{"too many buckets", t0, t0.Add(90 * 24 * time.Hour), 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := activity.CountEvents(context.Background(), st.Query, nil, activity.Filter{}, tt.from, tt.to, tt.bucket, nil)
			if !errors.Is(err, activity.ErrStatsRange) {
				t.Errorf("CountEvents = %v, want ErrStatsRange", err)
			}
		})
	}
}

func TestWeight(t *testing.T) {
	tests := []struct {
		e    activity.Event
		want int
	}{
		{activity.Event{Type: activity.LoginFailed}, 1},
		{activity.Event{Type: activity.LoginFailed, Detail: "repeated 12 more times from 192.0.2.0/24 in the minute after 2026-05-01T00:00:00Z"}, 12},
		{activity.Event{Type: activity.AccessDenied, Detail: "40 more access_denied events from too many networks to list one by one"}, 40},
		{activity.Event{Type: activity.Anomaly, Detail: "3 more users than usual"}, 1},
		{activity.Event{Type: activity.LoginFailed, Detail: "repeated -3 more times"}, 1},
	}
	for _, tt := range tests {
		if got := activity.Weight(&tt.e); got != tt.want {
			t.Errorf("Weight(%q) = %d, want %d", tt.e.Detail, got, tt.want)
		}
	}
}
