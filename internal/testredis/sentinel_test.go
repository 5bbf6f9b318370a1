package testredis

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := StartSentinel(t)
	t.Logf("master, replica and 3 sentinels ready in %v", time.Since(start).Round(time.Millisecond))

	if got, want := s.URL(), "redis-sentinel://"+strings.Join(s.Addrs(), ",")+"/"+SentinelName; got != want {
		t.Fatalf("URL() = %q, want %q", got, want)
	}
	first, err := s.Master()
	if err != nil {
		t.Fatal(err)
	}
	if first != s.Servers()[0].Addr() {
		t.Fatalf("Master() = %s, want the first server %s", first, s.Servers()[0])
	}
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName(), SentinelAddrs: s.Addrs()})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatalf("SET before failover: %v", err)
	}
	// Replication is asynchronous: make sure the replica has the write
	// before the master dies.
	if n, err := c.Wait(ctx, 1, time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want 1 replica", n, err)
	}

	killedAt := time.Now()
	if got := s.KillMaster(); got != first {
		t.Fatalf("KillMaster() = %s, want %s", got, first)
	}
	next := s.WaitFailover(15 * time.Second)
	t.Logf("failover to %s took %v", next, time.Since(killedAt).Round(time.Millisecond))
	if next != s.Servers()[1].Addr() {
		t.Fatalf("new master %s, want the replica %s", next, s.Servers()[1])
	}
	if s.Servers()[0].Running() {
		t.Fatal("the old master still runs")
	}

	// The same client finds the new master through the Sentinels.
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "before" {
		t.Fatalf("GET after failover = %q, %v; want %q", got, err, "before")
	}
	if err := c.Set(ctx, "k", "after", 0).Err(); err != nil {
		t.Fatalf("SET after failover: %v", err)
	}
}

func TestSentinelPassword(t *testing.T) {
	t.Parallel()
	// Characters that need quoting in redis.conf and escaping in a URL.
	const pass = `s3 "cr\et"/+é`
	s := StartSentinel(t, Password(pass))
	if !strings.HasPrefix(s.URL(), "redis-sentinel://:s3%20%22cr%5Cet%22%2F+%C3%A9@") {
		t.Fatalf("URL() = %q, want the password escaped in it", s.URL())
	}
	if err := ping(s.Servers()[0].Addr(), ""); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("PING without the password = %v, want NOAUTH", err)
	}
	ctx := context.Background()
	wrong := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName(), SentinelAddrs: s.Addrs(), Password: "wrong"})
	defer wrong.Close()
	if err := wrong.Set(ctx, "k", "v", 0).Err(); err == nil {
		t.Fatal("SET with a wrong password succeeded")
	}
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName(), SentinelAddrs: s.Addrs(), Password: pass, DB: 3})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET with the password: %v", err)
	}
	// The replica gets it in a moment, through masterauth.
	err := waitFor(5*time.Second, func() error {
		got, err := text(s.Servers()[1].Addr(), pass, "INFO", "keyspace")
		if err == nil && !strings.Contains(got, "db3:keys=1") {
			err = fmt.Errorf("keyspace %q, want one key in db 3", got)
		}
		return err
	})
	if err != nil {
		t.Fatalf("replica: %v", err)
	}
}

// quiet drops go-redis's log lines (redials, "new master"): the tests say
// what went wrong through their failures.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	os.Exit(m.Run())
}
