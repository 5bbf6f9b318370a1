package redisstore

import "github.com/redis/go-redis/v9"

// The scripts keep a session, its indexes and its user's summary
// consistent: each runs atomically on the server. Key names follow doc.go.
// Where a script needs a key that only a stored value names (the user's
// hash, an interned device summary, an index bucket), it builds it from a
// prefix argument; that key is undeclared but shares the hash tag, hence
// the slot, so this works on Cluster as well.
//
// Numbers are Unix milliseconds. Lua's numbers are doubles, exact for
// integers below 2^53 (the year 287,396 in ms); Redis formats numeric
// arguments with %.17g, so they reach it exactly.

// bucketCap is the most entries an index bucket holds: Redis's default
// zset-max-listpack-entries. A bucket that reaches it splits before the
// next insert, because the insert that goes past it would convert the
// bucket to a skiplist for good. The Lua library spells it out as CAP.
const bucketCap = 128

// luaLib is shared by the scripts.
const luaLib = `
local CAP = 128
local function deadline(last, expires, idle)
  local d = expires
  if idle > 0 then
    local i = last + idle
    if d == 0 or i < d then d = i end
  end
  return d
end
-- before compares like Redis orders equal-score members (memcmp); Lua's
-- own < follows the server's locale.
local function before(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local function tomap(flat)
  local m = {}
  for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
  return m
end
local function pttl(dl, now, grace)
  if dl == 0 then return 0 end
  local t = dl - now
  if t < 0 then t = 0 end
  return t + grace
end
-- extend sets a key's TTL to at least ms, never shortening it; a key
-- without one (just created) gets one.
local function extend(key, ms)
  local cur = redis.call('PTTL', key)
  if cur == -1 or (cur >= 0 and cur < ms) then redis.call('PEXPIRE', key, ms) end
end
-- share keeps a value that sessions share (an interned device summary)
-- at least as long as a session whose keys live ttl ms, or keep ms when
-- that session has no deadline.
local function share(key, ttl, keep)
  if ttl == 0 then ttl = keep end
  extend(key, ttl)
end
-- dropfield deletes a hash field and its chunks (f1, f2, ...).
local function dropfield(key, f)
  redis.call('HDEL', key, f)
  local i = 1
  while redis.call('HEXISTS', key, f .. i) == 1 do
    redis.call('HDEL', key, f .. i)
    i = i + 1
  end
end

-- Base 36 keeps the times in deadline-index members short.
local B36 = '0123456789abcdefghijklmnopqrstuvwxyz'
local function b36(n)
  if n < 0 then return '-' .. b36(-n) end
  local s = ''
  repeat
    local d = n % 36
    s = string.sub(B36, d + 1, d + 1) .. s
    n = (n - d) / 36
  until n == 0
  return s
end
local function unb36(s)
  if string.sub(s, 1, 1) == '-' then return -tonumber(string.sub(s, 2), 36) end
  return tonumber(s, 36)
end
-- A deadline-index member names the session's last access and creation
-- too, so that the sweep can remove the other index entries of a
-- session whose hash expired.
local function dmember(id, last, created)
  return id .. ' ' .. b36(last) .. ' ' .. b36(created)
end
local function dsplit(m)
  local id, l, c = string.match(m, '^(.*) (%-?[0-9a-z]+) (%-?[0-9a-z]+)$')
  if not id then return m, 0, 0 end
  return id, unb36(l), unb36(c)
end

-- Ordered indexes. An index ix is a directory zset ix (bucket number →
-- the bucket's lower bound) and buckets ix:<number> (member → score),
-- each holding the members whose score is at least its bound and below
-- the next bucket's. The lowest bound is always -inf. Buckets split at a
-- change of score, so equal scores never straddle two buckets and the
-- order of equal-score members (by member) holds within one bucket.
-- Small buckets merge into a neighbour. Every caller passes the score a
-- member was added with, which the session or user hash records.
--
-- Cost notes: Redis 7.0 formats every score it returns with %.17g, and
-- Lua numbers passed to redis.call the same way, at about half a
-- microsecond each; so the common paths pass scores as the strings they
-- came as, read no scores they do not need, and move entries between
-- buckets with ZRANGESTORE and ZUNIONSTORE, which copy them inside Redis.
local function bkey(ix, n) return ix .. ':' .. n end
-- bfind returns the bucket that holds score s, nil when ix is empty.
local function bfind(ix, s)
  return redis.call('ZREVRANGEBYSCORE', ix, s, '-inf', 'LIMIT', '0', '1')[1]
end
-- bfindb is bfind that also returns the bucket's bound.
local function bfindb(ix, s)
  local r = redis.call('ZREVRANGEBYSCORE', ix, s, '-inf', 'WITHSCORES', 'LIMIT', '0', '1')
  return r[1], r[2]
end
local function bbelow(ix, b)
  if b == '-inf' then return nil end
  local r = redis.call('ZREVRANGEBYSCORE', ix, '(' .. b, '-inf', 'WITHSCORES', 'LIMIT', '0', '1')
  return r[1], r[2]
end
local function babove(ix, b)
  local r = redis.call('ZRANGEBYSCORE', ix, '(' .. b, '+inf', 'WITHSCORES', 'LIMIT', '0', '1')
  return r[1], r[2]
end
local function bnew(ix, bound)
  local n
  -- Skip numbers in use, should the counter ever have been lost.
  repeat
    n = tostring(redis.call('INCR', ix .. ':n'))
  until redis.call('EXISTS', bkey(ix, n)) == 0 and not redis.call('ZSCORE', ix, n)
  redis.call('ZADD', ix, bound, n)
  return n
end
-- bcut returns the rank at which to split a full bucket k of size
-- entries: the one nearest the middle whose score differs from the
-- previous entry's, or nil when the whole bucket has one score.
local function bcut(k, size)
  local mid = math.floor(size / 2)
  local lo = mid - 4
  local w = redis.call('ZRANGE', k, lo, mid + 3, 'WITHSCORES')
  for d = 0, 3 do
    for _, r in ipairs({mid + d, mid - d}) do
      local j = r - lo
      if j >= 1 and j < #w / 2 and w[2 * j] ~= w[2 * j + 2] then return r end
    end
  end
  local all = redis.call('ZRANGE', k, '0', '-1', 'WITHSCORES')
  local cnt = #all / 2
  for d = 0, cnt do
    for _, r in ipairs({mid + d, mid - d}) do
      if r >= 1 and r < cnt and all[2 * r] ~= all[2 * r + 2] then return r end
    end
  end
  return nil
end
-- badd adds member m with score s to index ix.
local function badd(ix, s, m)
  local n = bfind(ix, s)
  if not n then n = bnew(ix, '-inf') end
  local k = bkey(ix, n)
  local size = redis.call('ZCARD', k)
  if size >= CAP and not redis.call('ZSCORE', k, m) then
    local top = redis.call('ZRANGE', k, '-1', '-1', 'WITHSCORES')
    if tonumber(s) > tonumber(top[2]) then
      -- Above everything here, the usual case for an index of times
      -- that only grow: start a bucket at s and leave this one full.
      n = bnew(ix, s)
      k = bkey(ix, n)
    else
      -- A bucket of one score cannot split; it outgrows CAP, which
      -- costs memory (Redis converts it to a skiplist) but nothing else.
      local cut = bcut(k, size)
      if cut then
        local bound = redis.call('ZRANGE', k, cut, cut, 'WITHSCORES')[2]
        local upper = bnew(ix, bound)
        redis.call('ZRANGESTORE', bkey(ix, upper), k, cut, '-1')
        redis.call('ZREMRANGEBYRANK', k, cut, '-1')
        if tonumber(s) >= tonumber(bound) then
          n = upper
          k = bkey(ix, n)
        end
      end
    end
  end
  redis.call('ZADD', k, s, m)
end
-- bdrop removes the empty or merged bucket n, whose bound is b, from
-- the directory; its range goes to the bucket below, or to the one above
-- when n was the lowest.
local function bdrop(ix, n, b)
  redis.call('ZREM', ix, n)
  if b == '-inf' then
    local r = redis.call('ZRANGE', ix, '0', '0')
    if #r > 0 then redis.call('ZADD', ix, '-inf', r[1]) end
  end
end
-- bmerge moves bucket k's entries into bucket into.
local function bmerge(into, k)
  redis.call('ZUNIONSTORE', into, '2', into, k, 'AGGREGATE', 'MAX')
  redis.call('DEL', k)
end
-- brem removes member m, added with score s, from index ix.
local function brem(ix, s, m)
  local n = bfind(ix, s)
  if not n then return false end
  local k = bkey(ix, n)
  if redis.call('ZREM', k, m) == 0 then return false end
  local size = redis.call('ZCARD', k)
  if size >= CAP / 4 then return true end
  local b = redis.call('ZSCORE', ix, n)
  if size == 0 then
    bdrop(ix, n, b)
    return true
  end
  -- Merge a small bucket into a neighbour with room, so that buckets
  -- stay well filled whatever the order of removals.
  local lo = bbelow(ix, b)
  if lo and redis.call('ZCARD', bkey(ix, lo)) + size <= CAP then
    bmerge(bkey(ix, lo), k)
    redis.call('ZREM', ix, n)
    return true
  end
  local hi = babove(ix, b)
  if hi and redis.call('ZCARD', bkey(ix, hi)) + size <= CAP then
    bmerge(bkey(ix, hi), k)
    redis.call('ZREM', ix, n)
    redis.call('ZADD', ix, b, hi)
  end
  return true
end
-- ipkey maps an address to the IP index's score (see doc.go,
-- "Filters"): an IPv4 address to its 32-bit number, an IPv6 address to
-- 2^32 plus its first 40 bits; nil for anything else. ipRanges in Go
-- computes the same.
local function ipkey(ip)
  if not ip or ip == '' then return nil end
  local a, b, c, d = string.match(ip, '^(%d+)%.(%d+)%.(%d+)%.(%d+)$')
  if a then return ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d) end
  if not string.find(ip, ':', 1, true) then return nil end
  local head, tail = ip, nil
  local p = string.find(ip, '::', 1, true)
  if p then head, tail = string.sub(ip, 1, p - 1), string.sub(ip, p + 2) end
  local hs = {}
  for h in string.gmatch(head, '[^:]+') do hs[#hs + 1] = h end
  if tail then
    local ts, n = {}, 0
    for h in string.gmatch(tail, '[^:]+') do
      ts[#ts + 1] = h
      n = n + 1
      if string.find(h, '.', 1, true) then n = n + 1 end
    end
    for _ = 1, 8 - #hs - n do hs[#hs + 1] = '0' end
    for _, h in ipairs(ts) do hs[#hs + 1] = h end
  end
  local function hx(i) return tonumber(hs[i] or '0', 16) or 0 end
  return 4294967296 + hx(1) * 16777216 + hx(2) * 256 + math.floor(hx(3) / 256)
end
-- ipadd and iprem keep the IP index: a session's login address under
-- its id, its last address, when another, under its id and a '.'. The
-- score is the address's key times 4096 plus the session's creation ms
-- modulo 4096, so that many sessions behind one address (a company's
-- NAT) spread over many scores and their buckets can split.
local function ipscore(ip, created)
  local k = ipkey(ip)
  if not k then return nil end
  return string.format('%d', k * 4096 + (tonumber(created) or 0) % 4096)
end
local function ipadd(ix, ip, created, m)
  local sc = ipscore(ip, created)
  if sc then badd(ix, sc, m) end
end
local function iprem(ix, ip, created, m)
  local sc = ipscore(ip, created)
  if sc then brem(ix, sc, m) end
end
-- The deadline index is partitioned by site and country (see doc.go,
-- "Filters"): DL is a hash of partition → entries, and each partition p
-- an ordered index DL:p. dpf names a session's partition; the country
-- keeps letters and digits only, so no partition name holds a ':' after
-- its separator and none can be read as another's bucket key.
local function dpf(site, cc)
  return (site or '') .. '\31' .. string.gsub(string.lower(cc or ''), '[^%w]', '')
end
-- dscore is a deadline's score in the partitions: a session without a
-- deadline is there too, at +inf, so that the filters find it (Due never
-- reaches it).
local function dscore(d)
  if d > 0 then return d end
  return '+inf'
end
local function dpadd(dl, f, score, member)
  badd(dl .. ':' .. f, score, member)
  redis.call('HINCRBY', dl, f, 1)
end
local function dprem(dl, f, score, member)
  if brem(dl .. ':' .. f, score, member) then
    if redis.call('HINCRBY', dl, f, -1) <= 0 then
      redis.call('HDEL', dl, f)
      redis.call('DEL', dl .. ':' .. f .. ':n')
    end
  end
end
-- bdown calls visit(member, score) for the members of ix in descending
-- (score, member) order, after the position (cs, cm), or from the top
-- when cs is '', until visit returns false. It returns true when the
-- index ran out first. Buckets are read CAP entries at a time: one that
-- outgrew CAP (a single score) may be large.
local function bdown(ix, cs, cm, visit)
  local n, b
  if cs == '' then
    local r = redis.call('ZREVRANGE', ix, '0', '0', 'WITHSCORES')
    if #r == 0 then return true end
    n, b = r[1], r[2]
  else
    n, b = bfindb(ix, cs)
    if not n then return true end
    -- Members sharing the cursor's score come in descending byte order;
    -- resume after the cursor's member among them, then below the score.
    local k = bkey(ix, n)
    for _, m in ipairs(redis.call('ZREVRANGEBYSCORE', k, cs, cs)) do
      if before(m, cm) and not visit(m, cs) then return false end
    end
    local off = 0
    repeat
      local r = redis.call('ZREVRANGEBYSCORE', k, '(' .. cs, '-inf', 'WITHSCORES', 'LIMIT', off, CAP)
      for i = 1, #r, 2 do
        if not visit(r[i], r[i + 1]) then return false end
      end
      off = off + CAP
    until #r < 2 * CAP
    n, b = bbelow(ix, b)
  end
  while n do
    local k, off = bkey(ix, n), 0
    repeat
      local r = redis.call('ZREVRANGE', k, off, off + CAP - 1, 'WITHSCORES')
      for i = 1, #r, 2 do
        if not visit(r[i], r[i + 1]) then return false end
      end
      off = off + CAP
    until #r < 2 * CAP
    n, b = bbelow(ix, b)
  end
  return true
end
-- bup calls visit(member, score) for the members of ix with scores up
-- to max in ascending order until visit returns false.
local function bup(ix, max, visit)
  local r = redis.call('ZRANGE', ix, '0', '0', 'WITHSCORES')
  if #r == 0 then return end
  local n, b = r[1], r[2]
  while n and (b == '-inf' or tonumber(b) <= max) do
    local k, off = bkey(ix, n), 0
    repeat
      local e = redis.call('ZRANGEBYSCORE', k, '-inf', max, 'WITHSCORES', 'LIMIT', off, CAP)
      for i = 1, #e, 2 do
        if not visit(e[i], e[i + 1]) then return end
      end
      off = off + CAP
    until #e < 2 * CAP
    n, b = babove(ix, b)
  end
end
-- brange calls visit(member) for the members of ix with scores from lo
-- to hi, ascending, until visit returns false.
local function brange(ix, lo, hi, visit)
  local n, b = bfindb(ix, lo)
  if not n then
    local r = redis.call('ZRANGE', ix, '0', '0', 'WITHSCORES')
    if #r == 0 then return end
    n, b = r[1], r[2]
  end
  while n and (b == '-inf' or tonumber(b) <= hi) do
    local k, off = bkey(ix, n), 0
    repeat
      local e = redis.call('ZRANGEBYSCORE', k, lo, hi, 'LIMIT', off, CAP)
      for _, m in ipairs(e) do
        if not visit(m) then return end
      end
      off = off + CAP
    until #e < CAP
    n, b = babove(ix, b)
  end
end
-- bcount counts the members of ix with scores from lo to hi, stopping
-- once past most (ZCOUNT per bucket, no members read).
local function bcount(ix, lo, hi, most)
  local n, b = bfindb(ix, lo)
  if not n then
    local r = redis.call('ZRANGE', ix, '0', '0', 'WITHSCORES')
    if #r == 0 then return 0 end
    n, b = r[1], r[2]
  end
  local c = 0
  while n and (b == '-inf' or tonumber(b) <= hi) and c <= most do
    c = c + redis.call('ZCOUNT', bkey(ix, n), lo, hi)
    n, b = babove(ix, b)
  end
  return c
end
-- device returns the interned device summary a session hash names.
local function device(prefix, m)
  if not m['a'] then return '' end
  return redis.call('GET', prefix .. m['a']) or ''
end
-- joined returns field f of a session hash with its chunks (f1, f2,
-- ...; see appendField) appended, from a map of the whole hash.
local function joined(m, f)
  local v = m[f]
  if not v or not m[f .. '1'] then return v end
  local i = 1
  while m[f .. i] do
    v = v .. m[f .. i]
    i = i + 1
  end
  return v
end
-- joinrest is joined for a hash read field by field: v and v1 are the
-- values of f and f1, already read; later chunks are read here.
local function joinrest(key, f, v, v1)
  if not v or not v1 then return v end
  v = v .. v1
  local i = 2
  while true do
    local c = redis.call('HGET', key, f .. i)
    if not c then return v end
    v = v .. c
    i = i + 1
  end
end
-- escore is the email index score of an email key: 52 bits of its SHA-1,
-- an integer a double holds exactly, formatted without loss.
local function escore(k)
  return string.format('%.0f', tonumber(string.sub(redis.sha1hex(k), 1, 13), 16))
end
-- vkey returns the email key a user hash (as a map) is indexed under:
-- ~v, where empty means the email ~e itself; nil when none.
local function vkey(m)
  local v = m['~v']
  if v == '' then return m['~e'] or '' end
  return v
end
-- estored reports whether the email index entry of the user whose hash
-- is key, at score sc, agrees with that hash; if not it is stale.
local function estored(key, sc)
  local v = redis.call('HMGET', key, '~v', '~e')
  local k = vkey({['~v'] = v[1], ['~e'] = v[2]})
  return k and tonumber(escore(k)) == tonumber(sc)
end
-- findfield returns a field's value from a flat HGETALL reply.
local function findfield(flat, f)
  for i = 1, #flat, 2 do
    if flat[i] == f then return flat[i + 1] end
  end
  return nil
end
`

