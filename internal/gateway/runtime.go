// Package gateway is the request flow on plain net/http: the session check
// on every request, sign-in (redirect, callback), logout, back-channel
// logout, forward-auth, network policy and identity headers for the
// upstream. Caddy glue lives in caddymodule; this package knows nothing of
// Caddy and does not log: it reports through the Runtime's callbacks.
package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/alerts"
	"github.com/gatehouse-proxy/gatehouse/internal/policy"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// RuntimeConfig is what every site of one process shares.
type RuntimeConfig struct {
	Store  session.Store
	Events activity.Store
	// Secret (32+ bytes) derives the keys that seal the logout hint and
	// sign-in state cookies, and the CSRF tokens of the pages.
	Secret []byte
	// CacheTTL bounds how long a cached session is trusted without asking
	// the store. Default: 5s.
	CacheTTL time.Duration
	// Retention is how long events are kept. Default: 90 days.
	Retention time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Location is the time zone the pages show times in. Default: UTC.
	Location *time.Location
	// Network holds the IP rules of the app (allow_ip, deny_ip of the
	// global options), applied on every site before its own.
	Network policy.Network
	// Locate finds where an address is; nil means no GeoIP.
	Locate func(netip.Addr) session.Location
	// Describe summarises a User-Agent; nil leaves only the raw string.
	Describe func(ua string) session.Device
	// OnEvent is called for every recorded event (caddymodule logs it).
	OnEvent func(activity.Event)
	// OnError is called for failures that do not fail a request, such as a
	// lost event write or a failed background touch.
	OnError func(error)
	// Keys keeps the signing keys of jwt_header. Default: Store, when it
	// implements KeyStore (both stores do).
	Keys KeyStore
	// Alerts are the anomaly rules applied, in the background, to every
	// stored login_succeeded and login_failed. The zero value turns them
	// all off; caddymodule starts from alerts.Defaults.
	Alerts alerts.Rules
	// Webhook, when its URL is set, receives anomalies and the AlertOn
	// types. Claims defaults to Store, OnError to OnError.
	Webhook alerts.WebhookConfig
	// AlertOn lists the event types posted to the webhook besides
	// anomalies.
	AlertOn []string
	// CountCheck is called with the result of every session check (see
	// Check*), on the request path: it must be cheap and not block.
	CountCheck func(result string)
	// CountEvent is called for every event as it happens, whether or not
	// the store keeps it and before the flood limiter folds repeats into
	// one event: for metrics.
	CountEvent func(typ, reason string)
}

// Runtime holds the shared parts: store, cache, event log, keys and the
// background workers (revocation subscription, touches, expiry sweep,
// retention).
type Runtime struct {
	cfg     RuntimeConfig
	store   session.Store
	events  activity.Store
	cache   *session.Cache
	tokens  *session.Sealer
	states  *session.Sealer
	csrfKey []byte

	touches chan touchReq
	pending sync.Map // session id -> struct{}: a touch is queued

	sites siteRegistry
	flood floodLimiter
	jwt   *jwtSigner
	// refresh runs the token refreshes of refresh-on sites.
	refresh *refresher

	streams streams // open long-lived responses, by session

	alerts alerter // anomaly rules and webhook

	// bg is the background work's context, done at Close.
	bg   context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

type touchReq struct {
	s      *session.Session
	access session.Access
}

// NewRuntime checks cfg and builds a Runtime. It does no I/O; Start begins
// the background work.
func NewRuntime(cfg RuntimeConfig) (*Runtime, error) {
	if cfg.Store == nil || cfg.Events == nil {
		return nil, errors.New("runtime needs a session store and an event store")
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 5 * time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 90 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnEvent == nil {
		cfg.OnEvent = func(activity.Event) {}
	}
	if cfg.OnError == nil {
		cfg.OnError = func(error) {}
	}
	if cfg.CountCheck == nil {
		cfg.CountCheck = func(string) {}
	}
	if cfg.CountEvent == nil {
		cfg.CountEvent = func(string, string) {}
	}
	tokens, err := session.NewSealer(cfg.Secret, "tokens")
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	states, err := session.NewSealer(cfg.Secret, "login state")
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	jwt, err := newJWTSigner(&cfg)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, cfg.Secret)
	mac.Write([]byte("gatehouse csrf key"))
	rt := &Runtime{
		jwt:     jwt,
		cfg:     cfg,
		store:   cfg.Store,
		events:  cfg.Events,
		cache:   session.NewCache(cfg.Store, cfg.CacheTTL, cfg.Now),
		tokens:  tokens,
		states:  states,
		csrfKey: mac.Sum(nil),
		touches: make(chan touchReq, 1024),
		refresh: newRefresher(),
	}
	rt.initAlerts()
	return rt, nil
}

// Cache returns the session cache.
func (rt *Runtime) Cache() *session.Cache { return rt.cache }

// Store returns the session store.
func (rt *Runtime) Store() session.Store { return rt.store }

// Start runs the background workers until Close.
func (rt *Runtime) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	rt.bg, rt.stop = ctx, cancel
	rt.wg.Add(5)
	go func() {
		defer rt.wg.Done()
		rt.subscribe(ctx)
	}()
	go func() {
		defer rt.wg.Done()
		rt.touchLoop(ctx)
	}()
	go func() {
		defer rt.wg.Done()
		rt.every(ctx, 10*time.Second, rt.Sweep)
	}()
	go func() {
		defer rt.wg.Done()
		rt.every(ctx, 10*time.Minute, rt.trim)
	}()
	go func() {
		defer rt.wg.Done()
		rt.every(ctx, floodFlushEvery, rt.FlushAggregated)
	}()
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		rt.every(ctx, keyCheckEvery, rt.maintainKeys)
	}()
	rt.startAlerts(ctx)
}

