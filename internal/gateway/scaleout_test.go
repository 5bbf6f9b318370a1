package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/redisstore"
	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// The load test of issue 9, item 6: eight gateway instances on loopback,
// each a Runtime and Gateway with its own Redis client, in front of one
// site behind a notional load balancer, sharing one 3-master Cluster and
// one development provider. Users sign in through the provider's real
// flow; then requests go to random instances (cache hits, and misses on
// the two instances whose cache_ttl is 1ms and on first sight
// elsewhere); then a mix of requests, sign-ins and revocations, each
// revocation made on one instance and timed until every other instance
// has dropped the session (the subscription callback's return, after
// which a request is refused: checked).
//
// TestScaleOut is the reduced form CI runs; BenchmarkScaleOut the larger
// one, which prints the figures docs/capacity.md quotes:
//
//	go test -run '^$' -bench ScaleOut -benchtime 1x ./internal/gateway/
//
// Both check the SPEC's targets: on 3 masters none holds more than half
// of the keys or takes more than half of the writes, a revocation is
// seen by every other instance within 50 ms at p99, and no request or
// background task fails. They also predict each master's commands and
// CPU from the store calls the instances made, at the per-call costs of
// docs/capacity.md (scaleOutCosts) and at costs calibrated on the same
// cluster after the load, report both against the measurement, and
// check that the calibrated commands are within 25 %.

// scaleOutSite is the site's host as the browsers know it: every instance
// serves it, as behind a load balancer; a browser's connections go to the
// instance its sign-in started on.
const (
	scaleOutSite    = "app.example.com"
	scaleOutSiteURL = "http://" + scaleOutSite
)

type loadConfig struct {
	instances int
	users     int           // each signs in once in the first phase
	requests  int           // requests of the second phase
	mix       int           // operations of the third phase
	workers   int           // concurrent clients
	idle      time.Duration // how long the masters' idle upkeep is measured
	calibrate int           // calls of each store operation in the calibration
}

// scaleOut is the system under test.
type scaleOut struct {
	// subjects maps login names to the provider's subjects (lists).
	subjects sync.Map
	tb       testing.TB
	cfg      loadConfig
	cluster  *testredis.Cluster
	masters  []string // addresses, by slot range
	// groupMaster is the master of each session group's shard, and of
	// the "{gh}" tag (the sites registry, signing keys) at tagGroup.
	groupMaster [tagGroup + 1]int
	groupSlot   [session.Groups]int64
	idpSrv      *httptest.Server
	users       []string // usernames of the load
	warm        []string // usernames of the warm-up
	inst        []*gatewayInstance
	client      *http.Client
	watch       endWatch
	pool        livePool

	errMu sync.Mutex
	errs  []error
}

// Per-group counters: the groups, then calls that touch every shard,
// then calls on the "{gh}" tag.
const (
	allGroups = session.Groups
	tagGroup  = session.Groups + 1
)

type gatewayInstance struct {
	n     int
	addr  string
	store *countedStore
	rt    *Runtime
	gw    *Gateway
	srv   *httptest.Server
	ready chan struct{} // closed once its subscription listens
}

func (so *scaleOut) fail(err error) {
	so.errMu.Lock()
	so.errs = append(so.errs, err)
	so.errMu.Unlock()
}

func newScaleOut(tb testing.TB, cfg loadConfig) *scaleOut {
	tb.Helper()
	start := time.Now()
	so := &scaleOut{tb: tb, cfg: cfg, cluster: testredis.StartCluster(tb, 3)}
	tb.Logf("3-master cluster ready in %v", time.Since(start).Round(time.Millisecond))
	shards, err := so.cluster.Shards()
	if err != nil {
		tb.Fatal(err)
	}
	for _, sh := range shards {
		so.masters = append(so.masters, sh.Addr)
	}
	so.mapGroups(shards)

	var idp *devidp.Provider
	so.idpSrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { idp.ServeHTTP(w, r) }))
	tb.Cleanup(so.idpSrv.Close)
	users := make([]devidp.User, cfg.users+warmUsers)
	for i := range users {
		name := fmt.Sprintf("user%04d", i)
		if i >= cfg.users {
			name = fmt.Sprintf("warm%02d", i-cfg.users)
		}
		users[i] = devidp.User{
			// Subjects as Keycloak makes them.
			Subject:  fmt.Sprintf("%08x-6a0d-4b7e-9c1a-%012x", uint32(i)*2654435761, i),
			Username: name, Password: "demo", Email: name + "@example.com",
			Name: fmt.Sprintf("User %d", i), Groups: []string{"staff"},
		}
		if i < cfg.users {
			so.users = append(so.users, name)
		} else {
			so.warm = append(so.warm, name)
		}
	}
	idp, err = devidp.New(devidp.Config{Issuer: so.idpSrv.URL, Users: users, HideUsers: true})
	if err != nil {
		tb.Fatal(err)
	}
	idp.AddClient(devidp.Client{
		ID: "site", Secret: "site-secret",
		RedirectURIs: []string{scaleOutSiteURL + "/.gatehouse/callback"},
	})

	for i := range cfg.instances {
		so.inst = append(so.inst, so.newInstance(i))
	}
	for _, in := range so.inst {
		select {
		case <-in.ready:
		case <-time.After(10 * time.Second):
			tb.Fatalf("instance %d: subscription not listening after 10s", in.n)
		}
	}
	so.client = &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: cfg.workers},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	tb.Cleanup(so.client.CloseIdleConnections)
	return so
}

// mapGroups finds the master of each group's shard. The store names the
// shard of group i "{gh.k}" with the least k whose slot is in the i-th
// sixteenth of the slots (redisstore's shardTags); the slots are asked
// of Redis, and checkGroups verifies the result against where the keys
// are.
func (so *scaleOut) mapGroups(shards []testredis.Shard) {
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: so.cluster.Addrs()})
	defer cc.Close()
	masterOf := func(slot int64) int {
		for m, sh := range shards {
			for _, r := range sh.Slots {
				if int(slot) >= r.First && int(slot) <= r.Last {
					return m
				}
			}
		}
		so.tb.Fatalf("slot %d served by no master", slot)
		return -1
	}
	const width = 16384 / session.Groups
	found := 0
	var have [session.Groups]bool
	for k := 0; found < session.Groups; k++ {
		slot, err := cc.ClusterKeySlot(ctx, "gh."+strconv.Itoa(k)).Result()
		if err != nil {
			so.tb.Fatal(err)
		}
		if g := int(slot) / width; !have[g] {
			have[g], so.groupSlot[g] = true, slot
			so.groupMaster[g] = masterOf(slot)
			found++
		}
	}
	slot, err := cc.ClusterKeySlot(ctx, "gh").Result()
	if err != nil {
		so.tb.Fatal(err)
	}
	so.groupMaster[tagGroup] = masterOf(slot)
}