// createScript: KEYS session, tokens, by-last-access, by-created,
// by-deadline, user, users, by-email, by-ip. ARGV id, user, last ms, created
// ms, deadline ms (0 none), now ms, grace ms, user ttl ms, tokens, email,
// last ip, device key prefix, device ref (” none), device summary,
// verified email as an email key (” when not verified), site, country
// (for the deadline index's partition), login ip, then the session's
// field/value pairs.
var createScript = redis.NewScript(luaLib + `
local id, user = ARGV[1], ARGV[2]
local last, created, dl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now, grace, userttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local s = KEYS[1]
-- A session created again under its id replaces the old one, whose
-- index entries go first.
if redis.call('EXISTS', s) == 1 then
  local o = redis.call('HMGET', s, 'l', 'c', 'x', 't', 's', 's1', 'k', 'i', 'j', 'k1', 'u', 'u1')
  local ol, oc = tonumber(o[1] or '0'), tonumber(o[2] or '0')
  -- The id may have been another user's (of the same group): that
  -- user's hash stops listing it.
  local ou = joinrest(s, 'u', o[11], o[12])
  if ou and ou ~= ARGV[2] then
    redis.call('HDEL', string.sub(KEYS[6], 1, #KEYS[6] - #ARGV[2]) .. ou, id)
  end
  iprem(KEYS[9], o[8], oc, id)
  if o[9] and o[9] ~= '' then iprem(KEYS[9], o[9], oc, id .. '.') end
  brem(KEYS[3], o[1] or '0', id)
  brem(KEYS[4], o[2] or '0', id)
  local od = deadline(ol, tonumber(o[3] or '0'), tonumber(o[4] or '0'))
  dprem(KEYS[5], dpf(joinrest(s, 's', o[5], o[6]), joinrest(s, 'k', o[7], o[10])), dscore(od), dmember(id, ol, oc))
end
redis.call('DEL', s, KEYS[2])
redis.call('HSET', s, unpack(ARGV, 19))
local ttl = pttl(dl, now, grace)
if ttl > 0 then redis.call('PEXPIRE', s, ttl) end
if ARGV[9] ~= '' then
  if ttl > 0 then
    redis.call('SET', KEYS[2], ARGV[9], 'PX', ttl)
  else
    redis.call('SET', KEYS[2], ARGV[9])
  end
end
if ARGV[13] ~= '' then
  local dk = ARGV[12] .. ARGV[13]
  redis.call('SET', dk, ARGV[14], 'NX')
  share(dk, ttl, userttl)
end
badd(KEYS[3], ARGV[3], id)
badd(KEYS[4], ARGV[4], id)
dpadd(KEYS[5], dpf(ARGV[16], ARGV[17]), dscore(dl), dmember(id, last, created))
ipadd(KEYS[9], ARGV[18], created, id)
if ARGV[11] ~= '' and ARGV[11] ~= ARGV[18] then ipadd(KEYS[9], ARGV[11], created, id .. '.') end

-- The user's summary. Fields of sessions that vanished by TTL go now, so
-- the hash stays as small as the user's live sessions.
local u = KEYS[6]
local prefix = string.sub(u, 1, #u - #user)
local h = redis.call('HGETALL', u)
local login
for i = 1, #h, 2 do
  local f = h[i]
  if f == '~i' then
    login = h[i + 1]
  elseif string.sub(f, 1, 1) ~= '~' then
    local v = tonumber(h[i + 1])
    if v > 0 and v + grace < now then redis.call('HDEL', u, f) end
  end
end
redis.call('HSET', u, id, ARGV[5], '~e', ARGV[10], '~p', ARGV[11])
if not login or created > tonumber(login) then
  if login then brem(KEYS[7], login, user) end
  redis.call('HSET', u, '~i', ARGV[4])
  badd(KEYS[7], ARGV[4], user)
end
extend(u, math.max(userttl, ttl))

-- The email index follows the user's latest sign-in: an email this user
-- was indexed under stops naming them once a sign-in brings another
-- email or the same one unverified, so that a claim the provider no
-- longer vouches for resolves to no one.
local vold, vnew = vkey(tomap(h)), ARGV[15]
if vold and vold ~= vnew then brem(KEYS[8], escore(vold), user) end
if vnew ~= '' then
  local sc = escore(vnew)
  badd(KEYS[8], sc, user)
  -- Most emails are their own key (lower case already): ~v is then
  -- empty and means "~e", which saves the second copy.
  if vnew == ARGV[10] then redis.call('HSET', u, '~v', '') else redis.call('HSET', u, '~v', vnew) end
  -- Entries of users whose summary expired stay behind; each indexed
  -- sign-in checks the two entries after its own, which, the order being
  -- a hash, are a fair sample of the index.
  local k = bkey(KEYS[8], bfind(KEYS[8], sc))
  local r = redis.call('ZRANK', k, user)
  local next = redis.call('ZRANGE', k, r + 1, r + 2, 'WITHSCORES')
  for i = 1, #next, 2 do
    if not estored(prefix .. next[i], next[i + 1]) then brem(KEYS[8], next[i + 1], next[i]) end
  end
elseif vold then
  redis.call('HDEL', u, '~v')
end

-- Users whose summary expired leave a stale index entry; each login
-- clears a few of the oldest so the index does not grow without bound.
-- An entry whose score is not the summary's last login is stale too.
local lowest = redis.call('ZRANGE', KEYS[7], '0', '0')
if #lowest > 0 then
  local bk = bkey(KEYS[7], lowest[1])
  local old = redis.call('ZRANGE', bk, '0', '2')
  local scores = redis.call('ZMSCORE', bk, unpack(old))
  for i, name in ipairs(old) do
    if redis.call('HGET', prefix .. name, '~i') ~= scores[i] then brem(KEYS[7], scores[i], name) end
  end
end
return 1
`)

