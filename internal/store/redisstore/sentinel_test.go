package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/storetest"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// TestSentinel runs the conformance suites through a redis-sentinel://
// URL with the data servers' password and a database other than 0.
func TestSentinel(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := testredis.StartSentinel(t, testredis.Password("pa ss/word"))
	t.Logf("master, replica and 3 sentinels ready in %v", time.Since(start).Round(time.Millisecond))
	url := s.URL() + "/2"
	opts, err := ParseURL(url)
	if err != nil || opts.MasterName != s.MasterName() || opts.Password != "pa ss/word" || opts.DB != 2 || len(opts.Addrs) != 3 {
		t.Fatalf("ParseURL(%q) = %+v, %v; want the master name, password, db 2 and 3 sentinels", url, opts, err)
	}
	conformance(t, url)
}

// dialProbeEvery is how often go-redis's pool tries to dial again once
// pool_size dials have failed since its last successful probe.
const dialProbeEvery = time.Second

// TestSentinelFailover kills the master under a load of sign-ins
// (Create, then Get) and checks that the store fails over: requests fail
// only while the Sentinels elect the replica (and up to a probe of the
// pool later), no session acknowledged after WAIT is lost, and the
// Subscribe loop reconnects, which tells the gateway to flush its cache
// (ended("")). Half the load uses Create as it is, which can lose the
// last sessions the master acknowledged before it died; those are
// counted and logged.
func TestSentinelFailover(t *testing.T) {
	s := testredis.StartSentinel(t)
	st := openURL(t, s.URL(), fmt.Sprintf("f%d", prefixes.Add(1)), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		mu       sync.Mutex
		connects []time.Time // when Subscribe called ended("")
	)
	connected := make(chan struct{}, 1)
	subDone := make(chan error, 1)
	go func() {
		subDone <- st.Subscribe(ctx, func(id string) {
			if id != "" {
				return
			}
			mu.Lock()
			connects = append(connects, time.Now())
			mu.Unlock()
			select {
			case connected <- struct{}{}:
			default:
			}
		})
	}()
	select {
	case <-connected:
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not connect within 5s")
	}

	type worker struct {
		acked    []string    // sessions whose Create returned nil
		errTimes []time.Time // when a Create or Get failed
		errs     []error
		ops      int
		opsAfter int // successful sign-ins after the failover
	}
	const workers = 4
	var (
		stop       atomic.Bool
		failedOver atomic.Int64 // Unix nanoseconds; 0 before
		seq        atomic.Int64
		wg         sync.WaitGroup
		ws         = make([]worker, workers)
	)
	for w := range ws {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			for !stop.Load() {
				i := int(seq.Add(1))
				sess := storetest.Session(i, fmt.Sprintf("u%d", i%50), time.Now())
				octx, ocancel := context.WithTimeout(ctx, 2*time.Second)
				// Create waits for the replica (replicas.go).
				err := st.Create(octx, sess)
				if err == nil {
					w.acked = append(w.acked, sess.ID)
					var got *session.Session
					if got, err = st.Get(octx, sess.ID); err == nil && got.User != sess.User {
						err = fmt.Errorf("Get(%s) returned user %q, want %q", sess.ID, got.User, sess.User)
					}
				}
				ocancel()
				w.ops++
				if err != nil {
					w.errTimes = append(w.errTimes, time.Now())
					w.errs = append(w.errs, err)
					// A gateway answers 503 and the browser comes back.
					time.Sleep(10 * time.Millisecond)
				} else if failedOver.Load() != 0 {
					w.opsAfter++
				}
			}
		}(&ws[w])
	}
	stopLoad := func() {
		stop.Store(true)
		wg.Wait()
	}
	defer stopLoad()

	time.Sleep(time.Second)
	killedAt := time.Now()
	old := s.KillMaster()
	next := s.WaitFailover(20 * time.Second)
	failedOverAt := time.Now()
	failedOver.Store(failedOverAt.UnixNano())
	// Keep the load going for a second on the new master.
	time.Sleep(time.Second)
	stopLoad()

	var (
		errTimes      []time.Time
		ops, opsAfter int
		unexpected    []string
	)
	for _, w := range ws {
		errTimes = append(errTimes, w.errTimes...)
		ops += w.ops
		opsAfter += w.opsAfter
		for _, err := range w.errs {
			switch {
			case errors.Is(err, session.ErrUnavailable):
			case errors.Is(err, session.ErrNotFound):
				// Create said yes, Get on the new master said no: a lost
				// session, counted below.
			default:
				unexpected = append(unexpected, err.Error())
			}
		}
	}
	slices.SortFunc(errTimes, func(a, b time.Time) int { return a.Compare(b) })
	failover := failedOverAt.Sub(killedAt)
	t.Logf("killed master %s; sentinels named %s after %v", old, next, failover.Round(time.Millisecond))
	if len(errTimes) > 0 {
		first, last := errTimes[0], errTimes[len(errTimes)-1]
		t.Logf("%d of %d sign-ins failed, from +%v to +%v after the kill: a window of %v",
			len(errTimes), ops, first.Sub(killedAt).Round(time.Millisecond), last.Sub(killedAt).Round(time.Millisecond), last.Sub(first).Round(time.Millisecond))
		if first.Before(killedAt) {
			t.Errorf("a request failed %v before the kill", killedAt.Sub(first))
		}
		// The client asks a Sentinel on every new connection, so it could
		// find the new master as soon as the Sentinels name it. But once
		// pool_size dials have failed, go-redis's pool stops dialing and
		// fails every request with the last dial error until a probe,
		// made once a second, connects (internal/pool/pool.go tryDial;
		// go-redis issue 3062): requests fail up to a second longer.
		over := last.Sub(failedOverAt)
		t.Logf("requests failed until %v after the sentinels named the new master", over.Round(time.Millisecond))
		if over > dialProbeEvery+250*time.Millisecond {
			t.Errorf("requests kept failing %v after the failover", over.Round(time.Millisecond))
		}
	} else {
		t.Errorf("no request failed in %d, though the master was killed", ops)
	}
	if len(unexpected) > 0 {
		t.Errorf("%d errors other than ErrUnavailable, first: %s", len(unexpected), unexpected[0])
	}
	if opsAfter == 0 {
		t.Errorf("no sign-in succeeded after the failover")
	}

	// Every acknowledged session must be on the new master.
	var acked, lost []string
	for _, w := range ws {
		acked = append(acked, w.acked...)
		for _, id := range w.acked {
			_, err := st.Get(context.Background(), id)
			switch {
			case errors.Is(err, session.ErrNotFound):
				lost = append(lost, id)
			case err != nil:
				t.Fatalf("Get(%s) after the failover: %v", id, err)
			}
		}
	}
	// Create returns once the replica has the session too (WAIT), so a
	// failover loses none it acknowledged.
	t.Logf("Create: %d sessions acknowledged, %d lost", len(acked), len(lost))
	if len(acked) == 0 {
		t.Error("no Create succeeded")
	}
	if len(lost) > 0 {
		t.Errorf("lost %d acknowledged sessions: %v", len(lost), lost)
	}

	mu.Lock()
	reconnected := slices.IndexFunc(connects, func(at time.Time) bool { return at.After(killedAt) })
	var after time.Duration
	if reconnected >= 0 {
		after = connects[reconnected].Sub(killedAt)
	}
	mu.Unlock()
	if reconnected < 0 {
		t.Errorf("Subscribe did not reconnect (ended(\"\")) after the failover")
	} else {
		t.Logf("Subscribe reconnected %v after the kill", after.Round(time.Millisecond))
	}
	cancel()
	select {
	case <-subDone:
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return after its context was cancelled")
	}
}

