package redisstore

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// indexOpScript runs one operation of the ordered-index library, so that
// tests can drive it directly. KEYS index. ARGV op, then per op:
// add/rem score member; down cursor-score cursor-member max; up max-score.
var indexOpScript = redis.NewScript(luaLib + `
local op = ARGV[1]
if op == 'add' then
  badd(KEYS[1], tonumber(ARGV[2]), ARGV[3])
elseif op == 'rem' then
  brem(KEYS[1], tonumber(ARGV[2]), ARGV[3])
elseif op == 'down' then
  local out, max = {}, tonumber(ARGV[4])
  bdown(KEYS[1], ARGV[2], ARGV[3], function(m, s)
    if #out >= 2 * max then return false end
    out[#out + 1] = m
    out[#out + 1] = s
    return true
  end)
  return out
elseif op == 'up' then
  local out = {}
  bup(KEYS[1], tonumber(ARGV[2]), function(m, s)
    out[#out + 1] = m
    out[#out + 1] = s
    return true
  end)
  return out
end
return 1
`)

type entry struct {
	member string
	score  int64
}

// newestFirst orders entries as the listings do: score, then member,
// descending.
func newestFirst(a, b entry) int {
	if c := cmp.Compare(b.score, a.score); c != 0 {
		return c
	}
	return strings.Compare(b.member, a.member)
}

// indexEntries reads every entry of an ordered index, bucket by bucket,
// and checks the index's invariants (see luaLib): the lowest bound is
// -inf, every bucket is non-empty, listed and within its range, buckets
// stay at bucketCap unless one score fills them, and those that fit are
// listpacks.
func indexEntries(t *testing.T, c redis.UniversalClient, ix string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	dir, err := c.ZRangeWithScores(ctx, ix, 0, -1).Result()
	if err != nil {
		t.Fatalf("reading directory %s: %v", ix, err)
	}
	got := map[string]int64{}
	listed := map[string]bool{}
	for i, d := range dir {
		n := d.Member.(string)
		k := ix + ":" + n
		listed[k] = true
		if i == 0 && !math.IsInf(d.Score, -1) {
			t.Fatalf("%s: lowest bound is %v, want -inf", ix, d.Score)
		}
		hi := math.Inf(1)
		if i+1 < len(dir) {
			hi = dir[i+1].Score
		}
		es, err := c.ZRangeWithScores(ctx, k, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			t.Fatalf("%s: bucket %s is listed but empty", ix, k)
		}
		if len(es) > bucketCap && es[0].Score != es[len(es)-1].Score {
			t.Fatalf("%s: bucket %s holds %d entries of several scores, want at most %d", ix, k, len(es), bucketCap)
		}
		long := false
		for _, e := range es {
			m := e.Member.(string)
			long = long || len(m) > maxValue
			if e.Score < d.Score || e.Score >= hi {
				t.Fatalf("%s: bucket %s [%v, %v) holds %s at %v", ix, k, d.Score, hi, m, e.Score)
			}
			if _, dup := got[m]; dup {
				t.Fatalf("%s: %s is in two buckets", ix, m)
			}
			got[m] = int64(e.Score)
		}
		if enc := c.ObjectEncoding(ctx, k).Val(); len(es) <= bucketCap && !long && enc != "listpack" {
			t.Fatalf("%s: bucket %s of %d entries is a %s, want a listpack", ix, k, len(es), enc)
		}
	}
	keys, err := c.Keys(ctx, ix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !listed[k] && k != ix+":n" {
			t.Fatalf("%s: bucket %s is not in the directory", ix, k)
		}
	}
	return got
}

