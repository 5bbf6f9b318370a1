package testredis

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := StartCluster(t, 3)
	t.Logf("3-master cluster ready in %v", time.Since(start).Round(time.Millisecond))

	shards, err := c.Shards()
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 3 {
		t.Fatalf("Shards() = %d shards, want 3: %+v", len(shards), shards)
	}
	next := 0
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.First != next {
				t.Fatalf("slots %d.. served by none, or twice: %+v", next, shards)
			}
			next = r.Last + 1
		}
		if n := c.Node(sh.Addr); n == nil || n.ID() != sh.ID {
			t.Fatalf("shard %s (%s) is not node %v", sh.Addr, sh.ID, n)
		}
	}
	if next != 16384 {
		t.Fatalf("slots end at %d, want 16384", next)
	}

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer cc.Close()
	ctx := context.Background()
	for i := range 300 {
		if err := cc.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatalf("SET k%d: %v", i, err)
		}
	}
	var mu sync.Mutex
	perMaster := map[string]int64{}
	err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		mu.Lock()
		perMaster[m.Options().Addr] = n
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for addr, n := range perMaster {
		if n == 0 {
			t.Errorf("master %s holds no key of 300: %v", addr, perMaster)
		}
		total += n
	}
	if len(perMaster) != 3 || total != 300 {
		t.Fatalf("keys per master = %v, want 300 over 3 masters", perMaster)
	}

	n := c.Nodes()[0]
	pid := n.PID()
	n.Stop()
	if err := ping(n.Addr(), ""); err == nil {
		t.Fatalf("node %s (pid %d) answers PING after Stop", n.Addr(), pid)
	}
}

func TestClusterReplicas(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := StartCluster(t, 3, Replicas(1))
	t.Logf("3 masters with a replica each ready in %v", time.Since(start).Round(time.Millisecond))
	if got := len(c.Nodes()); got != 6 {
		t.Fatalf("%d nodes, want 6", got)
	}
	shards, err := c.Shards()
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 3 {
		t.Fatalf("Shards() = %+v, want 3 shards", shards)
	}
	for _, sh := range shards {
		if len(sh.Replicas) != 1 {
			t.Fatalf("shard %s has replicas %v, want one", sh.Addr, sh.Replicas)
		}
	}
}
