// Package redisstore keeps sessions and the activity log in Redis, shared by
// every gateway instance that points at the same server (standalone,
// Sentinel or Cluster; see ParseURL). It implements session.Store and
// activity.Store and passes the shared conformance suite in
// internal/store/storetest.
//
// # Shards
//
// A Redis Cluster spreads keys over 16,384 hash slots by their hash tag
// (the part in braces), and a Lua script may only touch keys of one slot.
// The store splits its data into 16 shards (session.Groups), each under
// its own tag, "{gh.<k>}", where k is the least number that puts the tag
// in the shard's sixteenth of the slot range (shardTags): the shards sit
// evenly over the slots, so whatever contiguous ranges the masters hold
// (redis-cli --cluster create splits them so) they hold shards in
// proportion, 6, 5 and 5 of 16 on three masters. Every instance computes
// the same tags from the prefix.
//
// Everything about one user is in one shard, the user's group
// (session.UserGroup, FNV-1a of the subject): the sessions, their index
// entries, the user's summary, their events and event indexes, and their
// login history. So the scripts that must be atomic over a user's
// sessions (Create with its summary and email index, Touch, Delete,
// LimitSessions for max_sessions, the revoke-all the gateway builds on
// them) still run in one slot, and the shard a session is in follows
// from its id: session.NewSecretFor draws cookie secrets until the id
// they lead to starts with a byte of the user's group (session.IDGroup),
// about 16 tries, a few microseconds at sign-in. Get and Touch then find
// a session from its cookie with no lookup across shards; Create refuses
// an id outside its user's group. A forged id names some shard where its
// session is not.
//
// Alternatives considered: one tag for all (the old layout: a Cluster
// buys nothing, one master takes every write); a tag per session (no
// atomic max_sessions or revoke-all, and listing needs a scan of every
// slot); a lookup key from id to shard (a second round trip on every
// cache miss, and a key that can disagree with the session). Sixteen
// shards spread writes over up to 16 masters and keep the cost of the
// listings that must ask every shard (below) to 16 small reads in one
// round trip; a Cluster of more masters than that would want more
// shards, which changes the group of every id (a re-login).
//
// Listings over all sessions (List, Users) run the shard's walk in every
// shard in parallel from the same cursor (the order is total: score, then
// id or subject, which are unique) and merge them (mergeShards). A shard
// that stopped early, for a full page or its share of MaxScan, has seen
// nothing below where it stopped, so the page ends at the highest such
// stop and continues from it: no gaps, no duplicates. List's walks return
// only ids and scores; the page's sessions are then read in one
// pipelined round trip, so a page of 100 reads 100 sessions, not 1,600.
// UserByEmail asks every shard's email index in one pipelined round
// trip (an email does not say whose it is); Due asks the shards in turn.
//
// Events go to their user's shard (else their session's, else one chosen
// by a hash of the IP), each shard's stream capped at a sixteenth of
// EventMaxLen (exactly when that is under 10,000, else to within a
// stream node). Their IDs are "<ms>-<seq>" with seq equal to the shard's
// number modulo 16 (appendIndexedScript), so IDs are unique across
// shards, stay ordered by time, and name the stream that holds them:
// the event ID remains the API's id and cursor. Query merges the
// shards' streams, or an index's entries in every shard, newest first
// (evmerge.go). Login history rows go to the user's shard too; History
// merges the shards' indexes likewise.
//
// Ends are published on the shard's channel with SPUBLISH from inside
// the script that ends the session, so on a Cluster an end travels only
// to the nodes serving that slot, not to every node as PUBLISH does
// (Redis 7.0 or later). Subscribe takes the 16 channels with SSUBSCRIBE,
// on one connection, or on a Cluster one per channel (go-redis sends an
// SSUBSCRIBE to the node of its first channel).
//
// A few keys are global and rarely written: the sites registry and the
// signing keys, under "{gh}". Claims (ClaimOnce) go to a shard by a hash
// of the claim's key. Standalone Redis and Sentinel use the same layout;
// nothing there depends on slots.
//
// Replication is asynchronous, so a failover (Sentinel or Cluster) can
// promote a replica without a write its master had acknowledged. Create,
// Delete and LimitSessions therefore send WAIT 1 after their script on
// the same connection (replicas.go) and return once a replica has the
// write, or after ReplicaTimeout (100 ms): a sign-in or a revocation is
// then not lost by a failover (TestSentinelFailover: 0 of 2,526 sessions
// acknowledged during a kill of the master lost; without WAIT about one
// in 1,500). The wait is capped at the replicas the master has (INFO
// replication, read every 5 s), so a standalone Redis waits for none.
//
// # Keys
//
// Every key starts with a shard's tag, shown here as {gh.k}, or with the
// global tag {gh}; "gh" is the prefix (Options.Prefix).
//
//	key                     type    TTL                   holds
//	{gh.k}:s:<id>           hash    deadline+grace        the session (fields below)
//	{gh.k}:k:<id>           string  deadline+grace        the sealed Tokens blob of a refresh-on site (below)
//	{gh.k}:d:<ref>          string  its longest session   an interned device summary (below), per shard
//	{gh.k}:u:<user>         hash    ≥ UserTTL (90d)       the user's summary and session list (below)
//	{gh.k}:i:la             index   none (cleaned)        session id → last access, for List
//	{gh.k}:i:ca             index   none (cleaned)        session id → created at, for List
//	{gh.k}:i:dl             index   none (cleaned)        "<id> <last> <created>" → Deadline(), for Due
//	{gh.k}:i:ul             index   none (cleaned)        user → last login, for Users
//	{gh.k}:i:em             index   none (cleaned)        user → hash of verified email, for UserByEmail
//	{gh.k}:ev               stream  none (Trim, MAXLEN)   activity events (fields below), capped at EventMaxLen/16
//	{gh.k}:h:<id>           hash    none (Trim, cap)      the login history row of session <id> (below)
//	{gh.k}:hx               zset    none (Trim, cap)      session id → login time: the login history, newest first
//	{gh.k}:hu:<user>        zset    none (Trim, cap)      the same for one user
//	{gh.k}:hs:<site>        zset    none (Trim, cap)      the same for one site
//	{gh.k}:ev:u:<subject>   stream  none (Trim, cap)      IDs of the user's events, once 512 or more (event indexes, below)
//	{gh.k}:ev:e:<email>     stream  none (Trim, cap)      likewise by email, case-folded (foldKey)
//	{gh.k}:ev:y:<type>      stream  none (Trim, cap)      likewise by event type
//	{gh.k}:ev:si:<site>     stream  none (Trim, cap)      likewise by site
//	{gh.k}:ev:l:<ix>:<v>    list    none (Trim, cap)      the same IDs while fewer than 512, oldest first (ms×16+seq as an integer)
//	{gh.k}:ev:ix            set     none (Trim)           the stream key of every event index, for Trim
//	{gh.k}:c:<key>          string  the claim's ttl       ClaimOnce markers (SET NX PX), in a shard by a hash of key
//	{gh.k}:ended            channel                       ids of the shard's ended sessions (SPUBLISH)
//	{gh}:sites              hash    none (≤ MaxSites)     "<site>\x1f<scope>" → 1: which admin rules serve each site (AddSite)
//	{gh}:jwk                hash    none (≤ 3 fields)     period → sealed signing key record of jwt_header (gateway removes old ones)
//
// All times are Unix milliseconds; TTL "deadline+grace" means the key
// expires Grace (default 10m) after the session's Deadline, so that the
// background sweep, which finds ends through Due, records the expiry
// before the data goes. A session without any deadline (no lifetime, no
// idle timeout) has no TTL.
//
//	key                     type    TTL                   holds
//	{gh}:s:<id>           hash    deadline+grace        the session (fields below)
//	{gh}:k:<id>           string  deadline+grace        the sealed Tokens blob of a refresh-on site (below)
//	{gh}:d:<ref>          string  its longest session   an interned device summary (below)
//	{gh}:u:<user>         hash    ≥ UserTTL (90d)       the user's summary and session list (below)
//	{gh}:i:la             index   none (cleaned)        session id → last access, for List
//	{gh}:i:ca             index   none (cleaned)        session id → created at, for List
//	{gh}:i:dl             index   none (cleaned)        "<id> <last> <created>" → Deadline(), for Due
//	{gh}:i:ul             index   none (cleaned)        user → last login, for Users
//	{gh}:i:em             index   none (cleaned)        user → hash of verified email, for UserByEmail
//	{gh}:ev               stream  none (Trim, MAXLEN)   activity events (fields below), capped at EventMaxLen
//	{gh}:h:<id>           hash    none (Trim, cap)      the login history row of session <id> (below)
//	{gh}:hx               zset    none (Trim, cap)      session id → login time: the login history, newest first
//	{gh}:hu:<user>        zset    none (Trim, cap)      the same for one user
//	{gh}:hs:<site>        zset    none (Trim, cap)      the same for one site
//	{gh}:ev:u:<subject>   stream  none (Trim, cap)      IDs of the user's events, once 512 or more (event indexes, below)
//	{gh}:ev:e:<email>     stream  none (Trim, cap)      likewise by email, case-folded (foldKey)
//	{gh}:ev:y:<type>      stream  none (Trim, cap)      likewise by event type
//	{gh}:ev:si:<site>     stream  none (Trim, cap)      likewise by site
//	{gh}:ev:l:<ix>:<v>    list    none (Trim, cap)      the same IDs while fewer than 512, oldest first ("<ms>" for "<ms>-0")
//	{gh}:ev:ix            set     none (Trim)           the stream key of every event index, for Trim
//	{gh}:c:<key>          string  the claim's ttl       ClaimOnce markers (SET NX PX)
//	{gh}:sites              hash    none (≤ MaxSites)     "<site>\x1f<scope>" → 1: which admin rules serve each site (AddSite)
//	{gh}:jwk                hash    none (≤ 3 fields)     period → sealed signing key record of jwt_header (gateway removes old ones)
//	{gh}:ended            channel                       ids of ended sessions (PUBLISH)
//
// Index entries outlive their session only when its hash expired by TTL,
// which happens Grace after its deadline, that is when no sweep ran in
// that time. Due, run by the sweep every 10 seconds, meets every such entry
// first in the deadline index, whose members name the session's last
// access and creation time (in base 36) for this purpose, and removes
// the session's entries from all three session indexes; List removes the
// ones it meets from the index it walks, and the user listing drops the
// user hash's field. Stale users index entries (summary expired, or an
// entry whose score is not the summary's last login) are removed by Users
// when met and, a few of the oldest at a time, by every Create.
//
// # Ordered indexes
//
// A plain sorted set costs about 125 bytes an entry once it passes 128
// entries and Redis turns it into a skiplist; four of them (last access,
// created, deadline, users) made up a third of a session's memory. An
// index here is instead a sorted set of buckets, each a small sorted set
// that Redis keeps as a listpack at about 35 bytes an entry:
//
//	{gh}:i:<ix>           zset    bucket number → the bucket's lower bound (the lowest is -inf)
//	{gh}:i:<ix>:<n>       zset    member → score, for scores from its bound to the next bucket's
//	{gh}:i:<ix>:n         string  the last bucket number handed out (INCR)
//
// A bucket holds at most 128 entries (Redis's default
// zset-max-listpack-entries): one about to pass that splits first, near
// its middle where the score changes, so that equal scores, whose
// members are ordered by member, never straddle two buckets; an insert
// above everything in a full bucket starts a new one instead, which keeps
// buckets full while times only grow. A bucket that falls below 32
// entries merges into a neighbour with room. A bucket of a single score
// cannot split and outgrows 128 entries (Redis then converts it, costing
// memory but nothing else). Adding or removing an entry finds its bucket
// in the directory by score, which every caller knows from the session
// or user hash. Listings walk the buckets in order from a cursor. The
// Lua library in scripts.go implements this; TestIndexMatchesModel checks
// it against a plain model.
//
// # Session hash
//
// Field names are one or two letters and every value is at most 64
// bytes, so that Redis keeps the hash in its compact listpack encoding
// (hash-max-listpack-value, default 64): one longer value would turn the
// whole hash into a hashtable at about three times the memory. A longer
// value (a long group list, a long name, a long subject) is split into
// 64-byte chunks stored as f, f1, f2, ...; readers join them, the Lua
// scripts included (Touch and Delete name the user's hash by the joined
// subject). Empty values are not
// stored. A Tokens blob (a sealed token set, often 1 KB or more) lives
// in its own string key for the same reason. Redis finds a field of a listpack hash by scanning
// from the start, so Create writes the fields that Touch and the filtered
// listings read first: l c x t u i j k s, then the rest.
//
//	u user (subject)   e email         n name        p preferred username
//	v "1" when the provider said email_verified (absent: unverified)
//	g groups, joined by U+001F (unit separator)      s site
//	c created at       l last access   x expires at  t idle timeout (ms)
//	i login IP         j last IP, only when it differs from i (present but empty means empty)
//	a device summary reference (below)
//	y city             r region        k country     la latitude   lo longitude
//	z provider's sid   o issuer key (session.IssuerKey, 12 characters)
//	am authentication methods (the ID token's amr), joined by U+001F
//	mf "1" when the sign-in had a second factor (absent: single factor)
//
// # Device summaries
//
// The user agent (100-200 bytes) with its browser, OS and device summary
// is the same for every session of one browser make and version, so it is
// stored once, as the JSON array [user agent, browser, OS, device] under
// {gh}:d:<ref>, where ref is 12 base64url characters of its SHA-256. A
// session stores only ref. The summary's TTL is extended to the longest
// TTL of the sessions that use it (UserTTL for a session without one) on
// Create and on every Touch, so it outlives them all and then goes.
//
// # User hash
//
// One hash per user serves both the Users view and the user filter of
// List: fields starting with "~" are the summary, every other field is a
// session id whose value is that session's deadline (0 for none).
//
//	~e email   ~i last login   ~o last logout   ~p last IP   <id> deadline
//	~v the email key this user is indexed under in {gh}:i:em (below),
//	   empty when it is ~e itself (most emails are lower case already);
//	   absent when none
//	~r re-authenticate after (SetReauth), never lowered
//
// Active sessions are the id fields whose deadline is in the future, so a
// session that timed out stops counting before the sweep ends it.
//
// SetReauth may make a user hash that holds only ~r (a user ended by an
// admin whose summary had expired): it gets UserTTL and is not in the
// users index, so Users does not list it. Every write that extends the
// hash (Create, Touch, Delete, SetReauth) keeps ~r as long as the
// summary, which is what makes a forced re-authentication outlast a
// browser that waits for its cookie to expire.
//
// # Email index
//
// UserByEmail resolves an exact email, ignoring case, to a subject. The
// email key is session.EmailKey(email) (lower case in ASCII only); the index
// {gh}:i:em is an ordered index (below) whose members are subjects and
// whose score is the first 52 bits of the SHA-1 of the subject's email
// key (computed in Lua with redis.sha1hex; a double holds it exactly).
// A lookup reads the subjects at its key's score and keeps those whose
// user hash names exactly that key in ~v, so a hash collision between
// two emails costs one more HMGET and nothing else; when several
// subjects share a verified email the one with the latest login (~i)
// wins, ties to the greater subject.
//
// Create keeps it: a sign-in with a verified email adds the subject and
// records the key in ~v; any later sign-in of the same subject with
// another email, or with this one unverified, removes the subject first.
// An unverified email is never indexed, so a user whose provider account
// carries someone else's address, unverified, cannot take that person's
// place in "end all sessions of alice@...". A subject is a member once,
// which is the rule: one email per user, the latest.
//
// Entries of users whose summary expired stay behind: a lookup removes
// those it meets, and every indexed sign-in checks the two entries after
// its own (a fair sample, the order being a hash), so stale entries do
// not accumulate. An index costs about 27 bytes a session at two
// sessions per user where a key per email cost about 90.
//
// # Event stream
//
// Entry IDs follow the event's time: "<ms>-<shard>", or the shard's next
// free ID (same ms, sequence number 16 higher) when an instance's clock is
// behind the newest entry or two events share a millisecond, so an ID is
// never before its event and, with clocks within MaxSkew, not much after
// it; Query turns From/To into an ID range on that basis. Every entry has
// one field, p, whose value packs these, in this order, each as a uvarint
// length and its bytes, after a version byte (1):
//
//	t time  y type  u user  e email  s session id  si site  ip IP
//	ci city  co country  d device  in inactivity (seconds)  r reason
//	a actor  dt detail  mf "1" when a login_succeeded had a second factor
//	du duration (seconds)
//
// in and du are "" on events that end no session. New values go at the
// end of this list (du came last); a value past the end of an older
// entry reads as empty, and a reader ignores values it does not know.
// Entries written before the packing (issue 8) carry these as sixteen
// fields of their own, and still read. A packed value holds at least
// the sixteen values above; one with fewer, or an entry with neither p
// nor the old t, is damaged and an error naming it, not a blank event.
// The other way round does not work: an instance older than the packing
// ignores p and reads a packed entry as a blank event, which no filter
// on a type, user or site matches (so its alerts miss it). In a rolling
// upgrade, replace every instance before relying on the events of the
// ones still old.
//
// One value rather than sixteen fields is what makes reading events
// cheap: per entry, Redis writes 3 strings of reply instead of 33 and
// steps through 3 listpack elements instead of 18 to find an entry by
// ID, and the client allocates one string instead of 33 (the event's
// values are pieces of it). Measured at 1,000,000 events: XREVRANGE went
// from about 4 to 0.8 µs of Redis time an entry, XRANGE by ID from 6.2
// to 2.6 µs, and an export of a type through its index from 65,000 to
// 126,000 rows/s, of everything from 120,000 to 486,000. It takes a
// little less memory too: 236 instead of 243 bytes an event in a stream
// of 20,000 (the names were stored once per node either way).
//
// # Login history
//
// One row per session (activity.HistoryStore), kept by Append: a
// login_succeeded event writes the row {gh}:h:<id> (u user, e email, si
// site, ip, ci city, co country, d device, mf, is issuer key, lt login
// ms; empty fields left out) and indexes it by login time in {gh}:hx,
// {gh}:hu:<user> and {gh}:hs:<site>; the first event of that session that
// ends it adds et (end ms), du, in (seconds) and st (its type). History
// walks {gh}:hu:<user> when the filter names a user, else the site's
// index, else those of the admin's reach merged newest first (up to 8
// sites), else {gh}:hx, each in every shard but a user's; it reads each chunk's rows in one pipelined round
// trip and, for rows not ended, the session's last access in a second. A
// first page then costs a few round trips however long the log, every
// row read is a match (but for the site of a user's row), and no event
// is scanned. The alternative, joining login_succeeded events with end
// events by session id at query time, needs an index from session id to
// end event anyway and a stream scan for the logins; the row makes the
// join once, at write time. Trim drops rows whose login is before its
// bound, 500 a call, with their index entries; beyond EventMaxLen/2 rows
// (a session makes at least two events) each sign-in drops the oldest,
// up to 10 at a time: 2,500,000 rows, about 1.5 GiB, by default. A row
// costs about 620 bytes of Redis memory, hash and its three index entries
// (TestHistoryAtScale, 200,000 rows of 20,000 users, where first pages
// take 2-4 ms overall, by date range or by a reach of two sites, and
// under 1 ms for a user or a rare site); at one sign-in in five events or fewer (each session also ends, and
// denials and failures add more) that is about 120 bytes an event beside
// the stream's 220. A user filter with a site walks the user's index and
// checks the rows' sites; a reach of more than 8 sites walks {gh}:hx:
// both within EventMaxScan, and may return a short page with a cursor, as
// Query does.
//
// # Event indexes
//
// A filter on a rare value used to return a short or empty first page:
// Query walked the stream newest first and gave up after EventMaxScan
// (100,000) events. Now every event's ID also goes into an index per
// user subject, email (folded so that strings.EqualFold agrees, as
// Filter.Match compares emails), type, site and IP bucket (the text up to
// its second separator: an IPv4 /16 such as "203.0.", or an IPv6
// address's first two groups), in the same script as the XADD, so an
// index never lacks an event. Query reads the index of the most selective
// field the filter has (user, then an IP prefix at least a bucket long,
// then site, then types, then an admin's reach of at most 4 sites; a
// shorter IP prefix is still scanned; user reads the subject's and
// the email's index, several types or sites read one each), merging them
// newest first: an ID is taken only once every index has been read down
// to it, so that pages have no gaps or duplicates, appends meanwhile
// being newer. It fetches the events with pipelined XRANGE id id and
// applies the rest of the filter with Match; the cursor is the event ID,
// as with the scan, which still serves filters with no indexed field (a
// date range alone is an ID range of the stream, IP prefixes shorter than a bucket are scanned).
//
// An index entry has the event's own ID, so the stream's ID ranges (From,
// To, the cursor) apply to indexes unchanged. Redis 7 preallocates a
// stream's last node at stream-node-max-bytes (4 KiB) however few
// entries it has, which for most users, with few events each, would cost
// more than their events; so an index is a list of IDs (about 10 bytes
// an ID, 160 a key) until it reaches 512 IDs, when the script moves them
// to the index's stream (about 15 bytes an entry). Query reads both
// forms.
//
// Index entries do not outlive their events: Append, when the stream is
// at its cap, trims the indexes it writes to the stream's first ID
// (MINID ~, whole nodes); Trim trims every index named in {gh}:ev:ix to
// the first ID the stream kept, by retention or by the cap, and deletes
// an index, and its name in the set, once empty (one script per index, so
// that an Append in between keeps its entry). Entries left dangling in
// between are skipped by Query. An index stream or list whose last ID is not
// below a new one (left from a deleted stream) is started afresh.
//
// Measured by BenchmarkTenMillionEvents (90 days of events of 50,000
// users on 20 sites, one site rare at one event in 10,000, loaded through
// Append's script; Redis 7.0, 2 shared cores, loopback; first pages of
// 100, p50/p99 of 200 calls; sequential reads in pages of 1,000):
//
//	                        1,000,000 events     10,000,000 events
//	memory per event        303 B (stream 243,   274 B (stream 246,
//	                        indexes 60)          indexes 28)
//	first page, no filter   1.5 / 5.8 ms         1.8 / 7.6 ms
//	by user (subject)       0.25 / 4.1 ms        3.5 / 13.1 ms
//	by user (email)         0.24 / 4.0 ms        3.5 / 10.7 ms
//	by type                 1.1 / 5.7 ms         1.8 / 6.7 ms
//	by two types            1.7 / 13.5 ms        2.4 / 8.3 ms
//	by date range (a day)   1.3 / 31.6 ms        4.4 / 12.3 ms
//	by rare site            1.3 / 18.0 ms        1.3 / 6.5 ms
//	rare site as reach      1.7 / 23.0 ms        1.2 / 6.8 ms
//	user, type, 30 days     0.16 / 0.9 ms        0.84 / 5.4 ms
//	by rare IP prefix       1,353 / 1,557 ms     847 / 1,251 ms
//	read all (no filter)    80,572 rows/s        93,633 rows/s
//	read a type (10%)       42,422 rows/s        53,647 rows/s
//	read a site (5%)        43,929 rows/s        63,588 rows/s
//	load (Append's script)  13,011 events/s      14,082 events/s
//
// 10,000,000 events took 2.56 GiB of Redis memory. The indexes cost 60
// bytes an event at 1M events (20 per user) and 28 at 10M (200 per
// user): per event less as users accumulate events. 50,000 events of
// 5,000 users in TestMemoryPerEvent cost 226 bytes an event without indexes and 368
// with, packed (233 and 375 with the old sixteen fields; ten events a
// user, the lists' fixed part dominating). First
// pages stay within a few milliseconds from 1M to 10M: an index read is
// a range read. By user they grew from 0.25 to 3.5 ms because a user's
// 200 IDs are lists (subject and email), read whole, and Query fetches
// every ID of a read, 400 here, not only a page's (cutting a read to its
// newest chunk IDs would fix that); by date range from 1.3 to 4.4 ms, not
// analysed.
// The machine was shared (load average 4 to 13 on 2 cores), so these
// are pessimistic; the rows/s are as much Go decoding as Redis. An IP
// prefix is not indexed and scans up to EventMaxScan events, about a
// second for a rare prefix, returning a short page and a cursor. A read
// through an index costs an XRANGE per event on top of the index read,
// hence the lower rate (one script fetching all of a page's events
// measured slower still).
//
// The table above predates the shards. With 16 streams merged
// (evmerge.go), at 1,000,000 events on an idle machine: first pages, no
// filter 1.8 / 4.3 ms, by user 0.5 / 1.5, by type 1.4 / 5.8, two types
// 1.8 / 3.9, a day's range 16.5 / 22.4 (16 streams' ranges), rare site
// 1.2 / 3.0; sequential reads in pages of 1,000: everything 50k rows/s
// (80k from one stream: each page restarts 16 reads), a type 86k, a site
// 76k, a user 22k (the email's index is read in every shard); 280 bytes
// an event.
//
// # Export
//
// A CSV export reads every matching event once, newest first (export.go),
// not page by page: each source (every shard's stream, or the filter's
// index in every shard and its list form) has a goroutine that reads its
// next chunk (64 entries, doubling to 512), decodes it from the raw
// XREVRANGE reply (no map per entry) and applies the filter, while the
// caller writes the previous rows; at most 4 reads are in flight, so an
// export leaves the connection pool to requests. The merge takes the
// newest head among the sources. Before the first read, one pipeline
// reads every shard's newest ID and each source starts there: an event
// appended during the export is newer than that snapshot (an index entry
// is written with its event), so an export is of one moment, without
// gaps or duplicates, as a walk of pages is. When the filter's index
// holds a quarter of the events or more (XLEN of the index and the
// streams), the streams are read instead: an event fetched by ID costs a
// few times one read in order.
//
// # Counts
//
// The activity chart and /stats count sign-ins, failures, denials and
// anomalies (activity.StatsTypes) by time. Walking the events would read
// 780,000 of them for the default week at 10,000,000 events in 90 days,
// seconds of work per page view; so Append's script also adds the
// event's weight (activity.Weight: a flood summary stands for its
// repeats) to a counter per shard, type and UTC day: a string of 96
// big-endian unsigned 32-bit weights, one a quarter hour of the day,
// written with BITFIELD ... OVERFLOW SAT INCRBY u32 #<quarter>:
// {gh.k}:ev:q:<type>:<day> for every site, and
// {gh.k}:ev:q:<type>:<day>:s:<site> for its own site, both in the event's
// slot, in the same step as the event, so no extra round trip and no key
// that every instance writes. A set ordered by day ({gh.k}:ev:n) lets Trim
// drop the days before the retention's cut-off. A chart then reads whole
// quarter hours from the counts (one GET per shard, type, day and, for a
// reach, site, pipelined: a day's counts are one 384-byte string, no
// allocation per quarter hour) and only the partial quarter hours at
// either end of its range from the log (activity.CountEvents); a filter
// on a user or an IP prefix, or buckets that are not whole quarter hours
// (5 and 10 minutes), still walk the log. Quarter hours serve every time
// zone, whose offsets are whole quarter hours.
//
// Before the strings (issue 8), the counts were a hash per day, field
// the quarter hour ({gh.k}:ev:n:<type>:<day>[:s:<site>]). CountQuarters
// still adds those in: one EXISTS per shard over the range's old keys
// tells whether any are left, and only then are they read; Trim drops
// them with the rest. Reading a day's hash (HGETALL, 96 fields into a
// map) was most of a chart's time: at 1,000,000 events a week by the
// hour took 10.6 ms and 90 days by the day 105 ms; with the strings 3.0
// and 31 ms. A string is as long as its last counted quarter hour, at
// most 384 bytes: at 20 busy sites about 16 MiB for 90 days, whatever
// the number of events; a sparse day (a rare site's) costs more than its
// hash did. The counts are of
// what was written: events the cap (not retention) dropped still count.
//
// Measured by BenchmarkTenMillionEvents after the shards, the export,
// the counts and the IP index, on an otherwise idle 2-core VM (first
// pages p50 / p99 of 200 calls; exports and walks of up to 1,000,000
// rows; the walks read pages of 1,000). The 10M column is after the
// packing of events into one value (see Event stream), the 1M column
// before it:
//
//	                        1,000,000 events     10,000,000 events
//	memory per event        414 B                273 B (stream 218)
//	first page, no filter   2.1 ms               0.6 / 3.3 ms
//	by user / email         0.5 ms               1.2 / 4.4 ms
//	by type                 1.6 ms               1.3 / 2.4 ms
//	by date range (a day)   3.8 ms               5.9 / 12.6 ms
//	by rare site            1.3 ms               1.8 / 6.0 ms
//	by IP prefix (a /24)    2.0 ms               1.3 / 3.0 ms
//	chart, a week by hour   11.9 ms              17.5 / 26.9 ms
//	chart, a site's week    2.4 ms               4.3 / 8.8 ms
//	chart, 90 days by day   87 ms                50 / 73 ms
//	export everything       219,000 rows/s       517,000 rows/s
//	export a site (5 %)     110,000 rows/s       144,000 rows/s
//	export a type (10 %)    98,000 rows/s        113,000 rows/s
//	read pages, everything  49,000 rows/s        85,000 rows/s
//
// (1M: p50 only, one run; the heap during an export stayed under 30 MiB
// at 10M. The charts at 10M are with the counts as strings; with the
// hashes they took 26 / 35, 12 / 36 and 177 / 238 ms, and a second run
// with the strings measured the exports at 493,000, 135,000 and 108,000
// rows/s and 275 B an event.) Before the packing, at 10M: 196,000, 102,000 and 80,000 rows/s
// for the three exports, first pages p99 up to 24 ms.
// Memory per event falls as events accumulate: the IP buckets' and the
// users' index lists have a fixed part (about 160 bytes a list), which
// at 1,000,000 events of random addresses is spread over one or two
// events a list (the IP index adds about 110 bytes an event there) and at
// 10,000,000 over ten or more. Before the guard script, a day's range at
// 10M took 155 / 246 ms: Redis 7.0 walks a whole stream when XREVRANGE
// starts below its first entry, as it does in a shard trimmed past the
// range. An export through an index costs an XRANGE per event, 2.6 µs of
// Redis time with packed events. Reads that continue below a source's
// own last entry skip the guard script, whose reply conversion had cut
// the export of everything at 10M to 81,000 rows/s.
//
// # Memory
//
// The SPEC's budget is 1 KiB of Redis memory per session. Measured with
// realistic fields (a Keycloak subject and sid, user agents of a few
// dozen browsers, two groups, a GeoIP city) on Redis 7.0 with jemalloc,
// as used_memory growth per session:
//
//	TestMemoryPerSession, 10,000 sessions, 2 per user         ≈ 954 bytes (930-940 before sharding)
//	BenchmarkMillionSessions, 1,000,000 sessions, ≈5 per user  ≈ 750 bytes
//
// (the second measured before the email index, which adds about 11
// bytes a session at 5 per user). MEMORY USAGE of the keys, per session,
// in the first of these:
//
//	session hash (listpack: key, object, fields)    456
//	user hash, shared by the user's sessions        124 (2 per user; ≈60 at 5)
//	last-access and created indexes                  41 each
//	deadline index (longer members)                 58
//	users index, shared by the user's sessions       28 (2 per user)
//	email index, shared likewise                     27 (2 per user)
//	device summaries                                <1
//
// and the rest is what Redis spends per key outside it (expires entries,
// hash table buckets). Before the bucketed indexes and device summaries
// the same test measured 1,308 bytes.
//
// Only sites with `refresh on` write tokens: the gateway seals the
// refresh and access tokens (AES-GCM under the app secret, bound to the
// session id) behind a 25-byte clear header saying when the access token
// expires (gateway/refresh.go), writes them with Create and replaces them
// with SetTokens after each refresh. Without refresh the figures above are
// a session's whole cost (the ID token for sign-out stays in the
// browser); with it the sealed set, ciphertext that does not compress,
// comes on top at about its length plus 150 bytes: opaque provider tokens
// are small, JWT access tokens often 1 KB or more. A refresh costs three
// round trips: the per-token lock (ClaimOnce, a {gh}:c: key), a Get and
// SetTokens.
//
// The event stream costs about 220 bytes an event (TestMemoryPerEvent:
// realistic fields, mostly the values themselves, as the field names are
// stored once per stream node). Its cap, EventMaxLen, defaults to
// 5,000,000 (DefaultEventMaxLen): a busy site, say 5,000 users with ten
// events a day each (sign-ins, sign-outs, expiries, denials), writes
// about 50,000 events a day, 4.5 million in 90 days, the SPEC's default
// retention; 5,000,000 events are about 1.05 GiB, and about 1.4 GiB with
// their indexes (see Event indexes: 303 bytes an event in all at 20
// events a user, 352 at ten). Retention (Trim) is
// the rule and the cap the safety net: a flood of events (bogus
// callbacks) then drops the oldest events instead of filling Redis. XADD
// MAXLEN ~ trims whole stream nodes, so the stream may exceed the cap by
// up to one node (stream-node-max-entries, default 100).
//
// # Cost
//
// Each index update is a few small commands on a bucket of at most 128
// entries; listpack operations scan the bucket, and Redis 7.0 formats
// every score it returns with %.17g, so the scripts pass scores as the
// strings they came as, read no scores they do not need, and move
// entries between buckets inside Redis (ZRANGESTORE, ZUNIONSTORE; Redis
// 6.2 or later). Server time per call (commandstats, 100,000 sessions,
// 5 a user, Redis 7.0): Create ≈ 65 µs, Touch ≈ 52 µs, Get ≈ 17 µs, a
// first page of 100 ≈ 1.1 ms, where plain sorted sets took ≈ 49, 32, 17
// µs and 1.3 ms. Touch, at most once per session per touch_interval, is
// the one that matters: 10,000 a second keep about half a core busy.
//
// # Filters
//
// A user's sessions come from the user's hash. Other filters are applied
// while walking a shard's listing index (last access or created) in
// order: each examined session costs an HMGET of the filtered fields,
// about 4 µs, bounded per call by MaxScan (split over the shards) and
// MaxScanTime. That finds a page fast when many sessions match; for a
// value few sessions have, two structures give the matches directly:
//
//	{gh.k}:i:dl             hash    none (cleaned)        "<site>\x1f<country>" → entries in that partition of the deadline index
//	{gh.k}:i:dl:<partition> index   none (cleaned)        "<id> <last> <created>" → Deadline(), for Due and the filters
//	{gh.k}:i:ip             index   none (cleaned)        session id → its login address's key; "<id>." → its last address's
//
// The deadline index, which every session with a deadline is in once
// anyway, is partitioned by site and country (lower case, letters and
// digits): a partition per pair, with the hash counting each one's
// entries. A site or country filter adds up the counts of its
// partitions; when they hold at most 2,000 sessions of the shard
// (defaultSmallList), List reads them whole, and since their members
// carry each session's last access and creation time it sorts them in
// either order without reading a session, and returns a whole page.
// Otherwise the value is common enough (3 % of the shard or more) for the
// walk. This costs no memory per session; each partition costs its few
// keys, about 250 bytes a shard, so 20 sites × 50 countries would be
// about 4 MB in all. Due walks the partitions in turn.
//
// The IP index scores a session by its address's key: an IPv4 address's
// 32-bit number, or 2^32 plus an IPv6 address's first 40 bits, times
// 4,096, plus the session's creation ms modulo 4,096 (so that thousands
// of sessions behind one NAT address spread over many scores and their
// buckets can split). A prefix of an address's text becomes at most a
// few ranges of keys (iprange.go: "10.1" is 10.1.*, 10.10-19.* and
// 10.100-199.*; an IPv6 prefix covers its first three groups, and after
// "::" every address with the groups before it), read from the index;
// the exact prefix is then checked on each candidate. At most 2,000
// candidates a shard are read this way, else the walk. The index costs
// about 40 bytes a session (one entry; a second for the sessions whose
// last address differs), the one index here that costs memory per
// session. Entries of a session whose hash expired by TTL without a
// sweep are left behind in the IP index (the sweep removes the others);
// they read as gone.
//
// Measured by BenchmarkMillionSessions (1,000,000 sessions, 200,000
// users, 16 shards on one Redis 7.0, loaded machine: 2 shared cores,
// load average 4-5), first pages of 100, p50 / p99 of 200 calls:
//
//	no filter (last access)       11.6 / 20.4 ms   100 rows
//	no filter (created)            7.2 / 22.5 ms   100 rows
//	one user                       0.2 /  1.3 ms   all (5)
//	Users                          5.2 / 14.6 ms   100 rows
//	country DE (20 %)             17.0 / 40.1 ms   100 rows, the walk
//	IP prefix 145.1 (about 10 %)  26.5 / 42.5 ms   100 rows, the walk
//	country IS (0.05 %)            9.0 / 17.0 ms   100 rows, its partitions
//	IP prefix 157. (0.05 %)       13.4 / 28.4 ms   100 rows, the IP index
//	site, one session in 10,000    6.9 / 16.6 ms   all (100), its partitions
//
// Redis memory: 812 bytes a session at five a user (TestMemoryPerSession,
// two a user: about 995). Before the partitions and the IP index a rare
// country took 159 / 767 ms and returned 7 rows with a cursor; before
// the listings merged in rounds, a dense country took 100 / 361 ms.
//
// # Atomicity
//
// Create, Touch, SetTokens, Delete, UserByEmail and SetReauth are
// single Lua scripts (EVALSHA), so the session, its tokens, the indexes
// and the user's hash never disagree, neither Touch nor SetTokens revives a session another
// instance deleted, and of concurrent Deletes exactly one gets the session
// back. Delete publishes the id from inside its script. LimitSessions
// (max_sessions) is one script too: it reads the user's hash, orders the
// live sessions by last access and ends the surplus as Delete would, so
// that concurrent sign-ins on several instances never leave more than the
// limit, nor end one session twice.
//
// # Upgrading
//
// The sharded layout replaced one with every key under {gh}. Sessions,
// users, events and history written before are not read: users sign in
// again, and the old keys, which have TTLs or are capped, can be deleted
// with redis-cli --scan --pattern '{gh}:*' (keep {gh}:sites and
// {gh}:jwk). Before that, plain sorted sets ({gh}:la, {gh}:ca, {gh}:dl,
// {gh}:ul) and inline user agents were replaced.
package redisstore
