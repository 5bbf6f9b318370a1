package metrics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
	"github.com/gatehouse-proxy/gatehouse/internal/store/redisstore"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// gather registers the collectors into a fresh registry, as a config
// load does, and returns its families by name.
func gather(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := Register(reg); err != nil {
		t.Fatalf("Register: %v", err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily)
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// labelValues returns the values of label name over the family's series.
func labelValues(f *dto.MetricFamily, name string) []string {
	var vs []string
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				vs = append(vs, l.GetValue())
			}
		}
	}
	sort.Strings(vs)
	return vs
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func TestRegisterTwiceAndIntoEveryRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := Register(reg); err != nil {
		t.Fatalf("Register: %v", err)
	}
	if err := Register(reg); err != nil {
		t.Fatalf("Register again into the same registry: %v", err)
	}
	// Another collector under one of our names is a real conflict.
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: NameLogins, Help: "x"})
	reg2 := prometheus.NewRegistry()
	reg2.MustRegister(other)
	if err := Register(reg2); err == nil {
		t.Error("Register over a foreign collector of the same name: no error")
	}
}

// A reload is a new registry: the counts carry over, as the collectors do.
func TestCountsSurviveANewRegistry(t *testing.T) {
	before := testutil.ToFloat64(logins.WithLabelValues(LoginSuccess))
	gather(t)
	Event(activity.LoginSucceeded, "")
	fams := gather(t) // the "reloaded" registry
	var got float64
	for _, m := range fams[NameLogins].GetMetric() {
		if m.GetLabel()[0].GetValue() == LoginSuccess {
			got = m.GetCounter().GetValue()
		}
	}
	if got != before+1 {
		t.Errorf("logins{success} in a new registry = %v, want %v", got, before+1)
	}
}

func TestEveryNameWithItsLabels(t *testing.T) {
	release := CountSessionsWith(memstore.New(memstore.Options{}))
	defer release()
	fams := gather(t)
	tests := []struct {
		name, label string
		values      []string
		typ         dto.MetricType
	}{
		{NameSessionsActive, "", nil, dto.MetricType_GAUGE},
		{NameLogins, "result", LoginResults, dto.MetricType_COUNTER},
		{NameSessionChecks, "result", CheckResults, dto.MetricType_COUNTER},
		{NameSessionsEnded, "reason", EndReasons, dto.MetricType_COUNTER},
		{NameStoreSeconds, "operation", StoreOperations, dto.MetricType_HISTOGRAM},
		{NameAlerts, "rule", AlertRules, dto.MetricType_COUNTER},
		{NameAlertDeliveries, "result", DeliveryResults, dto.MetricType_COUNTER},
	}
	if len(tests) != len(Names) {
		t.Fatalf("%d names tested, %d exported", len(tests), len(Names))
	}
	for _, tt := range tests {
		f, ok := fams[tt.name]
		if !ok {
			t.Errorf("%s missing from the scrape", tt.name)
			continue
		}
		if f.GetType() != tt.typ {
			t.Errorf("%s is a %v, want %v", tt.name, f.GetType(), tt.typ)
		}
		if tt.label == "" {
			if n := len(f.GetMetric()); n != 1 || len(f.GetMetric()[0].GetLabel()) != 0 {
				t.Errorf("%s: %d series, want 1 without labels", tt.name, n)
			}
			continue
		}
		if got, want := labelValues(f, tt.label), sorted(tt.values); !slices.Equal(got, want) {
			t.Errorf("%s{%s} = %v, want %v", tt.name, tt.label, got, want)
		}
	}
}

