package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// orderHook runs between an export's reads of one index: after the read
// of the index's stream it calls between (once), and it holds the read of
// the index's list until then, at most for a second.
type orderHook struct {
	stream, list string
	between      func()
	once         sync.Once
	done         chan struct{}
}

func (h *orderHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *orderHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *orderHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		key := ""
		if len(args) > 1 {
			key, _ = args[1].(string)
		}
		name := strings.ToLower(cmd.Name())
		if name == "lrange" && key == h.list {
			select {
			case <-h.done:
			case <-time.After(time.Second):
			}
		}
		err := next(ctx, cmd)
		if name == "xrevrange" && key == h.stream {
			h.once.Do(func() {
				h.between()
				close(h.done)
			})
		}
		return err
	}
}

var _ redis.Hook = (*orderHook)(nil)

// An index moves from its list to its stream when an Append brings it to
// smallIndex IDs. The export read an index's stream and its list in two
// goroutines, in no set order: with the move between the stream's read
// (nothing there yet) and the list's (emptied), every event of the index
// was missing from the export, which then looked complete.
func TestReviewExportIndexMovesToStream(t *testing.T) {
	addr := testredis.Start(t)
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	plain := newStorePrefix(t, addr, prefix, nil)
	ctx := t.Context()
	now := time.Now().Add(-time.Hour)
	// Enough other events that the user's index is sparse (exportDense)
	// and the export reads it rather than the streams.
	for i := range 5 * smallIndex {
		e := &activity.Event{Time: now.Add(time.Duration(i) * time.Millisecond), Type: activity.LoginSucceeded, User: fmt.Sprintf("other%d", i%50), Site: "a.example"}
		if err := plain.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	const user = "alice"
	for i := range smallIndex - 1 {
		e := &activity.Event{Time: now.Add(time.Duration(i) * time.Millisecond), Type: activity.LoginSucceeded, User: user, Site: "a.example"}
		if err := plain.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	sh := plain.shardOfUser(user)
	key := sh.eventIndexKey(ixUser, user)
	if n, err := plain.c.LLen(ctx, sh.indexList(key)).Result(); err != nil || n != smallIndex-1 {
		t.Fatalf("index list holds %d IDs (%v), want %d", n, err, smallIndex-1)
	}

	hook := &orderHook{stream: key, list: sh.indexList(key), done: make(chan struct{})}
	hook.between = func() {
		// The next event of the user moves the index to its stream.
		e := &activity.Event{Time: time.Now(), Type: activity.Logout, User: user, Site: "a.example"}
		if err := plain.Append(context.Background(), e); err != nil {
			t.Error(err)
		}
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	c.AddHook(hook)
	hooked, err := New(Options{Client: c, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = hooked.Export(ctx, activity.Filter{User: user}, func(*activity.Event) error {
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < smallIndex-1 {
		t.Fatalf("Export(user=%s) = %d events while its index moved to a stream, want %d or more", user, n, smallIndex-1)
	}
}

// snapHook holds a node's part of an export's snapshot pipeline that
// reads stream b until the part that reads stream a has run and then
// between, at most for a second: on a Cluster the nodes answer their
// parts in any order.
type snapHook struct {
	a, b    string
	between func()
	once    sync.Once
	done    chan struct{}
}

func (h *snapHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *snapHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *snapHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	top := func(cmds []redis.Cmder, key string) bool {
		for _, c := range cmds {
			args := c.Args()
			if len(args) == 6 && args[0] == "xrevrange" && args[1] == key && args[2] == "+" {
				return true
			}
		}
		return false
	}
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if top(cmds, h.b) {
			select {
			case <-h.done:
			case <-time.After(time.Second):
			}
		}
		err := next(ctx, cmds)
		if top(cmds, h.a) {
			h.once.Do(func() {
				h.between()
				close(h.done)
			})
		}
		return err
	}
}

// On a Cluster the snapshot's pipeline is one per master, answered in no
// set order, and each shard's reader started at its own stream's newest
// ID: an event appended to shard A after A's newest ID was read, but
// before B's was, was missing while a newer event of B was exported.
// The export was then no moment of the log: it had a gap below its first
// row (TestCluster/Events, "walk 10 (pages, then exports)", failed so
// about one run in three).
func TestReviewExportClusterSnapshotGap(t *testing.T) {
	cl := testredis.StartCluster(t, 3)
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	plain := openURL(t, cl.URL(), prefix, Options{})
	ctx := t.Context()

	// Two shards on different masters, and a user of each.
	cc := plain.c.(*redis.ClusterClient)
	master := func(i int) string {
		m, err := cc.MasterForKey(ctx, plain.shards[i].events)
		if err != nil {
			t.Fatal(err)
		}
		return m.Options().Addr
	}
	a, b := 0, -1
	for i := 1; i < len(plain.shards); i++ {
		if master(i) != master(a) {
			b = i
			break
		}
	}
	if b < 0 {
		t.Fatal("every shard on one master")
	}
	userOf := func(i int) string {
		for n := 0; ; n++ {
			if u := fmt.Sprintf("user%d", n); plain.shardOfUser(u) == &plain.shards[i] {
				return u
			}
		}
	}
	ua, ub := userOf(a), userOf(b)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, e := range []*activity.Event{
		{Time: t0, Type: activity.LoginSucceeded, User: ua},
		{Time: t0.Add(10 * time.Second), Type: activity.LoginSucceeded, User: ub},
	} {
		if err := plain.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	opts, err := ParseURL(cl.URL())
	if err != nil {
		t.Fatal(err)
	}
	hooked := redis.NewUniversalClient(opts).(*redis.ClusterClient)
	t.Cleanup(func() { hooked.Close() })
	hook := &snapHook{a: plain.shards[a].events, b: plain.shards[b].events, done: make(chan struct{})}
	hook.between = func() {
		// Older than B's newest event, appended to A while the snapshot
		// is under way.
		if err := plain.Append(context.Background(), &activity.Event{Time: t0.Add(5 * time.Second), Type: activity.Logout, User: ua}); err != nil {
			t.Error(err)
		}
	}
	hooked.OnNewNode(func(n *redis.Client) { n.AddHook(hook) })
	s, err := New(Options{Client: hooked, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.Export(ctx, activity.Filter{}, func(e *activity.Event) error {
		got = append(got, e.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	page, err := plain.Query(ctx, activity.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range page.Items {
		if len(got) > 0 && compareStreamIDs(e.ID, got[0]) <= 0 {
			want = append(want, e.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Export = %v, want every event from its first on: %v", got, want)
	}
}

// A cursor of 0-0 (nothing is below it) or a To bound before 1970 made
// XREVRANGE fail ("invalid end ID for the interval", "Invalid stream
// ID"): any admin or auditor could turn /api/events and events.csv into
// a 500 and an error report. Both now find nothing.
func TestReviewExportBoundsBelowZero(t *testing.T) {
	s := newStore(t, testredis.Start(t), nil)
	ctx := t.Context()
	for i := range 3 {
		if err := s.Append(ctx, &activity.Event{Time: time.Now(), Type: activity.LoginSucceeded, User: fmt.Sprintf("u%d", i), Site: "a.example"}); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range []activity.Filter{
		{Cursor: "0-0"}, {Cursor: "0-0", User: "u1"}, {Cursor: "0-0", Types: []string{activity.LoginSucceeded}},
		{To: old}, {To: old, User: "u1"}, {From: old, To: old},
	} {
		page, err := s.Query(ctx, f)
		if err != nil || len(page.Items) != 0 {
			t.Errorf("Query(%+v) = %d events, %v; want none, no error", f, len(page.Items), err)
		}
		n := 0
		err = s.Export(ctx, f, func(*activity.Event) error { n++; return nil })
		if err != nil || n != 0 {
			t.Errorf("Export(%+v) = %d events, %v; want none, no error", f, n, err)
		}
	}
}

// inflight counts the commands and pipelines a client has out at once,
// and the most it had.
type inflight struct{ now, most atomic.Int64 }

func (h *inflight) enter() func() {
	n := h.now.Add(1)
	for m := h.most.Load(); n > m && !h.most.CompareAndSwap(m, n); m = h.most.Load() {
	}
	return func() { h.now.Add(-1) }
}

// connInit tells the commands go-redis sends to set up a new connection,
// inside the call that needed it, through the same hooks.
func connInit(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select", "ping":
		return true
	}
	return false
}

func (h *inflight) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *inflight) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !connInit(cmd) {
			defer h.enter()()
		}
		return next(ctx, cmd)
	}
}
func (h *inflight) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || !connInit(cmds[0]) {
			defer h.enter()()
		}
		return next(ctx, cmds)
	}
}

// exportReads bounded the Redis calls of one export, but every export had
// its own bound: a few concurrent downloads (an auditor's script) held
// the whole connection pool, and requests' store calls queued behind
// them (24 exports at once: a GET waited 120 ms on average, 0.5 s at
// worst, on a pool of 20). The bound is now the store's, shared by its
// exports.
func TestReviewExportsShareTheirBound(t *testing.T) {
	addr := testredis.Start(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	s, err := New(Options{Client: c, Prefix: fmt.Sprintf("t%d", prefixes.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now().Add(-time.Hour)
	for i := range 3000 {
		e := &activity.Event{Time: now.Add(time.Duration(i) * time.Millisecond), Type: activity.LoginSucceeded, User: fmt.Sprintf("u%d", i%300), Site: "a.example"}
		if err := s.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	h := &inflight{}
	c.AddHook(h)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			n := 0
			if err := s.Export(ctx, activity.Filter{}, func(*activity.Event) error { n++; return nil }); err != nil || n != 3000 {
				t.Errorf("Export = %d events, %v; want 3000", n, err)
			}
		})
	}
	wg.Wait()
	// The snapshot's pipelines come before the readers' calls, one per
	// export: those may overlap the bounded reads.
	if most := h.most.Load(); most > exportReads+6 {
		t.Fatalf("6 exports had %d Redis calls out at once, want at most %d (exportReads) and their snapshots", most, exportReads)
	}
}