// getScript: KEYS session, tokens. ARGV device key prefix, "1" to leave
// the tokens out (optional). Returns {hash, tokens, device} or nil.
var getScript = redis.NewScript(luaLib + `
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
local ref = findfield(h, 'a')
local dev = ''
if ref then dev = redis.call('GET', ARGV[1] .. ref) or '' end
local tok = false
if ARGV[2] ~= '1' then tok = redis.call('GET', KEYS[2]) end
return {h, tok, dev}
`)

// touchScript: KEYS session, tokens, by-last-access, by-deadline, by-ip.
// ARGV id, at ms, ip (” keeps), now ms, grace ms, user key prefix,
// user ttl ms, replace-device flag, replace-location flag, device key
// prefix, device ref (” none), device summary, then location
// field/value pairs to write. Returns 1, or 0 when the session is gone
// or its deadline passed before at.
var touchScript = redis.NewScript(luaLib + `
local id, s = ARGV[1], KEYS[1]
-- u1 tells a subject longer than one chunk, which must be joined to
-- name the user's hash.
local h = redis.call('HMGET', s, 'u', 'l', 'x', 't', 'i', 'c', 'a', 'u1', 's', 's1', 'k', 'j', 'k1')
if not h[1] then return 0 end
local user = joinrest(s, 'u', h[1], h[8])
local at, now, grace, userttl = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[7])
local last, created = tonumber(h[2] or '0'), tonumber(h[6] or '0')
local expires, idle = tonumber(h[3] or '0'), tonumber(h[4] or '0')
local dl = deadline(last, expires, idle)
if dl > 0 and at >= dl then return 0 end
local ndl, nlast = dl, last
-- A new location may move the session to another partition of the
-- deadline index.
local site = joinrest(s, 's', h[9], h[10])
local part = dpf(site, joinrest(s, 'k', h[11], h[13]))
local npart = part
if ARGV[9] == '1' then
  local loc = {}
  for i = 13, #ARGV - 1, 2 do loc[ARGV[i]] = ARGV[i + 1] end
  npart = dpf(site, joined(loc, 'k'))
end
if at > last then
  ndl, nlast = deadline(at, expires, idle), at
  redis.call('HSET', s, 'l', ARGV[2])
  brem(KEYS[3], h[2] or '0', id)
  badd(KEYS[3], ARGV[2], id)
end
if at > last or npart ~= part then
  dprem(KEYS[4], part, dscore(dl), dmember(id, last, created))
  dpadd(KEYS[4], npart, dscore(ndl), dmember(id, nlast, created))
end

local ip = ARGV[3]
if ip ~= '' and ip ~= (h[12] or h[5] or '') then
  -- A new last address: the IP index follows.
  if h[12] and h[12] ~= '' then iprem(KEYS[5], h[12], created, id .. '.') end
  if ip == (h[5] or '') then
    redis.call('HDEL', s, 'j')
  else
    redis.call('HSET', s, 'j', ip)
    ipadd(KEYS[5], ip, created, id .. '.')
  end
end
local ref = h[7]
if ARGV[8] == '1' then
  ref = ARGV[11]
  if ref == '' then
    redis.call('HDEL', s, 'a')
  else
    redis.call('HSET', s, 'a', ref)
    redis.call('SET', ARGV[10] .. ref, ARGV[12], 'NX')
  end
end
if ARGV[9] == '1' then
  for _, f in ipairs({'y', 'r', 'k', 'la', 'lo'}) do dropfield(s, f) end
end
if #ARGV > 12 then redis.call('HSET', s, unpack(ARGV, 13)) end

local ttl = pttl(ndl, now, grace)
if ndl > 0 then
  redis.call('PEXPIRE', s, ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if ref and ref ~= '' then share(ARGV[10] .. ref, ttl, userttl) end
local u = ARGV[6] .. user
if ip ~= '' then redis.call('HSET', u, id, ndl, '~p', ip) else redis.call('HSET', u, id, ndl) end
extend(u, math.max(userttl, ttl))
return 1
`)

