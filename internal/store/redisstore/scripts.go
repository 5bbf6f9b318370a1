package redisstore

import "github.com/redis/go-redis/v9"

// The scripts keep a session, its indexes and its user's summary
// consistent: each runs atomically on the server. Key names follow doc.go.
// Where a script needs the user's key, which only the session hash names,
// it builds it from a prefix argument; that key is undeclared but shares
// the hash tag, hence the slot, so this works on Cluster as well.
//
// Numbers are Unix milliseconds. Lua's numbers are doubles, exact for
// integers below 2^53 (the year 287,396 in ms).

// luaLib is shared by the scripts that need it.
const luaLib = `
local function deadline(last, expires, idle)
  local d = expires
  if idle > 0 then
    local i = last + idle
    if d == 0 or i < d then d = i end
  end
  return d
end
-- bytes compares like Redis orders equal-score members (memcmp); Lua's
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
-- dropfield deletes a hash field and its chunks (f1, f2, ...).
local function dropfield(key, f)
  redis.call('HDEL', key, f)
  local i = 1
  while redis.call('HEXISTS', key, f .. i) == 1 do
    redis.call('HDEL', key, f .. i)
    i = i + 1
  end
end
`

// createScript: KEYS session, tokens, by-last-access, by-created,
// by-deadline, user, users. ARGV id, user, last ms, created ms,
// deadline ms (0 none), now ms, grace ms, user ttl ms, tokens, email,
// last ip, then the session's field/value pairs.
var createScript = redis.NewScript(luaLib + `
local id, user = ARGV[1], ARGV[2]
local last, created, dl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now, grace, userttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 12))
local ttl = pttl(dl, now, grace)
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
if ARGV[9] ~= '' then
  if ttl > 0 then
    redis.call('SET', KEYS[2], ARGV[9], 'PX', ttl)
  else
    redis.call('SET', KEYS[2], ARGV[9])
  end
end
redis.call('ZADD', KEYS[3], last, id)
redis.call('ZADD', KEYS[4], created, id)
if dl > 0 then redis.call('ZADD', KEYS[5], dl, id) end

-- The user's summary. Fields of sessions that vanished by TTL go now, so
-- the hash stays as small as the user's live sessions.
local u = KEYS[6]
local h = redis.call('HGETALL', u)
for i = 1, #h, 2 do
  local f = h[i]
  if string.sub(f, 1, 1) ~= '~' then
    local v = tonumber(h[i + 1])
    if v > 0 and v + grace < now then redis.call('HDEL', u, f) end
  end
end
redis.call('HSET', u, id, dl, '~e', ARGV[10], '~p', ARGV[11])
local login = tonumber(redis.call('HGET', u, '~i') or '0')
if created >= login then
  redis.call('HSET', u, '~i', created)
  redis.call('ZADD', KEYS[7], created, user)
end
extend(u, math.max(userttl, ttl))

-- Users whose summary expired leave a stale index entry; each login
-- clears a few of the oldest so the index does not grow without bound.
local old = redis.call('ZRANGE', KEYS[7], 0, 9)
local prefix = string.sub(u, 1, #u - #user)
for _, name in ipairs(old) do
  if redis.call('EXISTS', prefix .. name) == 0 then redis.call('ZREM', KEYS[7], name) end
end
return 1
`)

// getScript: KEYS session, tokens. Returns {hash, tokens} or nil.
var getScript = redis.NewScript(`
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
return {h, redis.call('GET', KEYS[2])}
`)

