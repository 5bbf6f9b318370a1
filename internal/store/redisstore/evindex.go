package redisstore

import (
	"context"
	"errors"
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
)

// maxReachIndexes is how many sites an admin's reach (Filter.Sites) may
// name for Query to read their site indexes rather than the stream: a
// reach of few sites is where a scan would return short pages, and
// merging many indexes costs more than scanning the stream.
const maxReachIndexes = 16

func (s *Store) eventIndexKey(family, value string) string {
	return s.events + ":" + family + value
}

// eventIndexes is the set of every index key, so that Trim finds them.
func (s *Store) eventIndexes() string { return s.events + ":ix" }

// indexKeysOf returns the index keys an event goes into.
func (s *Store) indexKeysOf(e *activity.Event) []string {
	keys := make([]string, 0, 4)
	if e.User != "" {
		keys = append(keys, s.eventIndexKey(ixUser, e.User))
	}
	if e.Email != "" {
		keys = append(keys, s.eventIndexKey(ixEmail, foldKey(e.Email)))
	}
	if e.Type != "" {
		keys = append(keys, s.eventIndexKey(ixType, e.Type))
	}
	if e.Site != "" {
		keys = append(keys, s.eventIndexKey(ixSite, e.Site))
	}
	return keys
}

// queryIndexKeys returns the index keys Query reads for f, the most
// selective kind among f's fields (user, then site, then types, then a
// small reach), or nil to scan the stream. Every event f matches is in
// one of them; Match then applies the rest of f.
func (s *Store) queryIndexKeys(f *activity.Filter) []string {
	var keys []string
	switch {
	case f.User != "":
		// The subject exactly, or the email in any case (Filter.Match).
		keys = []string{s.eventIndexKey(ixUser, f.User), s.eventIndexKey(ixEmail, foldKey(f.User))}
	case f.Site != "":
		keys = []string{s.eventIndexKey(ixSite, f.Site)}
	// Events with no type or site are not indexed: a filter that asks
	// for them scans.
	case len(f.Types) > 0 && !slices.Contains(f.Types, ""):
		for _, t := range f.Types {
			keys = append(keys, s.eventIndexKey(ixType, t))
		}
	case f.Sites != nil && len(f.Sites) <= maxReachIndexes && !slices.Contains(f.Sites, ""):
		for _, site := range f.Sites {
			keys = append(keys, s.eventIndexKey(ixSite, site))
		}
	default:
		return nil
	}
	slices.Sort(keys)
	return slices.Compact(keys)
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
-- fullid undoes listid: a list keeps "<ms>-0" as "<ms>", which Redis
-- stores as an integer in 9 bytes rather than as 15 characters.
local function fullid(v)
  if string.find(v, '-', 1, true) then return v end
  return v .. '-0'
end
local function listid(id)
  local m = string.match(id, '^(%d+)-0$')
  return m or id
end
`

// appendIndexedScript adds an event to the stream with an ID taken from
// the event's time, so that time bounds map to ID ranges (IDs must grow:
// an event older than the newest entry, from clock skew between
// instances, falls back to the next free ID, later than its time), and
// its ID to each of its indexes, in one step, so that an index never
// lacks an event that Query could otherwise find. An index is a list of
// IDs until it holds smallIndex of them, then a stream whose entries have
// the events' IDs (one field x, empty); the index set names each by its
// stream key. When the stream is at its cap, the indexes written are
// trimmed to its first entry as well (Trim does the rest). An index whose
// last ID is not below the new one (left from a stream that was deleted)
// is started afresh. KEYS stream, index set, then per index its stream
// and its list. ARGV time ms, max length (0 none), small index size, then
// field/value pairs.
var appendIndexedScript = redis.NewScript(luaIDs + `
local args = {'XADD', KEYS[1]}
local maxlen = tonumber(ARGV[2])
if maxlen > 0 then
  args[#args + 1] = 'MAXLEN'
  args[#args + 1] = '~'
  args[#args + 1] = maxlen
end
local at = #args + 1
args[at] = ARGV[1] .. '-*'
for i = 4, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.pcall(unpack(args))
if type(id) == 'table' and id.err then
  args[at] = '*'
  id = redis.call(unpack(args))
end
if #KEYS < 3 then return id end
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
for i = 3, #KEYS, 2 do
  local s, l = KEYS[i], KEYS[i + 1]
  streams[#streams + 1] = s
  if redis.call('EXISTS', s) == 1 then
    xadd(s, id)
  else
    local last = redis.call('LINDEX', l, -1)
    if last and not idlt(last, id) then redis.call('DEL', l) end
    if trim then
      local head = redis.call('LINDEX', l, 0)
      while head and idlt(head, trim) do
        redis.call('LPOP', l)
        head = redis.call('LINDEX', l, 0)
      end
    end
    if redis.call('RPUSH', l, listid(id)) >= small then
      for _, v in ipairs(redis.call('LRANGE', l, 0, -1)) do xadd(s, fullid(v)) end
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
// list, index set. ARGV min ID.
var trimIndexScript = redis.NewScript(luaIDs + `
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
local head = redis.call('LINDEX', KEYS[2], 0)
while head and idlt(head, ARGV[1]) do
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

// indexList is the list form of the index whose stream is key.
func (s *Store) indexList(key string) string {
	return s.events + ":l:" + strings.TrimPrefix(key, s.events+":")
}

// appendArgs is what Append passes appendIndexedScript for e.
func (s *Store) appendArgs(e *activity.Event) (keys []string, args []any) {
	t := ms(e.Time)
	if t < 0 {
		t = 0
	}
	keys = []string{s.events, s.eventIndexes()}
	for _, k := range s.indexKeysOf(e) {
		keys = append(keys, k, s.indexList(k))
	}
	return keys, append([]any{t, s.maxLen, smallIndex}, encodeEvent(e)...)
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
func (s *Store) trimIndexes(ctx context.Context) error {
	info, err := s.c.XInfoStream(ctx, s.events).Result()
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
		keys, next, err := s.c.SScan(ctx, s.eventIndexes(), cursor, "", 500).Result()
		if err != nil {
			return fail("trimming event indexes", err)
		}
		if len(keys) > 0 {
			_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					trimIndexScript.EvalSha(ctx, p, []string{k, s.indexList(k), s.eventIndexes()}, minID)
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

// queryIndexed is Query over the index keys: it merges their IDs newest
// first between start and end (XREVRANGE bounds), fetches those events
// and keeps the ones f matches. An ID is taken only once every index has
// been read down to it, so that none is skipped; IDs whose event is gone
// (trimmed, dangling) are skipped. It examines at most EventMaxScan IDs
// and then, like the scan, returns a page whose Next continues.
func (s *Store) queryIndexed(ctx context.Context, f *activity.Filter, keys []string, start, end string, limit int) (activity.Page, error) {
	var page activity.Page
	chunk := int64(min(max(limit+1, 100), activity.MaxLimit+1))
	seen, lastID := 0, ""
	for seen < s.evScan {
		streams := make([]*redis.XMessageSliceCmd, len(keys))
		lists := make([]*redis.StringSliceCmd, len(keys))
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				streams[i] = p.XRevRangeN(ctx, k, start, end, chunk)
				lists[i] = p.LRange(ctx, s.indexList(k), 0, -1)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return activity.Page{}, fail("querying event index", err)
		}
		// Below the highest of the last IDs of full chunks, an index may
		// hold IDs not read yet. Lists are read whole.
		floor := ""
		var ids []string
		for i := range keys {
			msgs := streams[i].Val()
			if int64(len(msgs)) == chunk {
				if last := msgs[len(msgs)-1].ID; floor == "" || compareStreamIDs(last, floor) > 0 {
					floor = last
				}
			}
			for _, m := range msgs {
				ids = append(ids, m.ID)
			}
			for _, id := range lists[i].Val() {
				if !strings.Contains(id, "-") {
					id += "-0" // see listid in luaIDs
				}
				if inRange(id, start, end) {
					ids = append(ids, id)
				}
			}
		}
		if floor != "" {
			ids = slices.DeleteFunc(ids, func(id string) bool { return compareStreamIDs(id, floor) < 0 })
		}
		slices.SortFunc(ids, func(a, b string) int { return compareStreamIDs(b, a) })
		ids = slices.Compact(ids)

		events := make([]*redis.XMessageSliceCmd, len(ids))
		if len(ids) > 0 {
			_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, id := range ids {
					events[i] = p.XRangeN(ctx, s.events, id, id, 1)
				}
				return nil
			})
			if err != nil && !errors.Is(err, redis.Nil) {
				return activity.Page{}, fail("querying events", err)
			}
		}
		for i, id := range ids {
			seen++
			lastID = id
			msgs := events[i].Val()
			if len(msgs) == 0 {
				continue // trimmed since its index entry was written
			}
			e, err := decodeEvent(msgs[0].ID, msgs[0].Values)
			if err != nil {
				return activity.Page{}, err
			}
			if !f.Match(&e) {
				continue
			}
			if len(page.Items) == limit {
				page.Next = page.Items[limit-1].ID
				return page, nil
			}
			page.Items = append(page.Items, e)
		}
		if floor == "" {
			return page, nil
		}
		start = "(" + floor
		chunk = min(2*chunk, activity.MaxLimit+1)
	}
	page.Next = lastID
	return page, nil
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
