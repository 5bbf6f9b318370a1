package redisstore

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// Event indexes (see doc.go, "Event indexes"): for each user subject,
// email (case-folded), type and site, a stream of the IDs of its events,
// each entry under the event's own ID, so that an index is read with the
// same ID ranges and cursors as the event stream itself.

// Index key families, after "{gh}:ev:".
const (
	ixUser  = "u:"
	ixEmail = "e:"
	ixType  = "y:"
	ixSite  = "si:"
	ixIP    = "ip:"
)

// ipBucket is the part of an event's IP text that its IP index is keyed
// by: up to and including the second separator, "." for IPv4 and ":" for
// IPv6 ("203.0.", "2001:db8:", "::"), so an IPv4 /16 or the first two
// groups of an IPv6 address; ok is false for a text with fewer. Every IP
// with an IPPrefix that holds a whole bucket has that bucket, so such a
// filter reads one index in each shard.
func ipBucket(ip string) (bucket string, ok bool) {
	sep := byte('.')
	if strings.IndexByte(ip, ':') >= 0 {
		sep = ':'
	}
	n := 0
	for i := 0; i < len(ip); i++ {
		if ip[i] == sep {
			if n++; n == 2 {
				return ip[:i+1], true
			}
		}
	}
	return "", false
}

// maxReachIndexes is how many sites an admin's reach (Filter.Sites) may
// name for Query to read their site indexes rather than the stream: a
// reach of few sites is where a scan would return short pages, and
// merging many indexes costs more than scanning the stream.
const maxReachIndexes = 4

func (sh *shard) eventIndexKey(family, value string) string {
	return sh.events + ":" + family + value
}

// eventIndexes is the set of every index key of the shard, so that Trim
// finds them.
func (sh *shard) eventIndexes() string { return sh.events + ":ix" }

// indexList is the list form of the index whose stream is key.
func (sh *shard) indexList(key string) string {
	return sh.events + ":l:" + strings.TrimPrefix(key, sh.events+":")
}

// shardOfEvent is the shard an event goes to: its user's, so that a
// user's events and their index are in one place; else its session's;
// else one chosen by a hash of its IP, so that anonymous floods spread.
func (s *Store) shardOfEvent(e *activity.Event) *shard {
	switch {
	case e.User != "":
		return s.shardOfUser(e.User)
	case e.SessionID != "":
		return s.shardOfID(e.SessionID)
	}
	return s.shardOfUser(e.IP)
}

// shardOfEventID is the shard whose stream holds the event id: each
// shard's IDs have sequence numbers equal to its number modulo the
// number of shards (appendIndexedScript), so IDs are unique across
// shards and name their shard.
func (s *Store) shardOfEventID(id string) *shard {
	_, q, _ := strings.Cut(id, "-")
	seq, _ := strconv.ParseUint(q, 10, 64)
	return &s.shards[seq%uint64(len(s.shards))]
}

// indexKeysOf returns the index keys an event goes into, in its shard.
func (sh *shard) indexKeysOf(e *activity.Event) []string {
	keys := make([]string, 0, 4)
	if e.User != "" {
		keys = append(keys, sh.eventIndexKey(ixUser, e.User))
	}
	if e.Email != "" {
		keys = append(keys, sh.eventIndexKey(ixEmail, foldKey(e.Email)))
	}
	if e.Type != "" {
		keys = append(keys, sh.eventIndexKey(ixType, e.Type))
	}
	if e.Site != "" {
		keys = append(keys, sh.eventIndexKey(ixSite, e.Site))
	}
	if b, ok := ipBucket(e.IP); ok {
		keys = append(keys, sh.eventIndexKey(ixIP, b))
	}
	return keys
}