// TestSentinelWaitReplicas checks runReplicated's WAIT: it waits for the
// replica to have the write it follows on one connection. A WAIT sent on
// its own may go out on another pooled connection, whose last command
// came before the write, and return at once: Redis 7.0 waits for the
// replication offset as of the connection's last command.
func TestSentinelWaitReplicas(t *testing.T) {
	t.Parallel()
	s := testredis.StartSentinel(t)
	st := openURL(t, s.URL(), fmt.Sprintf("w%d", prefixes.Add(1)), Options{})
	ctx := context.Background()
	master, err := s.Master()
	if err != nil {
		t.Fatal(err)
	}
	// An idle connection of the pool, last used before the writes.
	idle := redis.NewClient(&redis.Options{Addr: master})
	defer idle.Close()
	if err := idle.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	create := func(i int, replicated bool, timeout time.Duration) (int64, time.Duration) {
		t.Helper()
		keys, args, err := st.createArgs(storetest.Session(i, "alice", time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		if replicated {
			n = 1
		}
		start := time.Now()
		_, acks, err := st.runReplicated(ctx, createScript, n, timeout, keys, args...)
		if err != nil {
			t.Fatalf("runReplicated(create %d, %d replicas): %v", i, n, err)
		}
		return acks, time.Since(start)
	}
	if acks, _ := create(1, true, time.Second); acks != 1 {
		t.Fatalf("create with a healthy replica: %d acknowledgements, want 1", acks)
	}

	replica := s.Servers()[1]
	replica.Pause()
	defer replica.Resume()
	const timeout = 200 * time.Millisecond
	if acks, took := create(2, true, timeout); acks != 0 || took < timeout {
		t.Fatalf("create with a stalled replica: %d acknowledgements after %v, want 0 after %v", acks, took, timeout)
	}
	create(3, false, timeout) // as Create does today
	start := time.Now()
	if n, err := idle.Wait(ctx, 1, timeout).Result(); err != nil || n != 1 || time.Since(start) >= timeout {
		t.Fatalf("WAIT on an idle connection = %d, %v after %v; want 1 at once, though the replica has neither write", n, err, time.Since(start))
	}
	replica.Resume()
	if acks, _ := create(4, true, time.Second); acks != 1 {
		t.Fatalf("create once the replica is back: %d acknowledgements, want 1", acks)
	}
}
