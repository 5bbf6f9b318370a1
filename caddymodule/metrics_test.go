package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/gateway"
	"github.com/gatehouse-proxy/gatehouse/internal/metrics"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// scrape reads Caddy's admin endpoint /metrics.
func scrape(t *testing.T, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("scraping: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scraping: %d %s", resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return fams
}

// sample is the value of the series of fam whose label has value v (a
// histogram's sample count); -1 when there is none.
func metricSample(fams map[string]*dto.MetricFamily, name, label, v string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	for _, m := range f.GetMetric() {
		match := label == "" && len(m.GetLabel()) == 0
		for _, l := range m.GetLabel() {
			match = match || (l.GetName() == label && l.GetValue() == v)
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

func labelSet(f *dto.MetricFamily) map[string]bool {
	names := map[string]bool{}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			names[l.GetName()] = true
		}
	}
	return names
}

// TestMetricsThroughCaddy signs in through a real Caddy on a real Redis,
// makes requests, revokes a session, and reads Caddy's admin endpoint
// /metrics: every SPEC metric is there with its label, counting what
// happened. Then a changed config is loaded, and the counters carry on
// from where they were (issue 10, item 1).
func TestMetricsThroughCaddy(t *testing.T) {
	t.Setenv("GH_E2E_SECRET", strings.Repeat("s", 40))
	t.Setenv("GH_E2E_CLIENT_SECRET", "client-secret-from-env")
	storeURL := "redis://" + testredis.Start(t)
	idpSrv, idp := startIDP(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("upstream ok"))
	}))
	defer up.Close()
	var posted atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		posted.Add(1)
	}))
	defer hook.Close()
	listen, admin := freePort(t), freePort(t)
	site := "http://" + listen
	idp.AddClient(devidp.Client{ID: "site", Secret: "client-secret-from-env", RedirectURIs: []string{site + "/.gatehouse/callback"}})

	config := func(touch string) []byte {
		var cfg map[string]any
		if err := json.Unmarshal(siteConfig(t, listen, idpSrv.URL, strings.TrimPrefix(up.URL, "http://"), storeURL, t.TempDir()+"/activity.log"), &cfg); err != nil {
			t.Fatal(err)
		}
		cfg["admin"] = map[string]any{"listen": admin, "config": map[string]any{"persist": false}}
		app := cfg["apps"].(map[string]any)["gatehouse"].(map[string]any)
		app["touch_interval"] = touch
		app["alert_webhook"] = hook.URL
		app["alert_on"] = []string{"session_revoked"}
		// Two users from one address is an anomaly here.
		app["alerts"] = map[string]any{"shared_ip": "2 1h"}
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := caddy.Load(config("30s"), true); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	defer func() { _ = caddy.Stop() }()
	// The counters are the process's: compare with what they were.
	base := scrape(t, admin)
	delta := func(fams map[string]*dto.MetricFamily, name, label, v string) float64 {
		return metricSample(fams, name, label, v) - max(metricSample(base, name, label, v), 0)
	}

	alice, bob := testflow.New(t), testflow.New(t)
	alice.Login(site, "/", "alice")
	bob.Login(site, "/", "bob")
	for range 3 {
		if p := alice.Do(http.MethodGet, site+"/data", nil, false); p.Status != http.StatusOK {
			t.Fatalf("alice's request: %d", p.Status)
		}
	}
	if p := testflow.New(t).Do(http.MethodGet, site+"/data", nil, false); p.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous request: %d", p.Status)
	}
	if p := testflow.New(t).Do(http.MethodGet, site+"/.gatehouse/callback?state=forged&code=x", nil, true); p.Status != http.StatusBadRequest {
		t.Fatalf("forged callback: %d", p.Status)
	}

	// Revoke bob's session through the admin endpoint, as the CLI does.
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	adminDo := func(method, path string) []byte {
		req, _ := http.NewRequest(method, "http://"+admin+path, nil)
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return b
	}
	if err := json.Unmarshal(adminDo(http.MethodGet, "/gatehouse/sessions?user=bob"), &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("bob's sessions: %v %v", list, err)
	}
	adminDo(http.MethodDelete, "/gatehouse/sessions/"+list.Items[0].ID)
	if p := bob.Do(http.MethodGet, site+"/data", nil, false); p.Status != http.StatusUnauthorized {
		t.Fatalf("bob's request after the revocation: %d", p.Status)
	}

	// Alerts and their deliveries are asynchronous.
	var fams map[string]*dto.MetricFamily
	testflow.WaitFor(t, "the shared_ip alert and two deliveries", func() bool {
		fams = scrape(t, admin)
		return delta(fams, metrics.NameAlerts, "rule", "shared_ip") >= 1 &&
			delta(fams, metrics.NameAlertDeliveries, "result", "delivered") >= 2
	})
	labels := map[string]string{
		metrics.NameLogins:          "result",
		metrics.NameSessionChecks:   "result",
		metrics.NameSessionsEnded:   "reason",
		metrics.NameStoreSeconds:    "operation",
		metrics.NameAlerts:          "rule",
		metrics.NameAlertDeliveries: "result",
	}
	checkNames := func(fams map[string]*dto.MetricFamily) {
		t.Helper()
		for _, name := range metrics.Names {
			f, ok := fams[name]
			if !ok {
				t.Errorf("%s missing from /metrics", name)
				continue
			}
			got := labelSet(f)
			if want := labels[name]; (want == "" && len(got) != 0) || (want != "" && (len(got) != 1 || !got[want])) {
				t.Errorf("%s has labels %v, want only %q", name, got, want)
			}
		}
	}
	checkNames(fams)
	atLeast := []struct {
		name, label, value string
		n                  float64
	}{
		{metrics.NameLogins, "result", "success", 2},
		{metrics.NameLogins, "result", "state_mismatch", 1},
		{metrics.NameSessionChecks, "result", "valid", 3},
		{metrics.NameSessionChecks, "result", "none", 1},
		{metrics.NameSessionChecks, "result", "ended", 1},
		{metrics.NameSessionsEnded, "reason", "session_revoked", 1},
		{metrics.NameStoreSeconds, "operation", "create", 2},
		{metrics.NameStoreSeconds, "operation", "delete", 1},
		{metrics.NameStoreSeconds, "operation", "append", 3},
		{metrics.NameAlerts, "rule", "shared_ip", 1},
		{metrics.NameAlertDeliveries, "result", "delivered", 2},
	}
	for _, c := range atLeast {
		if d := delta(fams, c.name, c.label, c.value); d < c.n {
			t.Errorf("%s{%s=%q} grew by %v, want at least %v", c.name, c.label, c.value, d, c.n)
		}
	}
	if d := delta(fams, metrics.NameSessionChecks, "result", "error"); d != 0 {
		t.Errorf("session checks with an error: %v", d)
	}
	// Only alice's session is left, in the Redis every instance shares
	// (the count is cached for a moment).
	waitActive := func(want float64) {
		t.Helper()
		var v float64
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if v = metricSample(scrape(t, admin), metrics.NameSessionsActive, "", ""); v == want {
				return
			}
		}
		t.Errorf("%s = %v, want %v", metrics.NameSessionsActive, v, want)
	}
	waitActive(1)

	// A changed config is a new registry; the counts carry on.
	before := fams
	if err := caddy.Load(config("20s"), false); err != nil {
		t.Fatalf("reloading: %v", err)
	}
	// The old server closes its keep-alive connections.
	alice.Client.CloseIdleConnections()
	bob.Client.CloseIdleConnections()
	if p := alice.Do(http.MethodGet, site+"/data", nil, false); p.Status != http.StatusOK {
		t.Fatalf("alice's request after the reload: %d", p.Status)
	}
	after := scrape(t, admin)
	checkNames(after)
	for _, f := range before {
		if !strings.HasPrefix(f.GetName(), "gatehouse_") || f.GetType() == dto.MetricType_GAUGE {
			continue
		}
		for _, m := range f.GetMetric() {
			l := m.GetLabel()[0]
			was, now := metricSample(before, f.GetName(), l.GetName(), l.GetValue()), metricSample(after, f.GetName(), l.GetName(), l.GetValue())
			if now < was {
				t.Errorf("%s{%s=%q} went from %v to %v across the reload", f.GetName(), l.GetName(), l.GetValue(), was, now)
			}
		}
	}
	if was, now := metricSample(before, metrics.NameSessionChecks, "result", "valid"), metricSample(after, metrics.NameSessionChecks, "result", "valid"); now != was+1 {
		t.Errorf("valid checks %v before the reload, %v after one more request, want %v", was, now, was+1)
	}
	waitActive(1)
	// The new config's gauge counts the store too.
	bob.Login(site, "/", "bob")
	waitActive(2)
	var names []string
	for name := range after {
		if strings.HasPrefix(name, "gatehouse_") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	t.Logf("gatehouse metrics after the reload: %v", names)
}