// checkGroups fails unless every group that had sign-ins has keys in its
// slot on the master mapGroups found for it.
func (so *scaleOut) checkGroups() {
	ctx := context.Background()
	for g := range session.Groups {
		if so.counts().byGroup("Create")[g] == 0 {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: so.masters[so.groupMaster[g]]})
		n, err := c.ClusterCountKeysInSlot(ctx, int(so.groupSlot[g])).Result()
		c.Close()
		if err != nil || n == 0 {
			so.tb.Errorf("group %d: %d keys in slot %d on master %s (%v): the group-to-master map is wrong, and so the prediction",
				g, n, so.groupSlot[g], so.masters[so.groupMaster[g]], err)
		}
	}
}

func (so *scaleOut) newInstance(i int) *gatewayInstance {
	tb := so.tb
	st, err := redisstore.New(redisstore.Options{URL: so.cluster.URL()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	in := &gatewayInstance{n: i, ready: make(chan struct{})}
	var once sync.Once
	in.store = newCountedStore(st, func(id string) {
		if id == "" {
			once.Do(func() { close(in.ready) })
			return
		}
		so.watch.seen(i, id, time.Now())
	}, so.watch.deleting)
	// The last two instances are cold: with a cache_ttl of 1ms nearly
	// every request of theirs asks the store.
	ttl := 5 * time.Second
	if i >= so.cfg.instances-2 {
		ttl = time.Millisecond
	}
	in.rt, err = NewRuntime(RuntimeConfig{
		Store: in.store, Events: in.store, Secret: testSecret, CacheTTL: ttl,
		OnError: func(err error) { so.fail(fmt.Errorf("instance %d: %w", i, err)) },
	})
	if err != nil {
		tb.Fatal(err)
	}
	in.rt.Start()
	tb.Cleanup(in.rt.Close)
	in.gw, err = New(Config{
		Issuer: so.idpSrv.URL, ClientID: "site", ClientSecret: "site-secret",
		Scopes:      []string{"openid", "email", "profile", "groups"},
		IdleTimeout: 30 * time.Minute,
		// Short, so that the phases' requests touch sessions.
		TouchInterval: time.Second,
		AdminGroups:   []string{"gatehouse-admins"},
	}, in.rt)
	if err != nil {
		tb.Fatal(err)
	}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := in.gw.Serve(w, r); s != nil {
			upstream(w, r)
		}
	}))
	tb.Cleanup(in.srv.Close)
	in.addr = in.srv.Listener.Addr().String()
	return in
}

// countedStore counts the store calls of one instance by operation and
// session group, from which the prediction is made, and passes ends to
// a callback after the runtime has acted on them.
type countedStore struct {
	*redisstore.Store
	n      map[string]*[tagGroup + 1]atomic.Int64
	onEnds func(id string)
	// onDelete is told when each Delete began.
	onDelete func(id string, start time.Time)
}

// countedOps are the operations counted, named as in scaleOutCosts.
var countedOps = []string{"ClaimOnce", "Reauth", "Create", "AppendLogin", "AppendEnd", "AppendOther",
	"Get", "Touch", "SetReauth", "Delete", "Due", "AddSite", "List", "ListUser", "LimitSessions", "SetTokens"}

func newCountedStore(st *redisstore.Store, onEnds func(string), onDelete func(string, time.Time)) *countedStore {
	c := &countedStore{Store: st, n: map[string]*[tagGroup + 1]atomic.Int64{}, onEnds: onEnds, onDelete: onDelete}
	for _, op := range countedOps {
		c.n[op] = new([tagGroup + 1]atomic.Int64)
	}
	return c
}

func (c *countedStore) add(op string, group int) { c.n[op][group].Add(1) }

func (c *countedStore) Create(ctx context.Context, s *session.Session) error {
	c.add("Create", session.UserGroup(s.User))
	return c.Store.Create(ctx, s)
}

func (c *countedStore) Get(ctx context.Context, id string) (*session.Session, error) {
	c.add("Get", session.IDGroup(id))
	return c.Store.Get(ctx, id)
}

func (c *countedStore) Touch(ctx context.Context, id string, a session.Access) error {
	c.add("Touch", session.IDGroup(id))
	return c.Store.Touch(ctx, id, a)
}

func (c *countedStore) Delete(ctx context.Context, id string) (*session.Session, error) {
	c.add("Delete", session.IDGroup(id))
	c.onDelete(id, time.Now())
	return c.Store.Delete(ctx, id)
}

func (c *countedStore) SetReauth(ctx context.Context, user string, t time.Time) error {
	c.add("SetReauth", session.UserGroup(user))
	return c.Store.SetReauth(ctx, user, t)
}

func (c *countedStore) Reauth(ctx context.Context, user string) (time.Time, error) {
	c.add("Reauth", session.UserGroup(user))
	return c.Store.Reauth(ctx, user)
}

func (c *countedStore) ClaimOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	c.add("ClaimOnce", session.UserGroup(key))
	return c.Store.ClaimOnce(ctx, key, ttl)
}

func (c *countedStore) SetTokens(ctx context.Context, id string, tokens []byte) error {
	c.add("SetTokens", session.IDGroup(id))
	return c.Store.SetTokens(ctx, id, tokens)
}

func (c *countedStore) LimitSessions(ctx context.Context, l session.Limit) ([]*session.Session, error) {
	c.add("LimitSessions", session.UserGroup(l.User))
	return c.Store.LimitSessions(ctx, l)
}

func (c *countedStore) Due(ctx context.Context, t time.Time, n int) ([]*session.Session, error) {
	c.add("Due", allGroups)
	return c.Store.Due(ctx, t, n)
}

func (c *countedStore) List(ctx context.Context, q session.Query) (session.Page, error) {
	if q.User != "" {
		// One user's sessions: one shard, their hash.
		c.add("ListUser", session.UserGroup(q.User))
	} else {
		c.add("List", allGroups)
	}
	return c.Store.List(ctx, q)
}

func (c *countedStore) AddSite(ctx context.Context, site, scope string) error {
	c.add("AddSite", tagGroup)
	return c.Store.AddSite(ctx, site, scope)
}

