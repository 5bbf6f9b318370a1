// Package memstore keeps sessions and the activity log in process memory.
// It is the default store for a single gateway instance: nothing survives a
// restart and nothing is shared with other instances. It implements
// session.Store and activity.Store with the same observable behaviour as
// the Redis store (both pass internal/store/storetest).
package memstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/cursor"
)

// Defaults for Options.
const (
	// DefaultEventMaxLen caps the in-process activity log: at about
	// 400 bytes an event (the Event struct and its strings, measured
	// with realistic fields) 100,000 events are about 40 MB of heap,
	// some days of a small site. The
	// Redis store's default is 50 times larger; Redis is where a busy
	// site keeps 90 days.
	DefaultEventMaxLen = 100_000
	DefaultGrace       = 10 * time.Minute
	DefaultUserTTL     = 90 * 24 * time.Hour
)

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// EventMaxLen caps the activity log, in events, behind the retention
	// that Trim applies, so that whoever can cause events cannot grow the
	// process without bound; the oldest events go first. Default: 100,000
	// (DefaultEventMaxLen).
	EventMaxLen int
	// Grace is how long a session is kept after its deadline so that the
	// background sweep (Due) can record the expiry before it vanishes,
	// matching the Redis store's key TTLs. Default: 10m.
	Grace time.Duration
	// UserTTL is how long a user without sessions stays in Users after
	// their last activity. Default: 90 days.
	UserTTL time.Duration
}

// Store is the in-memory store. The zero value is not usable; call New.
type Store struct {
	now     func() time.Time
	grace   time.Duration
	userTTL time.Duration

	mu       sync.Mutex
	sessions map[string]*session.Session
	users    map[string]*user
	// emails indexes verified emails for UserByEmail: email key (see
	// session.EmailKey) → the subjects whose latest sign-in had it
	// verified.
	emails map[string]map[string]struct{}
	claims map[string]time.Time       // key → expiry
	sites  map[string]map[string]bool // site → scopes (AddSite)
	subs   map[*subscriber]struct{}
	// nextExpiry and claimsLimit say when expireLocked next runs.
	nextExpiry  time.Time
	claimsLimit int

	ev eventRing
	// hist is the login history (history.go), kept by Append.
	hist loginHistory
	// keys are the signing keys (keys.go), under their own lock.
	keys signingKeys
}

type user struct {
	email string
	// vemail is the email key this user is indexed under in emails, ""
	// when none: the verified email of their latest sign-in.
	vemail     string
	lastLogin  time.Time
	listed     bool // signed in at least once; false for a user only SetReauth has seen
	lastLogout time.Time
	lastIP     string
	lastSeen   time.Time // for UserTTL
	reauth     time.Time
	sessions   map[string]struct{}
}

