package activity

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// StatsTypes are the event types Stats counts: what the activity chart
// draws (sign-ins, failures, denials) and the anomalies beside them.
var StatsTypes = []string{LoginSucceeded, LoginFailed, AccessDenied, Anomaly}

// Bucket bounds. Below five minutes a chart of days is noise; beyond a day
// a bucket hides the daily rhythm; MaxBuckets keeps a response (and a
// chart) small whatever range is asked for.
const (
	MinBucket  = 5 * time.Minute
	MaxBucket  = 24 * time.Hour
	MaxBuckets = 1000
)

// ErrStatsRange means a stats request is out of bounds (a 400).
var ErrStatsRange = errors.New("invalid stats range")

// Counts is one bucket: the events of each StatsTypes type whose time is
// in [Start, Start+bucket).
type Counts struct {
	Start          time.Time `json:"start"`
	LoginSucceeded int       `json:"login_succeeded"`
	LoginFailed    int       `json:"login_failed"`
	AccessDenied   int       `json:"access_denied"`
	Anomaly        int       `json:"anomaly"`
}

// Stats is a time series of Counts.
type Stats struct {
	From, To time.Time
	Bucket   time.Duration
	Buckets  []Counts
}

// QueryFunc returns one page of events, as Store.Query does.
type QueryFunc func(ctx context.Context, f Filter) (Page, error)

// CountEvents counts the events matching f (its Types replaced by
// StatsTypes) between from and to into buckets of bucket, walking the log
// page by page in constant memory. Buckets start at from rounded down to a
// multiple of bucket since midnight in loc (nil: UTC), so that daily
// buckets are the days of the pages' time zone.
func CountEvents(ctx context.Context, query QueryFunc, f Filter, from, to time.Time, bucket time.Duration, loc *time.Location) (Stats, error) {
	if bucket < MinBucket || bucket > MaxBucket {
		return Stats{}, fmt.Errorf("%w: bucket must be from %s to %s", ErrStatsRange, MinBucket, MaxBucket)
	}
	if !to.After(from) {
		return Stats{}, fmt.Errorf("%w: to must be after from", ErrStatsRange)
	}
	if loc == nil {
		loc = time.UTC
	}
	start := alignBucket(from, bucket, loc)
	// to is inclusive, as in Filter: when it falls on a bucket boundary,
	// the bucket it starts holds the events of that instant.
	n := int(to.Sub(start)/bucket) + 1
	if n > MaxBuckets {
		return Stats{}, fmt.Errorf("%w: %d buckets of %s; at most %d: choose a shorter range or a larger bucket", ErrStatsRange, n, bucket, MaxBuckets)
	}
	st := Stats{From: from.UTC(), To: to.UTC(), Bucket: bucket, Buckets: make([]Counts, n)}
	for i := range st.Buckets {
		st.Buckets[i].Start = start.Add(time.Duration(i) * bucket).UTC()
	}
	f.Types, f.From, f.To, f.Limit = StatsTypes, from, to, MaxLimit
	for {
		page, err := query(ctx, f)
		if err != nil {
			return Stats{}, err
		}
		for i := range page.Items {
			e := &page.Items[i]
			k := int(e.Time.Sub(start) / bucket)
			if k < 0 || k >= n || e.Time.Before(from) || e.Time.After(to) {
				continue
			}
			c := &st.Buckets[k]
			w := Weight(e)
			switch e.Type {
			case LoginSucceeded:
				c.LoginSucceeded += w
			case LoginFailed:
				c.LoginFailed += w
			case AccessDenied:
				c.AccessDenied += w
			case Anomaly:
				c.Anomaly += w
			}
		}
		if page.Next == "" || page.Next == f.Cursor {
			return st, nil
		}
		if err := ctx.Err(); err != nil {
			return Stats{}, err
		}
		f.Cursor = page.Next
	}
}

// alignBucket rounds t down to a multiple of bucket since midnight of its
// day in loc.
func alignBucket(t time.Time, bucket time.Duration, loc *time.Location) time.Time {
	lt := t.In(loc)
	midnight := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
	return midnight.Add(t.Sub(midnight) / bucket * bucket)
}

// Weight is how many events e stands for. The flood limit (gateway's
// flood.go) writes one event for the repeats of a minute, whose Detail
// begins "repeated N more times" or, past the networks it tracks, "N more
// <type> events": counting those as one would make an attack look like a
// trickle on the chart.
func Weight(e *Event) int {
	if e.Detail == "" {
		return 1
	}
	d := e.Detail
	if rest, ok := strings.CutPrefix(d, "repeated "); ok {
		d = rest
	}
	num, rest, ok := strings.Cut(d, " more ")
	if !ok || !(strings.HasPrefix(rest, "times ") || strings.HasPrefix(rest, e.Type+" events")) {
		return 1
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		return 1
	}
	return n
}