// touchScript: KEYS session, tokens, by-last-access, by-deadline.
// ARGV id, at ms, ip (” keeps), now ms, grace ms, user key prefix,
// user ttl ms, replace-device flag, replace-location flag, then
// field/value pairs to write. Returns 1, or 0 when the session is gone or
// its deadline passed before at.
var touchScript = redis.NewScript(luaLib + `
local id = ARGV[1]
local h = redis.call('HMGET', KEYS[1], 'u', 'l', 'x', 't', 'i')
if not h[1] then return 0 end
local at, now, grace = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5])
local last = tonumber(h[2] or '0')
local expires, idle = tonumber(h[3] or '0'), tonumber(h[4] or '0')
local dl = deadline(last, expires, idle)
if dl > 0 and at >= dl then return 0 end
if at > last then last = at end
dl = deadline(last, expires, idle)

local s = KEYS[1]
redis.call('HSET', s, 'l', last)
local ip = ARGV[3]
if ip ~= '' then
  if ip == (h[5] or '') then redis.call('HDEL', s, 'j') else redis.call('HSET', s, 'j', ip) end
end
if ARGV[8] == '1' then
  for _, f in ipairs({'a', 'b', 'o', 'd'}) do dropfield(s, f) end
end
if ARGV[9] == '1' then
  for _, f in ipairs({'y', 'r', 'k', 'la', 'lo'}) do dropfield(s, f) end
end
if #ARGV > 9 then redis.call('HSET', s, unpack(ARGV, 10)) end

redis.call('ZADD', KEYS[3], last, id)
local ttl = pttl(dl, now, grace)
if dl > 0 then
  redis.call('ZADD', KEYS[4], dl, id)
  redis.call('PEXPIRE', s, ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
local u = ARGV[6] .. h[1]
redis.call('HSET', u, id, dl)
if ip ~= '' then redis.call('HSET', u, '~p', ip) end
extend(u, math.max(tonumber(ARGV[7]), ttl))
return 1
`)

// deleteScript: KEYS session, tokens, by-last-access, by-created,
// by-deadline. ARGV id, now ms, user key prefix, channel, user ttl ms.
// Returns {hash, tokens}, or nil when the session was already gone.
var deleteScript = redis.NewScript(luaLib + `
local id = ARGV[1]
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('ZREM', KEYS[5], id)
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then
  redis.call('DEL', KEYS[2])
  return false
end
local tok = redis.call('GET', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
local m = tomap(h)
local u = ARGV[3] .. m['u']
redis.call('HDEL', u, id)
redis.call('HSET', u, '~o', ARGV[2])
extend(u, tonumber(ARGV[5]))
redis.call('PUBLISH', ARGV[4], id)
return {h, tok}
`)

// scanScript walks an index newest first from a cursor and returns the
// sessions that pass the filters, dropping index entries whose session
// vanished. KEYS index, by-last-access, by-created, by-deadline. ARGV
// session key prefix, cursor score (” from the top), cursor id, want,
// budget (entries to examine), ip prefix, country (lower case), site.
// Returns {matches, last score, last id, exhausted} where matches is a
// flat list of id, score, hash.
var scanScript = redis.NewScript(luaLib + `
local prefix, cs, cid = ARGV[1], ARGV[2], ARGV[3]
local want, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local ipp, country, site = ARGV[6], ARGV[7], ARGV[8]
local out, stale = {}, {}
local found, seen = 0, 0
local ls, lid = cs, cid
local function full() return found >= want or seen >= budget end
local function consider(id, score)
  seen = seen + 1
  ls, lid = score, id
  local flat = redis.call('HGETALL', prefix .. id)
  if #flat == 0 then
    stale[#stale + 1] = id
    return
  end
  local m = tomap(flat)
  if ipp ~= '' then
    local ip, last = m['i'] or '', m['j'] or m['i'] or ''
    if string.sub(ip, 1, #ipp) ~= ipp and string.sub(last, 1, #ipp) ~= ipp then return end
  end
  if country ~= '' and string.lower(m['k'] or '') ~= country then return end
  if site ~= '' then
    -- Sites are short, but join chunks for correctness.
    local s, i = m['s'] or '', 1
    while m['s' .. i] do s = s .. m['s' .. i]; i = i + 1 end
    if s ~= site then return end
  end
  out[#out + 1] = id
  out[#out + 1] = score
  out[#out + 1] = flat
  found = found + 1
end

local max = '+inf'
if cs ~= '' then
  -- Members sharing the cursor's score come in descending byte order;
  -- resume after the cursor's id among them, then below the score.
  local ties = redis.call('ZREVRANGEBYSCORE', KEYS[1], cs, cs)
  for _, id in ipairs(ties) do
    if full() then break end
    if before(id, cid) then consider(id, cs) end
  end
  max = '(' .. cs
end
local exhausted = 0
-- Offsets are stable because the script runs atomically and stale
-- entries are removed only at the end.
local off, chunk = 0, 256
while not full() do
  local r = redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '-inf', 'WITHSCORES', 'LIMIT', off, chunk)
  if #r == 0 then
    exhausted = 1
    break
  end
  for i = 1, #r, 2 do
    if full() then break end
    consider(r[i], r[i + 1])
  end
  off = off + #r / 2
  if #r / 2 < chunk and not full() then
    exhausted = 1
    break
  end
end
for _, id in ipairs(stale) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
end
return {out, ls, lid, exhausted}
`)