// queryIndexKeys returns the index keys Query reads for f, the most
// selective kind among f's fields (user, then an IP prefix that holds a
// whole bucket, then site, then types, then a small reach), or nil to
// scan the streams. Every event f matches is in one of them; Match then
// applies the rest of f. A subject's index is in its shard; an email's, an
// IP bucket's, a type's and a site's are in every shard.
func (s *Store) queryIndexKeys(f *activity.Filter) []string {
	var keys []string
	every := func(family, value string) {
		for i := range s.shards {
			keys = append(keys, s.shards[i].eventIndexKey(family, value))
		}
	}
	switch {
	case f.User != "":
		// The subject exactly, or the email in any case (Filter.Match).
		keys = []string{s.shardOfUser(f.User).eventIndexKey(ixUser, f.User)}
		every(ixEmail, foldKey(f.User))
	case ipIndexed(f.IPPrefix):
		b, _ := ipBucket(f.IPPrefix)
		every(ixIP, b)
	case f.Site != "":
		every(ixSite, f.Site)
	// Events with no type or site are not indexed: a filter that asks
	// for them scans.
	case len(f.Types) > 0 && !slices.Contains(f.Types, ""):
		for _, t := range f.Types {
			every(ixType, t)
		}
	case f.Sites != nil && len(f.Sites) <= maxReachIndexes && !slices.Contains(f.Sites, ""):
		for _, site := range f.Sites {
			every(ixSite, site)
		}
	default:
		return nil
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// ipIndexed tells whether an IPPrefix filter can read the IP index.
func ipIndexed(prefix string) bool {
	_, ok := ipBucket(prefix)
	return ok
}

// foldKey maps s so that strings.EqualFold(a, b) exactly when
// foldKey(a) == foldKey(b): each rune becomes the least rune of its
// simple case-folding orbit, lowered (so "K", "k" and the Kelvin sign
// agree, which strings.ToLower alone would not make of them).
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		// Lower case only to make key names readable: still one rune
		// per orbit.
		b.WriteRune(unicode.ToLower(least))
	}
	return b.String()
}

// smallIndex is how many IDs an index keeps in a list before it moves
// them to a stream. Redis 7 preallocates a stream's last node at
// stream-node-max-bytes (4 KiB) however few entries it holds, while a
// list costs about 160 bytes plus 10 an ID; most users have few events,
// and a stream pays off from about this many (see doc.go).
const smallIndex = 512

// luaIDs compares stream IDs in scripts. Milliseconds and sequence
// numbers stay below 2^53, so numbers hold them exactly.
const luaIDs = `
local function idparts(a)
  local m, q = string.match(a, '^(%d+)-(%d+)$')
  if m then return tonumber(m), tonumber(q) end
  return tonumber(a), 0
end
local function idlt(a, b)
  local am, as = idparts(a)
  local bm, bs = idparts(b)
  if am ~= bm then return am < bm end
  return as < bs
end
-- fullid undoes listid: a list keeps "<ms>-<seq>" with a sequence number
-- below G (the number of shards) as the integer ms * G + seq, which Redis
-- stores in 9 bytes rather than as 15 characters.
local function fullid(v, G)
  if string.find(v, '-', 1, true) then return v end
  local n = tonumber(v)
  local q = n % G
  return string.format('%d-%d', (n - q) / G, q)
end
local function listid(id, G)
  local m, q = idparts(id)
  if q < G then return string.format('%d', m * G + q) end
  return id
end
`