// setTokensScript: KEYS session, tokens. ARGV tokens, now ms. Returns 1,
// or 0 when the session is gone or past its deadline.
var setTokensScript = redis.NewScript(luaLib + `
local h = redis.call('HMGET', KEYS[1], 'u', 'l', 'x', 't')
if not h[1] then return 0 end
local dl = deadline(tonumber(h[2] or '0'), tonumber(h[3] or '0'), tonumber(h[4] or '0'))
if dl > 0 and tonumber(ARGV[2]) >= dl then return 0 end
if ARGV[1] == '' then
  redis.call('DEL', KEYS[2])
  return 1
end
-- The tokens expire with the session.
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[2], ARGV[1])
end
return 1
`)

// deleteScript: KEYS session, tokens, by-last-access, by-created,
// by-deadline, by-ip. ARGV id, now ms, user key prefix, channel, user ttl ms,
// device key prefix. Returns {hash, tokens, device}, or nil when the
// session was already gone.
var deleteScript = redis.NewScript(luaLib + `
local id = ARGV[1]
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then
  redis.call('DEL', KEYS[2])
  return false
end
local m = tomap(h)
local last, created = tonumber(m['l'] or '0'), tonumber(m['c'] or '0')
brem(KEYS[3], m['l'] or '0', id)
brem(KEYS[4], m['c'] or '0', id)
local dl = deadline(last, tonumber(m['x'] or '0'), tonumber(m['t'] or '0'))
dprem(KEYS[5], dpf(joined(m, 's'), joined(m, 'k')), dscore(dl), dmember(id, last, created))
iprem(KEYS[6], m['i'], created, id)
if m['j'] and m['j'] ~= '' then iprem(KEYS[6], m['j'], created, id .. '.') end
local tok = redis.call('GET', KEYS[2])
local dev = device(ARGV[6], m)
redis.call('DEL', KEYS[1], KEYS[2])
local u = ARGV[3] .. joined(m, 'u')
redis.call('HDEL', u, id)
redis.call('HSET', u, '~o', ARGV[2])
extend(u, tonumber(ARGV[5]))
redis.call('SPUBLISH', ARGV[4], id)
return {h, tok, dev}
`)

