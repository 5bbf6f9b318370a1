package gateway

import (
	"context"
	"errors"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// ErrNoHistory means the event store keeps no login history (it does not
// implement activity.HistoryStore); both of gatehouse's stores do.
var ErrNoHistory = errors.New("the event store keeps no login history")

// History returns one page of the login history (admin API, my sessions).
func (rt *Runtime) History(ctx context.Context, f activity.HistoryFilter) (activity.HistoryPage, error) {
	h, ok := rt.events.(activity.HistoryStore)
	if !ok {
		return activity.HistoryPage{}, ErrNoHistory
	}
	return h.History(ctx, f)
}