// appendIndexedScript adds an event to its shard's stream with an ID
// taken from the event's time, "<ms>-<shard>", so that time bounds map to
// ID ranges and IDs are unique across shards (IDs must grow: an event
// older than the newest entry, from clock skew between instances, or a
// second one in the same millisecond, takes the next free ID whose
// sequence number is the shard's modulo the number of shards, later than
// its time), and its ID to each of its indexes, in one step, so that an
// index never lacks an event that Query could otherwise find. An index
// is a list of IDs until it holds smallIndex of them, then a stream whose
// entries have the events' IDs (one field x, empty); the index set names
// each by its stream key. When the stream is at its cap, the indexes
// written are trimmed to its first entry as well (Trim does the rest). An
// index whose last ID is not below the new one (left from a stream that
// was deleted) is started afresh. A StatsTypes event also adds its weight
// to its quarter hour's 32 bits in its counters (stats.go). KEYS stream, index set,
// counter set, the nc counters, then per index its stream and its list.
// ARGV time ms, max length (0 none), small index size, shard number,
// number of shards, "~" to trim whole stream nodes only or "=" to trim
// exactly, nc, the counters' day, quarter and weight, then field/value
// pairs.
var appendIndexedScript = redis.NewScript(luaIDs + `
local args = {'XADD', KEYS[1]}
local maxlen = tonumber(ARGV[2])
local g, G = tonumber(ARGV[4]), tonumber(ARGV[5])
if maxlen > 0 then
  args[#args + 1] = 'MAXLEN'
  args[#args + 1] = ARGV[6]
  args[#args + 1] = maxlen
end
local at = #args + 1
args[at] = ARGV[1] .. '-' .. g
for i = 11, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.pcall(unpack(args))
if type(id) == 'table' and id.err then
  local lm, lq = 0, 0
  if redis.call('EXISTS', KEYS[1]) == 1 then
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then lm, lq = idparts(info[i + 1]) end
    end
  end
  local seq = lq - (lq % G) + g
  if seq <= lq then seq = seq + G end
  args[at] = string.format('%d-%d', lm, seq)
  id = redis.call(unpack(args))
end
local nc = tonumber(ARGV[7])
for i = 4, 3 + nc do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('ZADD', KEYS[3], ARGV[8], KEYS[i])
  end
  redis.call('BITFIELD', KEYS[i], 'OVERFLOW', 'SAT', 'INCRBY', 'u32', '#' .. ARGV[9], ARGV[10])
end
local first = 4 + nc
if #KEYS < first then return id end
local small = tonumber(ARGV[3])
local trim = nil
if maxlen > 0 and redis.call('XLEN', KEYS[1]) >= maxlen then
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  if first then trim = first[1] end
end
local function xadd(key, v)
  local x = {'XADD', key}
  if trim then x[3], x[4], x[5] = 'MINID', '~', trim end
  x[#x + 1] = v
  x[#x + 1] = 'x'
  x[#x + 1] = ''
  local r = redis.pcall(unpack(x))
  if type(r) == 'table' and r.err then
    redis.call('DEL', key)
    redis.call(unpack(x))
  end
end
local streams = {}
for i = first, #KEYS, 2 do
  local s, l = KEYS[i], KEYS[i + 1]
  streams[#streams + 1] = s
  if redis.call('EXISTS', s) == 1 then
    xadd(s, id)
  else
    local last = redis.call('LINDEX', l, -1)
    if last and not idlt(fullid(last, G), id) then redis.call('DEL', l) end
    if trim then
      local head = redis.call('LINDEX', l, 0)
      while head and idlt(fullid(head, G), trim) do
        redis.call('LPOP', l)
        head = redis.call('LINDEX', l, 0)
      end
    end
    if redis.call('RPUSH', l, listid(id, G)) >= small then
      for _, v in ipairs(redis.call('LRANGE', l, 0, -1)) do xadd(s, fullid(v, G)) end
      redis.call('DEL', l)
    end
  end
end
redis.call('SADD', KEYS[2], unpack(streams))
return id
`)

// trimIndexScript drops an index's IDs below a minimum ID, and the index
// itself, from the index set too, once it is empty. In one step, so that
// an Append in between cannot lose its entry. KEYS index stream, index
// list, index set. ARGV min ID, number of shards.
var trimIndexScript = redis.NewScript(luaIDs + `
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
local G = tonumber(ARGV[2])
local head = redis.call('LINDEX', KEYS[2], 0)
while head and idlt(fullid(head, G), ARGV[1]) do
  redis.call('LPOP', KEYS[2])
  head = redis.call('LINDEX', KEYS[2], 0)
end
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
end
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[3], KEYS[1])
end
return 1
`)

