// Package caddymodule is the Caddy glue of gatehouse: the global app
// "gatehouse", the HTTP handler "http.handlers.gatehouse", their Caddyfile
// syntax, the routes on Caddy's admin endpoint, the CLI subcommands and the
// logging of activity events. The request flow itself lives in
// internal/gateway and knows nothing of Caddy.
package caddymodule

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/alerts"
	"github.com/gatehouse-proxy/gatehouse/internal/gateway"
	"github.com/gatehouse-proxy/gatehouse/internal/geo"
	"github.com/gatehouse-proxy/gatehouse/internal/policy"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the global gatehouse app: the session store, event log and keys
// that every protected site of this instance shares.
type App struct {
	// Store is where sessions and events live: "memory" (the default; one
	// instance only, lost on restart) or a Redis URL: redis://, rediss://
	// (TLS), redis-sentinel://host:port,host:port/master, or
	// redis-cluster://host:port,host:port. Placeholders such as {env.X}
	// are expanded.
	Store string `json:"store,omitempty"`

	// Secret (at least 32 bytes) seals the ID token kept for sign-out, the
	// signing keys of jwt_header assertions,
	// and protects sign-in state and page forms. Required with a Redis
	// store, and the same on every instance; with the memory store a
	// random one is made per process. Use a placeholder:
	// {env.GATEHOUSE_SECRET}.
	Secret string `json:"secret,omitempty"`

	// GeoIP is the path of a MaxMind-format City database (GeoLite2-City,
	// GeoIP2-City, or compatible). It fills the location of sessions and
	// events and enables allow_country / deny_country. The file is checked
	// every minute and reloaded when replaced (as geoipupdate does).
	// Default: none; locations stay empty.
	GeoIP string `json:"geoip,omitempty"`

	// CacheTTL bounds how long an instance trusts a cached session without
	// asking the store; ends are also pushed to every instance at once.
	// Default: 5s. In the Caddyfile, "cache_ttl 0" turns the cache off
	// (every request reads the store); in JSON that is 1 (a nanosecond),
	// as 0 means the default.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	// TouchInterval throttles writes of a session's last access; each site
	// caps it at a quarter of its idle_timeout. Default: 30s.
	TouchInterval caddy.Duration `json:"touch_interval,omitempty"`

	// Retention is how long activity events are kept. Default: 90d.
	Retention caddy.Duration `json:"retention,omitempty"`

	// Timezone is the IANA name of the zone the pages show times in
	// ("Europe/Amsterdam"), named on the page; the API and the CSV are
	// always UTC. Default: UTC.
	Timezone string `json:"timezone,omitempty"`

	// MaxEvents is a hard cap on the number of activity events kept, in
	// events, whatever their age: a safety net behind retention, so that
	// a flood cannot fill the store. Redis trims the stream
	// approximately (XADD MAXLEN ~), the oldest events first.
	// Default: 5,000,000 with Redis (redisstore.DefaultEventMaxLen, about
	// 1 GiB: 90 days of 50,000 events a day) and 100,000 in memory
	// (memstore.DefaultEventMaxLen). The memory store lives as long
	// as the process, across config reloads, so a changed value takes
	// effect there on the next start.
	MaxEvents int64 `json:"max_events,omitempty"`

	// AllowIP lists the client ranges (CIDR or address) that may use any
	// site of this instance; it applies before each site's own allow_ip
	// and deny_ip, so a site cannot admit an address outside it.
	// Default: all.
	AllowIP []string `json:"allow_ip,omitempty"`
	// DenyIP lists client ranges refused on every site, whatever the
	// site allows. Refusals are access_denied events with reason
	// ip_restricted, as a site's own.
	DenyIP []string `json:"deny_ip,omitempty"`

	// AlertWebhook receives a JSON POST per alert (each anomaly, and each
	// event of the AlertOn types): a Slack-compatible "text" and the
	// event's fields. Delivery is in the background: a bounded queue,
	// retries with backoff, at most once across instances. Placeholders
	// are expanded. Default: none.
	AlertWebhook string `json:"alert_webhook,omitempty"`
	// AlertOn lists event types posted to AlertWebhook besides anomalies.
	// Default: none.
	AlertOn []string `json:"alert_on,omitempty"`
	// Alerts configures the anomaly rules. Default: every rule on with
	// its default threshold.
	Alerts *AlertRules `json:"alerts,omitempty"`

	rt          *gateway.Runtime
	stores      *storeHandle
	geo         *geo.DB
	logger      *zap.Logger
	unrouteLogs func()
	unmetrics   func()
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "gatehouse",
		New: func() caddy.Module { return new(App) },
	}
}

// Defaults of the app.
const (
	defaultCacheTTL      = 5 * time.Second
	defaultTouchInterval = 30 * time.Second
	defaultRetention     = 90 * 24 * time.Hour
)