// The gateway's check results are the metric's label values.
func TestCheckResultsAreLabels(t *testing.T) {
	for _, r := range []string{gateway.CheckValid, gateway.CheckNone, gateway.CheckEnded, gateway.CheckDenied, gateway.CheckError} {
		if !slices.Contains(metrics.CheckResults, r) {
			t.Errorf("gateway check result %q is not a label value of %s", r, metrics.NameSessionChecks)
		}
	}
	if len(metrics.CheckResults) != 5 {
		t.Errorf("metrics.CheckResults = %v, want the gateway's five", metrics.CheckResults)
	}
}

// servedGateway is a gateway on a memory store, instrumented or not, with
// one session and a request carrying its cookie.
func servedGateway(tb testing.TB, instrumented bool) (*gateway.Gateway, *http.Request) {
	tb.Helper()
	st := memstore.New(memstore.Options{})
	cfg := gateway.RuntimeConfig{Store: st, Events: st, Secret: []byte(strings.Repeat("k", 32)), CacheTTL: time.Hour}
	if instrumented {
		release, err := instrument(caddy.Context{}, &cfg)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(release)
	}
	rt, err := gateway.NewRuntime(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Issuer: "http://127.0.0.1:1", ClientID: "bench", IdleTimeout: 30 * time.Minute}, rt)
	if err != nil {
		tb.Fatal(err)
	}
	sec := session.NewSecretFor("alice")
	now := time.Now().UTC().Truncate(time.Millisecond)
	s := &session.Session{
		ID: sec.ID(), User: "alice", Email: "alice@example.com", Site: "app.example.com",
		Groups:    []string{"staff"},
		CreatedAt: now, LastAccess: now, ExpiresAt: now.Add(12 * time.Hour), IdleTimeout: 30 * time.Minute,
		IP: "192.0.2.10", LastIP: "192.0.2.10",
	}
	if err := st.Create(context.Background(), s); err != nil {
		tb.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, "http://app.example.com/reports", nil)
	r.Header.Set("Cookie", "_ga=GA1.2.3; gatehouse="+sec.Cookie()+"; theme=dark")
	r.RemoteAddr = "192.0.2.10:50000"
	return g, r
}

