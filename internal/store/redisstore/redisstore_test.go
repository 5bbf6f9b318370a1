package redisstore

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/storetest"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// Every store gets its own prefix on a shared server, which is also how
// gateways share one Redis.
var prefixes atomic.Int64

// quiet drops go-redis's own log lines (redials while a test has stopped
// the server); the store reports failures through its errors.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	os.Exit(m.Run())
}

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
		// A scan budget below the suite's RareValueFullPage log, so that
		// only the indexes give its full first pages.
		s, err := New(Options{Client: newClient(t, addr), Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), Now: now, EventMaxScan: 1500})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestHistory(t *testing.T) {
	addr := testredis.Start(t)
	storetest.History(t, func(t *testing.T, now func() time.Time, maxLen int) storetest.HistoryBackend {
		s, err := New(Options{Client: newClient(t, addr), Prefix: fmt.Sprintf("h%d", prefixes.Add(1)), Now: now, EventMaxLen: int64(maxLen)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
