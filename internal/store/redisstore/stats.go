package redisstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// Counters: see doc.go, "Stats".

const (
	quarterMS = int64(15 * time.Minute / time.Millisecond)
	dayMS     = int64(24 * time.Hour / time.Millisecond)
	// countBatch bounds the commands of one pipeline of CountQuarters.
	countBatch = 4096
)

// quarterOf is the UTC day of a time in ms since the epoch and the
// quarter hour within that day.
func quarterOf(ms int64) (day, quarter int64) { return ms / dayMS, ms % dayMS / quarterMS }

// counterSet orders the shard's counters by day, for Trim.
func (sh *shard) counterSet() string { return sh.events + ":n" }

// counter is the hash of a type's events in a UTC day, quarter hour to
// weight: of every site (site nil) or of one.
func (sh *shard) counter(typ string, day int64, site *string) string {
	k := sh.events + ":n:" + typ + ":" + strconv.FormatInt(day, 10)
	if site != nil {
		k += ":s:" + *site
	}
	return k
}

// CountQuarters implements activity.Counter from the counters Append
// keeps: one HGETALL per shard, type, day (and site, for a reach),
// pipelined.
func (s *Store) CountQuarters(ctx context.Context, sites []string, from, to time.Time, add func(start time.Time, typ string, n int64)) error {
	if sites != nil && len(sites) == 0 {
		return nil
	}
	f, t := max(from.UnixMilli(), 0), to.UnixMilli()
	if t <= f {
		return nil
	}
	type ask struct {
		typ string
		day int64
	}
	var asks []ask
	var keys []string
	for i := range s.shards {
		sh := &s.shards[i]
		for _, typ := range activity.StatsTypes {
			for day := f / dayMS; day <= (t-1)/dayMS; day++ {
				if sites == nil {
					asks, keys = append(asks, ask{typ, day}), append(keys, sh.counter(typ, day, nil))
					continue
				}
				for j := range sites {
					asks, keys = append(asks, ask{typ, day}), append(keys, sh.counter(typ, day, &sites[j]))
				}
			}
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), countBatch)
		cmds := make([]*redis.MapStringStringCmd, n)
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys[:n] {
				cmds[i] = p.HGetAll(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail("counting events", err)
		}
		for i, c := range cmds {
			for q, v := range c.Val() {
				quarter, err1 := strconv.ParseInt(q, 10, 64)
				w, err2 := strconv.ParseInt(v, 10, 64)
				start := asks[i].day*dayMS + quarter*quarterMS
				if err1 != nil || err2 != nil || start < f || start >= t {
					continue
				}
				add(time.UnixMilli(start).UTC(), asks[i].typ, w)
			}
		}
		keys, asks = keys[n:], asks[n:]
	}
	return nil
}

// trimCountersScript drops the counters of days before ARGV[1]. KEYS the
// counter set.
var trimCountersScript = redis.NewScript(`
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 1000)
for _, k in ipairs(old) do redis.call('DEL', k) end
if #old > 0 then redis.call('ZREM', KEYS[1], unpack(old)) end
return #old
`)

// trimCounters drops sh's counters of the days before before's day, whose
// events retention has dropped.
func (s *Store) trimCounters(ctx context.Context, sh *shard, before time.Time) error {
	day, _ := quarterOf(max(before.UnixMilli(), 0))
	for {
		n, err := trimCountersScript.Run(ctx, s.c, []string{sh.counterSet()}, day).Int()
		if err != nil {
			return fail("trimming event counters", err)
		}
		if n < 1000 {
			return nil
		}
	}
}
