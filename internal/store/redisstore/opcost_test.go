package redisstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
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
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// What each store operation the gateway does costs Redis (issue 9, item
// 7): the capacity model in docs/capacity.md is built from these
// figures. TestOperationCosts measures them on a standalone Redis in a
// small form; BenchmarkOperationCosts at a realistic size, and on a
// 3-master Cluster for the split over masters:
//
//	go test -run '^$' -bench OperationCosts -benchtime 1x ./internal/store/redisstore/
//
// GATEHOUSE_BENCH_OPS (default 2000) and GATEHOUSE_BENCH_SESSIONS
// (default 100000) set the benchmark's calls per operation and the
// sessions loaded first.

// opCost is what one call of an operation cost, averaged over n calls.
type opCost struct {
	name string
	n    int
	// client is the commands the store sent, round trips' worth (a
	// pipeline of k commands counts k).
	client float64
	// server is the commands Redis ran, those of scripts included (INFO
	// commandstats), and byName the same by command.
	server float64
	byName map[string]float64
	// usec is the commandstats time of the commands the client sent
	// (a script's time includes its commands'): execution only.
	usec float64
	// cpu is the server process's CPU in µs: execution, reading the
	// request, writing the reply and the pub/sub deliveries.
	cpu float64
	// writes are dataset changes (rdb_changes_since_last_save).
	writes float64
	// mem is the change of used_memory in bytes.
	mem float64
	// in and out are the network bytes the server read and wrote.
	in, out float64
	// masters is, on a Cluster, each master's share of server.
	masters []float64
}

// commandCounter counts the commands a client sends, by name.
type commandCounter struct {
	mu sync.Mutex
	n  map[string]int64
}

func (c *commandCounter) add(cmds ...redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int64{}
	}
	for _, cmd := range cmds {
		c.n[strings.ToLower(cmd.Name())]++
	}
}

func (c *commandCounter) take() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = nil
	return n
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmd)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.add(cmds...)
		return next(ctx, cmds)
	}
}

// costMeter measures operations on a store through the INFO of the
// servers behind it (one, or a Cluster's masters).
type costMeter struct {
	t       testing.TB
	servers []string
	// workers make the calls concurrently, as that many gateway
	// instances would.
	workers int
	counter *commandCounter
	// overhead is what one pair of readings costs each server, taken off
	// every measurement.
	overhead []testredis.Stats
	// idle is each server's CPU per second with nothing to do (a
	// Cluster's bus, the server's timers), taken off every measurement
	// for the time it took.
	idle []float64 // µs per second
}

func newCostMeter(t testing.TB, s *Store, servers []string, workers int) *costMeter {
	t.Helper()
	m := &costMeter{t: t, servers: servers, workers: workers, counter: &commandCounter{}}
	s.c.AddHook(m.counter)
	// The readings' own INFO: a reply of a few KB written after the
	// first reading, a request read before the second, a little CPU.
	const pairs = 5
	m.overhead = make([]testredis.Stats, len(servers))
	for range pairs {
		before := m.read()
		after := m.read()
		for i := range servers {
			d := after[i].Sub(before[i])
			m.overhead[i].CPU += d.CPU / pairs
			m.overhead[i].NetInput += d.NetInput / pairs
			m.overhead[i].NetOutput += d.NetOutput / pairs
		}
	}
	const idleFor = 500 * time.Millisecond
	before := m.read()
	start := time.Now()
	time.Sleep(idleFor)
	after := m.read()
	took := time.Since(start).Seconds()
	for i := range servers {
		d := after[i].Sub(before[i])
		m.idle = append(m.idle, max(float64((d.CPU-m.overhead[i].CPU).Microseconds())/took, 0))
	}
	return m
}

func (m *costMeter) read() []testredis.Stats {
	m.t.Helper()
	out := make([]testredis.Stats, len(m.servers))
	for i, addr := range m.servers {
		st, err := testredis.ReadStats(addr)
		if err != nil {
			m.t.Fatal(err)
		}
		out[i] = st
	}
	return out
}

// ignored are commands that are not the operations' own: the readings'
// INFO (the store's INFO replication, every 5s, goes with them) and the
// pub/sub connections' upkeep.
var ignored = []string{"info", "ping", "ssubscribe", "sunsubscribe", "cluster|slots", "cluster|shards", "cluster|nodes", "command", "command|docs", "hello", "client|setinfo", "client|setname", "readonly"}

