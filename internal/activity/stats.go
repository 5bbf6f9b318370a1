package activity

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// Quarter is the grain of a Counter's counts.
const Quarter = 15 * time.Minute

// Counter may be implemented by a Store that counts the StatsTypes events
// of each quarter hour as they are appended (redisstore), so that a chart
// of months need not read millions of events.
type Counter interface {
	// CountQuarters calls add with the weight (Weight) of the events of
	// each StatsTypes type in each quarter hour that starts in [from,
	// to), both on quarter hours (UTC): of the sites named, or of every
	// site when sites is nil. It returns ErrNoCounts when the store keeps
	// no counts.
	CountQuarters(ctx context.Context, sites []string, from, to time.Time, add func(start time.Time, typ string, n int64)) error
}

// ErrNoCounts is a Counter's answer when its store keeps no counts.
var ErrNoCounts = errors.New("no event counts kept")

// CountEvents counts the events matching f (its Types replaced by
// StatsTypes) between from and to into buckets of bucket. Buckets start
// at from rounded down to a multiple of bucket since midnight in loc
// (nil: UTC), so that daily buckets are the days of the pages' time zone.
// With a counter, and a filter and buckets that its quarter hours can
// answer (no user or IP prefix; buckets whole quarter hours), whole
// quarter hours come from the counts and only the partial ones at either
// end from the events; else it walks the log page by page in constant
// memory.
func CountEvents(ctx context.Context, query QueryFunc, counter Counter, f Filter, from, to time.Time, bucket time.Duration, loc *time.Location) (Stats, error) {
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
	tally := func(at time.Time, typ string, w int) {
		k := int(at.Sub(start) / bucket)
		if k < 0 || k >= n || at.Before(from) || at.After(to) {
			return
		}
		c := &st.Buckets[k]
		switch typ {
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
	// walk counts the events of [from, to] (to inclusive) from the log.
	walk := func(from, to time.Time) error {
		f.Types, f.From, f.To, f.Limit, f.Cursor = StatsTypes, from, to, MaxLimit, ""
		for {
			page, err := query(ctx, f)
			if err != nil {
				return err
			}
			for i := range page.Items {
				e := &page.Items[i]
				if !e.Time.Before(from) && !e.Time.After(to) {
					tally(e.Time, e.Type, Weight(e))
				}
			}
			if page.Next == "" || page.Next == f.Cursor {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			f.Cursor = page.Next
		}
	}
	if counter == nil || f.User != "" || f.IPPrefix != "" || bucket%Quarter != 0 || start.Truncate(Quarter) != start {
		if err := walk(from, to); err != nil {
			return Stats{}, err
		}
		return st, nil
	}
	sites := f.Sites
	if f.Site != "" {
		if sites != nil && !slices.Contains(sites, f.Site) {
			return st, nil
		}
		sites = []string{f.Site}
	}
	// The whole quarter hours [qFrom, qTo) from the counts; the events
	// before qFrom and from qTo on (to inclusive) from the log.
	qFrom, qTo := from.Truncate(Quarter), to.Truncate(Quarter)
	if qFrom.Before(from) {
		qFrom = qFrom.Add(Quarter)
	}
	err := errors.New("no whole quarter hour")
	if qFrom.Before(qTo) {
		err = counter.CountQuarters(ctx, sites, qFrom, qTo, func(at time.Time, typ string, w int64) { tally(at, typ, int(w)) })
	}
	switch {
	case err == nil:
		if from.Before(qFrom) {
			if err := walk(from, qFrom.Add(-time.Millisecond)); err != nil {
				return Stats{}, err
			}
		}
		if err := walk(qTo, to); err != nil {
			return Stats{}, err
		}
	case errors.Is(err, ErrNoCounts) || !qFrom.Before(qTo):
		if err := walk(from, to); err != nil {
			return Stats{}, err
		}
	default:
		return Stats{}, err
	}
	return st, nil
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