// appendArgs is what Append passes appendIndexedScript for e.
func (s *Store) appendArgs(e *activity.Event) (keys []string, args []any) {
	t := ms(e.Time)
	if t < 0 {
		t = 0
	}
	sh := s.shardOfEvent(e)
	keys = []string{sh.events, sh.eventIndexes(), sh.counterSet()}
	day, quarter := quarterOf(t)
	nc := 0
	if slices.Contains(activity.StatsTypes, e.Type) {
		keys = append(keys, sh.counter(e.Type, day, nil), sh.counter(e.Type, day, &e.Site))
		nc = 2
	}
	for _, k := range sh.indexKeysOf(e) {
		keys = append(keys, k, sh.indexList(k))
	}
	trim := "~"
	if s.shardMaxLen() < exactTrimBelow {
		trim = "="
	}
	return keys, append([]any{t, s.shardMaxLen(), smallIndex, sh.n, len(s.shards), trim, nc, day, quarter, activity.Weight(e)}, encodeEvent(e)...)
}

// exactTrimBelow is the shard cap below which the streams are trimmed
// exactly: XADD MAXLEN ~ trims whole nodes (100 entries), which on 16
// shards would let a small cap be exceeded by 1,600 events; exact
// trimming costs a little more per XADD, which only small caps pay.
const exactTrimBelow = 10_000

// shardMaxLen is a shard stream's part of EventMaxLen.
func (s *Store) shardMaxLen() int64 {
	return max((s.maxLen+int64(len(s.shards))-1)/int64(len(s.shards)), 1)
}

// appendIndexed appends e and its index entries; it returns the ID.
func (s *Store) appendIndexed(ctx context.Context, e *activity.Event) (string, error) {
	keys, args := s.appendArgs(e)
	return appendIndexedScript.Run(ctx, s.c, keys, args...).Text()
}

// trimIndexes drops index entries of events no longer in the stream:
// those below its first entry, or every one when it is empty. IDs only
// grow, so no event will come back below that point; dangling entries
// that remain (MINID ~ in Append trims whole nodes) are skipped by Query.
func (s *Store) trimIndexes(ctx context.Context, sh *shard) error {
	info, err := s.c.XInfoStream(ctx, sh.events).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			// Never written: no indexes either but what a deleted
			// stream left, which Append starts afresh.
			return nil
		}
		return fail("trimming event indexes", err)
	}
	minID := info.FirstEntry.ID
	if minID == "" {
		// Empty: everything up to the last ID is gone.
		m, q, _ := strings.Cut(info.LastGeneratedID, "-")
		seq, _ := strconv.ParseUint(q, 10, 64)
		minID = m + "-" + strconv.FormatUint(seq+1, 10)
	}
	if err := trimIndexScript.Load(ctx, s.c).Err(); err != nil {
		return fail("trimming event indexes", err)
	}
	var cursor uint64
	for {
		keys, next, err := s.c.SScan(ctx, sh.eventIndexes(), cursor, "", 500).Result()
		if err != nil {
			return fail("trimming event indexes", err)
		}
		if len(keys) > 0 {
			_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					trimIndexScript.EvalSha(ctx, p, []string{k, sh.indexList(k), sh.eventIndexes()}, minID, len(s.shards))
				}
				return nil
			})
			if err != nil {
				return fail("trimming event indexes", err)
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// inRange reports whether id is within the XREVRANGE bounds Query uses:
// start "+", "(<id>" or a bare ms (its largest ID); end "-" or a bare ms
// (its first ID).
func inRange(id, start, end string) bool {
	switch {
	case start == "+":
	case strings.HasPrefix(start, "("):
		if compareStreamIDs(id, start[1:]) >= 0 {
			return false
		}
	case compareStreamIDs(id, start) > 0:
		return false
	}
	return end == "-" || compareStreamIDs(id, end+"-0") >= 0
}
