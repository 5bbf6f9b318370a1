package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/gatehouse-proxy/gatehouse/internal/geo"
)

// geoPool shares open GeoIP databases across config reloads: one holds
// the whole file in memory.
var geoPool = caddy.NewUsagePool()

type geoHandle struct{ db *geo.DB }

func (g *geoHandle) Destruct() error { return g.db.Close() }

func openGeo(path string, logger *zap.Logger) (*geo.DB, error) {
	v, _, err := geoPool.LoadOrNew(path, func() (caddy.Destructor, error) {
		db, err := geo.Open(path, geo.WithReloadFunc(func(err error) {
			if err != nil {
				logger.Error("geoip database not reloaded; keeping the previous one", zap.String("path", path), zap.Error(err))
				return
			}
			logger.Info("geoip database reloaded", zap.String("path", path))
		}))
		if err != nil {
			return nil, fmt.Errorf("opening geoip database: %w", err)
		}
		return &geoHandle{db: db}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*geoHandle).db, nil
}