// scanScript walks an index newest first from a cursor and returns the
// ids of the sessions that pass the filters, dropping index entries whose
// session vanished; List reads the sessions that make its page
// afterwards. KEYS index. ARGV session key prefix, the deadline index's
// partitions (the hash), cursor score (” from the top), cursor id, want,
// budget (entries to examine), ip prefix, country (lower case), site, the
// session field the index orders by, "1" when the sites that follow
// restrict the listing (Query.Sites) or "0", the most sessions a site or
// country may have in the shard to be read from its partitions (SMALL),
// the page size (what a partition read returns at least, if it can),
// then those sites. Returns {matches, last score, last id,
// exhausted} where matches is a flat list of id, score.
var scanScript = redis.NewScript(luaLib + `
local prefix, dlk, cs, cid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local want, budget = tonumber(ARGV[5]), tonumber(ARGV[6])
local ipp, country, site, field = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local out, stale = {}, {}
local found, seen = 0, 0
local ls, lid = cs, cid
local sites
local SMALL, page, ipix = tonumber(ARGV[12]), tonumber(ARGV[13]), ARGV[14]
local ranges = {}
local nr = tonumber(ARGV[15])
for i = 1, nr do
  ranges[i] = {tonumber(ARGV[14 + 2 * i]) * 4096, tonumber(ARGV[15 + 2 * i]) * 4096 + 4095}
end
if ARGV[11] == '1' then
  sites = {}
  for i = 16 + 2 * nr, #ARGV do sites[ARGV[i]] = true end
end
-- Most entries fail the filters: read only the fields they test, and
-- the field the index orders by, which also tells a missing hash.
local want_f, fi = {field}, {}
local function need(f)
  want_f[#want_f + 1] = f
  fi[f] = #want_f
end
if ipp ~= '' then need('i'); need('j') end
if country ~= '' then need('k') end
if site ~= '' or sites then need('s'); need('s1') end
local function consider(id, score)
  seen = seen + 1
  ls, lid = score, id
  local key = prefix .. id
  local v = redis.call('HMGET', key, unpack(want_f))
  -- An entry that disagrees with its session is left over (the
  -- session's own entry is elsewhere in the index), or its session is
  -- gone.
  if not v[1] and redis.call('EXISTS', key) == 0 or (v[1] or '0') ~= score then
    stale[#stale + 1] = {id, score}
    return
  end
  if ipp ~= '' then
    local ip, last = v[fi.i] or '', v[fi.j] or v[fi.i] or ''
    if string.sub(ip, 1, #ipp) ~= ipp and string.sub(last, 1, #ipp) ~= ipp then return end
  end
  if country ~= '' and string.lower(v[fi.k] or '') ~= country then return end
  if site ~= '' or sites then
    local full = v[fi.s] or ''
    -- A site longer than one chunk (s1 present) is joined.
    if v[fi.s1] then full = joined(tomap(redis.call('HGETALL', key)), 's') end
    if site ~= '' and full ~= site or sites and not sites[full] then return end
  end
  out[#out + 1] = id
  out[#out + 1] = score
  found = found + 1
end
-- smallpage is the reply for candidates {id, score} read whole (from a
-- partition or the IP index): sorted in the listing's order, after the
-- cursor, a whole page (whatever the round asked for: it is cheap here),
-- checking the IP prefix first when checkip.
local function smallpage(cand, checkip, checkcc)
  table.sort(cand, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end
    return before(b[1], a[1])
  end)
  local csn = tonumber(cs)
  local rest = false
  ls, lid = '', ''
  for _, e in ipairs(cand) do
    if not csn or e[2] < csn or e[2] == csn and before(e[1], cid) then
      if found >= math.max(want, page) then
        rest = true
        break
      end
      local ok = true
      if checkip or checkcc then
        local v = redis.call('HMGET', prefix .. e[1], 'i', 'j', 'k')
        local ip, lastip = v[1] or '', v[2] or v[1] or ''
        ok = not checkip or string.sub(ip, 1, #ipp) == ipp or string.sub(lastip, 1, #ipp) == ipp
        -- The partitions keep letters and digits of a country: "U.S."
        -- is in "us"'s partition but is not "us".
        ok = ok and (not checkcc or string.lower(v[3] or '') == country)
      end
      local sc = string.format('%d', e[2])
      if ok then
        out[#out + 1] = e[1]
        out[#out + 1] = sc
        found = found + 1
      end
      ls, lid = sc, e[1]
    end
  end
  return {out, ls, lid, rest and 0 or 1, #cand}
end
-- A site or country that few of the shard's sessions have lists from
-- its partitions of the deadline index, whose members carry each
-- session's last access and creation time: read whole, sorted here.
-- Reading candidates costs about what examining as many entries of the
-- walk does, and the walk needs about 8 / (the matches' share) entries
-- a shard for its part of a page: the direct read pays while the
-- matches number less than about the square root of 8 × the shard's
-- sessions (the partitions' counts add up to them), capped at SMALL.
local reg = {}
if (site ~= '' or sites or country ~= '' or nr > 0) and dlk ~= '' then
  reg = redis.call('HGETALL', dlk)
  local size = 0
  for i = 2, #reg, 2 do size = size + tonumber(reg[i]) end
  SMALL = math.min(SMALL, math.max(64, math.floor(math.sqrt(8 * size))))
end
-- A country the partitions' names cannot tell (one with characters
-- they drop) walks instead.
local want_cc = string.gsub(country, '[^%w]', '')
if (site ~= '' or sites or country ~= '') and dlk ~= '' and want_cc == country then
  local parts, total = {}, 0
  for i = 1, #reg, 2 do
    local ps, pc = string.match(reg[i], '^(.*)\31([^\31]*)$')
    if ps and (site == '' or ps == site) and (not sites or sites[ps]) and (country == '' or pc == want_cc) then
      parts[#parts + 1] = reg[i]
      total = total + tonumber(reg[i + 1])
    end
  end
  if total <= SMALL then
    local cand = {}
    for _, f in ipairs(parts) do
      bdown(dlk .. ':' .. f, '', '', function(m)
        local id, l, c = dsplit(m)
        local sc = l
        if field == 'c' then sc = c end
        cand[#cand + 1] = {id, sc}
        return true
      end)
    end
    return smallpage(cand, ipp ~= '', country ~= '')
  end
end
-- An IP prefix that few of the shard's sessions match lists from the IP
-- index: the ranges' entries, then each candidate's fields.
local ipcount = 0
if nr > 0 and ipp ~= '' then
  for _, r in ipairs(ranges) do
    ipcount = ipcount + bcount(ipix, r[1], r[2], SMALL - ipcount)
    if ipcount > SMALL then break end
  end
end
if nr > 0 and ipp ~= '' and ipcount <= SMALL then
  local ids, n, over = {}, 0, false
  for _, r in ipairs(ranges) do
    brange(ipix, r[1], r[2], function(m)
      if string.sub(m, -1) == '.' then m = string.sub(m, 1, -2) end
      if not ids[m] then
        ids[m] = true
        n = n + 1
      end
      over = n > SMALL
      return not over
    end)
    if over then break end
  end
  if not over then
    local cand = {}
    for id in pairs(ids) do
      local v = redis.call('HMGET', prefix .. id, field, 'i', 'j', 'k', 's', 's1')
      local ip, lastip = v[2] or '', v[3] or v[2] or ''
      local ok = v[1] and (string.sub(ip, 1, #ipp) == ipp or string.sub(lastip, 1, #ipp) == ipp)
      if ok and country ~= '' then ok = string.lower(v[4] or '') == country end
      if ok and (site ~= '' or sites) then
        local full = v[5] or ''
        if v[6] then full = joined(tomap(redis.call('HGETALL', prefix .. id)), 's') end
        ok = (site == '' or full == site) and (not sites or sites[full])
      end
      if ok then cand[#cand + 1] = {id, tonumber(v[1])} end
    end
    return smallpage(cand, false, false)
  end
end
-- The walk reads a bucket at a time; index changes wait until it ends.
local exhausted = bdown(KEYS[1], cs, cid, function(id, score)
  if found >= want or seen >= budget then return false end
  consider(id, score)
  return true
end)
for _, e in ipairs(stale) do brem(KEYS[1], e[2], e[1]) end
return {out, ls, lid, exhausted and 1 or 0, seen}
`)

