package redisstore

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/store/cursor"
)

// Login history (activity.HistoryStore); doc.go, "Login history", has the
// keys and why.

// historyTag names login history cursors.
const historyTag = "h"

// historyBatch bounds the rows one script call drops (cap and Trim), so no
// call blocks Redis for long.
const historyBatch = 500

// A row is in its user's shard, with the user's and the shard's
// indexes; see doc.go, "Login history".
func (sh *shard) historyRow(id string) string    { return sh.tag + ":h:" + id }
func (sh *shard) historyAll() string             { return sh.tag + ":hx" }
func (sh *shard) historyUserPrefix() string      { return sh.tag + ":hu:" }
func (sh *shard) historyUser(user string) string { return sh.historyUserPrefix() + user }
func (sh *shard) historyRowPrefix() string       { return sh.tag + ":h:" }
func (sh *shard) historySitePrefix() string      { return sh.tag + ":hs:" }
func (sh *shard) historySite(site string) string { return sh.historySitePrefix() + site }

// maxSiteIndexes bounds the site indexes one History call merges; a
// reach of more sites walks the overall index instead.
const maxSiteIndexes = 8

// historyDrop is the Lua that drops the rows named in the table ids from
// the row hashes (keys rows .. id), their user and site indexes (users ..
// user, sites .. site) and the login index KEYS[1].
const historyDrop = `
local function drop(ids, users, rows, sites)
  for _, id in ipairs(ids) do
    local r = redis.call('HMGET', rows .. id, 'u', 'si')
    if r[1] then redis.call('ZREM', users .. r[1], id) end
    if r[1] or r[2] then redis.call('ZREM', sites .. (r[2] or ''), id) end
    redis.call('DEL', rows .. id)
    redis.call('ZREM', KEYS[1], id)
  end
end
`

// historyBeginScript writes the row a login_succeeded event begins, once,
// indexes it by login time overall, for its user and for its site, and
// drops the oldest rows beyond the cap (a few per call: each login adds
// one). KEYS login index, row, user index, site index. ARGV login ms,
// session id, user index prefix, row prefix, cap, site index prefix,
// then the row's field/value pairs.
var historyBeginScript = redis.NewScript(historyDrop + `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 7))
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[1], ARGV[2])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[5])
if over > 0 then drop(redis.call('ZRANGE', KEYS[1], 0, math.min(over, 10) - 1), ARGV[3], ARGV[4], ARGV[6]) end
return 1
`)

