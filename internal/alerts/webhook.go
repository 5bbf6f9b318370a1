package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// WebhookConfig configures alert delivery.
type WebhookConfig struct {
	// URL receives one JSON POST per alert.
	URL string
	// Claims makes a delivery happen at most once across instances: an
	// alert is claimed, by its event id, before its first attempt.
	// Nil: no claim (one instance).
	Claims Claimer
	// Client sends the requests. Default: a client of its own.
	Client *http.Client
	// Timeout bounds each attempt, so a hanging endpoint ties a worker up
	// for at most Attempts × Timeout. Default: 5s.
	Timeout time.Duration
	// Attempts is how many times an alert is tried. Default: 5.
	Attempts int
	// Backoff is the wait before the first retry; it doubles per retry up
	// to MaxBackoff, with jitter. Default: 1s, MaxBackoff 30s.
	Backoff, MaxBackoff time.Duration
	// QueueSize bounds the alerts waiting; past it new ones are dropped
	// and counted. Default: 256.
	QueueSize int
	// Workers is how many deliveries run at once. Default: 2.
	Workers int
	// OnError receives failed deliveries and drops.
	OnError func(error)
	// CountDelivery is called with the name of each WebhookStats counter
	// as it grows ("delivered", "failed", "retried", "dropped",
	// "skipped"): for metrics. Default: nothing.
	CountDelivery func(result string)
}

// WebhookStats counts what became of alerts, for metrics.
type WebhookStats struct {
	Delivered uint64 // accepted by the endpoint (2xx)
	Failed    uint64 // given up after the last attempt, or refused (4xx)
	Retried   uint64 // attempts after the first
	Dropped   uint64 // not queued: the queue was full
	Skipped   uint64 // claimed by another instance already
}

// Webhook posts alerts in the background. Notify never blocks.
type Webhook struct {
	cfg   WebhookConfig
	queue chan activity.Event

	delivered, failed, retried, dropped, skipped atomic.Uint64
	// pending counts alerts queued or being delivered, for tests that
	// wait for the queue to drain.
	pending sync.WaitGroup
}

// claimTTL is how long a delivered (or attempted) alert stays claimed:
// longer than any instance could hold it in its queue.
const claimTTL = 24 * time.Hour

// NewWebhook builds a Webhook; Run starts its workers.
func NewWebhook(cfg WebhookConfig) *Webhook {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.OnError == nil {
		cfg.OnError = func(error) {}
	}
	if cfg.CountDelivery == nil {
		cfg.CountDelivery = func(string) {}
	}
	return &Webhook{cfg: cfg, queue: make(chan activity.Event, cfg.QueueSize)}
}

// Notify queues an alert (a stored event: e.ID set). It never blocks:
// when the queue is full the alert is dropped, counted and reported.
func (w *Webhook) Notify(e activity.Event) bool {
	w.pending.Add(1)
	select {
	case w.queue <- e:
		return true
	default:
		w.pending.Done()
		w.count(&w.dropped, "dropped")
		w.cfg.OnError(fmt.Errorf("alert webhook: queue full, dropped %s event %s", e.Type, e.ID))
		return false
	}
}

// Run delivers queued alerts until ctx is done.
func (w *Webhook) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range w.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case e := <-w.queue:
					w.deliver(ctx, e)
					w.pending.Done()
				}
			}
		}()
	}
	wg.Wait()
}

// Wait blocks until every queued alert has been handled (tests).
func (w *Webhook) Wait() { w.pending.Wait() }

// Stats returns the delivery counters.
func (w *Webhook) Stats() WebhookStats {
	return WebhookStats{
		Delivered: w.delivered.Load(),
		Failed:    w.failed.Load(),
		Retried:   w.retried.Load(),
		Dropped:   w.dropped.Load(),
		Skipped:   w.skipped.Load(),
	}
}

// count adds one to c, the counter of Stats named result.
func (w *Webhook) count(c *atomic.Uint64, result string) {
	c.Add(1)
	w.cfg.CountDelivery(result)
}

// errPermanent marks an answer that retrying cannot change.
var errPermanent = errors.New("refused")

func (w *Webhook) deliver(ctx context.Context, e activity.Event) {
	body, err := json.Marshal(Payload(e))
	if err != nil {
		w.count(&w.failed, "failed")
		w.cfg.OnError(fmt.Errorf("alert webhook: encoding %s event %s: %w", e.Type, e.ID, err))
		return
	}
	claimed := w.cfg.Claims == nil
	var last error
	for attempt := range w.cfg.Attempts {
		if attempt > 0 {
			w.count(&w.retried, "retried")
			select {
			case <-ctx.Done():
				return
			case <-time.After(w.backoff(attempt)):
			}
		}
		if !claimed {
			won, err := w.cfg.Claims.ClaimOnce(ctx, "alert:"+e.ID, claimTTL)
			if err != nil {
				last = fmt.Errorf("claiming: %w", err)
				continue
			}
			if !won {
				w.count(&w.skipped, "skipped")
				return
			}
			claimed = true
		}
		last = w.post(ctx, body)
		if last == nil {
			w.count(&w.delivered, "delivered")
			return
		}
		if errors.Is(last, errPermanent) || ctx.Err() != nil {
			break
		}
	}
	w.count(&w.failed, "failed")
	w.cfg.OnError(fmt.Errorf("alert webhook: delivering %s event %s: %w", e.Type, e.ID, last))
}

// backoff is the wait before retry n (1, 2, ...): Backoff doubled per
// retry, capped, and spread over its upper half so that instances that
// failed together do not retry together.
func (w *Webhook) backoff(n int) time.Duration {
	d := w.cfg.Backoff << (n - 1)
	if d <= 0 || d > w.cfg.MaxBackoff {
		d = w.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func (w *Webhook) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatehouse-alerts")
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		// The URL may carry a secret token (Slack's do): say only where
		// it failed, not the full error with the URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("posting: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return fmt.Errorf("%w: endpoint answered %s", errPermanent, resp.Status)
}

// Body is the JSON an alert posts: a Slack-compatible "text", then the
// event's own fields.
type Body struct {
	Text string `json:"text"`
	activity.Event
}

// Payload builds the body posted for e.
func Payload(e activity.Event) Body {
	var b strings.Builder
	b.WriteString("gatehouse: ")
	b.WriteString(e.Type)
	if e.Reason != "" {
		b.WriteString(" " + e.Reason)
	}
	who := e.Email
	if who == "" {
		who = e.User
	}
	if who != "" {
		b.WriteString(" for " + who)
	}
	if e.Site != "" {
		b.WriteString(" on " + e.Site)
	}
	if e.IP != "" {
		b.WriteString(" from " + e.IP)
		if e.City != "" || e.Country != "" {
			b.WriteString(" (" + place(e.City, e.Country) + ")")
		}
	}
	if e.Actor != "" && e.Actor != activity.ActorSystem {
		b.WriteString(" by " + e.Actor)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return Body{Text: slackEscape(b.String()), Event: e}
}

// slackEscape escapes what Slack reads as markup (its message formatting
// rules): a user name "<!channel>" must not ping a channel.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