// Close stops the background workers and waits for them.
func (rt *Runtime) Close() {
	if rt.stop != nil {
		rt.stop()
		rt.wg.Wait()
	}
	rt.refresh.close()
}

// subscribe keeps the cache in step with ends published by any instance;
// it retries with backoff when the store is down.
func (rt *Runtime) subscribe(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		// The store calls Invalidate("") once it is listening again, since
		// ends may have been missed meanwhile. While it cannot listen,
		// cached sessions stay trusted for at most the cache TTL, which is
		// what keeps signed-in users working through a short outage.
		err := rt.store.Subscribe(ctx, func(id string) { rt.sessionEnded(ctx, id) })
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			rt.cfg.OnError(fmt.Errorf("revocation subscription: %w", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (rt *Runtime) every(ctx context.Context, d time.Duration, f func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}

func (rt *Runtime) trim(ctx context.Context) {
	rt.cache.Prune()
	rt.refresh.prune(rt.cfg.Now())
	if err := rt.events.Trim(ctx, rt.cfg.Now().Add(-rt.cfg.Retention)); err != nil {
		rt.cfg.OnError(fmt.Errorf("trimming events: %w", err))
	}
}

// queueTouch asks the background writer to record an access. It never
// blocks a request: when the queue is full the touch is dropped and the
// next request asks again.
func (rt *Runtime) queueTouch(s *session.Session, a session.Access) {
	if _, dup := rt.pending.LoadOrStore(s.ID, struct{}{}); dup {
		return
	}
	select {
	case rt.touches <- touchReq{s: s, access: a}:
	default:
		rt.pending.Delete(s.ID)
	}
}

func (rt *Runtime) touchLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-rt.touches:
			rt.touch(ctx, t)
		}
	}
}

func (rt *Runtime) touch(ctx context.Context, t touchReq) {
	defer rt.pending.Delete(t.s.ID)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := rt.store.Touch(ctx, t.s.ID, t.access)
	switch {
	case errors.Is(err, session.ErrNotFound):
		rt.cache.Invalidate(t.s.ID)
	case err != nil:
		rt.cfg.OnError(fmt.Errorf("recording access: %w", err))
	default:
		// The cached copy as it is now, not the request's: a refresh may
		// have put new tokens there meanwhile.
		rt.cache.Update(t.s.ID, func(c *session.Session) {
			if t.access.At.After(c.LastAccess) {
				c.LastAccess = t.access.At
			}
			if t.access.IP != "" {
				c.LastIP = t.access.IP
			}
			if t.access.Location != nil {
				c.Location = *t.access.Location
			}
			if t.access.Device != nil {
				c.Device = *t.access.Device
			}
		})
	}
}

// Sweep ends sessions whose deadline has passed and records why; it runs in
// the background so expiries are logged within a minute even if the browser
// never comes back.
func (rt *Runtime) Sweep(ctx context.Context) {
	now := rt.cfg.Now()
	for range 100 {
		due, err := rt.store.Due(ctx, now, 100)
		if err != nil {
			rt.cfg.OnError(fmt.Errorf("finding expired sessions: %w", err))
			return
		}
		for _, s := range due {
			reason := s.Expiry(now, 0)
			if reason == "" {
				continue
			}
			rt.End(ctx, s.ID, reason, activity.ActorSystem, "")
		}
		if len(due) < 100 {
			return
		}
	}
}

// End ends a session for reason (a session.End* constant), records the
// event, and returns the ended session. It returns session.ErrNotFound when
// the session was already gone, in which case nothing is recorded: someone
// else reported the end.
//
// A session an admin or its user ends (revoked, others signed out) also
// marks the user for re-authentication first, in the store so that every
// instance sees it: otherwise the provider's single sign-on would sign a
// browser that dropped the ended cookie straight back in (issue 6,
// item 3). When the mark cannot be written nothing ends, and the caller
// may try again.
func (rt *Runtime) End(ctx context.Context, id, reason, actor, site string) (*session.Session, error) {
	now := rt.cfg.Now()
	if reason == session.EndRevoked || reason == session.EndOthers {
		s, err := rt.store.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := rt.store.SetReauth(ctx, s.User, now); err != nil {
			return nil, fmt.Errorf("marking %q for re-authentication: %w", s.User, err)
		}
	}
	s, err := rt.store.Delete(ctx, id)
	rt.cache.Invalidate(id)
	if err == nil || errors.Is(err, session.ErrNotFound) {
		// At once here; the store's delivery, which other instances
		// act on, finds nothing left to close.
		rt.streams.closeSession(id)
	}
	if err != nil {
		return nil, err
	}
	e := eventFor(s, reason)
	e.Actor = actor
	if site != "" {
		e.Site = site
	}
	finalTimes(&e, s, now)
	rt.Record(ctx, e)
	return s, nil
}

