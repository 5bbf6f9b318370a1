package redisstore

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Key names of a session or user in its shard, for tests that look at
// keys directly.
func (s *Store) sessionKey(id string) string { return s.shardOfID(id).sessionKey(id) }
func (s *Store) tokensKey(id string) string  { return s.shardOfID(id).tokensKey(id) }
func (s *Store) userKey(user string) string  { return s.shardOfUser(user).userKey(user) }

// keysOfShards returns the keys of every shard that match the pattern
// after the shard's tag (":u:*").
func keysOfShards(t *testing.T, s *Store, pattern string) []string {
	t.Helper()
	var out []string
	for i := range s.shards {
		keys, err := s.c.Keys(t.Context(), s.shards[i].tag+pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, keys...)
	}
	return out
}

// shardEntries is indexEntries over the index that ix names in every
// shard.
func shardEntries(t *testing.T, s *Store, ix func(sh *shard) string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for i := range s.shards {
		for m, sc := range indexEntries(t, s.c, ix(&s.shards[i])) {
			out[m] = sc
		}
	}
	return out
}

// inShardIndex reports whether a key is one of the shards' session
// indexes or event keys, which have no TTL.
func (s *Store) noTTLKey(k string) bool {
	for i := range s.shards {
		sh := &s.shards[i]
		if strings.HasPrefix(k, sh.tag+":i:") || k == sh.events || strings.HasPrefix(k, sh.events+":") {
			return true
		}
	}
	return false
}

func TestShardTagsSpreadOverSlots(t *testing.T) {
	// CRC16 test vector of Redis's cluster spec: "123456789" → 0x31C3.
	if got := keySlot("123456789"); got != 0x31C3%clusterSlots {
		t.Fatalf("keySlot(123456789) = %d, want %d", got, 0x31C3%clusterSlots)
	}
	for _, prefix := range []string{"gh", "t1", "a.b", "ünï"} {
		tags := shardTags(prefix)
		seen := map[string]bool{}
		for i, tag := range tags {
			inner := strings.TrimSuffix(strings.TrimPrefix(tag, "{"), "}")
			if slot := int(keySlot(inner)); slot/(clusterSlots/len(tags)) != i {
				t.Errorf("prefix %q: shard %d tag %s in slot %d, outside its range", prefix, i, tag, slot)
			}
			if seen[tag] {
				t.Errorf("prefix %q: tag %s twice", prefix, tag)
			}
			seen[tag] = true
		}
	}
}

// deadlineEntries is indexEntries over every partition of a shard's
// deadline index (dl is the partitions' hash), checking the hash's
// counts against the partitions.
func deadlineEntries(t *testing.T, c redis.UniversalClient, dl string) map[string]int64 {
	t.Helper()
	parts, err := c.HGetAll(t.Context(), dl).Result()
	if err != nil {
		t.Fatalf("reading deadline partitions %s: %v", dl, err)
	}
	out := map[string]int64{}
	for f, n := range parts {
		got := indexEntries(t, c, dl+":"+f)
		if fmt.Sprint(len(got)) != n {
			t.Errorf("deadline partition %q holds %d entries, its count says %s", f, len(got), n)
		}
		for m, sc := range got {
			out[m] = sc
		}
	}
	return out
}