// measure runs op n times and returns what a call cost.
func (m *costMeter) measure(name string, n int, op func(i int) error) opCost {
	m.t.Helper()
	m.counter.take()
	before := m.read()
	start := time.Now()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range m.workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := op(i); err != nil {
					errOnce.Do(func() { first = fmt.Errorf("%s, call %d: %w", name, i, err) })
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		m.t.Fatal(first)
	}
	took := time.Since(start).Seconds()
	after := m.read()
	sent := m.counter.take()
	c := opCost{name: name, n: n, byName: map[string]float64{}}
	f := float64(n)
	var total float64
	perMaster := make([]float64, len(m.servers))
	for i := range m.servers {
		d := after[i].Sub(before[i])
		c.cpu += (float64((d.CPU - m.overhead[i].CPU).Microseconds()) - m.idle[i]*took) / f
		c.in += float64(d.NetInput-m.overhead[i].NetInput) / f
		c.out += float64(d.NetOutput-m.overhead[i].NetOutput) / f
		c.writes += float64(d.Changes) / f
		c.mem += float64(d.UsedMemory) / f
		for cmd, st := range d.Commands {
			if contains(ignored, cmd) {
				continue
			}
			c.byName[cmd] += float64(st.Calls) / f
			perMaster[i] += float64(st.Calls)
			total += float64(st.Calls)
			// The time of the commands the client sent, apportioned
			// when a command is both sent and run by scripts.
			if k := sent[cmd]; k > 0 {
				c.usec += float64(st.Usec) * min(float64(k)/float64(st.Calls), 1) / f
			}
		}
	}
	for cmd, k := range sent {
		if !contains(ignored, cmd) {
			c.client += float64(k) / f
		}
	}
	c.server = total / f
	if len(m.servers) > 1 && total > 0 {
		for _, v := range perMaster {
			c.masters = append(c.masters, v/total)
		}
	}
	return c
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// sum is a composite operation: the gateway's sign-in, say, is several
// store calls.
func sum(name string, parts ...opCost) opCost {
	c := opCost{name: name, byName: map[string]float64{}}
	for _, p := range parts {
		c.client += p.client
		c.server += p.server
		c.usec += p.usec
		c.cpu += p.cpu
		c.writes += p.writes
		c.mem += p.mem
		c.in += p.in
		c.out += p.out
		for k, v := range p.byName {
			c.byName[k] += v
		}
	}
	return c
}

// minus is (c - o) / k: a per-subscriber cost from two measurements.
func (c opCost) minus(o opCost, name string, k float64) opCost {
	d := opCost{name: name, byName: map[string]float64{}}
	d.client = (c.client - o.client) / k
	d.server = (c.server - o.server) / k
	d.usec = (c.usec - o.usec) / k
	d.cpu = (c.cpu - o.cpu) / k
	d.writes = (c.writes - o.writes) / k
	d.mem = (c.mem - o.mem) / k
	d.in = (c.in - o.in) / k
	d.out = (c.out - o.out) / k
	return d
}

// costTable formats costs as docs/capacity.md shows them.
func costTable(costs []opCost) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "operation\tcalls\tcmds sent\tcmds run\tµs exec\tµs CPU\twrites\tmem B\tin B\tout B\tper master\tcommands run (per call)\t")
	for _, c := range costs {
		shares := ""
		for i, s := range c.masters {
			if i > 0 {
				shares += "/"
			}
			shares += strconv.Itoa(int(s*100 + 0.5))
		}
		if shares != "" {
			shares += " %"
		}
		calls := ""
		if c.n > 0 {
			calls = strconv.Itoa(c.n)
		}
		fmt.Fprintf(w, "%s\t%s\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t%.0f\t%.0f\t%s\t%s\t\n",
			c.name, calls, c.client, c.server, c.usec, c.cpu, c.writes, c.mem, c.in, c.out, shares, topCommands(c.byName))
	}
	w.Flush()
	return b.String()
}