// TestIndexMatchesModel drives the ordered-index library with random
// adds, moves and removals (rising times with ties, as the session
// indexes see, and scattered ones) and compares it with a plain model
// after every step of a batch.
func TestIndexMatchesModel(t *testing.T) {
	addr := testredis.Start(t)
	c := newClient(t, addr)
	ctx := t.Context()
	tests := []struct {
		name  string
		score func(r *rand.Rand, step int) int64
	}{
		{"rising with ties", func(r *rand.Rand, step int) int64 { return 1_740_000_000_000 + int64(step/3) }},
		{"scattered", func(r *rand.Rand, step int) int64 { return 1_740_000_000_000 + r.Int64N(2000) }},
		{"few scores", func(r *rand.Rand, step int) int64 { return int64(r.IntN(3)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(len(tt.name))))
			ix := fmt.Sprintf("{ix}:%s", strings.ReplaceAll(tt.name, " ", "-"))
			model := map[string]int64{}
			var members []string
			run := func(args ...any) {
				t.Helper()
				if err := indexOpScript.Run(ctx, c, []string{ix}, args...).Err(); err != nil && err != redis.Nil {
					t.Fatalf("%v: %v", args, err)
				}
			}
			for step := range 3000 {
				switch p := r.IntN(10); {
				case p < 5 || len(members) == 0: // add
					m := fmt.Sprintf("m%06d", r.IntN(1_000_000))
					if _, ok := model[m]; ok {
						continue
					}
					s := tt.score(r, step)
					run("add", s, m)
					model[m] = s
					members = append(members, m)
				case p < 8: // move, as Touch does
					m := members[r.IntN(len(members))]
					s := tt.score(r, step)
					run("rem", model[m], m)
					run("add", s, m)
					model[m] = s
				default: // remove
					i := r.IntN(len(members))
					m := members[i]
					run("rem", model[m], m)
					delete(model, m)
					members = slices.Delete(members, i, i+1)
				}
				// Removals of what is not there change nothing.
				if step%7 == 0 {
					run("rem", tt.score(r, step), "absent")
				}
				if step%300 == 299 {
					if got := indexEntries(t, c, ix); !mapsEqual(got, model) {
						t.Fatalf("step %d: index holds %d entries, model %d", step, len(got), len(model))
					}
					checkWalks(t, c, ix, model, r)
				}
			}
			for _, m := range members {
				run("rem", model[m], m)
			}
			if n := c.Exists(ctx, ix).Val(); n != 0 {
				t.Fatalf("directory %s remains after every member left", ix)
			}
		})
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkWalks compares bdown from the top and from random cursors, and
// bup to random bounds, with the model.
func checkWalks(t *testing.T, c redis.UniversalClient, ix string, model map[string]int64, r *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	var want []entry
	for m, s := range model {
		want = append(want, entry{m, s})
	}
	slices.SortFunc(want, newestFirst)
	read := func(args ...any) []entry {
		t.Helper()
		v, err := indexOpScript.Run(ctx, c, []string{ix}, args...).Slice()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var out []entry
		for i := 0; i+1 < len(v); i += 2 {
			s, err := strconv.ParseInt(v[i+1].(string), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, entry{v[i].(string), s})
		}
		return out
	}
	if got := read("down", "", "", len(want)+1); !slices.Equal(got, want) {
		t.Fatalf("walk down from the top = %d entries, want %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
	}
	for range 5 {
		if len(want) == 0 {
			break
		}
		i := r.IntN(len(want))
		from := want[i]
		if got := read("down", strconv.FormatInt(from.score, 10), from.member, 50); !slices.Equal(got, want[i+1:min(i+51, len(want))]) {
			t.Fatalf("walk down after %v differs at %d", from, firstDiff(got, want[i+1:]))
		}
		max := want[r.IntN(len(want))].score
		var up []entry
		for j := len(want) - 1; j >= 0 && want[j].score <= max; j-- {
			up = append(up, want[j])
		}
		// bup goes up by score; equal scores come in ascending member order.
		if got := read("up", max); !slices.Equal(got, up) {
			t.Fatalf("walk up to %d differs at %d", max, firstDiff(got, up))
		}
	}
}

func firstDiff(a, b []entry) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// Regression guard: bucket numbers come from a counter key; had it been
// deleted, new buckets took the numbers of live ones and a split
// overwrote a bucket.
func TestIndexSurvivesLostCounter(t *testing.T) {
	c := newClient(t, testredis.Start(t))
	ctx := t.Context()
	const ix = "{ix}:counter"
	model := map[string]int64{}
	add := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			m, s := fmt.Sprintf("m%05d", i), int64(i%97)*1000+int64(i)
			if err := indexOpScript.Run(ctx, c, []string{ix}, "add", s, m).Err(); err != nil && err != redis.Nil {
				t.Fatal(err)
			}
			model[m] = s
		}
	}
	add(0, 1000)
	c.Del(ctx, ix+":n")
	add(1000, 2000)
	if got := indexEntries(t, c, ix); !mapsEqual(got, model) {
		t.Fatalf("after the counter was lost, the index holds %d entries, want %d", len(got), len(model))
	}
}
