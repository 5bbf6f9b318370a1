package caddymodule

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/memstore"
	"github.com/gatehouse-proxy/gatehouse/internal/store/redisstore"
)

// storePool shares stores across config reloads: a new config starts
// before the old one stops, and must not open a second Redis client or,
// for the memory store, lose every session.
var storePool = caddy.NewUsagePool()

type storeHandle struct {
	key      string
	sessions session.Store
	events   activity.Store
	// secret is the per-process secret of the memory store.
	secret string
	// maxEvents is the max_events the store was opened with.
	maxEvents int64
	close     func() error
}

// Destruct closes the store when the last config using it is gone.
func (h *storeHandle) Destruct() error {
	if h.close != nil {
		return h.close()
	}
	return nil
}

// storeTimeout bounds the wait for one Redis reply (and for sending a
// command) when the store URL sets no read_timeout or write_timeout. A
// request's store calls are single small commands and scripts of a few
// milliseconds at most; a reply later than this means a Redis in trouble,
// and the request is better answered (from the cache, or 503) than held.
const storeTimeout = time.Second

func checkStoreURL(u string) error {
	_, err := redisstore.ParseURL(u)
	return err
}

// openStore returns the pooled store for URL u, opening it with the cap
// maxEvents (0: the store's default) when no config holds it yet.
//
// A Redis store is pooled by URL and cap: a reload that changes max_events
// gets a new client with the new cap (the data is in Redis, nothing is
// lost) while the old config drains on the old one. The memory store is
// pooled by "memory" alone, as a new one would lose every session; it keeps
// the cap it was opened with, which the caller can compare.
func openStore(u string, maxEvents int64) (*storeHandle, error) {
	key := "memory"
	if !isMemory(u) {
		key = fmt.Sprintf("redis %d %s", maxEvents, u)
	}
	v, _, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) {
		if isMemory(u) {
			m := memstore.New(memstore.Options{EventMaxLen: int(min(maxEvents, math.MaxInt32))})
			return &storeHandle{key: key, sessions: m, events: m, secret: randomSecret(), maxEvents: maxEvents}, nil
		}
		uo, err := redisstore.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("opening store: %w", err)
		}
		// go-redis waits 5 s for a reply and then retries once: a Redis
		// that stalls held each request 10 s and more before its 503
		// (issue 10, item 3). Requests wait on the store, so bound a
		// reply by storeTimeout unless the URL says otherwise.
		if uo.ReadTimeout == 0 {
			uo.ReadTimeout = storeTimeout
		}
		if uo.WriteTimeout == 0 {
			uo.WriteTimeout = uo.ReadTimeout
		}
		c := redis.NewUniversalClient(uo)
		r, err := redisstore.New(redisstore.Options{Client: c, EventMaxLen: maxEvents})
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("opening store: %w", err)
		}
		return &storeHandle{key: key, sessions: r, events: r, close: c.Close, maxEvents: maxEvents}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*storeHandle), nil
}

// go-redis has one process-wide logger, while each config (App) has its
// own Caddy logger, and configs overlap during a reload. So the logger is
// installed once, and each message goes to the newest App still
// provisioned: during a reload that is the new config; when a new config
// fails and is cleaned up, the old one again; with no App left, Caddy's
// default logger. A single "latest" pointer would keep pointing at a
// config that is gone once the newest one was cleaned up out of order.
var redisLogs struct {
	once sync.Once
	mu   sync.Mutex
	live []*zap.Logger // of provisioned Apps, oldest first
	cur  atomic.Pointer[zap.Logger]
}

// redisLogger routes go-redis's own messages (reconnects, pool errors) to
// Caddy's log instead of the standard logger.
type redisLogger struct{}

func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	l := redisLogs.cur.Load()
	if l == nil {
		l = caddy.Log().Named("gatehouse.redis")
	}
	l.Warn(fmt.Sprintf(format, v...))
}

// routeRedisLogs installs redisLogger on first use and makes l, an App's
// logger, the one it writes to; the returned func undoes that, for the
// App's Cleanup.
func routeRedisLogs(l *zap.Logger) (release func()) {
	redisLogs.once.Do(func() { redis.SetLogger(redisLogger{}) })
	l = l.Named("redis")
	redisLogs.mu.Lock()
	defer redisLogs.mu.Unlock()
	redisLogs.live = append(redisLogs.live, l)
	redisLogs.cur.Store(l)
	return func() {
		redisLogs.mu.Lock()
		defer redisLogs.mu.Unlock()
		redisLogs.live = slices.DeleteFunc(redisLogs.live, func(x *zap.Logger) bool { return x == l })
		if n := len(redisLogs.live); n > 0 {
			redisLogs.cur.Store(redisLogs.live[n-1])
		} else {
			redisLogs.cur.Store(nil)
		}
	}
}
