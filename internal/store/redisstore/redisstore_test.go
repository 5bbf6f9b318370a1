package redisstore

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/storetest"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// One server for the package's conformance tests; every store gets its own
// prefix on it, which is also how gateways share one Redis.
var prefixes atomic.Int64

func newClient(t testing.TB, addr string) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func newStore(t testing.TB, addr string, now func() time.Time) *Store {
	t.Helper()
	return newStorePrefix(t, addr, fmt.Sprintf("t%d", prefixes.Add(1)), now)
}

func newStorePrefix(t testing.TB, addr, prefix string, now func() time.Time) *Store {
	t.Helper()
	s, err := New(Options{Client: newClient(t, addr), Prefix: prefix, Now: now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestSessions(t *testing.T) {
	addr := testredis.Start(t)
	storetest.Sessions(t, func(t *testing.T, now func() time.Time) (a, b session.Store) {
		prefix := fmt.Sprintf("t%d", prefixes.Add(1))
		// Two clients, as two gateway instances would have.
		return newStorePrefix(t, addr, prefix, now), newStorePrefix(t, addr, prefix, now)
	})
}

func TestEvents(t *testing.T) {
	addr := testredis.Start(t)
	storetest.Events(t, func(t *testing.T, now func() time.Time) activity.Store {
		return newStore(t, addr, now)
	})
}
