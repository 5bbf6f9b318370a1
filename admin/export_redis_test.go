package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/gateway"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
	"github.com/gatehouse-proxy/gatehouse/internal/store/redisstore"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// redisRuntime is a runtime on a real Redis.
func redisRuntime(t testing.TB) *gateway.Runtime {
	t.Helper()
	st, err := redisstore.New(redisstore.Options{URL: "redis://" + testredis.Start(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rt, err := gateway.NewRuntime(gateway.RuntimeConfig{Store: st, Events: st, Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// Issue 8, item 3, on a real Redis: hostile values come back from the
// stream as they went in and leave neutralised; the export walks the
// stream's cursors past a page; the masked export hides them.
func TestEventsCSVRedis(t *testing.T) {
	rt := redisRuntime(t)
	ctx := context.Background()
	hostile := "=cmd|' /C calc'!A0,\"x\"\r\n+1\t@2"
	now := time.Now().UTC()
	for i := range activity.MaxLimit + 3 {
		rt.Record(ctx, activity.Event{Time: now.Add(-time.Duration(i) * time.Millisecond), Type: activity.LoginFailed,
			Site: "a.example", User: hostile, Email: "-mallory@example.com", IP: "2001:db8:5:6::7", Reason: "@r"})
	}
	api := NewAPI(rt, "/gatehouse")
	w := httptest.NewRecorder()
	api.ServeHTTP(w, httptest.NewRequest("GET", "/gatehouse/events.csv?type=login_failed", nil))
	rows := csvRows(t, w)
	if len(rows) != activity.MaxLimit+3 {
		t.Fatalf("%d rows, want %d", len(rows), activity.MaxLimit+3)
	}
	// encoding/csv reads a quoted \r\n as \n.
	wantUser := "'" + strings.ReplaceAll(hostile, "\r\n", "\n")
	if got := column(rows, "user")[0]; got != wantUser {
		t.Errorf("user = %q, want %q", got, wantUser)
	}
	if got := column(rows, "email")[0]; got != "'-mallory@example.com" {
		t.Errorf("email = %q", got)
	}
	w = httptest.NewRecorder()
	api.ServeHTTP(w, httptest.NewRequest("GET", "/gatehouse/events.csv?type=login_failed&mask=true", nil))
	body := w.Body.String()
	if strings.Contains(body, "mallory") || strings.Contains(body, "calc") || strings.Contains(body, "2001:db8:5:6::7") {
		t.Error("masked export shows the user, the email or the address")
	}
	if got := column(csvRows(t, w), "ip")[0]; got != "2001:db8:5::/48" {
		t.Errorf("masked ip = %q, want 2001:db8:5::/48", got)
	}
	p, err := rt.Events(ctx, activity.Filter{Types: []string{activity.AdminExport}})
	if err != nil || len(p.Items) != 2 || p.Items[0].Detail != "events.csv?mask=true&type=login_failed" {
		t.Errorf("admin_export events = %+v, %v", p.Items, err)
	}
}

// discard counts what an export writes.
type discard struct {
	n int64
	h http.Header
}

func (d *discard) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}
func (d *discard) Write(b []byte) (int, error) { d.n += int64(len(b)); return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkEventsCSV measures export throughput (SPEC: ≥ 100k rows/s in
// constant memory) over 100,000 events in memory; with
// GATEHOUSE_BENCH_REDIS=1, on a real Redis. The heap after the export is
// reported: it must not grow with the rows.
//
//	go test ./admin -run '^$' -bench EventsCSV -benchtime 3x
func BenchmarkEventsCSV(b *testing.B) {
	const n = 100_000
	var rt *gateway.Runtime
	if testing.Short() {
		b.Skip("short")
	}
	if redisBench() {
		rt = redisRuntime(b)
	} else {
		st := memstore.New(memstore.Options{EventMaxLen: n})
		var err error
		if rt, err = gateway.NewRuntime(gateway.RuntimeConfig{Store: st, Events: st, Secret: []byte("0123456789abcdef0123456789abcdef")}); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	now := time.Now().UTC()
	for i := range n {
		rt.Record(ctx, activity.Event{Time: now.Add(-time.Duration(i) * time.Millisecond), Type: activity.LoginSucceeded,
			User: fmt.Sprintf("user-%d", i%5000), Email: fmt.Sprintf("user-%d@example.com", i%5000), Site: "a.example",
			IP: fmt.Sprintf("192.0.2.%d", i%250), City: "Amsterdam", Country: "NL", Device: "Firefox on Linux", SessionID: "sid"})
	}
	api := NewAPI(rt, "/gatehouse")
	b.ResetTimer()
	var ms runtime.MemStats
	for b.Loop() {
		d := &discard{}
		api.ServeHTTP(d, httptest.NewRequest("GET", "/gatehouse/events.csv?type=login_succeeded", nil))
		if d.n < n*50 {
			b.Fatalf("export wrote %d bytes", d.n)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}

func redisBench() bool { return os.Getenv("GATEHOUSE_BENCH_REDIS") == "1" }
