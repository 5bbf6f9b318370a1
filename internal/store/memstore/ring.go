package memstore

import (
	"sync/atomic"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// subscriber is one Subscribe call.
type subscriber struct {
	ch chan string
	// overflow is set when an end was dropped because ch was full; the
	// subscriber then hears "" (forget everything), which is always safe.
	overflow atomic.Bool
}

func (s *subscriber) send(id string) {
	select {
	case s.ch <- id:
	default:
		s.overflow.Store(true)
	}
}

// eventRing is a bounded log in append order: once full, each new event
// overwrites the oldest.
type eventRing struct {
	buf   []activity.Event
	start int // index of the oldest event once the buffer has wrapped
	max   int
	seq   uint64
}

func (r *eventRing) len() int { return len(r.buf) }

// at returns the i-th oldest event.
func (r *eventRing) at(i int) *activity.Event {
	return &r.buf[(r.start+i)%len(r.buf)]
}

func (r *eventRing) push(e activity.Event) {
	if len(r.buf) < r.max {
		r.buf = append(r.buf, e)
		return
	}
	r.buf[r.start] = e
	r.start = (r.start + 1) % len(r.buf)
}

// drop removes the events for which gone is true, keeping the order.
func (r *eventRing) drop(gone func(*activity.Event) bool) {
	kept := make([]activity.Event, 0, len(r.buf))
	for i := range r.len() {
		if e := r.at(i); !gone(e) {
			kept = append(kept, *e)
		}
	}
	r.buf, r.start = kept, 0
}