// userSessionsScript returns every session of one user as a flat list of
// id, hash, device, dropping fields of sessions that vanished (the sweep
// removes their index entries). KEYS user. ARGV session key prefix,
// device key prefix.
var userSessionsScript = redis.NewScript(luaLib + `
local h = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #h, 2 do
  local id = h[i]
  if string.sub(id, 1, 1) ~= '~' then
    local flat = redis.call('HGETALL', ARGV[1] .. id)
    if #flat == 0 then
      redis.call('HDEL', KEYS[1], id)
    else
      out[#out + 1] = id
      out[#out + 1] = flat
      out[#out + 1] = device(ARGV[2], tomap(flat))
    end
  end
end
return out
`)

// dueScript returns up to n sessions whose deadline is at or before t,
// as a flat list of id, hash, device, earliest first within each
// partition of the deadline index, the partitions in turn. It removes
// every index entry of sessions that vanished, which is what keeps the
// indexes from keeping ended sessions. KEYS deadline partitions (the
// hash), by-last-access, by-created. ARGV session key prefix, device key
// prefix, t ms, n, budget.
var dueScript = redis.NewScript(luaLib + `
local t, n, budget = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local out, stale, found, seen = {}, {}, 0, 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if found >= n or seen >= budget then break end
  bup(KEYS[1] .. ':' .. f, t, function(member, score)
    if found >= n or seen >= budget then return false end
    seen = seen + 1
    local id, last, created = dsplit(member)
    local flat = redis.call('HGETALL', ARGV[1] .. id)
    if #flat == 0 then
      stale[#stale + 1] = {f, member, score, id, last, created}
      return true
    end
    local m = tomap(flat)
    local l = tonumber(m['l'] or '0')
    if l ~= last or deadline(l, tonumber(m['x'] or '0'), tonumber(m['t'] or '0')) ~= tonumber(score) then
      -- Left over; only this entry is wrong.
      stale[#stale + 1] = {f, member, score}
      return true
    end
    out[#out + 1] = id
    out[#out + 1] = flat
    out[#out + 1] = device(ARGV[2], m)
    found = found + 1
    return true
  end)
end
for _, e in ipairs(stale) do
  dprem(KEYS[1], e[1], e[3], e[2])
  if e[4] then
    brem(KEYS[2], e[5], e[4])
    brem(KEYS[3], e[6], e[4])
  end
end
return out
`)

