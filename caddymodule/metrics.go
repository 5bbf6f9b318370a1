package caddymodule

import (
	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-proxy/gatehouse/internal/gateway"
	"github.com/gatehouse-proxy/gatehouse/internal/metrics"
)

// instrument wires a runtime's configuration to gatehouse's Prometheus
// metrics (internal/metrics) and registers them into the registry Caddy
// made for this config load, which its admin endpoint serves at /metrics.
//
// The collectors are package-level: each config load registers the same
// ones into its own fresh registry, so a reload resets no counter. The
// stores are wrapped to time every call (gatehouse_store_seconds); the
// gauge of active sessions counts in the store itself, unwrapped, so that
// every instance sharing a Redis reports the same number.
//
// The returned func releases this config's hold on the gauge (for
// Cleanup).
func instrument(ctx caddy.Context, cfg *gateway.RuntimeConfig) (release func(), err error) {
	release = func() {}
	if reg := ctx.GetMetricsRegistry(); reg != nil {
		if err := metrics.Register(reg); err != nil {
			return release, err
		}
	}
	if c, ok := cfg.Store.(metrics.SessionCounter); ok {
		release = metrics.CountSessionsWith(c)
	}
	if cfg.Keys == nil {
		// The timed wrapper hides the store's other interfaces.
		cfg.Keys, _ = cfg.Store.(gateway.KeyStore)
	}
	cfg.Store = metrics.TimeSessions(cfg.Store)
	cfg.Events = metrics.TimeEvents(cfg.Events)
	cfg.CountCheck = metrics.SessionCheck
	cfg.CountEvent = metrics.Event
	cfg.Webhook.CountDelivery = metrics.Delivery
	return release, nil
}
