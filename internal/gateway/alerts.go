package gateway

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/alerts"
)

// evalQueue bounds the sign-ins and failures waiting for the anomaly
// rules. Past it they are dropped and counted: a flood must not grow
// memory, and the rules read the store, which a request must not wait on.
const evalQueue = 1024

// alerter runs the anomaly rules and the webhook off the request path:
// Record hands it stored events without blocking.
type alerter struct {
	eval    *alerts.Evaluator // nil: every rule off
	queue   chan activity.Event
	webhook *alerts.Webhook // nil: no alert_webhook
	alertOn []string

	dropped atomic.Uint64
	busy    sync.WaitGroup // queued or being evaluated, for tests
}

// AlertStats counts the anomaly rules' and the webhook's work, for
// metrics.
type AlertStats struct {
	// EvalDropped counts sign-ins and failures not evaluated because the
	// queue was full.
	EvalDropped uint64
	alerts.WebhookStats
}

func (rt *Runtime) initAlerts() {
	a := &rt.alerts
	if rt.cfg.Alerts.Any() {
		a.eval = &alerts.Evaluator{Rules: rt.cfg.Alerts, Events: rt.events, Claims: rt.store, Locate: rt.cfg.Locate}
		a.queue = make(chan activity.Event, evalQueue)
	}
	if rt.cfg.Webhook.URL != "" {
		wc := rt.cfg.Webhook
		if wc.Claims == nil {
			wc.Claims = rt.store
		}
		if wc.OnError == nil {
			wc.OnError = rt.cfg.OnError
		}
		a.webhook = alerts.NewWebhook(wc)
		a.alertOn = rt.cfg.AlertOn
	}
}

func (rt *Runtime) startAlerts(ctx context.Context) {
	a := &rt.alerts
	if a.queue != nil {
		rt.wg.Add(1)
		go func() {
			defer rt.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case e := <-a.queue:
					rt.evaluate(ctx, e)
					a.busy.Done()
				}
			}
		}()
	}
	if a.webhook != nil {
		rt.wg.Add(1)
		go func() {
			defer rt.wg.Done()
			a.webhook.Run(ctx)
		}()
	}
}

// observe is Record's hook for a stored event. It never blocks.
func (rt *Runtime) observe(e activity.Event) {
	a := &rt.alerts
	if a.queue != nil && (e.Type == activity.LoginSucceeded || e.Type == activity.LoginFailed) {
		a.busy.Add(1)
		select {
		case a.queue <- e:
		default:
			a.busy.Done()
			if a.dropped.Add(1)%1000 == 1 {
				rt.cfg.OnError(fmt.Errorf("anomaly rules: queue full, %d events not evaluated so far", a.dropped.Load()))
			}
		}
	}
	if a.webhook != nil && (e.Type == activity.Anomaly || slices.Contains(a.alertOn, e.Type)) {
		a.webhook.Notify(e)
	}
}

func (rt *Runtime) evaluate(ctx context.Context, e activity.Event) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var found []activity.Event
	var err error
	if e.Type == activity.LoginSucceeded {
		found, err = rt.alerts.eval.SignIn(ctx, e)
	} else {
		found, err = rt.alerts.eval.Failure(ctx, e)
	}
	if err != nil {
		rt.cfg.OnError(fmt.Errorf("anomaly rules for %s event %s: %w", e.Type, e.ID, err))
	}
	for _, an := range found {
		rt.Record(ctx, an)
	}
}

// AlertStats returns the counters of the anomaly rules and the webhook.
func (rt *Runtime) AlertStats() AlertStats {
	s := AlertStats{EvalDropped: rt.alerts.dropped.Load()}
	if rt.alerts.webhook != nil {
		s.WebhookStats = rt.alerts.webhook.Stats()
	}
	return s
}

// WaitAlerts blocks until the queued events have been evaluated and their
// alerts delivered or given up (tests).
func (rt *Runtime) WaitAlerts() {
	rt.alerts.busy.Wait()
	if rt.alerts.webhook != nil {
		rt.alerts.webhook.Wait()
	}
}