// usersScript walks users by last login, newest first, from a cursor.
// KEYS users. ARGV user key prefix, cursor score (” from the top),
// cursor user, want, budget, name prefix (lower case), now ms, grace ms.
// Returns {items, last score, last user, exhausted}; items is a flat list
// of user, email, last login, last logout, last ip, active count.
var usersScript = redis.NewScript(luaLib + `
local prefix, cs, cu = ARGV[1], ARGV[2], ARGV[3]
local want, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local np, now, grace = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local out, stale, drop = {}, {}, {}
local found, seen = 0, 0
local ls, lu = cs, cu
local function consider(name, score)
  seen = seen + 1
  ls, lu = score, name
  local key = prefix .. name
  -- A summary that expired, or was recreated by a later login (then
  -- this entry's score is not its last login), leaves a stale entry.
  local v = redis.call('HMGET', key, '~i', '~e')
  if v[1] ~= score then
    stale[#stale + 1] = {name, score}
    return
  end
  if np ~= '' and string.sub(string.lower(name), 1, #np) ~= np and string.sub(string.lower(v[2] or ''), 1, #np) ~= np then return end
  local h = redis.call('HGETALL', key)
  local m = tomap(h)
  local active = 0
  for i = 1, #h, 2 do
    local f = h[i]
    if string.sub(f, 1, 1) ~= '~' then
      local dl = tonumber(h[i + 1])
      -- A session past its deadline is over even before the sweep
      -- records it; one past its grace has vanished from Redis.
      if dl == 0 or dl > now then
        active = active + 1
      elseif dl + grace < now then
        drop[#drop + 1] = {key, f}
      end
    end
  end
  out[#out + 1] = name
  out[#out + 1] = m['~e'] or ''
  out[#out + 1] = m['~i'] or '0'
  out[#out + 1] = m['~o'] or '0'
  out[#out + 1] = m['~p'] or ''
  out[#out + 1] = active
  found = found + 1
end
local exhausted = bdown(KEYS[1], cs, cu, function(name, score)
  if found >= want or seen >= budget then return false end
  consider(name, score)
  return true
end)
for _, e in ipairs(drop) do redis.call('HDEL', e[1], e[2]) end
for _, e in ipairs(stale) do brem(KEYS[1], e[2], e[1]) end
return {out, ls, lu, exhausted and 1 or 0, seen}
`)

