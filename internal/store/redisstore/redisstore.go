package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// Defaults for Options.
const (
	DefaultPrefix  = "gh"
	DefaultGrace   = 10 * time.Minute
	DefaultUserTTL = 90 * 24 * time.Hour
	DefaultMaxScan = 20_000
	// DefaultMaxScanTime keeps a filtered first page within the SPEC's
	// 50 ms with room for the round trips around it.
	DefaultMaxScanTime = 30 * time.Millisecond
	// DefaultEventMaxScan is larger than DefaultMaxScan because events
	// are filtered in the client, in big cheap chunks.
	DefaultEventMaxScan = 100_000
	// DefaultEventMaxLen caps the event stream: 90 days of a busy site
	// (see doc.go, "Event stream").
	DefaultEventMaxLen = 5_000_000
	// DefaultMaxSkew bounds how far an event's stream ID may run ahead of
	// its time (see appendIndexedScript); Query widens its upper ID bound by it.
	DefaultMaxSkew = 5 * time.Minute
)

const (
	// defaultSmallList: reading and sorting 2,000 partition entries
	// takes about as long as scanning a chunk.
	defaultSmallList = 2000
	// scanChunk bounds the entries one scan script examines, so no call
	// blocks Redis for more than a few milliseconds.
	scanChunk = 2000
)

// Options configure a Store.
type Options struct {
	// Client is a client to use; Close leaves it open, as its owner may
	// share it. Exactly one of Client and URL must be set.
	Client redis.UniversalClient
	// URL is parsed by ParseURL and a client made from it; Close closes
	// that client.
	URL string
	// Prefix starts every key, inside a hash tag: "gh" gives "{gh}:...".
	// Several gateways may share one Redis under different prefixes.
	// Default: "gh".
	Prefix string
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Grace is how long session keys outlive the session's deadline, so
	// that the background sweep (Due) records the expiry before the data
	// vanishes. Default: 10m.
	Grace time.Duration
	// UserTTL is how long a user's summary (Users) stays after their last
	// activity. Default: 90 days.
	UserTTL time.Duration
	// EventMaxLen caps the event stream's length, in events, behind the
	// retention that Trim applies: whoever can cause events (a flood of
	// bogus callbacks) must not be able to fill Redis before retention
	// catches up. The oldest events go first. XADD MAXLEN ~ trims whole
	// stream nodes, so the stream may exceed the cap by up to one node
	// (100 events). Default: 5,000,000 (DefaultEventMaxLen), 90 days of
	// a busy site, about 1.4 GiB of Redis memory with the event indexes.
	EventMaxLen int64
	// MaxScan bounds the index entries one List or Users call examines
	// when filters reject most of them; the page may then come back short
	// with a cursor to continue from. Default: 20,000.
	MaxScan int
	// MaxScanTime bounds the time one List or Users call spends
	// examining entries, measured by Now between chunks of up to 2,000:
	// a filter that matches few sessions gets a short page and a cursor
	// within this time, however many sessions there are. Default: 30ms.
	MaxScanTime time.Duration
	// EventMaxScan is MaxScan for Query. Default: 100,000.
	EventMaxScan int
	// MaxSkew is how far apart the clocks of gateways writing events may
	// be. Default: 5m.
	MaxSkew time.Duration
	// WaitReplicas is how many replicas must have a sign-in or an end
	// (Create, Delete, LimitSessions) before it returns, so that a
	// failover loses neither (WAIT; see replicas.go). It is capped at
	// the replicas the master has, so a standalone Redis or a master
	// without replicas waits for none. Negative: never wait. Default: 1.
	WaitReplicas int
	// ReplicaTimeout bounds that wait; a write the replicas did not
	// acknowledge in time still counts. Default: 100ms.
	ReplicaTimeout time.Duration
}