// historyEndScript completes a row with the first event that ends its
// session; a row that is gone (trimmed) or already ended stays as it is.
// KEYS row. ARGV end ms, duration, inactivity, status.
var historyEndScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'st') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'et', ARGV[1], 'du', ARGV[2], 'in', ARGV[3], 'st', ARGV[4])
return 1
`)

// historyTrimScript drops up to ARGV[4] rows whose login is before
// ARGV[1] (ms) and returns how many it dropped. KEYS login index. ARGV
// bound, user index prefix, row prefix, batch, site index prefix.
var historyTrimScript = redis.NewScript(historyDrop + `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
drop(ids, ARGV[2], ARGV[3], ARGV[5])
return #ids
`)

// recordHistory updates the login history with the event e just
// appended.
func (s *Store) recordHistory(ctx context.Context, e *activity.Event) error {
	if e.SessionID == "" {
		return nil
	}
	// The event's shard is its user's, or its session's.
	sh := s.shardOfEvent(e)
	switch {
	case e.Type == activity.LoginSucceeded:
		keys, args := s.beginArgs(sh, e)
		err := historyBeginScript.Run(ctx, s.c, keys, args...).Err()
		return fail("recording login history", err)
	case activity.EndsSession(e.Type):
		err := historyEndScript.Run(ctx, s.c, []string{sh.historyRow(e.SessionID)}, ms(e.Time), e.Duration, e.Inactivity, e.Type).Err()
		return fail("recording end in login history", err)
	}
	return nil
}

// beginArgs are the keys and arguments of historyBeginScript for the
// login_succeeded event e. The rows are capped at half the events' cap:
// each session makes at least two events (its sign-in and its end), so
// rows beyond that would outlive their events anyway; each shard keeps
// its part.
func (s *Store) beginArgs(sh *shard, e *activity.Event) ([]string, []any) {
	mfa := ""
	if e.MFA {
		mfa = "1"
	}
	args := []any{ms(e.Time), e.SessionID, sh.historyUserPrefix(), sh.historyRowPrefix(), max(s.shardMaxLen()/2, 1), sh.historySitePrefix()}
	// Empty fields are left out: they read as empty.
	for _, kv := range [][2]string{{"u", e.User}, {"e", e.Email}, {"si", e.Site}, {"ip", e.IP},
		{"ci", e.City}, {"co", e.Country}, {"d", e.Device}, {"mf", mfa}, {"is", e.IssuerKey}, {"lt", strconv.FormatInt(ms(e.Time), 10)}} {
		if kv[1] != "" {
			args = append(args, kv[0], kv[1])
		}
	}
	return []string{sh.historyAll(), sh.historyRow(e.SessionID), sh.historyUser(e.User), sh.historySite(e.Site)}, args
}

// trimHistory drops the rows whose login is before before.
func (s *Store) trimHistory(ctx context.Context, sh *shard, before time.Time) error {
	for {
		n, err := historyTrimScript.Run(ctx, s.c, []string{sh.historyAll()},
			max(before.UnixMilli(), 0), sh.historyUserPrefix(), sh.historyRowPrefix(), historyBatch, sh.historySitePrefix()).Int()
		if err != nil {
			return fail("trimming login history", err)
		}
		if n < historyBatch {
			return nil
		}
	}
}

// History implements activity.HistoryStore. It walks the login index
// that fits the filter newest first: the user's when it names one, else
// the site's, else the sites' of the reach (merged, up to
// maxSiteIndexes), else the overall one. It reads each chunk's rows in
// one pipelined round trip and the last access of the sessions still
// active in another, so every entry it examines is a match but for the
// bounds a user's index does not know (the site). Like Query it examines
// at most EventMaxScan entries a call and may then return a short page
// whose Next continues.
func (s *Store) History(ctx context.Context, f activity.HistoryFilter) (activity.HistoryPage, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = activity.DefaultLimit
	}
	limit = min(limit, activity.MaxLimit)
	if f.Sites != nil && (len(f.Sites) == 0 || f.Site != "" && !slices.Contains(f.Sites, f.Site)) {
		return activity.HistoryPage{}, nil
	}
	var after *cursor.Cursor
	if f.Cursor != "" {
		c, err := cursor.Decode(f.Cursor, historyTag)
		if err != nil {
			return activity.HistoryPage{}, err
		}
		after = &c
	}
	// The indexes to merge, each with its shard: a user's is in the
	// user's shard, a site's and the overall one in every shard.
	type index struct {
		sh  *shard
		key string
	}
	var keys []index
	for i := range s.shards {
		sh := &s.shards[i]
		switch {
		case f.User != "":
			if sh == s.shardOfUser(f.User) {
				keys = append(keys, index{sh, sh.historyUser(f.User)})
			}
		case f.Site != "":
			keys = append(keys, index{sh, sh.historySite(f.Site)})
		case f.Sites != nil && len(f.Sites) <= maxSiteIndexes:
			seen := map[string]bool{}
			for _, site := range f.Sites {
				if !seen[site] {
					seen[site] = true
					keys = append(keys, index{sh, sh.historySite(site)})
				}
			}
		default:
			keys = append(keys, index{sh, sh.historyAll()})
		}
	}
	top, bottom := "+inf", "-inf"
	if !f.To.IsZero() {
		top = strconv.FormatInt(f.To.UnixMilli(), 10)
	}
	if after != nil && (top == "+inf" || after.Score < f.To.UnixMilli()) {
		top = strconv.FormatInt(after.Score, 10)
	}
	if !f.From.IsZero() {
		bottom = strconv.FormatInt(f.From.UnixMilli(), 10)
	}
	chunk := int64(min(max(2*limit, 100), 1000))
	iters := make([]*loginIndex, len(keys))
	for i, k := range keys {
		iters[i] = &loginIndex{s: s, sh: k.sh, key: k.key, top: top, bottom: bottom, chunk: max(chunk/int64(len(keys)), 16)}
	}
	if err := s.prefill(ctx, iters); err != nil {
		return activity.HistoryPage{}, err
	}

	now := s.now()
	var page activity.HistoryPage
	seen := 0
	var last cursor.Cursor
	for seen < s.evScan {
		// The next chunk of candidates, newest first across the indexes.
		var ids []rowRef
		exhausted := false
		for int64(len(ids)) < chunk && seen < s.evScan {
			var best *loginIndex
			for _, it := range iters {
				z, err := it.peek(ctx)
				if err != nil {
					return activity.HistoryPage{}, err
				}
				if z != nil && (best == nil || newer(z, best.head())) {
					best = it
				}
			}
			if best == nil {
				exhausted = true
				break
			}
			z := best.pop()
			seen++
			id, _ := z.Member.(string)
			last = cursor.Cursor{Score: int64(z.Score), Member: id}
			if after == nil || after.After(last.Score, id) {
				ids = append(ids, rowRef{best.sh, id})
			}
		}
		rows, err := s.historyRows(ctx, ids, now)
		if err != nil {
			return activity.HistoryPage{}, err
		}
		for i := range rows {
			if rows[i].SessionID == "" || !f.Match(&rows[i]) {
				continue
			}
			if len(page.Items) == limit {
				l := &page.Items[limit-1]
				page.Next = cursor.Cursor{Score: l.LoginTime.UnixMilli(), Member: l.SessionID}.Encode(historyTag)
				return page, nil
			}
			page.Items = append(page.Items, rows[i])
		}
		if exhausted {
			return page, nil
		}
	}
	page.Next = last.Encode(historyTag)
	return page, nil
}

// newer orders index entries newest first: by score, then by member,
// both descending, as ZRANGE REV and cursor.Cursor.After do.
func newer(a, b *redis.Z) bool {
	am, _ := a.Member.(string)
	bm, _ := b.Member.(string)
	return a.Score > b.Score || a.Score == b.Score && am > bm
}

// loginIndex walks one login index newest first, a chunk at a time, from
// top down to bottom (ZRANGE scores).
type loginIndex struct {
	s                *Store
	sh               *shard
	key, top, bottom string
	offset, chunk    int64
	buf              []redis.Z
	done             bool
}

// peek returns the next entry without taking it; nil at the end.
func (it *loginIndex) peek(ctx context.Context) (*redis.Z, error) {
	if len(it.buf) == 0 && !it.done {
		cmd := it.s.c.ZRangeArgsWithScores(ctx, it.args())
		if err := it.took(cmd); err != nil {
			return nil, err
		}
	}
	return it.head(), nil
}

func (it *loginIndex) args() redis.ZRangeArgs {
	return redis.ZRangeArgs{
		Key: it.key, Start: it.top, Stop: it.bottom, ByScore: true, Rev: true, Offset: it.offset, Count: it.chunk,
	}
}

// took buffers the reply of a read made with args.
func (it *loginIndex) took(cmd *redis.ZSliceCmd) error {
	zs, err := cmd.Result()
	if err != nil {
		return fail("querying login history", err)
	}
	if it.offset == 0 && it.top == "+inf" && len(zs) > 0 {
		// Fix the top so that logins arriving meanwhile do not shift
		// the offsets below.
		it.top = strconv.FormatInt(int64(zs[0].Score), 10)
	}
	it.offset += int64(len(zs))
	it.buf, it.done = zs, int64(len(zs)) < it.chunk
	return nil
}

// prefill makes the first read of every index in one round trip.
func (s *Store) prefill(ctx context.Context, iters []*loginIndex) error {
	cmds := make([]*redis.ZSliceCmd, len(iters))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, it := range iters {
			cmds[i] = p.ZRangeArgsWithScores(ctx, it.args())
		}
		return nil
	})
	if err != nil {
		return fail("querying login history", err)
	}
	for i, it := range iters {
		if err := it.took(cmds[i]); err != nil {
			return err
		}
	}
	return nil
}

func (it *loginIndex) head() *redis.Z {
	if len(it.buf) == 0 {
		return nil
	}
	return &it.buf[0]
}

func (it *loginIndex) pop() *redis.Z {
	z := &it.buf[0]
	it.buf = it.buf[1:]
	return z
}

// rowRef names a login history row and its shard.
type rowRef struct {
	sh *shard
	id string
}

// historyRows reads the rows of ids, in order; a row that is gone
// (trimmed meanwhile) comes back empty.
func (s *Store) historyRows(ctx context.Context, ids []rowRef, now time.Time) ([]activity.Login, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.c.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, r := range ids {
		cmds[i] = pipe.HGetAll(ctx, r.sh.historyRow(r.id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fail("reading login history", err)
	}
	rows := make([]activity.Login, len(ids))
	var active []int
	for i, c := range cmds {
		m := c.Val()
		if len(m) == 0 {
			continue
		}
		rows[i] = decodeLogin(ids[i].id, m)
		if rows[i].Status == activity.StatusActive {
			active = append(active, i)
		}
	}
	if len(active) == 0 {
		return rows, nil
	}
	// Active rows: the session's last access, or its absence. A session
	// is in its user's shard, the row's.
	pipe = s.c.Pipeline()
	lasts := make([]*redis.StringCmd, len(active))
	for j, i := range active {
		lasts[j] = pipe.HGet(ctx, ids[i].sh.sessionKey(ids[i].id), fLast)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fail("reading sessions of login history", err)
	}
	n := now.UnixMilli()
	for j, i := range active {
		l := &rows[i]
		v, err := lasts[j].Result()
		if err != nil {
			// Gone without an end event (yet).
			l.Status = activity.StatusEnded
			continue
		}
		l.Duration = max(n-l.LoginTime.UnixMilli(), 0) / 1000
		if la, err := strconv.ParseInt(v, 10, 64); err == nil && la > 0 {
			l.Inactivity = max(n-la, 0) / 1000
		}
	}
	return rows, nil
}

func decodeLogin(id string, m map[string]string) activity.Login {
	l := activity.Login{
		SessionID: id, User: m["u"], Email: m["e"], Site: m["si"], IP: m["ip"], City: m["ci"],
		Country: m["co"], Device: m["d"], MFA: m["mf"] == "1", Status: activity.StatusActive, IssuerKey: m["is"],
	}
	l.Browser, l.OS = activity.SplitDevice(l.Device)
	msTime := func(k string) time.Time {
		v, err := strconv.ParseInt(m[k], 10, 64)
		if err != nil || v <= 0 {
			return time.Time{}
		}
		return time.UnixMilli(v).UTC()
	}
	l.LoginTime = msTime("lt")
	if st := m["st"]; st != "" {
		l.Status, l.EndTime = st, msTime("et")
		l.Duration = parseSeconds(m["du"])
		l.Inactivity = parseSeconds(m["in"])
	}
	return l
}

var _ activity.HistoryStore = (*Store)(nil)