// userSessionsScript returns every session of one user as a flat list of
// id, hash, dropping fields of sessions that vanished. KEYS user,
// by-last-access, by-created, by-deadline. ARGV session key prefix.
var userSessionsScript = redis.NewScript(`
local h = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #h, 2 do
  local id = h[i]
  if string.sub(id, 1, 1) ~= '~' then
    local flat = redis.call('HGETALL', ARGV[1] .. id)
    if #flat == 0 then
      redis.call('HDEL', KEYS[1], id)
      redis.call('ZREM', KEYS[2], id)
      redis.call('ZREM', KEYS[3], id)
      redis.call('ZREM', KEYS[4], id)
    else
      out[#out + 1] = id
      out[#out + 1] = flat
    end
  end
end
return out
`)

// dueScript returns up to n sessions whose deadline is at or before t,
// earliest first, as a flat list of id, hash, and drops index entries of
// sessions that vanished. KEYS by-deadline, by-last-access, by-created.
// ARGV session key prefix, t ms, n, budget.
var dueScript = redis.NewScript(`
local n, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, budget)
local out, stale, found = {}, {}, 0
for _, id in ipairs(ids) do
  if found >= n then break end
  local flat = redis.call('HGETALL', ARGV[1] .. id)
  if #flat == 0 then
    stale[#stale + 1] = id
  else
    out[#out + 1] = id
    out[#out + 1] = flat
    found = found + 1
  end
end
for _, id in ipairs(stale) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
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
local out, stale = {}, {}
local found, seen = 0, 0
local ls, lu = cs, cu
local function full() return found >= want or seen >= budget end
local function consider(name, score)
  seen = seen + 1
  ls, lu = score, name
  local key = prefix .. name
  local h = redis.call('HGETALL', key)
  if #h == 0 then
    stale[#stale + 1] = name
    return
  end
  local m = tomap(h)
  if np ~= '' and string.sub(string.lower(name), 1, #np) ~= np and string.sub(string.lower(m['~e'] or ''), 1, #np) ~= np then return end
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
        redis.call('HDEL', key, f)
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
local max = '+inf'
if cs ~= '' then
  local ties = redis.call('ZREVRANGEBYSCORE', KEYS[1], cs, cs)
  for _, name in ipairs(ties) do
    if full() then break end
    if before(name, cu) then consider(name, cs) end
  end
  max = '(' .. cs
end
local exhausted = 0
local off, chunk = 0, 256
while not full() do
  local r = redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '-inf', 'WITHSCORES', 'LIMIT', off, chunk)
  if #r == 0 then
    exhausted = 1
    break
  end
  for i = 1, #r, 2 do
    if full() then break end
    consider(r[i], r[i + 1])
  end
  off = off + #r / 2
  if #r / 2 < chunk and not full() then
    exhausted = 1
    break
  end
end
for _, name in ipairs(stale) do redis.call('ZREM', KEYS[1], name) end
return {out, ls, lu, exhausted}
`)

// appendScript adds an event to the stream with an ID taken from the
// event's time, so that time bounds map to ID ranges. IDs must grow; an
// event older than the newest entry (clock skew between instances) falls
// back to the next free ID, which is then later than its time. KEYS
// stream. ARGV time ms, max length (0 none), then field/value pairs.
var appendScript = redis.NewScript(`
local args = {'XADD', KEYS[1]}
local maxlen = tonumber(ARGV[2])
if maxlen > 0 then
  args[#args + 1] = 'MAXLEN'
  args[#args + 1] = '~'
  args[#args + 1] = maxlen
end
local at = #args + 1
args[at] = ARGV[1] .. '-*'
for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.pcall(unpack(args))
if type(id) == 'table' and id.err then
  args[at] = '*'
  id = redis.call(unpack(args))
end
return id
`)