func (c *countedStore) Append(ctx context.Context, e *activity.Event) error {
	op := "AppendOther"
	switch {
	case e.Type == activity.LoginSucceeded:
		op = "AppendLogin"
	case activity.EndsSession(e.Type):
		op = "AppendEnd"
	}
	// An event's shard is its user's (or, without one, its session's).
	g := session.UserGroup(e.User)
	if e.User == "" {
		g = session.IDGroup(e.SessionID)
	}
	c.add(op, g)
	return c.Store.Append(ctx, e)
}

func (c *countedStore) Subscribe(ctx context.Context, ended func(id string)) error {
	return c.Store.Subscribe(ctx, func(id string) {
		ended(id)
		c.onEnds(id)
	})
}

// opCounts are store calls by operation and group, summed over instances.
type opCounts map[string]*[tagGroup + 1]int64

func (so *scaleOut) counts() opCounts {
	out := opCounts{}
	for _, op := range countedOps {
		var a [tagGroup + 1]int64
		for _, in := range so.inst {
			for g := range a {
				a[g] += in.store.n[op][g].Load()
			}
		}
		out[op] = &a
	}
	return out
}

func (c opCounts) byGroup(op string) *[tagGroup + 1]int64 { return c[op] }

func (c opCounts) total(op string) int64 {
	var n int64
	for _, v := range c[op] {
		n += v
	}
	return n
}

func (c opCounts) sub(o opCounts) opCounts {
	out := opCounts{}
	for op, a := range c {
		var d [tagGroup + 1]int64
		for g := range a {
			d[g] = a[g] - o[op][g]
		}
		out[op] = &d
	}
	return out
}

// endWatch times revocations: from the revoking call's return until
// each other instance's subscription has handled the end.
type endWatch struct {
	mu      sync.Mutex
	pending map[string]*revocation
}

type revocation struct {
	revoker int
	// deleted is when the revoker's store Delete began: after the
	// session's lookup and the re-authentication mark, before the
	// script that ends it and publishes the end.
	deleted time.Time
	seen    []time.Time // by instance; zero until seen
	left    int
	done    chan struct{}
}

func (w *endWatch) expect(id string, revoker, instances int) *revocation {
	r := &revocation{revoker: revoker, seen: make([]time.Time, instances), left: instances - 1, done: make(chan struct{})}
	w.mu.Lock()
	if w.pending == nil {
		w.pending = map[string]*revocation{}
	}
	w.pending[id] = r
	w.mu.Unlock()
	return r
}

func (w *endWatch) seen(inst int, id string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.pending[id]
	if r == nil || inst == r.revoker || !r.seen[inst].IsZero() {
		return
	}
	r.seen[inst] = at
	if r.left--; r.left == 0 {
		close(r.done)
	}
}

func (w *endWatch) deleting(id string, at time.Time) {
	w.mu.Lock()
	if r := w.pending[id]; r != nil {
		r.deleted = at
	}
	w.mu.Unlock()
}

func (w *endWatch) forget(id string) {
	w.mu.Lock()
	delete(w.pending, id)
	w.mu.Unlock()
}

// liveSession is a signed-in browser's session.
type liveSession struct {
	id, cookie, user string
}

// livePool holds the sessions requests may use, and remembers revoked ones
// (a request racing its session's revocation is refused, rightly).
type livePool struct {
	mu      sync.Mutex
	live    []liveSession
	revoked map[string]bool
	// cooldown holds users revoked in the current second: a re-sign-in
	// within it counts as stale (see stale in login.go), by design.
	cooldown map[string]time.Time
	// busy holds users being signed in or revoked: a sign-in racing a
	// revocation of the same user is refused as stale, rightly, and is
	// not what this test measures.
	busy map[string]bool
}

// claim marks user busy unless it is, or is resting, and reports
// whether it did.
func (p *livePool) claim(user string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy[user] || now.Before(p.cooldown[user]) {
		return false
	}
	if p.busy == nil {
		p.busy = map[string]bool{}
	}
	p.busy[user] = true
	return true
}

func (p *livePool) release(user string) {
	p.mu.Lock()
	delete(p.busy, user)
	p.mu.Unlock()
}

func (p *livePool) add(s liveSession) {
	p.mu.Lock()
	p.live = append(p.live, s)
	p.mu.Unlock()
}

func (p *livePool) pick(r *rand.Rand) (liveSession, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.live) == 0 {
		return liveSession{}, false
	}
	return p.live[r.IntN(len(p.live))], true
}

// take removes a random live session whose user is not busy, and marks
// the user busy.
func (p *livePool) take(r *rand.Rand) (liveSession, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.live) < 2 {
		return liveSession{}, false
	}
	i := r.IntN(len(p.live))
	for tries := 0; p.busy[p.live[i].user]; tries++ {
		if tries == 100 {
			return liveSession{}, false
		}
		i = r.IntN(len(p.live))
	}
	s := p.live[i]
	if p.busy == nil {
		p.busy = map[string]bool{}
	}
	p.busy[s.user] = true
	p.live[i] = p.live[len(p.live)-1]
	p.live = p.live[:len(p.live)-1]
	if p.revoked == nil {
		p.revoked = map[string]bool{}
	}
	p.revoked[s.id] = true
	return s, true
}

func (p *livePool) wasRevoked(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.revoked[id]
}

// rest releases a revoked user, who may not sign in before until.
func (p *livePool) rest(user string, until time.Time) {
	p.mu.Lock()
	if p.cooldown == nil {
		p.cooldown = map[string]time.Time{}
	}
	p.cooldown[user] = until
	delete(p.busy, user)
	p.mu.Unlock()
}

// errTB turns a testflow browser's Fatal into a panic that signIn
// recovers as an error: workers run in goroutines of their own, where
// FailNow must not be called.
type errTB struct{ testing.TB }

type tbFailure string

func (errTB) Helper()                           {}
func (errTB) Fatal(args ...any)                 { panic(tbFailure(fmt.Sprint(args...))) }
func (errTB) Fatalf(format string, args ...any) { panic(tbFailure(fmt.Sprintf(format, args...))) }