// userByEmailScript returns the subject whose verified email has the
// email key given, the one with the latest login when several do (ties:
// the greater subject by bytes), or nil. The index holds subjects at the
// score of their email key; subjects found there count only when their
// user hash's ~v is this key (another key with the same score is a hash
// collision), and entries that agree with no ~v are dropped. KEYS
// by-email. ARGV user key prefix, email key. Returns {subject, last
// login ms} or nil.
var userByEmailScript = redis.NewScript(luaLib + `
local sc = escore(ARGV[2])
local n = bfind(KEYS[1], sc)
if not n then return false end
local best, at, stale = nil, 0, {}
for _, name in ipairs(redis.call('ZRANGEBYSCORE', bkey(KEYS[1], n), sc, sc)) do
  local v = redis.call('HMGET', ARGV[1] .. name, '~v', '~i', '~e')
  local k = vkey({['~v'] = v[1], ['~e'] = v[3]})
  if k == ARGV[2] then
    local t = tonumber(v[2] or '0')
    if not best or t > at or t == at and before(best, name) then best, at = name, t end
  elseif not k or tonumber(escore(k)) ~= tonumber(sc) then
    stale[#stale + 1] = name
  end
end
for _, name in ipairs(stale) do brem(KEYS[1], sc, name) end
if not best then return false end
return {best, tostring(at)}
`)

// setReauthScript raises a user's re-authentication time, never lowering
// it, and keeps the user's hash (which may hold nothing else) at least
// UserTTL. KEYS user. ARGV time ms, user ttl ms.
var setReauthScript = redis.NewScript(luaLib + `
local cur = tonumber(redis.call('HGET', KEYS[1], '~r') or '0')
if tonumber(ARGV[1]) > cur then redis.call('HSET', KEYS[1], '~r', ARGV[1]) end
extend(KEYS[1], tonumber(ARGV[2]))
return 1
`)

// limitScript ends, as deleteScript does, the least recently used live
// sessions of one user beyond the keep most recently used (ties: the
// later created, then the greater id), in one step, so that concurrent
// sign-ins on several instances leave exactly keep. Sessions past their
// deadline neither count nor end: the sweep records their expiry. Fields
// of sessions that vanished by TTL are dropped. KEYS user, by-last-access,
// by-created, by-deadline, by-ip. ARGV keep, now ms, session key prefix, tokens
// key prefix, channel, user ttl ms, device key prefix, issuer key (only
// sessions of that issuer count; "" for all), the id of the new sign-in,
// which wins ties ("" for none); a last access after now ranks as now. Returns a flat list of
// id, hash, tokens, device per ended session.
var limitScript = redis.NewScript(luaLib + `
local u = KEYS[1]
local keep, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local sp, kp, ch, userttl, dp = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local iss, stay = ARGV[8], ARGV[9]
local h = redis.call('HGETALL', u)
local live = {}
for i = 1, #h, 2 do
  local id = h[i]
  if string.sub(id, 1, 1) ~= '~' then
    local flat = redis.call('HGETALL', sp .. id)
    if #flat == 0 then
      redis.call('HDEL', u, id)
    else
      local m = tomap(flat)
      local last, created = tonumber(m['l'] or '0'), tonumber(m['c'] or '0')
      local dl = deadline(last, tonumber(m['x'] or '0'), tonumber(m['t'] or '0'))
      if (dl == 0 or now < dl) and (iss == '' or (m['o'] or '') == iss) then
        -- A last access in the future (another instance's clock ahead)
        -- ranks as now, where the new sign-in wins the tie.
        live[#live + 1] = {id = id, flat = flat, m = m, last = last, rank = math.min(last, now),
          stay = (id == stay), created = created, dl = dl}
      end
    end
  end
end
if #live <= keep then return {} end
table.sort(live, function(a, b)
  if a.rank ~= b.rank then return a.rank > b.rank end
  if a.created ~= b.created then return a.created > b.created end
  if a.stay ~= b.stay then return a.stay end
  return before(b.id, a.id)
end)
local out = {}
for i = keep + 1, #live do
  local e = live[i]
  brem(KEYS[2], e.m['l'] or '0', e.id)
  brem(KEYS[3], e.m['c'] or '0', e.id)
  dprem(KEYS[4], dpf(joined(e.m, 's'), joined(e.m, 'k')), dscore(e.dl), dmember(e.id, e.last, e.created))
  iprem(KEYS[5], e.m['i'], e.created, e.id)
  if e.m['j'] and e.m['j'] ~= '' then iprem(KEYS[5], e.m['j'], e.created, e.id .. '.') end
  local tk = kp .. e.id
  local tok = redis.call('GET', tk)
  local dev = device(dp, e.m)
  redis.call('DEL', sp .. e.id, tk)
  redis.call('HDEL', u, e.id)
  redis.call('SPUBLISH', ch, e.id)
  out[#out + 1] = e.id
  out[#out + 1] = e.flat
  out[#out + 1] = tok
  out[#out + 1] = dev
end
redis.call('HSET', u, '~o', ARGV[2])
extend(u, userttl)
return out
`)
