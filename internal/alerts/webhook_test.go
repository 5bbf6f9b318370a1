package alerts

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
)

// startWebhook runs w until the test ends.
func startWebhook(t *testing.T, cfg WebhookConfig) *Webhook {
	t.Helper()
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	w := NewWebhook(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

var alertEvent = activity.Event{
	ID: "1700000000000-0", Time: t0, Type: activity.Anomaly, Reason: ImpossibleTravel,
	User: "alice", Email: "alice@example.com", Site: "app.example.com", IP: "203.0.113.9",
	City: "New York", Country: "US", Actor: activity.ActorSystem,
	Detail: "London, GB then New York, US: 5570 km in 1h0m0s <!channel>",
}

func TestWebhookDelivers(t *testing.T) {
	var got []map[string]any
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s %q", r.Method, r.Header.Get("Content-Type"))
		}
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Error(err)
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	defer srv.Close()
	w := startWebhook(t, WebhookConfig{URL: srv.URL})
	w.Notify(alertEvent)
	w.Wait()
	if len(got) != 1 {
		t.Fatalf("bodies = %d, want 1", len(got))
	}
	b := got[0]
	text, _ := b["text"].(string)
	for _, s := range []string{"anomaly impossible_travel", "alice@example.com", "app.example.com", "203.0.113.9 (New York, US)", "5570 km", "&lt;!channel&gt;"} {
		if !strings.Contains(text, s) {
			t.Errorf("text %q lacks %q", text, s)
		}
	}
	if b["id"] != alertEvent.ID || b["type"] != "anomaly" || b["reason"] != ImpossibleTravel || b["user"] != "alice" || b["detail"] != alertEvent.Detail {
		t.Errorf("body fields = %v", b)
	}
	if s := w.Stats(); s.Delivered != 1 || s.Failed != 0 || s.Retried != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestWebhookRetriesServerErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	w := startWebhook(t, WebhookConfig{URL: srv.URL, Attempts: 5})
	w.Notify(alertEvent)
	w.Wait()
	if calls.Load() != 3 {
		t.Errorf("attempts = %d, want 3 (two 500s, then success)", calls.Load())
	}
	if s := w.Stats(); s.Delivered != 1 || s.Retried != 2 || s.Failed != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestWebhookFailures(t *testing.T) {
	// A dead endpoint: a port nothing listens on any more.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/hooks/SECRET-TOKEN"
	_ = l.Close()
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusNotFound)
	}))
	defer refusing.Close()
	release := make(chan struct{})
	var hangs atomic.Int32
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hangs.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(release)

	tests := []struct {
		name     string
		url      string
		attempts int // made, of the 3 allowed
		wantErr  string
		maxTime  time.Duration
	}{
		{name: "dead endpoint", url: dead, attempts: 3, wantErr: "connect"},
		{name: "refused (4xx) is not retried", url: refusing.URL, attempts: 1, wantErr: "404"},
		// Each attempt ends at the timeout: a hanging endpoint holds a
		// worker for at most attempts × timeout.
		{name: "hanging endpoint", url: hanging.URL, attempts: 3, wantErr: "deadline", maxTime: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errs []error
			var mu sync.Mutex
			w := startWebhook(t, WebhookConfig{URL: tt.url, Attempts: 3, Timeout: 200 * time.Millisecond,
				OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }})
			start := time.Now()
			w.Notify(alertEvent)
			w.Wait()
			if tt.maxTime > 0 && time.Since(start) > tt.maxTime {
				t.Errorf("took %v, want at most %v", time.Since(start), tt.maxTime)
			}
			s := w.Stats()
			if s.Failed != 1 || s.Delivered != 0 || int(s.Retried) != tt.attempts-1 {
				t.Errorf("stats = %+v, want one failure after %d attempts", s, tt.attempts)
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.wantErr) {
				t.Fatalf("errors = %v, want one naming %q", errs, tt.wantErr)
			}
			// The URL may carry a token (Slack's do); it stays out of logs.
			if strings.Contains(errs[0].Error(), "SECRET-TOKEN") {
				t.Errorf("error %q shows the webhook URL", errs[0])
			}
		})
	}
	if hangs.Load() != 3 {
		t.Errorf("hanging endpoint saw %d attempts, want 3", hangs.Load())
	}
}

func TestWebhookQueueFullDrops(t *testing.T) {
	var errs atomic.Int32
	// Not running: nothing drains the queue.
	w := NewWebhook(WebhookConfig{URL: "http://127.0.0.1:1", QueueSize: 2, OnError: func(error) { errs.Add(1) }})
	for i := range 5 {
		ok := w.Notify(alertEvent)
		if ok != (i < 2) {
			t.Errorf("Notify #%d = %v", i, ok)
		}
	}
	if s := w.Stats(); s.Dropped != 3 || errs.Load() != 3 {
		t.Errorf("dropped = %d, errors = %d, want 3 and 3", s.Dropped, errs.Load())
	}
}

// Two instances handed the same alert deliver it once: the first to
// claim it in the store wins.
func TestWebhookClaimsOnce(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		calls.Add(1)
	}))
	defer srv.Close()
	st := memstore.New(memstore.Options{})
	a := startWebhook(t, WebhookConfig{URL: srv.URL, Claims: st})
	b := startWebhook(t, WebhookConfig{URL: srv.URL, Claims: st})
	for i := range 20 {
		e := alertEvent
		e.ID = strings.Repeat("x", i+1)
		a.Notify(e)
		b.Notify(e)
	}
	a.Wait()
	b.Wait()
	if calls.Load() != 20 {
		t.Errorf("deliveries = %d, want 20", calls.Load())
	}
	if sa, sb := a.Stats(), b.Stats(); sa.Skipped+sb.Skipped != 20 || sa.Delivered+sb.Delivered != 20 {
		t.Errorf("stats = %+v, %+v", sa, sb)
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	w := NewWebhook(WebhookConfig{URL: "http://x", Backoff: time.Second, MaxBackoff: 8 * time.Second})
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 10: 8 * time.Second, 70: 8 * time.Second} {
		for range 20 {
			if d := w.backoff(n); d < want/2 || d > want {
				t.Errorf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
}
