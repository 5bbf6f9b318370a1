package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// countScript counts the entries of an ordered index (doc.go, "Ordered
// indexes"): the sizes of its buckets, which the directory KEYS[1] lists.
// One ZCARD per bucket of up to 128 entries: about 500 calls in a shard of
// 62,500 sessions, well under a millisecond, and nothing is read.
var countScript = redis.NewScript(`
local n = 0
for _, b in ipairs(redis.call('ZRANGE', KEYS[1], '0', '-1')) do
  n = n + redis.call('ZCARD', KEYS[1] .. ':' .. b)
end
return n
`)

// CountSessions returns how many sessions the store holds, across every
// instance that shares it: the entries of each shard's last-access index.
// Sessions past their deadline count until the background sweep (every
// 10 s) ends them. It is meant for a metrics gauge, asked every few
// seconds, not per request.
func (s *Store) CountSessions(ctx context.Context) (int64, error) {
	var total int64
	for i := range s.shards {
		n, err := countScript.Run(ctx, s.c, []string{s.shards[i].byLast}).Int64()
		if err != nil {
			return 0, fail("counting sessions", err)
		}
		total += n
	}
	return total, nil
}
