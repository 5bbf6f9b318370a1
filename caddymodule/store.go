package caddymodule

import (
	"context"
	"fmt"
	"sync"

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
	close  func() error
}

// Destruct closes the store when the last config using it is gone.
func (h *storeHandle) Destruct() error {
	if h.close != nil {
		return h.close()
	}
	return nil
}

func checkStoreURL(u string) error {
	_, err := redisstore.ParseURL(u)
	return err
}

func openStore(u string) (*storeHandle, error) {
	key := "memory"
	if !isMemory(u) {
		key = "redis " + u
	}
	v, _, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) {
		if isMemory(u) {
			m := memstore.New(memstore.Options{})
			return &storeHandle{key: key, sessions: m, events: m, secret: randomSecret()}, nil
		}
		r, err := redisstore.New(redisstore.Options{URL: u})
		if err != nil {
			return nil, fmt.Errorf("opening store: %w", err)
		}
		return &storeHandle{key: key, sessions: r, events: r, close: r.Close}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*storeHandle), nil
}

// redisLogger routes go-redis's own messages (reconnects, pool errors) to
// Caddy's log instead of the standard logger.
type redisLogger struct{ l *zap.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}

var redisLogOnce sync.Once

// routeRedisLogs installs redisLogger; go-redis has one global logger.
func routeRedisLogs(l *zap.Logger) {
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{l: l.Named("redis")}) })
}