func TestEventLabels(t *testing.T) {
	tests := []struct {
		typ, reason string
		counter     prometheus.Counter
	}{
		{activity.LoginSucceeded, "", logins.WithLabelValues(LoginSuccess)},
		{activity.LoginFailed, activity.ReasonStateMismatch, logins.WithLabelValues("state_mismatch")},
		{activity.LoginFailed, activity.ReasonMFARequired, logins.WithLabelValues("mfa_required")},
		{activity.LoginFailed, "some new reason", logins.WithLabelValues(Other)},
		{activity.Logout, "", ended.WithLabelValues("logout")},
		{activity.SessionRevoked, "", ended.WithLabelValues("session_revoked")},
		{activity.ExpiredIdle, "", ended.WithLabelValues("session_expired_idle")},
		{activity.EndedNewLogin, "", ended.WithLabelValues("session_ended_new_login")},
		{activity.BackchannelLogout, "", ended.WithLabelValues("backchannel_logout")},
		{activity.Anomaly, "impossible_travel", alertCount.WithLabelValues("impossible_travel")},
		{activity.Anomaly, "made up", alertCount.WithLabelValues(Other)},
	}
	for _, tt := range tests {
		before := testutil.ToFloat64(tt.counter)
		Event(tt.typ, tt.reason)
		if got := testutil.ToFloat64(tt.counter); got != before+1 {
			t.Errorf("Event(%q, %q): counter went from %v to %v, want +1", tt.typ, tt.reason, before, got)
		}
	}
	// Types that are neither logins, ends nor anomalies count nowhere, and
	// no label value is ever made from what a client sent.
	want := map[string]int{NameLogins: len(LoginResults), NameSessionsEnded: len(EndReasons), NameAlerts: len(AlertRules)}
	Event(activity.AccessDenied, "ip_restricted")
	Event(activity.AdminExport, "")
	Event("made_up_type", "x")
	Event(activity.LoginFailed, "<script>")
	fams := gather(t)
	for name, n := range want {
		if got := len(fams[name].GetMetric()); got != n {
			t.Errorf("%s has %d series after odd events, want %d", name, got, n)
		}
	}
}

func TestSessionCheckAndDeliveryLabels(t *testing.T) {
	for _, r := range CheckResults {
		c := checks.WithLabelValues(r)
		before := testutil.ToFloat64(c)
		SessionCheck(r)
		if got := testutil.ToFloat64(c); got != before+1 {
			t.Errorf("SessionCheck(%q): %v → %v", r, before, got)
		}
	}
	for _, r := range DeliveryResults {
		c := deliveries.WithLabelValues(r)
		before := testutil.ToFloat64(c)
		Delivery(r)
		if got := testutil.ToFloat64(c); got != before+1 {
			t.Errorf("Delivery(%q): %v → %v", r, before, got)
		}
	}
	Delivery("made up")
	if n := testutil.CollectAndCount(deliveries); n != len(DeliveryResults) {
		t.Errorf("deliveries has %d series, want %d", n, len(DeliveryResults))
	}
}

// The counting functions run on every request: they must not allocate
// (SPEC: a warm session check makes at most 4 allocations in all).
func TestCountingDoesNotAllocate(t *testing.T) {
	st := TimeSessions(memstore.New(memstore.Options{}))
	ctx := context.Background()
	tests := []struct {
		name string
		f    func()
	}{
		{"SessionCheck", func() { SessionCheck(CheckValid) }},
		{"Event login", func() { Event(activity.LoginFailed, activity.ReasonIDPError) }},
		{"Event end", func() { Event(activity.ExpiredIdle, "") }},
		{"Delivery", func() { Delivery(DeliveryDelivered) }},
		{"timed Claimed", func() { _, _ = st.Claimed(ctx, "k") }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tt.name, n)
		}
	}
}

func newSession(t *testing.T, user string) *session.Session {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &session.Session{
		ID: session.NewSecretFor(user).ID(), User: user, Site: "app.example.com",
		CreatedAt: now, LastAccess: now, ExpiresAt: now.Add(time.Hour),
		IP: "192.0.2.10", LastIP: "192.0.2.10",
	}
}