// finalTimes sets the final inactivity and duration, in seconds, on the
// event that ends s at now (SPEC, "Activity log"). A clock behind the
// session's times (another instance's) gives 0, not a negative span.
func finalTimes(e *activity.Event, s *session.Session, now time.Time) {
	secs := func(from time.Time) int64 {
		if from.IsZero() || !now.After(from) {
			return 0
		}
		return int64(now.Sub(from) / time.Second)
	}
	e.Inactivity = secs(s.LastAccess)
	e.Duration = secs(s.CreatedAt)
}

func eventFor(s *session.Session, typ string) activity.Event {
	return activity.Event{
		Type:      typ,
		User:      s.User,
		Email:     s.Email,
		SessionID: s.ID,
		Site:      s.Site,
		IP:        s.LastIP,
		City:      s.City,
		Country:   s.Country,
		Device:    s.Device.Label(),
	}
}

// Record writes an event to the store and, once it is stored, hands it to
// OnEvent. A failed write does not fail the request that caused it; it is
// reported to OnError, naming the event, and not to OnEvent: what OnEvent
// sees is what the log holds.
func (rt *Runtime) Record(ctx context.Context, e activity.Event) {
	if e.Time.IsZero() {
		e.Time = rt.cfg.Now().UTC()
	}
	if e.Actor == "" {
		e.Actor = activity.ActorSystem
	}
	if e.Type != activity.LoginFailed && e.Type != activity.AccessDenied {
		// Those two, which anyone can cause, recordLimited counted one
		// by one before folding them.
		rt.cfg.CountEvent(e.Type, e.Reason)
	}
	// The event must be written even if the client has gone away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := rt.events.Append(ctx, &e); err != nil {
		rt.cfg.OnError(fmt.Errorf("recording %s event (user %q, site %q, reason %q): %w", e.Type, e.User, e.Site, e.Reason, err))
		return
	}
	rt.cfg.OnEvent(e)
	rt.observe(e)
}

// CSRFToken is the anti-forgery token for pages of a session: an HMAC of
// its id, so it needs no storage and dies with the session.
func (rt *Runtime) CSRFToken(sessionID string) string {
	mac := hmac.New(sha256.New, rt.csrfKey)
	mac.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:18])
}

func (rt *Runtime) locate(ip netip.Addr) session.Location {
	if rt.cfg.Locate == nil || !ip.IsValid() {
		return session.Location{}
	}
	return rt.cfg.Locate(ip)
}

func (rt *Runtime) describe(ua string) session.Device {
	if rt.cfg.Describe == nil {
		if len(ua) > 512 {
			ua = ua[:512]
		}
		return session.Device{UserAgent: ua}
	}
	return rt.cfg.Describe(ua)
}

// ListSessions lists sessions (admin API).
func (rt *Runtime) ListSessions(ctx context.Context, q session.Query) (session.Page, error) {
	return rt.store.List(ctx, q)
}

// GetSession returns one session (admin API).
func (rt *Runtime) GetSession(ctx context.Context, id string) (*session.Session, error) {
	return rt.store.Get(ctx, id)
}

// UserByEmail finds the subject of a verified email (admin API).
func (rt *Runtime) UserByEmail(ctx context.Context, email string) (string, error) {
	return rt.store.UserByEmail(ctx, email)
}

// Users lists user summaries (admin API).
func (rt *Runtime) Users(ctx context.Context, q session.UserQuery) (session.UserPage, error) {
	return rt.store.Users(ctx, q)
}

// Events queries the activity log (admin API).
func (rt *Runtime) Events(ctx context.Context, f activity.Filter) (activity.Page, error) {
	return rt.events.Query(ctx, f)
}

// ExportEvents calls each with every event f matches, newest first, in
// one pass where the store can (activity.Export).
func (rt *Runtime) ExportEvents(ctx context.Context, f activity.Filter, each func(*activity.Event) error) error {
	return activity.Export(ctx, rt.events, f, each)
}

// Counter is the event store's counts for the chart (activity.Counter),
// or nil when it keeps none.
func (rt *Runtime) Counter() activity.Counter {
	c, _ := rt.events.(activity.Counter)
	return c
}

// ReportError hands a failure that did not fail a request (or was
// answered with a generic 500) to the error callback.
func (rt *Runtime) ReportError(err error) { rt.cfg.OnError(err) }

// Now is the runtime's clock.
func (rt *Runtime) Now() time.Time { return rt.cfg.Now() }
