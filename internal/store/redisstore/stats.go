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

// counter is the counts of a type's events in a UTC day: a string of 96
// big-endian unsigned 32-bit weights, one a quarter hour, that Append
// adds to with BITFIELD INCRBY u32 #quarter (saturating), of every site
// (site nil) or of one. A chart reads a day with one GET and no
// allocation per quarter hour.
func (sh *shard) counter(typ string, day int64, site *string) string {
	return sh.counterKey(":q:", typ, day, site)
}

// hashCounter is where counts were kept before counter: a hash, quarter
// hour to weight, that CountQuarters still adds in (retention drops the
// last of them).
func (sh *shard) hashCounter(typ string, day int64, site *string) string {
	return sh.counterKey(":n:", typ, day, site)
}

func (sh *shard) counterKey(kind, typ string, day int64, site *string) string {
	k := sh.events + kind + typ + ":" + strconv.FormatInt(day, 10)
	if site != nil {
		k += ":s:" + *site
	}
	return k
}

// CountQuarters implements activity.Counter from the counters Append
// keeps: a GET per shard, type, day (and site, for a reach), pipelined.
// Counts written before the counters were strings are in hashes
// (hashCounter): one EXISTS per shard over all of its days tells whether
// any are left in the range, and only then are they read (HGETALL), so
// that a store without them pays 16 commands for them.
func (s *Store) CountQuarters(ctx context.Context, sites []string, from, to time.Time, add func(start time.Time, typ string, n int64)) error {
	if sites != nil && len(sites) == 0 {
		return nil
	}
	f, t := max(from.UnixMilli(), 0), to.UnixMilli()
	if t <= f {
		return nil
	}
	type ask struct {
		shard int
		typ   string
		day   int64
		key   string // counter
		old   string // hashCounter
	}
	tally := func(a *ask, quarter, w int64) {
		if start := a.day*dayMS + quarter*quarterMS; w != 0 && start >= f && start < t {
			add(time.UnixMilli(start).UTC(), a.typ, w)
		}
	}
	var asks []ask
	for i := range s.shards {
		sh := &s.shards[i]
		for _, typ := range activity.StatsTypes {
			for day := f / dayMS; day <= (t-1)/dayMS; day++ {
				if sites == nil {
					asks = append(asks, ask{i, typ, day, sh.counter(typ, day, nil), sh.hashCounter(typ, day, nil)})
					continue
				}
				for j := range sites {
					asks = append(asks, ask{i, typ, day, sh.counter(typ, day, &sites[j]), sh.hashCounter(typ, day, &sites[j])})
				}
			}
		}
	}
	for len(asks) > 0 {
		batch := asks[:min(len(asks), countBatch)]
		counts := make([]*redis.StringCmd, len(batch))
		// runs[k] is the k-th run of one shard's asks in batch, whose old
		// hashes one EXISTS asks about (a command's keys must share a
		// slot).
		type run struct {
			from, to int
			exists   *redis.IntCmd
		}
		var runs []run
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j := range batch {
				counts[j] = p.Get(ctx, batch[j].key)
				if j == 0 || batch[j].shard != batch[j-1].shard {
					runs = append(runs, run{from: j})
				}
				runs[len(runs)-1].to = j + 1
			}
			for k := range runs {
				olds := make([]string, 0, runs[k].to-runs[k].from)
				for _, a := range batch[runs[k].from:runs[k].to] {
					olds = append(olds, a.old)
				}
				runs[k].exists = p.Exists(ctx, olds...)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail("counting events", err)
		}
		for j := range counts {
			v := counts[j].Val()
			for q := 0; q+4 <= len(v); q += 4 {
				tally(&batch[j], int64(q/4), int64(uint32(v[q])<<24|uint32(v[q+1])<<16|uint32(v[q+2])<<8|uint32(v[q+3])))
			}
		}
		hashes := make([]*redis.MapStringStringCmd, len(batch))
		_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, r := range runs {
				if r.exists.Val() == 0 {
					continue
				}
				for j := r.from; j < r.to; j++ {
					hashes[j] = p.HGetAll(ctx, batch[j].old)
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail("counting events", err)
		}
		for j, h := range hashes {
			if h == nil {
				continue
			}
			for q, v := range h.Val() {
				quarter, err1 := strconv.ParseInt(q, 10, 64)
				w, err2 := strconv.ParseInt(v, 10, 64)
				if err1 == nil && err2 == nil {
					tally(&batch[j], quarter, w)
				}
			}
		}
		asks = asks[len(batch):]
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