// histCount is how many calls of op the histogram has seen.
func histCount(t *testing.T, op string) uint64 {
	t.Helper()
	var m dto.Metric
	if err := storeSeconds.WithLabelValues(op).(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

func TestTimedStores(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New(memstore.Options{})
	st := TimeSessions(mem)
	s := newSession(t, "alice")
	calls := []struct {
		op string
		f  func() error
	}{
		{"create", func() error { return st.Create(ctx, s) }},
		{"get", func() error { _, err := st.Get(ctx, s.ID); return err }},
		{"touch", func() error { return st.Touch(ctx, s.ID, session.Access{At: time.Now()}) }},
		{"list", func() error { _, err := st.List(ctx, session.Query{}); return err }},
		{"users", func() error { _, err := st.Users(ctx, session.UserQuery{}); return err }},
		{"due", func() error { _, err := st.Due(ctx, time.Now(), 10); return err }},
		{"claim_once", func() error { _, err := st.ClaimOnce(ctx, "k", time.Minute); return err }},
		{"set_reauth", func() error { return st.SetReauth(ctx, "alice", time.Now()) }},
		{"reauth", func() error { _, err := st.Reauth(ctx, "alice"); return err }},
		{"add_site", func() error { return st.AddSite(ctx, "app.example.com", "x") }},
		{"site_scopes", func() error { _, err := st.SiteScopes(ctx); return err }},
		{"delete", func() error { _, err := st.Delete(ctx, s.ID); return err }},
	}
	for _, c := range calls {
		if !slices.Contains(StoreOperations, c.op) {
			t.Errorf("operation %q is not in StoreOperations", c.op)
		}
		before := histCount(t, c.op)
		if err := c.f(); err != nil {
			t.Fatalf("%s: %v", c.op, err)
		}
		if got := histCount(t, c.op); got != before+1 {
			t.Errorf("%s: %d observations, want %d", c.op, got, before+1)
		}
	}
	// Errors pass through unchanged, and are timed too.
	before := histCount(t, "get")
	if _, err := st.Get(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get of an ended session = %v, want ErrNotFound", err)
	}
	if histCount(t, "get") != before+1 {
		t.Error("a failed Get was not timed")
	}

	ev := TimeEvents(mem)
	if _, ok := ev.(activity.HistoryStore); !ok {
		t.Fatal("TimeEvents hides the memory store's login history")
	}
	before = histCount(t, "append")
	if err := ev.Append(ctx, &activity.Event{Type: activity.LoginSucceeded, User: "alice", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := ev.Query(ctx, activity.Filter{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ev.(activity.HistoryStore).History(ctx, activity.HistoryFilter{}); err != nil {
		t.Fatal(err)
	}
	if histCount(t, "append") != before+1 {
		t.Error("Append was not timed")
	}
	// A store's one-pass export stays reachable through the wrapper.
	x := &exporter{Store: mem}
	before = histCount(t, "export")
	if err := activity.Export(ctx, TimeEvents(x), activity.Filter{}, func(*activity.Event) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if x.calls != 1 || histCount(t, "export") != before+1 {
		t.Errorf("export through the wrapper: %d calls of the store's Export, %d observations", x.calls, histCount(t, "export")-before)
	}
	if _, ok := TimeEvents(plainEvents{mem}).(activity.HistoryStore); ok {
		t.Error("TimeEvents of a store without history claims to keep one")
	}
}

// plainEvents is an event store without login history.
type plainEvents struct{ activity.Store }

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func activeValue(t *testing.T, a *activeCollector) (float64, bool) {
	t.Helper()
	v, ok := a.current()
	return v, ok
}

func TestActiveSessionsFromTheStore(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	a := newActiveCollector(clock.now)
	if _, ok := activeValue(t, a); ok {
		t.Error("a value without any store")
	}
	mem := memstore.New(memstore.Options{})
	release := a.use(mem)
	for _, u := range []string{"alice", "bob"} {
		if err := mem.Create(ctx, newSession(t, u)); err != nil {
			t.Fatal(err)
		}
	}
	if v, ok := activeValue(t, a); !ok || v != 2 {
		t.Errorf("active = %v, %v; want 2", v, ok)
	}
	// Cached for activeMaxAge, then counted again.
	if err := mem.Create(ctx, newSession(t, "carol")); err != nil {
		t.Fatal(err)
	}
	if v, _ := activeValue(t, a); v != 2 {
		t.Errorf("active within the cache age = %v, want the cached 2", v)
	}
	clock.t = clock.t.Add(activeMaxAge)
	if v, _ := activeValue(t, a); v != 3 {
		t.Errorf("active after the cache age = %v, want 3", v)
	}

	// A newer config's store takes over at once; releasing it hands back.
	mem2 := memstore.New(memstore.Options{})
	release2 := a.use(mem2)
	if v, _ := activeValue(t, a); v != 0 {
		t.Errorf("active of the new store = %v, want 0", v)
	}
	release2()
	release2() // twice is harmless
	if v, _ := activeValue(t, a); v != 3 {
		t.Errorf("active back on the old store = %v, want 3", v)
	}
	release()
	if _, ok := activeValue(t, a); ok {
		t.Error("a value after every store was released")
	}
}

// With Redis the count is the store's, so every instance sharing it
// reports the same number, and a store that cannot count is reported as
// missing, not as zero, once its last count is stale.
func TestActiveSessionsRedis(t *testing.T) {
	ctx := context.Background()
	addr := testredis.Start(t)
	open := func(url string) *redisstore.Store {
		st, err := redisstore.New(redisstore.Options{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	one, two := open("redis://"+addr), open("redis://"+addr)
	// Enough sessions to need several index buckets (of up to 128
	// entries) in every one of the 16 shards.
	const n = 2600
	for i := range n {
		st := one
		if i%2 == 1 {
			st = two
		}
		if err := st.Create(ctx, newSession(t, fmt.Sprintf("user%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range []*redisstore.Store{one, two} {
		got, err := st.CountSessions(ctx)
		if err != nil || got != n {
			t.Errorf("CountSessions = %d, %v; want %d", got, err, n)
		}
	}
	page, err := one.List(ctx, session.Query{Limit: 1})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("List: %v", err)
	}
	if _, err := two.Delete(ctx, page.Items[0].ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := one.CountSessions(ctx); got != n-1 {
		t.Errorf("CountSessions after a delete on another instance = %d, want %d", got, n-1)
	}

	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	a := newActiveCollector(clock.now)
	defer a.use(one)()
	if v, ok := activeValue(t, a); !ok || v != n-1 {
		t.Errorf("active = %v, %v; want %d", v, ok, n-1)
	}

	// A Redis that goes away: the last count is reported while fresh
	// enough, then the gauge is left out; a count never hangs a scrape.
	srv := testredis.StartServer(t)
	gone := open("redis://" + srv.Addr())
	if err := gone.Create(ctx, newSession(t, "dave")); err != nil {
		t.Fatal(err)
	}
	b := newActiveCollector(clock.now)
	defer b.use(gone)()
	if v, ok := activeValue(t, b); !ok || v != 1 {
		t.Fatalf("active = %v, %v; want 1", v, ok)
	}
	srv.Stop()
	clock.t = clock.t.Add(activeMaxAge)
	start := time.Now()
	if v, ok := activeValue(t, b); !ok || v != 1 {
		t.Errorf("active just after the store went away = %v, %v; want the last count, 1", v, ok)
	}
	if d := time.Since(start); d > activeTimeout+time.Second {
		t.Errorf("counting on a dead store took %v, want at most about %v", d, activeTimeout)
	}
	clock.t = clock.t.Add(activeStale)
	if v, ok := activeValue(t, b); ok {
		t.Errorf("active a minute after the store went away = %v, want no value", v)
	}
}

// exporter is an event store with a one-pass export that counts its calls.
type exporter struct {
	*memstore.Store
	calls int
}

func (x *exporter) Export(ctx context.Context, f activity.Filter, each func(*activity.Event) error) error {
	x.calls++
	return activity.Pages(ctx, x.Query, f, each)
}