// signIn signs user in through instance inst with a fresh browser, whose
// connections to the site all go to that instance.
func (so *scaleOut) signIn(inst int, username string) (ls liveSession, err error) {
	defer func() {
		if v := recover(); v != nil {
			f, ok := v.(tbFailure)
			if !ok {
				panic(v)
			}
			err = fmt.Errorf("signing %s in on instance %d: %s", username, inst, f)
		}
	}()
	b := testflow.New(errTB{so.tb})
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == scaleOutSite+":80" {
			addr = so.inst[inst].addr
		}
		return d.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	b.Client.Transport = tr
	b.Login(scaleOutSiteURL, "/", username)
	cookie := b.Cookie(scaleOutSiteURL, "gatehouse")
	id, err := session.ParseCookie(cookie)
	if err != nil {
		return ls, fmt.Errorf("signing %s in on instance %d: no session cookie: %w", username, inst, err)
	}
	return liveSession{id: id, cookie: cookie, user: username}, nil
}

// get makes a request to the site through instance inst and returns
// its status.
func (so *scaleOut) get(inst int, cookie string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+so.inst[inst].addr+"/reports", nil)
	if err != nil {
		return 0, err
	}
	req.Host = scaleOutSite
	req.Header.Set("Cookie", "gatehouse="+cookie)
	// The browser's own, or every touch would record a new device.
	req.Header.Set("User-Agent", testflow.FirefoxUA)
	resp, err := so.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("request to instance %d: %w", inst, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// phaseResult is what one phase did and took.
type phaseResult struct {
	name string
	// took is the operations' time; span the time between the readings
	// of the masters' INFO, which also covers the queued touches.
	took, span time.Duration
	signIns    []time.Duration
	requests   []time.Duration
	// revocations: their visibility on each other instance, from the
	// revoking call's return (0 when seen before it returned), from its
	// start and from the start of its store Delete; early counts those
	// seen before the return.
	fromReturn, fromStart, fromDelete []time.Duration
	early                             int
	revocations                       int
	refusedRevoked                    int // requests racing a revocation, refused
	hits, misses                      uint64
	counts                            opCounts
	stats                             []testredis.Stats // per master
}

type loadWorker struct {
	r   *rand.Rand
	res phaseResult
}

// run runs ops operations on the workers, op(w, i) doing the i-th.
func (so *scaleOut) run(name string, ops int, op func(w *loadWorker, i int) error) phaseResult {
	so.tb.Helper()
	hits0, misses0 := so.cacheStats()
	counts0 := so.counts()
	before := so.readStats()
	readAt := time.Now()
	var next atomic.Int64
	workers := make([]*loadWorker, so.cfg.workers)
	var wg sync.WaitGroup
	start := time.Now()
	for k := range workers {
		w := &loadWorker{r: rand.New(rand.NewPCG(uint64(k), uint64(len(name))))}
		workers[k] = w
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= ops {
					return
				}
				if err := op(w, i); err != nil {
					so.fail(fmt.Errorf("%s, operation %d: %w", name, i, err))
				}
			}
		})
	}
	wg.Wait()
	res := phaseResult{name: name, took: time.Since(start)}
	// Queued touches are part of the phase's work.
	so.settle()
	after := so.readStats()
	res.span = time.Since(readAt)
	for m := range after {
		res.stats = append(res.stats, after[m].Sub(before[m]))
	}
	res.counts = so.counts().sub(counts0)
	hits, misses := so.cacheStats()
	res.hits, res.misses = hits-hits0, misses-misses0
	for _, w := range workers {
		res.signIns = append(res.signIns, w.res.signIns...)
		res.requests = append(res.requests, w.res.requests...)
		res.fromReturn = append(res.fromReturn, w.res.fromReturn...)
		res.fromStart = append(res.fromStart, w.res.fromStart...)
		res.fromDelete = append(res.fromDelete, w.res.fromDelete...)
		res.early += w.res.early
		res.revocations += w.res.revocations
		res.refusedRevoked += w.res.refusedRevoked
	}
	return res
}

func (so *scaleOut) cacheStats() (hits, misses uint64) {
	for _, in := range so.inst {
		h, m := in.rt.Cache().Stats()
		hits, misses = hits+h, misses+m
	}
	return hits, misses
}

// settle waits until no instance has a touch queued.
func (so *scaleOut) settle() {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		busy := false
		for _, in := range so.inst {
			in.rt.pending.Range(func(any, any) bool { busy = true; return false })
		}
		if !busy {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	so.fail(errors.New("touches still queued after 5s"))
}

func (so *scaleOut) readStats() []testredis.Stats {
	so.tb.Helper()
	out := make([]testredis.Stats, len(so.masters))
	for m, addr := range so.masters {
		st, err := testredis.ReadStats(addr)
		if err != nil {
			so.tb.Fatal(err)
		}
		out[m] = st
	}
	return out
}

// signInOp signs user, whom the caller claimed, in.
func (so *scaleOut) signInOp(w *loadWorker, inst int, user string) error {
	defer so.pool.release(user)
	t0 := time.Now()
	ls, err := so.signIn(inst, user)
	if err != nil {
		return err
	}
	w.res.signIns = append(w.res.signIns, time.Since(t0))
	so.pool.add(ls)
	return nil
}

func (so *scaleOut) requestOp(w *loadWorker) error {
	ls, ok := so.pool.pick(w.r)
	if !ok {
		return errors.New("no live session")
	}
	inst := w.r.IntN(len(so.inst))
	t0 := time.Now()
	status, err := so.get(inst, ls.cookie)
	if err != nil {
		return err
	}
	w.res.requests = append(w.res.requests, time.Since(t0))
	switch {
	case status == http.StatusOK:
	case status == http.StatusUnauthorized && so.pool.wasRevoked(ls.id):
		w.res.refusedRevoked++
	default:
		return fmt.Errorf("request on instance %d: status %d", inst, status)
	}
	return nil
}

// revokeOp ends a live session on one instance, as an admin would, after
// every other instance has served it (and so holds it, unless its
// cache_ttl has run out), and times how long until each of them has
// dropped it; then checks that each refuses it.
func (so *scaleOut) revokeOp(w *loadWorker) error {
	ls, ok := so.pool.take(w.r)
	if !ok {
		return errors.New("no session to revoke")
	}
	released := false
	defer func() {
		if !released {
			so.pool.release(ls.user)
		}
	}()
	revoker := w.r.IntN(len(so.inst))
	for j := range so.inst {
		if j == revoker {
			continue
		}
		status, err := so.get(j, ls.cookie)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("instance %d: status %d for a live session", j, status)
		}
		w.res.requests = append(w.res.requests, 0) // counted, not timed
	}
	// Another instance lists the session, as its admin page would.
	lister := (revoker + 1) % len(so.inst)
	if listed, err := so.lists(lister, ls.user, ls.id); err != nil || !listed {
		return fmt.Errorf("instance %d: session %s of %s listed %v (%v) before its revocation, want listed", lister, ls.id, ls.user, listed, err)
	}
	rv := so.watch.expect(ls.id, revoker, len(so.inst))
	defer so.watch.forget(ls.id)
	start := time.Now()
	_, err := so.inst[revoker].rt.End(context.Background(), ls.id, session.EndRevoked, "admin@example.com", "")
	returned := time.Now()
	if err != nil {
		return fmt.Errorf("revoking on instance %d: %w", revoker, err)
	}
	// A sign-in in the mark's second would count as stale.
	so.pool.rest(ls.user, time.Unix(returned.Unix()+1, 50e6))
	released = true
	select {
	case <-rv.done:
	case <-time.After(2 * time.Second):
		return fmt.Errorf("revocation on instance %d not seen by every other instance within 2s: %v", revoker, rv.seen)
	}
	w.res.revocations++
	for j, at := range rv.seen {
		if j == revoker {
			continue
		}
		w.res.fromStart = append(w.res.fromStart, at.Sub(start))
		w.res.fromDelete = append(w.res.fromDelete, at.Sub(rv.deleted))
		d := at.Sub(returned)
		if d < 0 {
			w.res.early++
			d = 0
		}
		w.res.fromReturn = append(w.res.fromReturn, d)
	}
	for j := range so.inst {
		if j == revoker {
			continue
		}
		status, err := so.get(j, ls.cookie)
		if err != nil {
			return err
		}
		if status != http.StatusUnauthorized {
			return fmt.Errorf("instance %d: status %d for a session it was told had ended, want 401", j, status)
		}
	}
	if listed, err := so.lists(lister, ls.user, ls.id); err != nil || listed {
		return fmt.Errorf("instance %d: session %s listed %v (%v) after its revocation, want not", lister, ls.id, listed, err)
	}
	return nil
}