// New returns an empty store.
func New(opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.EventMaxLen <= 0 {
		opts.EventMaxLen = DefaultEventMaxLen
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.UserTTL <= 0 {
		opts.UserTTL = DefaultUserTTL
	}
	return &Store{
		now:      opts.Now,
		grace:    opts.Grace,
		userTTL:  opts.UserTTL,
		sessions: make(map[string]*session.Session),
		users:    make(map[string]*user),
		emails:   make(map[string]map[string]struct{}),
		claims:   make(map[string]time.Time),
		subs:     make(map[*subscriber]struct{}),
		ev:       eventRing{buf: make([]activity.Event, 0, min(opts.EventMaxLen, 1024)), max: opts.EventMaxLen},
	}
}

// ms rounds t the way the Redis store stores it, so both stores return the
// same values.
func ms(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

// Create implements session.Store.
func (m *Store) Create(_ context.Context, s *session.Session) error {
	if s.ID == "" || s.User == "" {
		return errors.New("creating session: id and user are required")
	}
	c := clone(s)
	c.CreatedAt, c.LastAccess, c.ExpiresAt = ms(c.CreatedAt), ms(c.LastAccess), ms(c.ExpiresAt)
	c.IdleTimeout = c.IdleTimeout.Truncate(time.Millisecond)
	if len(c.Groups) == 0 {
		c.Groups = nil
	}
	if len(c.Tokens) == 0 {
		c.Tokens = nil
	}
	if len(c.AMR) == 0 {
		c.AMR = nil
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expireLocked(now)
	if old := m.sessions[c.ID]; old != nil {
		m.removeLocked(old)
	}
	m.sessions[c.ID] = c
	u := m.userLocked(c.User)
	u.sessions[c.ID] = struct{}{}
	u.listed = true
	u.email = c.Email
	if c.CreatedAt.After(u.lastLogin) {
		u.lastLogin = c.CreatedAt
	}
	u.lastIP = c.LastIP
	u.lastSeen = now
	// The email index follows the user's latest sign-in: an email this
	// user was indexed under stops naming them once a sign-in brings
	// another email or the same one unverified, so that a claim the
	// provider no longer vouches for resolves to no one.
	key := ""
	if c.EmailVerified && c.Email != "" {
		key = session.EmailKey(c.Email)
	}
	if u.vemail != "" && u.vemail != key {
		m.unindexLocked(u.vemail, c.User)
	}
	if key != "" {
		byUser := m.emails[key]
		if byUser == nil {
			byUser = make(map[string]struct{}, 1)
			m.emails[key] = byUser
		}
		byUser[c.User] = struct{}{}
	}
	u.vemail = key
	return nil
}

// userLocked returns the user's entry, making an empty one if needed.
func (m *Store) userLocked(name string) *user {
	u := m.users[name]
	if u == nil {
		u = &user{sessions: make(map[string]struct{})}
		m.users[name] = u
	}
	return u
}

func (m *Store) unindexLocked(key, name string) {
	if byUser := m.emails[key]; byUser != nil {
		delete(byUser, name)
		if len(byUser) == 0 {
			delete(m.emails, key)
		}
	}
}

// live returns the session unless it is gone, dropping it when its grace
// period is over (the Redis store's TTL does the same).
func (m *Store) liveLocked(id string, now time.Time) *session.Session {
	s := m.sessions[id]
	if s == nil {
		return nil
	}
	if d := s.Deadline(); !d.IsZero() && now.After(d.Add(m.grace)) {
		m.removeLocked(s)
		return nil
	}
	return s
}

func (m *Store) removeLocked(s *session.Session) {
	delete(m.sessions, s.ID)
	if u := m.users[s.User]; u != nil {
		delete(u.sessions, s.ID)
	}
}

// Get implements session.Store.
func (m *Store) Get(_ context.Context, id string) (*session.Session, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.liveLocked(id, now)
	if s == nil {
		return nil, session.ErrNotFound
	}
	return clone(s), nil
}

// clone is s.Clone with its own amr as well: stored sessions are never
// changed in place, so a caller's slice must not be shared with them.
func clone(s *session.Session) *session.Session {
	c := s.Clone()
	c.AMR = slices.Clone(s.AMR)
	return c
}

// Touch implements session.Store. It refuses (ErrNotFound) a session whose
// deadline passed before a.At: that session is over, only not yet swept.
func (m *Store) Touch(_ context.Context, id string, a session.Access) error {
	now := m.now()
	at := ms(a.At)
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.liveLocked(id, now)
	if s == nil {
		return session.ErrNotFound
	}
	if d := s.Deadline(); !d.IsZero() && !at.Before(d) {
		return session.ErrNotFound
	}
	// Stored values are shared with nobody (Get clones), but replace
	// rather than mutate to keep that property obvious.
	c := *s
	if at.After(c.LastAccess) {
		c.LastAccess = at
	}
	if a.IP != "" {
		c.LastIP = a.IP
	}
	if a.Location != nil {
		c.Location = *a.Location
	}
	if a.Device != nil {
		c.Device = *a.Device
	}
	m.sessions[id] = &c
	if u := m.users[c.User]; u != nil {
		if a.IP != "" {
			u.lastIP = a.IP
		}
		u.lastSeen = now
	}
	return nil
}

// SetTokens implements session.Store.
func (m *Store) SetTokens(_ context.Context, id string, tokens []byte) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.liveLocked(id, now)
	if s == nil {
		return session.ErrNotFound
	}
	if d := s.Deadline(); !d.IsZero() && !now.Before(d) {
		return session.ErrNotFound
	}
	c := *s
	c.Tokens = nil
	if len(tokens) > 0 {
		c.Tokens = slices.Clone(tokens)
	}
	m.sessions[id] = &c
	return nil
}

// Delete implements session.Store.
func (m *Store) Delete(_ context.Context, id string) (*session.Session, error) {
	now := m.now()
	m.mu.Lock()
	s := m.liveLocked(id, now)
	if s == nil {
		m.mu.Unlock()
		return nil, session.ErrNotFound
	}
	m.removeLocked(s)
	if u := m.users[s.User]; u != nil {
		u.lastLogout = ms(now)
		u.lastSeen = now
	}
	subs := make([]*subscriber, 0, len(m.subs))
	for sub := range m.subs {
		subs = append(subs, sub)
	}
	m.mu.Unlock()
	for _, sub := range subs {
		sub.send(id)
	}
	return s, nil
}

// Due implements session.Store. It leaves Tokens nil.
func (m *Store) Due(_ context.Context, t time.Time, n int) ([]*session.Session, error) {
	if n <= 0 {
		return nil, nil
	}
	now := m.now()
	m.mu.Lock()
	var out []*session.Session
	for id := range m.sessions {
		s := m.liveLocked(id, now)
		if s == nil {
			continue
		}
		if d := s.Deadline(); !d.IsZero() && !d.After(t) {
			out = append(out, s)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b *session.Session) int {
		if c := a.Deadline().Compare(b.Deadline()); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	out = out[:min(n, len(out))]
	for i, s := range out {
		out[i] = listed(s)
	}
	return out, nil
}

// listed is the copy List and Due hand out: no tokens.
func listed(s *session.Session) *session.Session {
	c := *s
	c.Groups = slices.Clone(s.Groups)
	c.AMR = slices.Clone(s.AMR)
	c.Tokens = nil
	return &c
}

// List implements session.Store. It leaves Tokens nil. Ties in the sort
// key are broken by ID, descending.
func (m *Store) List(_ context.Context, q session.Query) (session.Page, error) {
	byCreated, err := q.ByCreated()
	if err != nil {
		return session.Page{}, err
	}
	var after *cursor.Cursor
	if q.Cursor != "" {
		c, err := parseCursor(q.Cursor, byCreated)
		if err != nil {
			return session.Page{}, err
		}
		after = &c
	}
	limit := session.PageSize(q.Limit)
	key := func(s *session.Session) int64 {
		if byCreated {
			return s.CreatedAt.UnixMilli()
		}
		return s.LastAccess.UnixMilli()
	}
	now := m.now()
	m.mu.Lock()
	var candidates []string
	if q.User != "" {
		if u := m.users[q.User]; u != nil {
			for id := range u.sessions {
				candidates = append(candidates, id)
			}
		}
	} else {
		for id := range m.sessions {
			candidates = append(candidates, id)
		}
	}
	var out []*session.Session
	for _, id := range candidates {
		s := m.liveLocked(id, now)
		if s == nil || !q.Match(s) {
			continue
		}
		if after != nil && !after.After(key(s), s.ID) {
			continue
		}
		out = append(out, s)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b *session.Session) int {
		if c := cmp.Compare(key(b), key(a)); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	var page session.Page
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		page.Next = cursor.Cursor{Score: key(last), Member: last.ID}.Encode(cursor.SortTag(byCreated))
	}
	page.Items = make([]*session.Session, len(out))
	for i, s := range out {
		page.Items[i] = listed(s)
	}
	return page, nil
}

// Users implements session.Store.
func (m *Store) Users(_ context.Context, q session.UserQuery) (session.UserPage, error) {
	var after *cursor.Cursor
	if q.Cursor != "" {
		c, err := cursor.Decode(q.Cursor, cursor.Users)
		if err != nil {
			return session.UserPage{}, err
		}
		after = &c
	}
	limit := session.PageSize(q.Limit)
	prefix := strings.ToLower(q.Prefix)
	now := m.now()
	m.mu.Lock()
	m.pruneUsersLocked(now)
	var out []session.User
	for name, u := range m.users {
		if !u.listed {
			// Known only from SetReauth: not a user to list.
			continue
		}
		if prefix != "" && !strings.HasPrefix(strings.ToLower(name), prefix) && !strings.HasPrefix(strings.ToLower(u.email), prefix) {
			continue
		}
		if after != nil && !after.After(u.lastLogin.UnixMilli(), name) {
			continue
		}
		active := 0
		for id := range u.sessions {
			s := m.liveLocked(id, now)
			if s == nil {
				continue
			}
			// A session past its deadline is over even if the sweep has
			// not recorded it yet.
			if d := s.Deadline(); d.IsZero() || d.After(now) {
				active++
			}
		}
		out = append(out, summary(name, u, active))
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b session.User) int {
		if c := b.LastLogin.Compare(a.LastLogin); c != 0 {
			return c
		}
		return strings.Compare(b.User, a.User)
	})
	var page session.UserPage
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		page.Next = cursor.Cursor{Score: last.LastLogin.UnixMilli(), Member: last.User}.Encode(cursor.Users)
	}
	page.Items = out
	return page, nil
}

func summary(name string, u *user, active int) session.User {
	status := "signed_out"
	if active > 0 {
		status = "active"
	}
	return session.User{
		User:           name,
		Email:          u.email,
		LastLogin:      u.lastLogin,
		LastLogout:     u.lastLogout,
		Status:         status,
		ActiveSessions: active,
		LastIP:         u.lastIP,
	}
}

// pruneUsersLocked forgets users without sessions who have not been seen
// for UserTTL, with their email index entries and re-authentication
// times, as the Redis store's user hash expires: memory stays bounded by
// recent users.
func (m *Store) pruneUsersLocked(now time.Time) {
	for name, u := range m.users {
		if m.goneLocked(u, now) {
			if u.vemail != "" {
				m.unindexLocked(u.vemail, name)
			}
			delete(m.users, name)
		}
	}
}

// goneLocked reports whether u is past UserTTL and due to be forgotten.
func (m *Store) goneLocked(u *user, now time.Time) bool {
	return len(u.sessions) == 0 && now.Sub(u.lastSeen) > m.userTTL
}

// expiryInterval is how often expireLocked walks the maps at most, by the
// store's clock, unless claims pile up faster.
const expiryInterval = time.Minute

// expireLocked drops what has expired, as Redis would by TTL: sessions
// past their deadline and grace that nothing read since, lapsed claims,
// and users past UserTTL. It runs at most once per expiryInterval, or
// sooner when the claims have doubled since the last run, so its cost is
// amortised over the writes that call it and memory stays bounded by
// what is live (a flood of claims included).
func (m *Store) expireLocked(now time.Time) {
	if now.Before(m.nextExpiry) && len(m.claims) < m.claimsLimit {
		return
	}
	for id := range m.sessions {
		m.liveLocked(id, now)
	}
	for k, exp := range m.claims {
		if !now.Before(exp) {
			delete(m.claims, k)
		}
	}
	m.pruneUsersLocked(now)
	m.nextExpiry = now.Add(expiryInterval)
	m.claimsLimit = max(2*len(m.claims), 1024)
}

// Subscribe implements session.Store. Ends are delivered from a separate
// goroutine so that a slow subscriber never holds up Delete; if one falls
// too far behind it is told to forget everything instead.
func (m *Store) Subscribe(ctx context.Context, ended func(id string)) error {
	sub := &subscriber{ch: make(chan string, 1024)}
	m.mu.Lock()
	m.subs[sub] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.subs, sub)
		m.mu.Unlock()
	}()
	// Anything cached before this point may be stale.
	ended("")
	for {
		select {
		case <-ctx.Done():
			return nil
		case id := <-sub.ch:
			ended(id)
			if sub.overflow.CompareAndSwap(true, false) {
				ended("")
			}
		}
	}
}