// Store keeps sessions and events in Redis. It is safe for concurrent use.
type Store struct {
	c       redis.UniversalClient
	owned   bool
	now     func() time.Time
	grace   time.Duration
	userTTL time.Duration
	maxLen  int64
	maxScan int
	scanFor time.Duration
	evScan  int
	skew    time.Duration

	// Key names; see doc.go.
	tag    string // "{gh}": keys that are few and rarely written
	sites  string // {gh}:sites
	shards [session.Groups]shard
	// cluster is set for a Cluster client, which subscribes to each
	// shard's channel on its own connection.
	cluster bool
	// dueTurn rotates the shard Due asks first.
	dueTurn atomic.Uint32

	// smallList is the most sessions a site or country may have in a
	// shard for List to read them from the deadline index's partitions
	// (see doc.go, "Filters"); tests lower it to reach the scan.
	smallList int

	waitReplicas   int
	replicaTimeout time.Duration
	replMu         sync.Mutex
	replicas       map[string]replicaCount // by master address ("" unless Cluster)

	// exports holds a token for each Redis call the store's exports
	// have in flight (exportReads at most, all exports together).
	exports chan struct{}
}

// shard holds the key names of one shard: every key of a user (sessions,
// their indexes, summary, events and login history) is in the shard of
// the user's group (session.UserGroup), under one hash tag, hence one
// Cluster slot. See doc.go, "Shards".
type shard struct {
	n             int
	tag           string // "{gh.17}"
	sessionPrefix string // {gh.17}:s:
	tokensPrefix  string // {gh.17}:k:
	devicePrefix  string // {gh.17}:d:
	userPrefix    string // {gh.17}:u:
	claimPrefix   string // {gh.17}:c:
	byLast        string // {gh.17}:i:la
	byCreated     string // {gh.17}:i:ca
	byDeadline    string // {gh.17}:i:dl
	users         string // {gh.17}:i:ul
	byEmail       string // {gh.17}:i:em
	byIP          string // {gh.17}:i:ip
	events        string // {gh.17}:ev
	ended         string // {gh.17}:ended, a sharded pub/sub channel
}

// New returns a store. It does no network I/O: connections are made on
// first use, so a Redis that is down at start-up is reported by the first
// operation (as session.ErrUnavailable), not here.
func New(opts Options) (*Store, error) {
	if (opts.Client == nil) == (opts.URL == "") {
		return nil, errors.New("creating redis store: set exactly one of client and url")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("creating redis store: prefix %q must not contain braces (it goes inside a hash tag)", opts.Prefix)
	}
	s := &Store{
		c:       opts.Client,
		now:     opts.Now,
		grace:   opts.Grace,
		userTTL: opts.UserTTL,
		maxLen:  opts.EventMaxLen,
		maxScan: opts.MaxScan,
		scanFor: opts.MaxScanTime,
		evScan:  opts.EventMaxScan,
		skew:    opts.MaxSkew,
		exports: make(chan struct{}, exportReads),

		waitReplicas:   opts.WaitReplicas,
		replicaTimeout: opts.ReplicaTimeout,
	}
	s.smallList = defaultSmallList
	if s.waitReplicas == 0 {
		s.waitReplicas = 1
	}
	if s.replicaTimeout <= 0 {
		s.replicaTimeout = DefaultReplicaTimeout
	}
	if s.c == nil {
		uo, err := ParseURL(opts.URL)
		if err != nil {
			return nil, fmt.Errorf("creating redis store: %w", err)
		}
		s.c, s.owned = redis.NewUniversalClient(uo), true
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.grace <= 0 {
		s.grace = DefaultGrace
	}
	if s.userTTL <= 0 {
		s.userTTL = DefaultUserTTL
	}
	if s.maxLen <= 0 {
		s.maxLen = DefaultEventMaxLen
	}
	if s.maxScan <= 0 {
		s.maxScan = DefaultMaxScan
	}
	if s.scanFor <= 0 {
		s.scanFor = DefaultMaxScanTime
	}
	if s.evScan <= 0 {
		s.evScan = DefaultEventMaxScan
	}
	if s.skew <= 0 {
		s.skew = DefaultMaxSkew
	}
	s.tag = "{" + opts.Prefix + "}"
	s.sites = s.tag + ":sites"
	for i, tag := range shardTags(opts.Prefix) {
		s.shards[i] = newShard(i, tag)
	}
	_, s.cluster = s.c.(*redis.ClusterClient)
	return s, nil
}

// Close closes the client if New made it.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	if err := s.c.Close(); err != nil {
		return fmt.Errorf("closing redis client: %w", err)
	}
	return nil
}