// lists reports whether instance i's store lists session id among the
// sessions of the user who signs in as user.
func (so *scaleOut) lists(i int, user, id string) (bool, error) {
	if subject, ok := so.subjects.Load(user); ok {
		user = subject.(string)
	} else {
		// The provider's subject for this login name: read once.
		sess, err := so.inst[i].rt.Store().Get(context.Background(), id)
		if err != nil {
			return false, err
		}
		so.subjects.Store(user, sess.User)
		user = sess.User
	}
	page, err := so.inst[i].rt.Store().List(context.Background(), session.Query{User: user})
	if err != nil {
		return false, err
	}
	for _, s := range page.Items {
		if s.ID == id {
			return true, nil
		}
	}
	return false, nil
}

// freeUser claims a user who may sign in now.
func (so *scaleOut) freeUser(r *rand.Rand) (string, error) {
	now := time.Now()
	for range 10 * len(so.users) {
		if u := so.users[r.IntN(len(so.users))]; so.pool.claim(u, now) {
			return u, nil
		}
	}
	return "", errors.New("every user is busy or was revoked within the last second")
}

// scaleOutReport is everything measured.
type scaleOutReport struct {
	phases   []phaseResult
	idle     []testredis.Stats // per master, over cfg.idle with nothing to do
	idleTook time.Duration
	keys     []int64 // per master, at the end
	keys0    []int64 // per master, before the load (after the warm-up)
	// predicted is each phase's prediction per master from the costs of
	// docs/capacity.md (scaleOutCosts); calibrated from the costs
	// measured on this cluster right after the load (calibrate), which
	// tells the model's error from the machine's drift.
	predicted, calibrated [][]prediction
	costs                 map[string]storeCost // calibrated
	shardsOn              []int                // shards per master
}

type prediction struct{ cmds, cpu float64 }

// warmUsers sign in before the measurements, on every instance.
const warmUsers = 16

// warmUp signs the warm-up users in, one instance after another, has
// every instance serve each of their sessions, and revokes half of them.
func (so *scaleOut) warmUp() {
	w := &loadWorker{r: rand.New(rand.NewPCG(99, 99))}
	for i, u := range so.warm {
		so.pool.claim(u, time.Now())
		if err := so.signInOp(w, i%len(so.inst), u); err != nil {
			so.fail(fmt.Errorf("warm-up: %w", err))
		}
	}
	for j := range so.inst {
		for _, ls := range so.pool.live {
			if _, err := so.get(j, ls.cookie); err != nil {
				so.fail(fmt.Errorf("warm-up: %w", err))
			}
		}
	}
	for range warmUsers / 2 {
		if err := so.revokeOp(w); err != nil {
			so.fail(fmt.Errorf("warm-up: %w", err))
		}
	}
}

