package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis replicates asynchronously: a master may answer a write and die
// before its replica has it, and a Sentinel or Cluster failover then
// promotes a replica without the write. For a sign-in that means a
// session the browser holds a cookie for and the store does not; for a
// revocation, a session that comes back. WAIT closes that window: it
// blocks until n replicas have acknowledged the connection's writes so
// far, or until its timeout.
//
// WAIT waits for the replication offset as of the last command on the
// connection it arrives on, so it must follow the write on the same
// connection: sent as a separate command through a pooled client it may
// go out on an idle connection last used before the write and return at
// once (TestSentinelWaitReplicas). runReplicated therefore pipelines the
// script and
// WAIT on one connection, on a Cluster that of the master holding the
// keys (a pipeline through the ClusterClient would send WAIT, which has
// no key, to any node).

// DefaultReplicaTimeout bounds how long a write waits for its replicas.
// Replication on a LAN takes well under a millisecond; a replica that
// cannot keep up within this is not one a failover would choose.
const DefaultReplicaTimeout = 100 * time.Millisecond

// runReplicated runs sc with keys and args like sc.Run, then waits up to
// timeout for n replicas to acknowledge it, and returns the script's
// reply and how many replicas did. With n ≤ 0 it is sc.Run.
//
// Fewer acknowledgements than n are not an error here: the write is on
// the master, and whether to refuse it (and the sign-in with it) while
// replicas lag or are down is the caller's choice.
func (s *Store) runReplicated(ctx context.Context, sc *redis.Script, n int, timeout time.Duration, keys []string, args ...any) (*redis.Cmd, int64, error) {
	if n > 0 && len(keys) > 0 {
		// No more than the master has: WAIT for a replica that is not
		// there would only add its timeout to every write.
		n = min(n, s.replicasOf(ctx, keys[0]))
	}
	if n <= 0 {
		r := sc.Run(ctx, s.c, keys, args...)
		return r, 0, r.Err()
	}
	var pipe redis.Pipeliner
	if cc, ok := s.c.(*redis.ClusterClient); ok && len(keys) > 0 {
		m, err := cc.MasterForKey(ctx, keys[0])
		if err != nil {
			return nil, 0, fmt.Errorf("finding the master of %s: %w", keys[0], err)
		}
		pipe = m.Pipeline()
	} else {
		pipe = s.c.Pipeline()
	}
	r, acks, err := pipeReplicated(ctx, pipe, sc.EvalSha, n, timeout, keys, args)
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Not loaded on this server yet (a fresh or failed-over one).
		r, acks, err = pipeReplicated(ctx, pipe, sc.Eval, n, timeout, keys, args)
	}
	if redis.HasErrorPrefix(err, "MOVED") || redis.HasErrorPrefix(err, "ASK") {
		// The slot moved since the client last read the map: let the
		// ClusterClient follow the redirect, without the WAIT this once.
		r = sc.Run(ctx, s.c, keys, args...)
		return r, 0, r.Err()
	}
	return r, acks, err
}

// replicaCheckEvery is how long a master's count of replicas is trusted.
const replicaCheckEvery = 5 * time.Second

type replicaCount struct {
	n  int
	at time.Time
}

// replicasOf returns how many replicas the master holding key has
// connected (INFO replication), read at most every replicaCheckEvery; on
// an error, the last count, or 0.
func (s *Store) replicasOf(ctx context.Context, key string) int {
	var (
		node redis.UniversalClient = s.c
		addr string
	)
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		m, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return 0
		}
		node, addr = m, m.Options().Addr
	}
	s.replMu.Lock()
	c, ok := s.replicas[addr]
	s.replMu.Unlock()
	if ok && time.Since(c.at) < replicaCheckEvery {
		return c.n
	}
	info, err := node.Info(ctx, "replication").Result()
	if err != nil {
		return c.n
	}
	n := 0
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			n, _ = strconv.Atoi(v)
		}
	}
	s.replMu.Lock()
	if s.replicas == nil {
		s.replicas = map[string]replicaCount{}
	}
	s.replicas[addr] = replicaCount{n, time.Now()}
	s.replMu.Unlock()
	return n
}

// pipeReplicated sends run's command and WAIT in one pipeline.
func pipeReplicated(ctx context.Context, pipe redis.Pipeliner,
	run func(context.Context, redis.Scripter, []string, ...any) *redis.Cmd,
	n int, timeout time.Duration, keys []string, args []any) (*redis.Cmd, int64, error) {
	r := run(ctx, pipe, keys, args...)
	// Pipeliner lacks a Wait method; the command is the same.
	w := pipe.Do(ctx, "WAIT", n, timeout.Milliseconds())
	// Exec's error is the first command's error; look at each.
	_, _ = pipe.Exec(ctx)
	if err := r.Err(); err != nil {
		return r, 0, err
	}
	acks, err := w.Int64()
	if err != nil {
		return r, 0, fmt.Errorf("waiting for replicas: %w", err)
	}
	return r, acks, nil
}
