package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// StoreOperations lists every operation label of gatehouse_store_seconds:
// the store methods, in snake case. Subscribe, which lasts as long as the
// process, is not timed.
var StoreOperations = []string{
	// session.Store
	"create", "get", "touch", "set_tokens", "limit_sessions", "delete",
	"list", "users", "due", "claim_once", "claimed", "user_by_email",
	"set_reauth", "reauth", "add_site", "site_scopes",
	// activity.Store, activity.HistoryStore
	"append", "query", "trim", "history", "export", "count",
}

// timer observes the duration of one store operation.
type timer struct{ h prometheus.Observer }

func newTimer(op string) timer { return timer{storeSeconds.WithLabelValues(op)} }

// since records the time from start to now.
func (t timer) since(start time.Time) { t.h.Observe(time.Since(start).Seconds()) }

// The operations' histograms, resolved once: a timed call costs two clock
// reads and an atomic add, no allocation.
var (
	opCreate        = newTimer("create")
	opGet           = newTimer("get")
	opTouch         = newTimer("touch")
	opSetTokens     = newTimer("set_tokens")
	opLimitSessions = newTimer("limit_sessions")
	opDelete        = newTimer("delete")
	opList          = newTimer("list")
	opUsers         = newTimer("users")
	opDue           = newTimer("due")
	opClaimOnce     = newTimer("claim_once")
	opClaimed       = newTimer("claimed")
	opUserByEmail   = newTimer("user_by_email")
	opSetReauth     = newTimer("set_reauth")
	opReauth        = newTimer("reauth")
	opAddSite       = newTimer("add_site")
	opSiteScopes    = newTimer("site_scopes")
	opAppend        = newTimer("append")
	opQuery         = newTimer("query")
	opTrim          = newTimer("trim")
	opHistory       = newTimer("history")
	opExport        = newTimer("export")
	opCount         = newTimer("count")
)

// TimeSessions returns s with the duration of every call (but Subscribe)
// observed in gatehouse_store_seconds, labelled by method. It implements
// session.Store only: callers that look for other interfaces of the store
// (gateway.KeyStore, SessionCounter) must be given s itself.
func TimeSessions(s session.Store) session.Store { return timedSessions{s} }

type timedSessions struct{ s session.Store }

func (t timedSessions) Create(ctx context.Context, s *session.Session) error {
	defer opCreate.since(time.Now())
	return t.s.Create(ctx, s)
}

func (t timedSessions) Get(ctx context.Context, id string) (*session.Session, error) {
	defer opGet.since(time.Now())
	return t.s.Get(ctx, id)
}

func (t timedSessions) Touch(ctx context.Context, id string, a session.Access) error {
	defer opTouch.since(time.Now())
	return t.s.Touch(ctx, id, a)
}

func (t timedSessions) SetTokens(ctx context.Context, id string, tokens []byte) error {
	defer opSetTokens.since(time.Now())
	return t.s.SetTokens(ctx, id, tokens)
}

func (t timedSessions) LimitSessions(ctx context.Context, l session.Limit) ([]*session.Session, error) {
	defer opLimitSessions.since(time.Now())
	return t.s.LimitSessions(ctx, l)
}

func (t timedSessions) Delete(ctx context.Context, id string) (*session.Session, error) {
	defer opDelete.since(time.Now())
	return t.s.Delete(ctx, id)
}

func (t timedSessions) List(ctx context.Context, q session.Query) (session.Page, error) {
	defer opList.since(time.Now())
	return t.s.List(ctx, q)
}

func (t timedSessions) Users(ctx context.Context, q session.UserQuery) (session.UserPage, error) {
	defer opUsers.since(time.Now())
	return t.s.Users(ctx, q)
}

func (t timedSessions) Due(ctx context.Context, at time.Time, n int) ([]*session.Session, error) {
	defer opDue.since(time.Now())
	return t.s.Due(ctx, at, n)
}

// Subscribe is not timed: it returns only when ctx is done.
func (t timedSessions) Subscribe(ctx context.Context, ended func(id string)) error {
	return t.s.Subscribe(ctx, ended)
}

func (t timedSessions) ClaimOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	defer opClaimOnce.since(time.Now())
	return t.s.ClaimOnce(ctx, key, ttl)
}

func (t timedSessions) Claimed(ctx context.Context, key string) (bool, error) {
	defer opClaimed.since(time.Now())
	return t.s.Claimed(ctx, key)
}

func (t timedSessions) UserByEmail(ctx context.Context, email string) (string, error) {
	defer opUserByEmail.since(time.Now())
	return t.s.UserByEmail(ctx, email)
}

func (t timedSessions) SetReauth(ctx context.Context, user string, at time.Time) error {
	defer opSetReauth.since(time.Now())
	return t.s.SetReauth(ctx, user, at)
}

func (t timedSessions) Reauth(ctx context.Context, user string) (time.Time, error) {
	defer opReauth.since(time.Now())
	return t.s.Reauth(ctx, user)
}

func (t timedSessions) AddSite(ctx context.Context, site, scope string) error {
	defer opAddSite.since(time.Now())
	return t.s.AddSite(ctx, site, scope)
}

func (t timedSessions) SiteScopes(ctx context.Context) (map[string][]string, error) {
	defer opSiteScopes.since(time.Now())
	return t.s.SiteScopes(ctx)
}

// TimeEvents returns s with the duration of every call observed in
// gatehouse_store_seconds. When s keeps the login history
// (activity.HistoryStore), so does the result, timed too.
func TimeEvents(s activity.Store) activity.Store {
	t := timedEvents{s}
	if h, ok := s.(activity.HistoryStore); ok {
		return timedHistory{t, h}
	}
	return t
}

type timedEvents struct{ s activity.Store }

func (t timedEvents) Append(ctx context.Context, e *activity.Event) error {
	defer opAppend.since(time.Now())
	return t.s.Append(ctx, e)
}

func (t timedEvents) Query(ctx context.Context, f activity.Filter) (activity.Page, error) {
	defer opQuery.since(time.Now())
	return t.s.Query(ctx, f)
}

func (t timedEvents) Trim(ctx context.Context, before time.Time) error {
	defer opTrim.since(time.Now())
	return t.s.Trim(ctx, before)
}

// Export keeps the store's one-pass export (activity.Exporter), when it
// has one, through the wrapper; the whole export is one observation.
func (t timedEvents) Export(ctx context.Context, f activity.Filter, each func(*activity.Event) error) error {
	defer opExport.since(time.Now())
	return activity.Export(ctx, t.s, f, each)
}

// CountQuarters keeps the store's event counts (activity.Counter), when
// it has them, through the wrapper.
func (t timedEvents) CountQuarters(ctx context.Context, sites []string, from, to time.Time, add func(time.Time, string, int64)) error {
	c, ok := t.s.(activity.Counter)
	if !ok {
		return activity.ErrNoCounts
	}
	defer opCount.since(time.Now())
	return c.CountQuarters(ctx, sites, from, to, add)
}

type timedHistory struct {
	timedEvents
	h activity.HistoryStore
}

func (t timedHistory) History(ctx context.Context, f activity.HistoryFilter) (activity.HistoryPage, error) {
	defer opHistory.since(time.Now())
	return t.h.History(ctx, f)
}

// Interface guards
var (
	_ session.Store         = timedSessions{}
	_ activity.Store        = timedEvents{}
	_ activity.HistoryStore = timedHistory{}
	_ activity.Exporter     = timedEvents{}
	_ activity.Counter      = timedEvents{}
)