// Client returns the Redis client, for health checks and tests.
func (s *Store) Client() redis.UniversalClient { return s.c }

// fail wraps err with context, mapping a missing value to
// session.ErrNotFound and connection trouble to session.ErrUnavailable
// (callers answer 503 and keep serving cached sessions).
func fail(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redis.Nil):
		return session.ErrNotFound
	case unavailable(err):
		return fmt.Errorf("%s: %w: %w", op, session.ErrUnavailable, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

// unavailable tells connection trouble (retry later) from errors in the
// request itself.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		// The caller gave up; the store may be fine.
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		// Replies that mean "this server cannot serve now".
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "BUSY", "NOREPLICAS", "NOTREADY"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	// Dial and I/O errors, timeouts, a closed pool: the server is not
	// reachable.
	return true
}

// ms is t in Unix milliseconds, 0 for the zero time.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func newShard(n int, tag string) shard {
	return shard{
		n:             n,
		tag:           tag,
		sessionPrefix: tag + ":s:",
		tokensPrefix:  tag + ":k:",
		devicePrefix:  tag + ":d:",
		userPrefix:    tag + ":u:",
		claimPrefix:   tag + ":c:",
		byLast:        tag + ":i:la",
		byCreated:     tag + ":i:ca",
		byDeadline:    tag + ":i:dl",
		users:         tag + ":i:ul",
		byEmail:       tag + ":i:em",
		byIP:          tag + ":i:ip",
		events:        tag + ":ev",
		ended:         tag + ":ended",
	}
}

// shardOfID is the shard of the session id (session.IDGroup), which
// Create makes sure is its user's.
func (s *Store) shardOfID(id string) *shard { return &s.shards[session.IDGroup(id)] }

// shardOfUser is the shard of everything about the user.
func (s *Store) shardOfUser(user string) *shard { return &s.shards[session.UserGroup(user)] }

func (sh *shard) sessionKey(id string) string { return sh.sessionPrefix + id }
func (sh *shard) tokensKey(id string) string  { return sh.tokensPrefix + id }
func (sh *shard) userKey(user string) string  { return sh.userPrefix + user }

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// shardTags returns the hash tags of the shards of prefix: "{<prefix>.<k>}"
// with the least k whose slot falls in the shard's sixteenth of the slot
// range, so that the shards sit evenly over the slots and any split of
// the slots into contiguous ranges (what redis-cli --cluster create makes)
// spreads them evenly over the masters. Every instance computes the same
// tags from the prefix.
func shardTags(prefix string) [session.Groups]string {
	var tags [session.Groups]string
	const width = clusterSlots / session.Groups
	found := 0
	for k := 0; found < session.Groups; k++ {
		name := prefix + "." + strconv.Itoa(k)
		i := int(keySlot(name)) / width
		if tags[i] == "" {
			tags[i] = "{" + name + "}"
			found++
		}
	}
	return tags
}

// keySlot is the Cluster slot of a hash tag's content: CRC16 (XMODEM) of
// it, modulo 16384, as Redis computes it.
func keySlot(tag string) uint16 {
	var crc uint16
	for i := 0; i < len(tag); i++ {
		crc ^= uint16(tag[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % clusterSlots
}

// Interface guards
var (
	_ session.Store  = (*Store)(nil)
	_ activity.Store = (*Store)(nil)
)