// ClaimOnce implements session.Store.
func (m *Store) ClaimOnce(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.claims[key]; ok && now.Before(exp) {
		return false, nil
	}
	m.expireLocked(now)
	m.claims[key] = now.Add(ttl)
	return true, nil
}

// Claimed implements session.Store.
func (m *Store) Claimed(_ context.Context, key string) (bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.claims[key]
	return ok && now.Before(exp), nil
}

// AddSite implements session.Store.
func (m *Store) AddSite(_ context.Context, site, scope string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sites == nil {
		m.sites = make(map[string]map[string]bool)
	}
	if m.sites[site] == nil {
		if len(m.sites) >= session.MaxSites {
			return nil
		}
		m.sites[site] = make(map[string]bool)
	}
	m.sites[site][scope] = true
	return nil
}

// SiteScopes implements session.Store.
func (m *Store) SiteScopes(context.Context) (map[string][]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]string, len(m.sites))
	for site, scopes := range m.sites {
		for sc := range scopes {
			out[site] = append(out[site], sc)
		}
	}
	return out, nil
}

// UserByEmail implements session.Store. When several subjects share the
// email, the latest login wins; ties go to the greater subject, as in the
// Redis store.
func (m *Store) UserByEmail(_ context.Context, email string) (string, error) {
	if email == "" {
		return "", session.ErrNotFound
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	best, bestAt := "", time.Time{}
	for name := range m.emails[session.EmailKey(email)] {
		u := m.users[name]
		if u == nil || m.goneLocked(u, now) {
			continue
		}
		if at := u.lastLogin; best == "" || at.After(bestAt) || at.Equal(bestAt) && name > best {
			best, bestAt = name, at
		}
	}
	if best == "" {
		return "", session.ErrNotFound
	}
	return best, nil
}

// SetReauth implements session.Store. The time is kept with the user's
// summary and forgotten with it, UserTTL after their last activity.
func (m *Store) SetReauth(_ context.Context, name string, t time.Time) error {
	t = ms(t)
	if name == "" || t.UnixMilli() <= 0 {
		return nil
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expireLocked(now)
	u := m.userLocked(name)
	if t.After(u.reauth) {
		u.reauth = t
	}
	u.lastSeen = now
	return nil
}

// Reauth implements session.Store.
func (m *Store) Reauth(_ context.Context, name string) (time.Time, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if u := m.users[name]; u != nil && !m.goneLocked(u, now) {
		return u.reauth, nil
	}
	return time.Time{}, nil
}

// Append implements activity.Store.
func (m *Store) Append(_ context.Context, e *activity.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ev.seq++
	e.ID = eventID(m.ev.seq)
	c := *e
	c.Time = ms(c.Time)
	m.hist.recordLocked(&c, historyMax(m.ev.max))
	// The issuer key is for the history row only, as in Redis.
	c.IssuerKey = ""
	m.ev.push(c)
	return nil
}

// Query implements activity.Store.
func (m *Store) Query(_ context.Context, f activity.Filter) (activity.Page, error) {
	var before uint64
	if f.Cursor != "" {
		n, err := parseEventID(f.Cursor)
		if err != nil {
			return activity.Page{}, err
		}
		before = n
	}
	limit := f.Limit
	if limit <= 0 {
		limit = activity.DefaultLimit
	}
	limit = min(limit, activity.MaxLimit)
	if f.Sites != nil && len(f.Sites) == 0 {
		return activity.Page{}, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var page activity.Page
	for i := m.ev.len() - 1; i >= 0; i-- {
		e := m.ev.at(i)
		if before != 0 && e.ID >= eventID(before) {
			continue
		}
		if !f.Match(e) {
			continue
		}
		if len(page.Items) == limit {
			page.Next = page.Items[limit-1].ID
			break
		}
		page.Items = append(page.Items, *e)
	}
	return page, nil
}

// Trim implements activity.Store.
func (m *Store) Trim(_ context.Context, before time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ev.drop(func(e *activity.Event) bool { return e.Time.Before(before) })
	n := 0
	for n < len(m.hist.rows) && m.hist.rows[n].LoginTime.Before(before) {
		n++
	}
	m.hist.dropLocked(n)
	return nil
}

// Event IDs are fixed-width so that they compare as strings the way they
// compare as numbers.
func eventID(n uint64) string { return fmt.Sprintf("%016x", n) }

func parseEventID(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("%w %q: wrong length", activity.ErrInvalidCursor, s)
	}
	n, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%w %q: %w", activity.ErrInvalidCursor, s, err)
	}
	return n, nil
}

func parseCursor(s string, byCreated bool) (cursor.Cursor, error) {
	return cursor.Decode(s, cursor.SortTag(byCreated))
}

// Interface guards
var (
	_ session.Store  = (*Store)(nil)
	_ activity.Store = (*Store)(nil)
)

// LimitSessions implements session.Store. Sessions past their deadline
// neither count nor end here: they are over already, and the sweep
// records how they ended. Of live sessions the most recently used stay
// (ties: the later created, then the greater id, as List orders).
func (m *Store) LimitSessions(_ context.Context, l session.Limit) ([]*session.Session, error) {
	keep := l.Max
	if keep <= 0 {
		return nil, nil
	}
	now := m.now()
	m.mu.Lock()
	u := m.users[l.User]
	if u == nil || len(u.sessions) <= keep {
		m.mu.Unlock()
		return nil, nil
	}
	live := make([]*session.Session, 0, len(u.sessions))
	for id := range u.sessions {
		s := m.liveLocked(id, now)
		if s == nil {
			continue
		}
		if d := s.Deadline(); !d.IsZero() && !now.Before(d) {
			continue
		}
		if l.IssuerKey != "" && s.IssuerKey != l.IssuerKey {
			continue
		}
		live = append(live, s)
	}
	if len(live) <= keep {
		m.mu.Unlock()
		return nil, nil
	}
	// A last access in the future (another instance's clock ahead)
	// ranks as now, where the new sign-in (l.Keep) wins the tie.
	nowMS := ms(now)
	rank := func(s *session.Session) time.Time {
		if t := ms(s.LastAccess); t.Before(nowMS) {
			return t
		}
		return nowMS
	}
	slices.SortFunc(live, func(a, b *session.Session) int {
		if c := rank(b).Compare(rank(a)); c != 0 {
			return c
		}
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		if (a.ID == l.Keep) != (b.ID == l.Keep) {
			if a.ID == l.Keep {
				return -1
			}
			return 1
		}
		return strings.Compare(b.ID, a.ID)
	})
	ended := live[keep:]
	for _, s := range ended {
		m.removeLocked(s)
	}
	u.lastLogout = ms(now)
	u.lastSeen = now
	subs := make([]*subscriber, 0, len(m.subs))
	for sub := range m.subs {
		subs = append(subs, sub)
	}
	m.mu.Unlock()
	for _, s := range ended {
		for _, sub := range subs {
			sub.send(s.ID)
		}
	}
	return ended, nil
}