// topCommands lists the commands of one call, most frequent first.
func topCommands(m map[string]float64) string {
	type kv struct {
		k string
		v float64
	}
	var l []kv
	for k, v := range m {
		if v >= 0.05 {
			l = append(l, kv{k, v})
		}
	}
	for i := range l {
		for j := i + 1; j < len(l); j++ {
			if l[j].v > l[i].v || (l[j].v == l[i].v && l[j].k < l[i].k) {
				l[i], l[j] = l[j], l[i]
			}
		}
	}
	var parts []string
	for i, e := range l {
		if i == 6 {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.3g", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}

// subscribers starts k stores on url under prefix, each subscribed as a
// gateway instance is, and returns, once every one is listening, how
// many ends they have received in all and a function that stops them.
func subscribers(t testing.TB, url, prefix string, k int) (*atomic.Int64, func()) {
	t.Helper()
	var got atomic.Int64
	ready := make(chan struct{}, k)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	for range k {
		st := openURL(t, url, prefix, Options{})
		var once sync.Once
		wg.Go(func() {
			_ = st.Subscribe(ctx, func(id string) {
				if id == "" {
					once.Do(func() { ready <- struct{}{} })
					return
				}
				got.Add(1)
			})
		})
	}
	for range k {
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatal("subscribers not listening after 10s")
		}
	}
	return &got, stop
}

// combine merges the rounds' measurements of one operation: counts and
// bytes are averaged over all calls, CPU, time and memory are the median
// of the rounds.
func combine(rs []opCost) opCost {
	c := opCost{name: rs[0].name, byName: map[string]float64{}}
	var cpu, usec, mem []float64
	for _, r := range rs {
		c.n += r.n
		cpu, usec, mem = append(cpu, r.cpu), append(usec, r.usec), append(mem, r.mem)
	}
	for _, r := range rs {
		w := float64(r.n) / float64(c.n)
		c.client += r.client * w
		c.server += r.server * w
		c.writes += r.writes * w
		c.in += r.in * w
		c.out += r.out * w
		for k, v := range r.byName {
			c.byName[k] += v * w
		}
		if c.masters == nil && r.masters != nil {
			c.masters = make([]float64, len(r.masters))
		}
		for i, v := range r.masters {
			c.masters[i] += v * w
		}
	}
	c.cpu, c.usec, c.mem = median(cpu), median(usec), median(mem)
	return c
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// operationCosts loads sessions sessions into the store on url (prefix
// "gh", as a gateway has it) and measures every operation the gateway
// does n times, on the servers listed (the standalone server, or the
// Cluster's masters).
func operationCosts(t testing.TB, url string, servers []string, sessions, n, rounds, workers int) []opCost {
	t.Helper()
	ctx := context.Background()
	s := openURL(t, url, "gh", Options{})
	pop := newPopulation(sessions+n, (sessions+n)/5, time.Now())
	issuer := session.IssuerKey("https://idp.example.com/realms/main")
	sess := func(i int) *session.Session {
		ss := pop.session(i)
		ss.EmailVerified, ss.IssuerKey, ss.AMR = true, issuer, []string{"pwd"}
		return ss
	}
	start := time.Now()
	if err := createMany(ctx, s, sessions, sess); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d sessions in %v", sessions, time.Since(start).Round(time.Millisecond))
	m := newCostMeter(t, s, servers, workers)

	// The sign-ins measured: the population's last n sessions, signed in
	// now, some of users who have sessions already (five a user on
	// average), as on a busy day.
	fresh := make([]*session.Session, n)
	for i := range fresh {
		ss := sess(sessions + i)
		now := time.Now().UTC().Truncate(time.Millisecond)
		ss.CreatedAt, ss.LastAccess, ss.ExpiresAt = now, now, now.Add(12*time.Hour)
		ss.LastIP = ss.IP
		fresh[i] = ss
	}
	event := func(ss *session.Session, typ string) *activity.Event {
		e := &activity.Event{Time: time.Now().UTC(), Type: typ, User: ss.User, Email: ss.Email, SessionID: ss.ID,
			Site: ss.Site, IP: ss.LastIP, City: ss.City, Country: ss.Country, Device: ss.Device.Label(), Actor: activity.ActorSystem}
		switch typ {
		case activity.LoginSucceeded:
			e.Actor, e.IssuerKey = ss.Email, ss.IssuerKey
		case activity.SessionRevoked:
			e.Actor, e.Duration, e.Inactivity = "admin@example.com", 3600, 60
		case activity.LoginFailed:
			e.SessionID, e.Reason = "", activity.ReasonReauthRequired
		}
		return e
	}
	// Rounds, each running every operation on its share of the sessions,
	// spread the measurements over time: the median of the rounds' CPU,
	// time and memory ignores a moment when the machine was busy.
	rounds = max(1, min(rounds, n/20))
	per := n / rounds
	samples := map[string][]opCost{}
	var order []string
	add := func(c opCost) {
		if _, ok := samples[c.name]; !ok {
			order = append(order, c.name)
		}
		samples[c.name] = append(samples[c.name], c)
	}
	const subs = 8
	for r := range rounds {
		g := fresh[r*per : (r+1)*per]
		// Sessions loaded before, for the calls whose cost depends on
		// the session having aged (Touch moves it in the indexes).
		old := func(i int) int { return (r*per + i) * 7919 % sessions }
		lists := max(per/10, 10)
		half := per / 2
		add(m.measure("ClaimOnce (sign-in state)", per, func(i int) error {
			_, err := s.ClaimOnce(ctx, fmt.Sprintf("state:%d-%d-%x", r, i, rand.Uint64()), 11*time.Minute)
			return err
		}))
		add(m.measure("Reauth (sign-in)", per, func(i int) error {
			_, err := s.Reauth(ctx, g[i].User)
			return err
		}))
		add(m.measure("Create", per, func(i int) error { return s.Create(ctx, g[i]) }))
		add(m.measure("Append login_succeeded (+ history row)", per, func(i int) error {
			return s.Append(ctx, event(g[i], activity.LoginSucceeded))
		}))
		add(m.measure("Get (cache miss)", per, func(i int) error {
			_, err := s.Get(ctx, pop.id(old(i)))
			return err
		}))
		add(m.measure("Touch (last access minutes old)", per, func(i int) error {
			ss := pop.session(old(i))
			return s.Touch(ctx, ss.ID, session.Access{At: time.Now(), IP: ss.LastIP})
		}))
		add(m.measure("List, first page of 100", lists, func(int) error {
			p, err := s.List(ctx, session.Query{Limit: 100})
			if err == nil && len(p.Items) != 100 {
				err = fmt.Errorf("first page of %d sessions, want 100", len(p.Items))
			}
			return err
		}))
		add(m.measure("List, one user's sessions", per, func(i int) error {
			_, err := s.List(ctx, session.Query{User: g[i].User})
			return err
		}))
		add(m.measure("Due, none due (a sweep's call)", per, func(int) error {
			d, err := s.Due(ctx, time.Now(), 100)
			if err == nil && len(d) != 0 {
				err = fmt.Errorf("%d due, want none", len(d))
			}
			return err
		}))
		add(m.measure("Due, 100 due", lists, func(int) error {
			d, err := s.Due(ctx, time.Now().Add(13*time.Hour), 100)
			if err == nil && len(d) != 100 {
				err = fmt.Errorf("%d due, want 100", len(d))
			}
			return err
		}))
		add(m.measure("SetReauth (revocation)", per, func(i int) error {
			return s.SetReauth(ctx, g[i].User, time.Now())
		}))
		add(m.measure("Delete, no subscriber", half, func(i int) error {
			_, err := s.Delete(ctx, g[i].ID)
			return err
		}))
		add(m.measure("Append session_revoked (ends history row)", half, func(i int) error {
			return s.Append(ctx, event(g[i], activity.SessionRevoked))
		}))
		// An end's delivery alone, as Delete publishes it, to compare
		// with 8 subscribers below: less noisy than Delete's difference.
		publish := func(i int) error {
			sh := s.shardOfID(g[i].ID)
			return s.c.SPublish(ctx, sh.ended, g[i].ID).Err()
		}
		add(m.measure("SPUBLISH of an end, no subscriber", per, publish))
		got, stop := subscribers(t, url, "gh", subs)
		add(m.measure("SPUBLISH of an end, 8 subscribers", per, publish))
		add(m.measure("Delete, 8 subscribers", per-half, func(i int) error {
			_, err := s.Delete(ctx, g[half+i].ID)
			return err
		}))
		want := int64(subs * (per - half + per))
		deadline := time.Now().Add(5 * time.Second)
		for got.Load() < want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		stop()
		if got.Load() != want {
			t.Errorf("subscribers received %d ends, want %d", got.Load(), want)
		}
		add(m.measure("Append login_failed (no session)", per, func(i int) error {
			return s.Append(ctx, event(g[i], activity.LoginFailed))
		}))
	}
	var costs []opCost
	byName := map[string]opCost{}
	for _, name := range order {
		c := combine(samples[name])
		costs = append(costs, c)
		byName[name] = c
	}
	claim, reauth, create, login := byName["ClaimOnce (sign-in state)"], byName["Reauth (sign-in)"], byName["Create"], byName["Append login_succeeded (+ history row)"]
	get, touch, setReauth := byName["Get (cache miss)"], byName["Touch (last access minutes old)"], byName["SetReauth (revocation)"]
	del, del8, revoked := byName["Delete, no subscriber"], byName["Delete, 8 subscribers"], byName["Append session_revoked (ends history row)"]
	dueNone := byName["Due, none due (a sweep's call)"]
	pub0, pub8 := byName["SPUBLISH of an end, no subscriber"], byName["SPUBLISH of an end, 8 subscribers"]
	add = func(c opCost) { costs = append(costs, c) }
	add(sum("= sign-in: ClaimOnce+Reauth+Create+Append", claim, reauth, create, login))
	add(sum("= revocation: Get+SetReauth+Delete+Append", get, setReauth, del, revoked))
	add(pub8.minus(pub0, "= each subscriber of an end", subs))
	add(del8.minus(del, "= the same from Delete's difference", subs))
	add(sum("= cache miss + touch", get, touch))
	add(sum("= sweep of 16 shards, none due", dueNone))
	return costs
}

// TestOperationCosts measures the costs on a standalone Redis at a small
// size and checks what the gateway relies on: a cache miss and a touch
// are one round trip each, and a cache miss writes nothing.
func TestOperationCosts(t *testing.T) {
	srv := testredis.StartServer(t)
	costs := operationCosts(t, "redis://"+srv.Addr(), []string{srv.Addr()}, 5000, 200, 1, 1)
	t.Logf("per call, standalone Redis, 5,000 sessions:\n%s", costTable(costs))
	for _, c := range costs {
		switch {
		case strings.HasPrefix(c.name, "Get"):
			// (The first call may add an EVAL after a NOSCRIPT.)
			if c.client > 1.01 || c.writes != 0 {
				t.Errorf("%s: %.3f commands sent and %.2f writes per call, want 1 and 0", c.name, c.client, c.writes)
			}
		case strings.HasPrefix(c.name, "Touch"), c.name == "Create":
			if c.client > 1.01 {
				t.Errorf("%s: %.2f commands sent per call, want 1 (a script)", c.name, c.client)
			}
		}
	}
}

// BenchmarkOperationCosts prints the cost table of docs/capacity.md:
// standalone Redis, then a 3-master Cluster with each operation's split
// over the masters. It measures once, whatever b.N.
func BenchmarkOperationCosts(b *testing.B) {
	n, sessions, rounds, workers := 2000, 100_000, 5, 1
	for env, p := range map[string]*int{"GATEHOUSE_BENCH_OPS": &n, "GATEHOUSE_BENCH_SESSIONS": &sessions,
		"GATEHOUSE_BENCH_ROUNDS": &rounds, "GATEHOUSE_BENCH_WORKERS": &workers} {
		if v := os.Getenv(env); v != "" {
			k, err := strconv.Atoi(v)
			if err != nil || k < 1 {
				b.Fatalf("%s=%q: want a positive number", env, v)
			}
			*p = k
		}
	}
	b.Run("standalone", func(b *testing.B) {
		srv := testredis.StartServer(b)
		costs := operationCosts(b, "redis://"+srv.Addr(), []string{srv.Addr()}, sessions, n, rounds, workers)
		// Printed rather than logged: benchmark logs are cut at ten lines.
		fmt.Printf("per call, standalone Redis, %d sessions:\n%s", sessions, costTable(costs))
		for b.Loop() {
		}
	})
	b.Run("cluster", func(b *testing.B) {
		c := testredis.StartCluster(b, 3)
		shards, err := c.Shards()
		if err != nil {
			b.Fatal(err)
		}
		var masters []string
		for _, sh := range shards {
			masters = append(masters, sh.Addr)
		}
		costs := operationCosts(b, c.URL(), masters, sessions, n, rounds, workers)
		fmt.Printf("per call, 3-master Cluster, %d sessions (per master: share of commands run, masters by slot range):\n%s", sessions, costTable(costs))
		for b.Loop() {
		}
	})
}
