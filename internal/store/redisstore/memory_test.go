package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/storetest"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

func usedMemory(t testing.TB, c redis.UniversalClient) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatalf("INFO memory: %v", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("parsing used_memory %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}

// memoryBudget is the Redis memory one session may cost besides its
// sealed tokens, with two sessions per user (more per user costs less):
// the SPEC's 1 KiB. The layout in doc.go measures about 995 here (the IP
// index added about 40 bytes a session, the shards' longer key names
// about 15; at a million sessions, five per user, about 800).
const memoryBudget = 1024

// sealedTokensLen is what a sign-in through the development provider
// (internal/devidp) writes: an RS256 ID token of 1,126 bytes, a 271-byte
// access token, a 43-byte refresh token and the expiry, as JSON sealed
// with AES-GCM. Keycloak's JWT access and refresh tokens make it 3-4 KB.
const sealedTokensLen = 1527

// userAgent returns one of a few dozen desktop and mobile user agents,
// as a population of browsers a few versions apart sends.
func userAgent(i int) session.Device {
	v := 120 + i%12
	switch i % 4 {
	case 0, 1:
		return session.Device{UserAgent: fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", v), Browser: "Chrome", OS: "Windows", Device: "desktop"}
	case 2:
		return session.Device{UserAgent: fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.%d Safari/605.1.15", i%6), Browser: "Safari", OS: "macOS", Device: "desktop"}
	default:
		return session.Device{UserAgent: fmt.Sprintf("Mozilla/5.0 (iPhone; CPU iPhone OS 17_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.%d Mobile/15E148 Safari/604.1", i%6, i%6), Browser: "Safari", OS: "iOS", Device: "mobile"}
	}
}

// keyUsage sums MEMORY USAGE over the keys matching pattern. It leaves
// out what Redis spends per key outside the key's own allocations (the
// expires entry, hash table buckets), which used_memory includes.
func keyUsage(t testing.TB, c redis.UniversalClient, pattern string) (bytes, keys int64) {
	t.Helper()
	ctx := context.Background()
	var names []string
	iter := c.Scan(ctx, 0, pattern, 5000).Iterator()
	for iter.Next(ctx) {
		names = append(names, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	for len(names) > 0 {
		chunk := names[:min(len(names), 5000)]
		names = names[len(chunk):]
		cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range chunk {
				p.MemoryUsage(ctx, k, 0)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, cmd := range cmds {
			bytes += cmd.(*redis.IntCmd).Val()
			keys++
		}
	}
	return bytes, keys
}

// TestMemoryPerSession measures Redis memory per session with realistic
// field sizes (a Keycloak subject and sid, user agents from a few dozen
// browsers, two groups, a GeoIP city), two sessions per user, and sealed
// tokens of the size a real sign-in writes. The tokens are ciphertext,
// stored byte for byte, so the budget applies to everything else; both
// figures are logged with a breakdown by key kind.
func TestMemoryPerSession(t *testing.T) {
	const n = 10_000
	tests := []struct {
		name   string
		tokens int
	}{
		{"no tokens", 0},
		{"devidp tokens", sealedTokensLen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := testredis.Start(t)
			s := newStorePrefix(t, addr, "m", func() time.Time { return storetest.T0 })
			ctx := context.Background()
			before := usedMemory(t, s.c)
			tokens := make([]byte, tt.tokens)
			for i := range tokens {
				tokens[i] = byte(i*31 + 7)
			}
			err := createMany(ctx, s, n, func(i int) *session.Session {
				sess := storetest.Session(i, fmt.Sprintf("%08x-6a0d-4b7e-9c1a-2e5f7d8a9b0c", i/2), storetest.T0.Add(time.Duration(i)*time.Millisecond))
				sess.Email = fmt.Sprintf("user%05d@example.com", i/2)
				sess.EmailVerified = true
				sess.Username = fmt.Sprintf("user%05d", i/2)
				sess.Name = "Alice Example"
				sess.Device = userAgent(i)
				sess.Tokens = tokens
				return sess
			})
			if err != nil {
				t.Fatal(err)
			}
			after := usedMemory(t, s.c)
			per := float64(after-before) / n
			without := per
			if tt.tokens > 0 {
				tb, _ := keyUsage(t, s.c, "{m.*}:k:*")
				// The tokens' keys, plus an expires entry each.
				without = per - float64(tb)/n - 40
			}
			t.Logf("%d sessions, %d users: %.0f bytes/session in Redis, about %.0f without the %d-byte sealed tokens", n, n/2, per, without, tt.tokens)
			for _, k := range []struct{ what, pattern string }{
				{"session hashes", "{m.*}:s:*"},
				{"sealed tokens", "{m.*}:k:*"},
				{"device summaries", "{m.*}:d:*"},
				{"email index", "{m.*}:i:em*"},
				{"user hashes", "{m.*}:u:*"},
				{"last-access index", "{m.*}:i:la*"},
				{"created index", "{m.*}:i:ca*"},
				{"deadline index", "{m.*}:i:dl*"},
				{"IP index", "{m.*}:i:ip*"},
				{"users index", "{m.*}:i:ul*"},
			} {
				b, keys := keyUsage(t, s.c, k.pattern)
				t.Logf("%-18s %5d keys  %6.1f bytes/session", k.what, keys, float64(b)/n)
			}
			// Without tokens the figure is exact; with them, "without" is
			// an estimate (the tokens' keys' share of Redis's overhead is
			// guessed), logged only.
			if tt.tokens == 0 && without > memoryBudget {
				t.Errorf("%.0f bytes/session, want at most %d", without, memoryBudget)
			}
			id := storetest.SessionID(1, fmt.Sprintf("%08x-6a0d-4b7e-9c1a-2e5f7d8a9b0c", 0))
			enc, err := s.c.ObjectEncoding(ctx, s.shardOfID(id).sessionKey(id)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if enc != "listpack" {
				t.Errorf("session hash encoding = %q, want listpack", enc)
			}
		})
	}
}