// Provision sets up the store and runtime. It does no network I/O:
// clients connect lazily, so `caddy validate` works offline.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	storeURL := strings.TrimSpace(repl.ReplaceKnown(a.Store, ""))
	secret := repl.ReplaceKnown(a.Secret, "")
	if a.CacheTTL == 0 {
		a.CacheTTL = caddy.Duration(defaultCacheTTL)
	}
	if a.TouchInterval == 0 {
		a.TouchInterval = caddy.Duration(defaultTouchInterval)
	}
	if a.Retention == 0 {
		a.Retention = caddy.Duration(defaultRetention)
	}
	if err := a.validate(storeURL, secret); err != nil {
		return err
	}
	network, err := a.network()
	if err != nil {
		return err
	}
	rules, webhook, err := a.alertConfig(repl)
	if err != nil {
		return err
	}
	zone, err := loadZone(a.Timezone)
	if err != nil {
		return fmt.Errorf("gatehouse: timezone: %w", err)
	}
	a.unrouteLogs = routeRedisLogs(a.logger)
	h, err := openStore(storeURL, a.MaxEvents)
	if err != nil {
		return err
	}
	a.stores = h
	if h.maxEvents != a.MaxEvents {
		a.logger.Warn("max_events changed; the memory store keeps its cap until the process restarts",
			zap.Int64("configured", a.MaxEvents), zap.Int64("in_effect", h.maxEvents))
	}
	if secret == "" {
		// Only the memory store gets here; its secret lives as long as
		// the store itself, across config reloads.
		secret = h.secret
	}
	var locate func(netip.Addr) session.Location
	if path := repl.ReplaceKnown(a.GeoIP, ""); path != "" {
		db, err := openGeo(path, a.logger)
		if err != nil {
			return fmt.Errorf("gatehouse: geoip: %w", err)
		}
		a.geo = db
		locate = db.Lookup
	}
	activityLog := a.logger.Named("activity")
	cfg := gateway.RuntimeConfig{
		Store:     h.sessions,
		Events:    h.events,
		Secret:    []byte(secret),
		CacheTTL:  time.Duration(a.CacheTTL),
		Retention: time.Duration(a.Retention),
		Network:   network,
		Location:  zone,
		Locate:    locate,
		Describe:  geo.ParseUserAgent,
		OnEvent:   func(e activity.Event) { logEvent(activityLog, e) },
		OnError: func(err error) {
			a.logger.Error("gatehouse", zap.Error(err))
		},
		Alerts:  rules,
		Webhook: alerts.WebhookConfig{URL: webhook},
		AlertOn: a.AlertOn,
	}
	a.unmetrics, err = instrument(ctx, &cfg)
	if err != nil {
		return err
	}
	rt, err := gateway.NewRuntime(cfg)
	if err != nil {
		// Cleanup, which Caddy calls after a failed Provision, releases
		// the store.
		return err
	}
	a.rt = rt
	return nil
}

func (a *App) validate(storeURL, secret string) error {
	if a.CacheTTL < 0 || a.TouchInterval < 0 || a.Retention < 0 {
		return errors.New("gatehouse: durations must not be negative")
	}
	if a.MaxEvents < 0 {
		return errors.New("gatehouse: max_events must not be negative")
	}
	if secret != "" && len(secret) < session.MinSecretLen {
		return fmt.Errorf("gatehouse: secret must be at least %d bytes, got %d", session.MinSecretLen, len(secret))
	}
	if !isMemory(storeURL) {
		if err := checkStoreURL(storeURL); err != nil {
			return fmt.Errorf("gatehouse: store: %w", err)
		}
		if secret == "" {
			return errors.New("gatehouse: a secret is required with a shared store (all instances must use the same one)")
		}
	}
	return nil
}

// network parses the app's IP rules.
func (a *App) network() (policy.Network, error) {
	var n policy.Network
	var err error
	if n.AllowIP, err = policy.ParsePrefixes(a.AllowIP); err != nil {
		return n, fmt.Errorf("gatehouse: allow_ip: %w", err)
	}
	if n.DenyIP, err = policy.ParsePrefixes(a.DenyIP); err != nil {
		return n, fmt.Errorf("gatehouse: deny_ip: %w", err)
	}
	return n, nil
}

func isMemory(u string) bool { return u == "" || u == "memory" }

// Start begins the background work (revocation subscription, expiry sweep,
// retention).
func (a *App) Start() error {
	a.rt.Start()
	return nil
}

// Stop ends the background work.
func (a *App) Stop() error {
	a.rt.Close()
	return nil
}

// Cleanup releases this config's hold on the shared store and on
// go-redis's log.
func (a *App) Cleanup() error {
	if a.unrouteLogs != nil {
		a.unrouteLogs()
	}
	if a.unmetrics != nil {
		a.unmetrics()
	}
	var err error
	if a.stores != nil {
		_, err = storePool.Delete(a.stores.key)
	}
	if a.geo != nil {
		if _, gerr := geoPool.Delete(a.geo.Path()); err == nil {
			err = gerr
		}
	}
	return err
}

// HasGeoIP reports whether a GeoIP database is configured.
func (a *App) HasGeoIP() bool { return a.geo != nil }

// Runtime returns the shared runtime (for handlers and the admin API).
func (a *App) Runtime() *gateway.Runtime { return a.rt }

func randomSecret() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func logEvent(l *zap.Logger, e activity.Event) {
	fields := []zap.Field{
		zap.String("type", e.Type),
		zap.String("event_id", e.ID),
		zap.Time("time", e.Time),
		zap.String("user", e.User),
		zap.String("email", e.Email),
		zap.String("session_id", e.SessionID),
		zap.String("site", e.Site),
		zap.String("ip", e.IP),
		zap.String("city", e.City),
		zap.String("country", e.Country),
		zap.String("device", e.Device),
		zap.String("reason", e.Reason),
		zap.String("actor", e.Actor),
	}
	if activity.EndsSession(e.Type) {
		fields = append(fields, zap.Int64("inactivity_duration", e.Inactivity), zap.Int64("duration", e.Duration))
	}
	if e.Detail != "" {
		fields = append(fields, zap.String("detail", e.Detail))
	}
	l.Info(e.Type, fields...)
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