// calibrate measures what each store call costs the masters, in all,
// on this cluster now: k calls of each, one at a time, through instance
// 0's store, on sessions like the load's (a copy of a live one under
// other users), with every instance subscribed as during the load and
// the machine as busy.
func (so *scaleOut) calibrate(rep *scaleOutReport) map[string]storeCost {
	tb := so.tb
	ctx := context.Background()
	st := so.inst[0].store.Store
	live, ok := so.pool.pick(rand.New(rand.NewPCG(1, 1)))
	if !ok {
		tb.Fatal("calibration: no live session")
	}
	model, err := st.Get(ctx, live.id)
	if err != nil {
		tb.Fatalf("calibration: %v", err)
	}
	k := so.cfg.calibrate
	now := time.Now().UTC().Truncate(time.Millisecond)
	sessions := make([]*session.Session, k)
	for i := range sessions {
		s := model.Clone()
		s.User = fmt.Sprintf("%08x-c0de-4b7e-9c1a-%012x", uint32(i)*2246822519, i)
		s.Email = fmt.Sprintf("calib%04d@example.com", i)
		s.ID = session.NewSecretFor(s.User).ID()
		// Seconds old when touched, as the load's sessions were (its
		// touch_interval is 1s): a touch moves them in the indexes.
		s.CreatedAt, s.LastAccess = now.Add(-3*time.Second), now.Add(-3*time.Second)
		sessions[i] = s
	}
	event := func(s *session.Session, typ string) *activity.Event {
		e := eventFor(s, typ)
		e.Time, e.Actor = time.Now().UTC(), s.Email
		if typ == activity.SessionRevoked {
			e.Actor, e.Duration = "admin@example.com", 1
		}
		if typ == activity.LoginFailed {
			e.SessionID, e.Reason = "", activity.ReasonReauthRequired
		}
		return &e
	}
	idleRate := make([]float64, len(so.masters)) // µs of CPU per second
	for m, d := range rep.idle {
		idleRate[m] = float64(d.CPU.Microseconds()) / rep.idleTook.Seconds()
	}
	costs := map[string]storeCost{}
	{
		// Keep the machine as busy as the load kept it, without Redis:
		// requests that warm instances answer from their caches. On
		// shared cores Redis spends about twice the CPU on a call that
		// it spends on an idle machine (the gateways preempt it, and
		// take its caches); the per-call costs of docs/capacity.md are
		// measured idle, for Redis on cores of its own.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		defer func() { close(stop); wg.Wait() }()
		for k := range so.cfg.workers {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := so.get(1+(k+i)%4, live.cookie); err != nil {
						so.fail(err)
						return
					}
				}
			})
		}
		time.Sleep(50 * time.Millisecond)
	}
	measure := func(op string, n int, call func(i int) error) {
		before := so.readStats()
		t0 := time.Now()
		for i := range n {
			if err := call(i); err != nil {
				tb.Fatalf("calibrating %s: %v", op, err)
			}
		}
		span := time.Since(t0).Seconds()
		after := so.readStats()
		var c storeCost
		for m := range after {
			d := after[m].Sub(before[m])
			c.cmds += float64(d.Calls(ignoredCommands...)) / float64(n)
			c.cpu += (float64(d.CPU.Microseconds()) - idleRate[m]*span) / float64(n)
		}
		costs[op] = c
	}
	measure("ClaimOnce", k, func(i int) error {
		_, err := st.ClaimOnce(ctx, fmt.Sprintf("state:calibration-%d", i), time.Minute)
		return err
	})
	measure("Reauth", k, func(i int) error { _, err := st.Reauth(ctx, sessions[i].User); return err })
	measure("Create", k, func(i int) error { return st.Create(ctx, sessions[i]) })
	measure("AppendLogin", k, func(i int) error { return st.Append(ctx, event(sessions[i], activity.LoginSucceeded)) })
	measure("Get", k, func(i int) error { _, err := st.Get(ctx, sessions[i].ID); return err })
	measure("Touch", k, func(i int) error {
		return st.Touch(ctx, sessions[i].ID, session.Access{At: time.Now(), IP: sessions[i].LastIP})
	})
	measure("SetReauth", k, func(i int) error { return st.SetReauth(ctx, sessions[i].User, time.Now()) })
	measure("Delete", k, func(i int) error { _, err := st.Delete(ctx, sessions[i].ID); return err })
	measure("AppendEnd", k, func(i int) error { return st.Append(ctx, event(sessions[i], activity.SessionRevoked)) })
	measure("AppendOther", k, func(i int) error { return st.Append(ctx, event(sessions[i], activity.LoginFailed)) })
	measure("Due", max(k/10, 10), func(int) error { _, err := st.Due(ctx, time.Now(), 100); return err })
	return costs
}

func runScaleOut(tb testing.TB, cfg loadConfig) *scaleOutReport {
	so := newScaleOut(tb, cfg)
	rep := &scaleOutReport{}

	// What the masters do with the instances connected and idle (the
	// cluster's own upkeep, the subscriptions' pings), for the model.
	before := so.readStats()
	t0 := time.Now()
	time.Sleep(cfg.idle)
	after := so.readStats()
	rep.idleTook = time.Since(t0)
	for m := range after {
		rep.idle = append(rep.idle, after[m].Sub(before[m]))
	}

	// Warm up, unmeasured: each instance's cluster client reads the
	// command table (COMMAND, a 100 KB reply) on first use, and each
	// script is compiled once on each master (EVAL after NOSCRIPT).
	so.warmUp()
	for _, st := range so.readStats() {
		rep.keys0 = append(rep.keys0, st.Keys)
	}

	rep.phases = append(rep.phases, so.run("sign-ins", cfg.users, func(w *loadWorker, i int) error {
		so.pool.claim(so.users[i], time.Now())
		return so.signInOp(w, i%cfg.instances, so.users[i])
	}))
	rep.phases = append(rep.phases, so.run("requests", cfg.requests, func(w *loadWorker, i int) error {
		return so.requestOp(w)
	}))
	rep.phases = append(rep.phases, so.run("mix", cfg.mix, func(w *loadWorker, i int) error {
		// 70 % requests, 15 % sign-ins, 15 % revocations.
		switch k := i % 20; {
		case k < 14:
			return so.requestOp(w)
		case k < 17:
			u, err := so.freeUser(w.r)
			if err != nil {
				return err
			}
			return so.signInOp(w, w.r.IntN(cfg.instances), u)
		default:
			return so.revokeOp(w)
		}
	}))
	final := so.readStats()
	for _, st := range final {
		rep.keys = append(rep.keys, st.Keys)
	}
	so.checkGroups()
	rep.costs = so.calibrate(rep)
	for g := range session.Groups {
		if rep.shardsOn == nil {
			rep.shardsOn = make([]int, len(so.masters))
		}
		rep.shardsOn[so.groupMaster[g]]++
	}
	for _, ph := range rep.phases {
		rep.predicted = append(rep.predicted, so.predict(ph, rep, scaleOutCosts, deliveryCPU))
		// The calibrated Delete includes its deliveries.
		rep.calibrated = append(rep.calibrated, so.predict(ph, rep, rep.costs, 0))
	}
	so.errMu.Lock()
	defer so.errMu.Unlock()
	for i, err := range so.errs {
		if i == 20 {
			tb.Errorf("... and %d more errors", len(so.errs)-i)
			break
		}
		tb.Errorf("%v", err)
	}
	return rep
}

// ignoredCommands are not the gateway's store operations: the readings'
// own INFO (with the store's INFO replication, every 5s), the
// subscriptions' upkeep and the cluster clients' topology queries.
var ignoredCommands = []string{"info", "ping", "ssubscribe", "sunsubscribe", "cluster|slots", "cluster|shards",
	"cluster|nodes", "cluster|keyslot", "cluster|countkeysinslot", "command", "command|docs", "hello",
	"client|setinfo", "client|setname", "readonly"}

// storeCost is one operation's cost on a Cluster master: commands run
// (a script's own commands included) and server CPU, in µs.
type storeCost struct{ cmds, cpu float64 }

