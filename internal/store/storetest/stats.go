package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
	_ "time/tzdata" // the zones the suite uses, whatever the machine has

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// stats checks activity.CountEvents on st against a tally of the events
// themselves: through the store's counts when it keeps them
// (activity.Counter), and by walking the log either way, for ranges on
// and off quarter hours, buckets the counts can and cannot answer, time
// zones with half and three-quarter hour offsets, sites and reaches.
func stats(t *testing.T, open EventOpener) {
	ctx := context.Background()
	t0 := T0.Truncate(24 * time.Hour).Add(-3 * time.Hour)
	st := open(t, NewClock(t0.Add(60*time.Hour)).Now)
	types := []string{activity.LoginSucceeded, activity.LoginFailed, activity.AccessDenied, activity.Anomaly, activity.Logout}
	sites := []string{"a.example.com", "b.example.com", ""}
	// Times at random over 52 hours, appended in order, as gateways
	// write them.
	x := uint32(7)
	times := make([]time.Duration, 700)
	for i := range times {
		x = x*1664525 + 1013904223 // a fixed pseudo-random walk
		times[i] = time.Duration(x%(52*3600_000)) * time.Millisecond
	}
	slices.Sort(times)
	var all []activity.Event
	for i, d := range times {
		e := activity.Event{
			Time: t0.Add(d), Type: types[i%len(types)], Site: sites[i%len(sites)],
			User: fmt.Sprintf("u%d", i%4), IP: fmt.Sprintf("10.0.%d.1", i%3),
		}
		if i%9 == 0 {
			e.Detail = "repeated 4 more times from 10.0.0.0/24"
		}
		must(t, "Append", st.Append(ctx, &e))
		all = append(all, e)
	}
	counter, _ := st.(activity.Counter)
	zones := map[string]*time.Location{"UTC": time.UTC}
	for _, z := range []string{"Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"} {
		loc, err := time.LoadLocation(z)
		must(t, "LoadLocation", err)
		zones[z] = loc
	}
	tests := []struct {
		name     string
		f        activity.Filter
		from, to time.Duration // after t0
		bucket   time.Duration
	}{
		{"everything by hour", activity.Filter{}, 0, 52 * time.Hour, time.Hour},
		{"off quarter hours", activity.Filter{}, 7*time.Minute + 13*time.Second, 49*time.Hour + 3*time.Minute, time.Hour},
		{"by day", activity.Filter{}, 0, 52 * time.Hour, 24 * time.Hour},
		{"five minutes", activity.Filter{}, 2 * time.Hour, 9 * time.Hour, 5 * time.Minute},
		{"three quarters", activity.Filter{}, 61 * time.Minute, 30 * time.Hour, 45 * time.Minute},
		{"within a quarter", activity.Filter{}, 3*time.Hour + time.Minute, 3*time.Hour + 14*time.Minute, 15 * time.Minute},
		{"site", activity.Filter{Site: "a.example.com"}, 5 * time.Minute, 50 * time.Hour, time.Hour},
		{"reach", activity.Filter{Sites: []string{"b.example.com", ""}}, 0, 52 * time.Hour, 2 * time.Hour},
		{"site outside reach", activity.Filter{Site: "a.example.com", Sites: []string{"b.example.com"}}, 0, 52 * time.Hour, time.Hour},
		{"site in reach", activity.Filter{Site: "b.example.com", Sites: []string{"b.example.com"}}, 0, 52 * time.Hour, time.Hour},
		{"user", activity.Filter{User: "u1"}, 0, 52 * time.Hour, time.Hour},
		{"ip prefix", activity.Filter{IPPrefix: "10.0.2."}, 0, 52 * time.Hour, time.Hour},
	}
	for _, tt := range tests {
		for zn, loc := range zones {
			t.Run(tt.name+" "+zn, func(t *testing.T) {
				from, to := t0.Add(tt.from), t0.Add(tt.to)
				walked, err := activity.CountEvents(ctx, st.Query, nil, tt.f, from, to, tt.bucket, loc)
				must(t, "CountEvents", err)
				want := tally(all, tt.f, from, to, walked.Buckets, tt.bucket)
				if got := fmt.Sprint(walked.Buckets); got != want {
					t.Fatalf("walking the log:\n got %s\nwant %s", got, want)
				}
				if counter == nil {
					return
				}
				counted, err := activity.CountEvents(ctx, st.Query, counter, tt.f, from, to, tt.bucket, loc)
				must(t, "CountEvents with counts", err)
				if got := fmt.Sprint(counted.Buckets); got != want {
					t.Fatalf("with the store's counts:\n got %s\nwant %s", got, want)
				}
			})
		}
	}
	if counter == nil {
		return
	}
	t.Run("TrimDropsOldDays", func(t *testing.T) {
		// Retention drops the counts of the days before the cut-off's,
		// with their events.
		cut := t0.Truncate(24 * time.Hour).Add(48 * time.Hour)
		must(t, "Trim", st.Trim(ctx, cut))
		n := 0
		must(t, "CountQuarters", counter.CountQuarters(ctx, nil, t0.Truncate(24*time.Hour), cut, func(time.Time, string, int64) { n++ }))
		if n != 0 {
			t.Errorf("%d quarter hours counted before the trimmed day", n)
		}
		after := 0
		must(t, "CountQuarters", counter.CountQuarters(ctx, nil, cut, t0.Add(60*time.Hour), func(_ time.Time, _ string, w int64) { after += int(w) }))
		if after == 0 {
			t.Error("Trim dropped the counts of the day it kept")
		}
	})
}

// tally is the buckets' counts computed from the events themselves.
func tally(all []activity.Event, f activity.Filter, from, to time.Time, buckets []activity.Counts, bucket time.Duration) string {
	out := make([]activity.Counts, len(buckets))
	for i := range buckets {
		out[i].Start = buckets[i].Start
	}
	f.Types, f.From, f.To = activity.StatsTypes, from, to
	for i := range all {
		e := &all[i]
		if !f.Match(e) {
			continue
		}
		for j := range out {
			if !e.Time.Before(out[j].Start) && e.Time.Before(out[j].Start.Add(bucket)) {
				w := activity.Weight(e)
				switch e.Type {
				case activity.LoginSucceeded:
					out[j].LoginSucceeded += w
				case activity.LoginFailed:
					out[j].LoginFailed += w
				case activity.AccessDenied:
					out[j].AccessDenied += w
				case activity.Anomaly:
					out[j].Anomaly += w
				}
			}
		}
	}
	return fmt.Sprint(out)
}
