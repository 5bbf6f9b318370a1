package admin

import (
	"context"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// Backend is what the pages and the API need from the gateway;
// *gateway.Runtime satisfies it.
type Backend interface {
	// ListSessions returns one page of sessions matching q.
	ListSessions(ctx context.Context, q session.Query) (session.Page, error)
	// GetSession returns a session or session.ErrNotFound.
	GetSession(ctx context.Context, id string) (*session.Session, error)
	// End ends a session for reason (a session.End* constant), records the
	// event with actor, and returns session.ErrNotFound when it was
	// already gone. An empty site keeps the session's own site in the event.
	End(ctx context.Context, id, reason, actor, site string) (*session.Session, error)
	// UserByEmail returns the subject whose verified email is email, or
	// session.ErrNotFound.
	UserByEmail(ctx context.Context, email string) (string, error)
	// Users returns one page of user summaries.
	Users(ctx context.Context, q session.UserQuery) (session.UserPage, error)
	// Events returns one page of the activity log, newest first.
	Events(ctx context.Context, f activity.Filter) (activity.Page, error)
	// Now is the clock that derived values (inactive_for) are measured by.
	Now() time.Time
}

// EventExporter may be implemented by a Backend to hand an export every
// matching event in one pass (*gateway.Runtime does, reading Redis ahead
// of the writer); without it exports read Events page by page.
type EventExporter interface {
	ExportEvents(ctx context.Context, f activity.Filter, each func(*activity.Event) error) error
}

// CounterSource may be implemented by a Backend whose store counts events
// as they come (*gateway.Runtime, with Redis), so that the chart and
// /stats need not read them; nil means it does not.
type CounterSource interface {
	Counter() activity.Counter
}

// ErrorReporter may be implemented by a Backend to hear about failures
// that turn into a 500: this package does not log, so without it the cause
// is lost.
type ErrorReporter interface {
	ReportError(error)
}
