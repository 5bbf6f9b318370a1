// Package redisstore keeps sessions and the activity log in Redis, shared by
// every gateway instance that points at the same server (standalone,
// Sentinel or Cluster; see ParseURL). It implements session.Store and
// activity.Store and passes the shared conformance suite in
// internal/store/storetest.
//
// # Keys
//
// Every key starts with the prefix inside a hash tag, "{gh}" by default,
// so all keys live in one Cluster slot and the Lua scripts may touch
// several of them atomically (some build the user key from a session's
// field, which is legal only because it shares the slot). The price is
// that a Cluster gives no sharding to this data: one node holds it all and
// the others stand by. At about 1 KiB a session that is roughly a million
// sessions per GiB, well within one node; run several gateways' stores on
// one Cluster under different prefixes to spread them.
//
// All times are Unix milliseconds; TTL "deadline+grace" means the key
// expires Grace (default 10m) after the session's Deadline, so that the
// background sweep, which finds ends through Due, records the expiry
// before the data goes. A session without any deadline (no lifetime, no
// idle timeout) has no TTL.
//
//	key                   type    TTL                   holds
//	{gh}:s:<id>           hash    deadline+grace        the session (fields below)
//	{gh}:k:<id>           string  deadline+grace        the sealed Tokens blob; absent when empty
//	{gh}:la               zset    none (cleaned)        session id → last access
//	{gh}:ca               zset    none (cleaned)        session id → created at
//	{gh}:dl               zset    none (cleaned)        session id → Deadline(), for Due
//	{gh}:u:<user>         hash    ≥ UserTTL (90d)       the user's summary and session list (below)
//	{gh}:ul               zset    none (cleaned)        user → last login, for Users
//	{gh}:ev               stream  none (Trim, MAXLEN)   activity events (fields below)
//	{gh}:c:<key>          string  the claim's ttl       ClaimOnce markers (SET NX PX)
//	{gh}:ended            channel                       ids of ended sessions (PUBLISH)
//
// Index entries outlive their session only when its hash expired by TTL,
// which happens Grace after its deadline; Due (run by the sweep every
// minute) meets every such entry first and removes it from all three
// session indexes, and List and the user listing remove the ones they
// meet. Stale {gh}:ul entries (summary expired) are removed by Users when
// met and, a few of the oldest at a time, by every Create.
//
// # Session hash
//
// Field names are one or two letters and every value is at most 64
// bytes, so that Redis keeps the hash in its compact listpack encoding
// (hash-max-listpack-value, default 64): one longer value would turn the
// whole hash into a hashtable at about three times the memory. A longer
// value (a user agent, a long group list) is split into 64-byte chunks
// stored as f, f1, f2, ...; readers join them. Empty values are not
// stored. The Tokens blob (1-2 KB) lives in its own string key for the
// same reason.
//
//	u user (subject)   e email         n name        p preferred username
//	g groups, joined by U+001F (unit separator)      s site
//	c created at       l last access   x expires at  t idle timeout (ms)
//	i login IP         j last IP, only when it differs from i (present but empty means empty)
//	a user agent       b browser       o OS          d device
//	y city             r region        k country     la latitude   lo longitude
//	z provider's sid
//
// # User hash
//
// One hash per user serves both the Users view and the user filter of
// List: fields starting with "~" are the summary, every other field is a
// session id whose value is that session's deadline (0 for none).
//
//	~e email   ~i last login   ~o last logout   ~p last IP   <id> deadline
//
// Active sessions are the id fields whose deadline is in the future, so a
// session that timed out stops counting before the sweep ends it.
//
// # Event stream
//
// Entry IDs follow the event's time: "<ms>-*", or the next free ID when an
// instance's clock is behind the newest entry, so an ID is never before its
// event and, with clocks within MaxSkew, not much after it; Query turns
// From/To into an ID range on that basis. Every entry carries all of these
// fields, in this order, even when empty, because Redis then stores the
// field names once per stream node rather than once per entry:
//
//	t time  y type  u user  e email  s session id  si site  ip IP
//	ci city  co country  d device  in inactivity  r reason  a actor
//
// # Memory
//
// The SPEC's budget is 1 KiB of Redis memory per session; this layout does
// not quite meet it. Measured by TestMemoryPerSession (Redis 7.0, jemalloc,
// realistic fields, two sessions per user, tokens aside):
//
//	session hash (listpack, with key and expiry)   ≈ 640 bytes
//	three global index entries (skiplist zsets)    ≈ 395 bytes (≈ 130 each)
//	user hash + users index, shared by the user    ≈ 270 bytes per session
//	total                                           ≈ 1,300 bytes
//
// The sealed tokens come on top, byte for byte plus about 180 bytes for
// their key. The indexes are what List, Users and Due need to answer in
// milliseconds at a million sessions; meeting 1 KiB would mean giving one
// up (the created-at sort is the least used) or packing the session into
// an opaque blob that the scripts could no longer edit field by field.
//
// # Atomicity
//
// Create, Touch and Delete are single Lua scripts (EVALSHA), so the
// session, its tokens, the three indexes and the user's hash never
// disagree, Touch never revives a session another instance deleted, and of
// concurrent Deletes exactly one gets the session back. Delete publishes
// the id from inside its script.
package redisstore
