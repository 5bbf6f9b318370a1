package metrics

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SessionCounter is a store that can count its sessions: both of
// gatehouse's stores are.
type SessionCounter interface {
	CountSessions(ctx context.Context) (int64, error)
}

// How the active-sessions gauge asks its store.
const (
	// activeMaxAge is how long a count is reused: several Prometheus
	// servers scraping at once cost one count.
	activeMaxAge = 2 * time.Second
	// activeTimeout bounds a count, so that a scrape never hangs on a
	// store that is down.
	activeTimeout = 2 * time.Second
	// activeStale is how long the last count is still reported while
	// counting fails; after it the gauge is left out of the scrape, so
	// that it cannot show a number the store no longer backs.
	activeStale = time.Minute
)

// active is gatehouse_sessions_active: the sessions in the store, hence
// across every instance sharing it (each reports the same value), counted
// by the store when Prometheus scrapes, at most every activeMaxAge.
var active = newActiveCollector(time.Now)

type activeCollector struct {
	desc *prometheus.Desc
	now  func() time.Time

	mu      sync.Mutex
	sources []SessionCounter // of the configs that use one, oldest first
	source  SessionCounter   // the one the cached count came from
	value   float64
	at      time.Time // of the last successful count; zero: none
	tried   time.Time // of the last attempt
}

func newActiveCollector(now func() time.Time) *activeCollector {
	return &activeCollector{
		desc: prometheus.NewDesc(NameSessionsActive, "Sessions in the store, across every instance that shares it.", nil, nil),
		now:  now,
	}
}

// CountSessionsWith makes c the store that gatehouse_sessions_active
// counts, until release is called. Configs overlap during a reload: the
// newest config still holding one wins, so a new config's store takes
// over at once, and a failed new config hands back to the old one.
func CountSessionsWith(c SessionCounter) (release func()) { return active.use(c) }

func (a *activeCollector) use(c SessionCounter) func() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sources = append(a.sources, c)
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			// Two configs on one (pooled) store hold equal entries;
			// either may go.
			if i := slices.Index(a.sources, c); i >= 0 {
				a.sources = slices.Delete(a.sources, i, i+1)
			}
		})
	}
}

// Describe implements prometheus.Collector.
func (a *activeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- a.desc }

// Collect implements prometheus.Collector.
func (a *activeCollector) Collect(ch chan<- prometheus.Metric) {
	if v, ok := a.current(); ok {
		ch <- prometheus.MustNewConstMetric(a.desc, prometheus.GaugeValue, v)
	}
}

// current returns the count to report, counting again when the cached one
// is older than activeMaxAge or came from another store. Concurrent
// scrapes wait for one count.
func (a *activeCollector) current() (float64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.sources) == 0 {
		return 0, false
	}
	src := a.sources[len(a.sources)-1]
	now := a.now()
	if src != a.source {
		a.source, a.at, a.tried = src, time.Time{}, time.Time{}
	}
	if now.Sub(a.tried) >= activeMaxAge {
		a.tried = now
		ctx, cancel := context.WithTimeout(context.Background(), activeTimeout)
		n, err := src.CountSessions(ctx)
		cancel()
		if err == nil {
			a.value, a.at = float64(n), now
		}
	}
	if a.at.IsZero() || now.Sub(a.at) > activeStale {
		return 0, false
	}
	return a.value, true
}