// scaleOutCosts are the per-call costs of docs/capacity.md (its "plan"
// column): commands as BenchmarkOperationCosts (internal/store/redisstore)
// counts them on a 3-master Cluster with 100,000 sessions, CPU the
// median of up to six such runs (most varied by under 1.5x on this
// machine's two shared cores); keep the two in step.
var scaleOutCosts = map[string]storeCost{
	"ClaimOnce":   {1, 16},
	"Reauth":      {1, 17},
	"Create":      {42.5, 260},
	"AppendLogin": {23.3, 148},
	"AppendEnd":   {20.3, 143},
	"AppendOther": {16.4, 120},
	"Get":         {4, 55},
	"Touch":       {22.2, 127},
	"SetReauth":   {5, 45},
	"Delete":      {19.4, 141},
	"Due":         {64, 574},
	"List":        {1995, 11300},
	"ListUser":    {13.9, 229},
	// Not measured there; this load makes none, or a few.
	"AddSite":       {1, 15},
	"LimitSessions": {20, 150},
	"SetTokens":     {3, 30},
}

// deliveryCPU is the server CPU, in µs, of delivering one end to one
// subscribed instance (SPUBLISH fan-out, docs/capacity.md).
const deliveryCPU = 6

// predict is each master's commands and CPU for the phase from the
// store calls counted, the costs above, and the idle upkeep measured.
func (so *scaleOut) predict(ph phaseResult, rep *scaleOutReport, costs map[string]storeCost, delivery float64) []prediction {
	out := make([]prediction, len(so.masters))
	shardsOn := make([]float64, len(so.masters))
	for g := range session.Groups {
		shardsOn[so.groupMaster[g]]++
	}
	for op, a := range ph.counts {
		c, ok := costs[op]
		if !ok {
			c = scaleOutCosts[op]
		}
		for g := range session.Groups {
			m := so.groupMaster[g]
			out[m].cmds += float64(a[g]) * c.cmds
			out[m].cpu += float64(a[g]) * c.cpu
			if op == "Delete" {
				out[m].cpu += float64(a[g]) * float64(len(so.inst)) * delivery
			}
		}
		for m := range out {
			share := shardsOn[m] / session.Groups
			out[m].cmds += float64(a[allGroups]) * c.cmds * share
			out[m].cpu += float64(a[allGroups]) * c.cpu * share
		}
		m := so.groupMaster[tagGroup]
		out[m].cmds += float64(a[tagGroup]) * c.cmds
		out[m].cpu += float64(a[tagGroup]) * c.cpu
	}
	// The idle upkeep, for as long as the phase's readings were apart.
	for m := range out {
		out[m].cpu += float64(rep.idle[m].CPU.Microseconds()) * ph.span.Seconds() / rep.idleTook.Seconds()
	}
	return out
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}

func millis(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// check fails tb unless the SPEC's targets hold, and returns the worst
// key and write shares and the revocation p99.
func (rep *scaleOutReport) check(tb testing.TB) (keyShare, writeShare float64, p99 time.Duration) {
	tb.Helper()
	var keys, writes int64
	perWrites := make([]int64, len(rep.keys))
	for m, k := range rep.keys {
		keys += k
		for _, ph := range rep.phases {
			perWrites[m] += ph.stats[m].Changes
		}
		writes += perWrites[m]
	}
	for m := range rep.keys {
		keyShare = max(keyShare, float64(rep.keys[m])/float64(keys))
		writeShare = max(writeShare, float64(perWrites[m])/float64(writes))
		if rep.keys[m] == 0 || perWrites[m] == 0 {
			tb.Errorf("master %d holds %d keys and took %d writes: want some of each", m, rep.keys[m], perWrites[m])
		}
	}
	if keyShare > 0.5 {
		tb.Errorf("one master holds %.1f %% of the keys (%v), want at most 50 %%", 100*keyShare, rep.keys)
	}
	if writeShare > 0.5 {
		tb.Errorf("one master took %.1f %% of the writes (%v), want at most 50 %%", 100*writeShare, perWrites)
	}
	var vis []time.Duration
	for _, ph := range rep.phases {
		vis = append(vis, ph.fromReturn...)
	}
	if len(vis) == 0 {
		tb.Error("no revocation measured")
	}
	p99 = percentile(vis, 0.99)
	if p99 > 50*time.Millisecond {
		tb.Errorf("revocation seen by the other instances after %v at p99, want at most 50ms", p99)
	}
	// The model's composition: the store calls counted, at the costs
	// measured in the same run, make up each master's commands (issue 9,
	// item 7: within 25 %). CPU is reported, not checked: this machine's
	// two shared cores make it vary too much from run to run.
	for p, ph := range rep.phases {
		for m, st := range ph.stats {
			got, want := float64(st.Calls(ignoredCommands...)), rep.calibrated[p][m].cmds
			if got > 0 && absf(want/got-1) > 0.25 {
				tb.Errorf("%s, master %d: %.0f commands, predicted %.0f: off by more than 25 %%", ph.name, m, got, want)
			}
		}
	}
	return keyShare, writeShare, p99
}

// String formats the report.
func (rep *scaleOutReport) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "phase\ttook\tsign-ins\t/s\tp50\tp99\trequests\t/s\tp50\tp99\tcache hits\tmisses\trevocations\t")
	for _, ph := range rep.phases {
		var timed []time.Duration
		for _, d := range ph.requests {
			if d > 0 {
				timed = append(timed, d)
			}
		}
		fmt.Fprintf(w, "%s\t%v\t%d\t%.1f\t%s\t%s\t%d\t%.0f\t%s\t%s\t%d\t%d\t%d\t\n", ph.name, ph.took.Round(time.Millisecond),
			len(ph.signIns), float64(len(ph.signIns))/ph.took.Seconds(), millis(percentile(ph.signIns, 0.5)), millis(percentile(ph.signIns, 0.99)),
			len(ph.requests), float64(len(ph.requests))/ph.took.Seconds(), millis(percentile(timed, 0.5)), millis(percentile(timed, 0.99)),
			ph.hits, ph.misses, ph.revocations)
	}
	w.Flush()
	for _, ph := range rep.phases {
		if ph.revocations == 0 {
			continue
		}
		fmt.Fprintf(&b, "revocation seen by each other instance (%d revocations, %d observations):\n"+
			"  from the revoking call's return  p50 %s  p99 %s  max %s  (%d seen before it returned)\n"+
			"  from its store Delete's start    p50 %s  p99 %s  max %s\n"+
			"  from the call's start            p50 %s  p99 %s  max %s\n"+
			"  %d requests racing a revocation refused\n",
			ph.revocations, len(ph.fromReturn), millis(percentile(ph.fromReturn, 0.5)), millis(percentile(ph.fromReturn, 0.99)), millis(percentile(ph.fromReturn, 1)), ph.early,
			millis(percentile(ph.fromDelete, 0.5)), millis(percentile(ph.fromDelete, 0.99)), millis(percentile(ph.fromDelete, 1)),
			millis(percentile(ph.fromStart, 0.5)), millis(percentile(ph.fromStart, 0.99)), millis(percentile(ph.fromStart, 1)), ph.refusedRevoked)
	}
	fmt.Fprintf(&b, "\nstore calls (all instances):\n")
	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "phase\t")
	for _, op := range countedOps {
		fmt.Fprintf(w, "%s\t", op)
	}
	fmt.Fprintln(w)
	for _, ph := range rep.phases {
		fmt.Fprintf(w, "%s\t", ph.name)
		for _, op := range countedOps {
			fmt.Fprintf(w, "%d\t", ph.counts.total(op))
		}
		fmt.Fprintln(w)
	}
	w.Flush()

	fmt.Fprintf(&b, "\nper-call costs, all masters (docs/capacity.md; calibrated on this cluster after the load):\n")
	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "operation\tcommands\tcalibrated\tCPU µs\tcalibrated\t")
	for _, op := range countedOps {
		c, ok := rep.costs[op]
		if !ok {
			continue
		}
		d := scaleOutCosts[op]
		fmt.Fprintf(w, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t\n", op, d.cmds, c.cmds, d.cpu, c.cpu)
	}
	w.Flush()

	fmt.Fprintf(&b, "\nper master (shards %v; idle upkeep %s CPU/s; predicted from the docs' costs, and calibrated):\n", rep.shardsOn, rep.idleCPUs())
	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "phase\tmaster\tcommands\t/s\tpredicted\tratio\tcalibrated\tratio\tCPU ms/s\tpredicted\tratio\tcalibrated\tratio\twrites\tshare\tin KB/s\tout KB/s\t")
	for p, ph := range rep.phases {
		var writes int64
		for _, st := range ph.stats {
			writes += st.Changes
		}
		for m, st := range ph.stats {
			cmds := float64(st.Calls(ignoredCommands...))
			s := ph.span.Seconds()
			pr, ca := rep.predicted[p][m], rep.calibrated[p][m]
			cpu := float64(st.CPU.Microseconds())
			share := "-"
			if writes > 0 {
				share = fmt.Sprintf("%.1f %%", 100*float64(st.Changes)/float64(writes))
			}
			fmt.Fprintf(w, "%s\t%d\t%.0f\t%.0f\t%.0f\t%.2f\t%.0f\t%.2f\t%.1f\t%.1f\t%.2f\t%.1f\t%.2f\t%d\t%s\t%.1f\t%.1f\t\n", ph.name, m, cmds, cmds/s,
				pr.cmds/s, pr.cmds/cmds, ca.cmds/s, ca.cmds/cmds,
				cpu/1000/s, pr.cpu/1000/s, pr.cpu/cpu, ca.cpu/1000/s, ca.cpu/cpu, st.Changes, share,
				float64(st.NetInput)/1024/s, float64(st.NetOutput)/1024/s)
		}
	}
	w.Flush()
	var keys int64
	for _, k := range rep.keys {
		keys += k
	}
	fmt.Fprintf(&b, "keys per master before the load (after the warm-up): %v; at the end: %v (", rep.keys0, rep.keys)
	for m, k := range rep.keys {
		if m > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%.1f %%", 100*float64(k)/float64(keys))
	}
	b.WriteString(")\n")
	return b.String()
}