// serveOnce is one warm request through Serve, with the request's headers
// fresh as a server would give them.
func serveOnce(tb testing.TB, g *gateway.Gateway, r *http.Request, cookie string) {
	r.Header = http.Header{"Cookie": {cookie}}
	if s := g.Serve(nil, r); s == nil {
		tb.Fatal("no session")
	}
}

// Metrics add no allocation to a warm request (SPEC: a warm session check
// makes at most 4).
func TestMetricsAddNoAllocation(t *testing.T) {
	allocs := func(instrumented bool) float64 {
		g, r := servedGateway(t, instrumented)
		cookie := r.Header.Get("Cookie")
		serveOnce(t, g, r, cookie) // fills the cache
		return testing.AllocsPerRun(200, func() { serveOnce(t, g, r, cookie) })
	}
	plain, counted := allocs(false), allocs(true)
	if counted > plain {
		t.Errorf("a warm request makes %v allocations with metrics, %v without", counted, plain)
	}
	t.Logf("allocations per warm request: %v without metrics, %v with", plain, counted)
}

// BenchmarkServeWarmMetrics is gateway's BenchmarkServeWarm with and
// without the metrics wired as caddymodule wires them:
//
//	go test -run '^$' -bench ServeWarmMetrics ./caddymodule
func BenchmarkServeWarmMetrics(b *testing.B) {
	for _, instrumented := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", instrumented), func(b *testing.B) {
			g, r := servedGateway(b, instrumented)
			cookie := r.Header.Get("Cookie")
			serveOnce(b, g, r, cookie)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				serveOnce(b, g, r, cookie)
			}
		})
	}
}

// The dashboard in docs/ is valid JSON, and its queries use only the
// metrics gatehouse exports, every one of them.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}
	var exprs []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(dash)
	if len(exprs) == 0 {
		t.Fatal("no queries in the dashboard")
	}
	// A metric name in PromQL: an identifier not followed by "(" (a
	// function) nor inside braces or brackets. The query language's own
	// words are few; any other identifier must be ours.
	ident := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promql := map[string]bool{
		"sum": true, "rate": true, "increase": true, "by": true, "histogram_quantile": true,
		"le": true, "max": true, "without": true, "or": true, "and": true, "on": true,
	}
	used := map[string]bool{}
	for _, e := range exprs {
		// Drop label matchers, ranges and grouping lists.
		bare := regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]|\$\w+|\b(by|without)\s*\([^)]*\)`).ReplaceAllString(e, " ")
		found := false
		for _, id := range ident.FindAllString(bare, -1) {
			if promql[id] {
				continue
			}
			if !strings.HasPrefix(id, "gatehouse_") {
				if _, err := fmt.Sscan(id, new(float64)); err == nil {
					continue
				}
				t.Errorf("query %q uses %q, not a gatehouse metric", e, id)
				continue
			}
			name := id
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base := strings.TrimSuffix(id, suffix); base != id && base == metrics.NameStoreSeconds {
					name = base
				}
			}
			if !slices.Contains(metrics.Names, name) {
				t.Errorf("query %q uses %q, which gatehouse does not export", e, id)
			}
			used[name] = true
			found = true
		}
		if !found {
			t.Errorf("query %q uses no gatehouse metric", e)
		}
	}
	for _, name := range metrics.Names {
		if !used[name] {
			t.Errorf("the dashboard has no panel on %s", name)
		}
	}
}