func (rep *scaleOutReport) idleCPUs() string {
	var parts []string
	for _, st := range rep.idle {
		parts = append(parts, fmt.Sprintf("%.2f ms", float64(st.CPU.Microseconds())/1000/rep.idleTook.Seconds()))
	}
	return strings.Join(parts, ", ")
}

// ratios returns the worst ratios of predicted to measured commands and
// CPU over the masters and phases (furthest from 1), of the prediction
// from the docs' costs or of the calibrated one.
func (rep *scaleOutReport) ratios(calibrated bool) (cmds, cpu float64) {
	cmds, cpu = 1, 1
	worse := func(cur, r float64) float64 {
		if absf(r-1) > absf(cur-1) {
			return r
		}
		return cur
	}
	for p, ph := range rep.phases {
		for m, st := range ph.stats {
			pr := rep.predicted[p][m]
			if calibrated {
				pr = rep.calibrated[p][m]
			}
			cmds = worse(cmds, pr.cmds/float64(st.Calls(ignoredCommands...)))
			cpu = worse(cpu, pr.cpu/float64(st.CPU.Microseconds()))
		}
	}
	return cmds, cpu
}

func absf(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestScaleOut is the load test in the reduced form CI runs: 8
// instances, 64 users, a few hundred requests, about twenty revocations.
func TestScaleOut(t *testing.T) {
	rep := runScaleOut(t, loadConfig{instances: 8, users: 128, requests: 400, mix: 240, workers: 4, idle: 300 * time.Millisecond, calibrate: 50})
	t.Logf("\n%s", rep)
	rep.check(t)
}

// BenchmarkScaleOut is the load test's larger form; it runs once,
// whatever b.N, and prints the figures.
func BenchmarkScaleOut(b *testing.B) {
	rep := runScaleOut(b, loadConfig{instances: 8, users: 400, requests: 20_000, mix: 3000, workers: 8, idle: time.Second, calibrate: 500})
	// Printed rather than logged: benchmark logs are cut at ten lines.
	fmt.Printf("\n%s", rep)
	keyShare, writeShare, p99 := rep.check(b)
	cmds, cpu := rep.ratios(false)
	cmdsCal, cpuCal := rep.ratios(true)
	for b.Loop() {
	}
	b.ReportMetric(float64(len(rep.phases[0].signIns))/rep.phases[0].took.Seconds(), "signins/s")
	b.ReportMetric(float64(len(rep.phases[1].requests))/rep.phases[1].took.Seconds(), "req/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "revoke-p99-ms")
	b.ReportMetric(100*keyShare, "max-key-%")
	b.ReportMetric(100*writeShare, "max-write-%")
	b.ReportMetric(cmds, "cmds-pred/meas")
	b.ReportMetric(cpu, "cpu-pred/meas")
	b.ReportMetric(cmdsCal, "cmds-cal/meas")
	b.ReportMetric(cpuCal, "cpu-cal/meas")
}
