package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/cursor"
)

// Create implements session.Store.
func (s *Store) Create(ctx context.Context, sess *session.Session) error {
	keys, args, err := s.createArgs(sess)
	if err != nil {
		return err
	}
	_, _, err = s.runReplicated(ctx, createScript, s.waitReplicas, s.replicaTimeout, keys, args...)
	return fail("creating session", err)
}

// createArgs returns the keys and arguments of createScript for sess.
func (s *Store) createArgs(sess *session.Session) (keys []string, args []any, err error) {
	if sess.ID == "" || sess.User == "" {
		return nil, nil, errors.New("creating session: id and user are required")
	}
	if session.IDGroup(sess.ID) != session.UserGroup(sess.User) {
		// The session must be in its user's shard, and be found there
		// from its id alone.
		return nil, nil, fmt.Errorf("creating session: id %q is not in the group of its user (make ids with session.NewSecretFor)", sess.ID)
	}
	sh := s.shardOfUser(sess.User)
	f := encodeSession(sess)
	ref, dev := deviceRef(&sess.Device)
	verified := ""
	if sess.EmailVerified && sess.Email != "" {
		verified = session.EmailKey(sess.Email)
	}
	args = make([]any, 0, 18+len(f))
	args = append(args,
		sess.ID, sess.User, ms(sess.LastAccess), ms(sess.CreatedAt), deadlineMillis(sess),
		ms(s.now()), s.grace.Milliseconds(), s.userTTL.Milliseconds(),
		sess.Tokens, sess.Email, sess.LastIP, sh.devicePrefix, ref, dev, verified,
		sess.Site, sess.Location.Country, sess.IP)
	args = append(args, f...)
	keys = []string{
		sh.sessionKey(sess.ID), sh.tokensKey(sess.ID), sh.byLast, sh.byCreated, sh.byDeadline,
		sh.userKey(sess.User), sh.users, sh.byEmail, sh.byIP,
	}
	return keys, args, nil
}

// Get implements session.Store.
func (s *Store) Get(ctx context.Context, id string) (*session.Session, error) {
	sh := s.shardOfID(id)
	r, err := getScript.Run(ctx, s.c, []string{sh.sessionKey(id), sh.tokensKey(id)}, sh.devicePrefix).Slice()
	if err != nil {
		return nil, fail("loading session", err)
	}
	return decodeReply(id, r)
}

// decodeReply decodes {hash, tokens, device} as getScript and
// deleteScript return.
func decodeReply(id string, r []any) (*session.Session, error) {
	if len(r) != 3 {
		return nil, fmt.Errorf("loading session: unexpected reply length %d", len(r))
	}
	flat, _ := r[0].([]any)
	m, err := toFields(flat)
	if err != nil {
		return nil, err
	}
	var tokens []byte
	if t, ok := r[1].(string); ok && t != "" {
		tokens = []byte(t)
	}
	dev, _ := r[2].(string)
	return decodeSession(id, m, tokens, dev)
}

// Touch implements session.Store. It refuses (ErrNotFound) a session whose
// deadline passed before a.At: that session is over, only not yet swept,
// and a late touch must not revive it.
func (s *Store) Touch(ctx context.Context, id string, a session.Access) error {
	sh := s.shardOfID(id)
	args := []any{id, ms(a.At), a.IP, ms(s.now()), s.grace.Milliseconds(), sh.userPrefix, s.userTTL.Milliseconds(),
		"0", "0", sh.devicePrefix, "", ""}
	if a.Device != nil {
		args[7] = "1"
		args[10], args[11] = deviceRef(a.Device)
	}
	if a.Location != nil {
		args[8] = "1"
		args = appendLocation(args, a.Location)
	}
	keys := []string{sh.sessionKey(id), sh.tokensKey(id), sh.byLast, sh.byDeadline, sh.byIP}
	n, err := touchScript.Run(ctx, s.c, keys, args...).Int()
	if err != nil {
		return fail("touching session", err)
	}
	if n == 0 {
		return session.ErrNotFound
	}
	return nil
}

// SetTokens implements session.Store. The tokens expire with the session.
func (s *Store) SetTokens(ctx context.Context, id string, tokens []byte) error {
	sh := s.shardOfID(id)
	keys := []string{sh.sessionKey(id), sh.tokensKey(id)}
	n, err := setTokensScript.Run(ctx, s.c, keys, tokens, ms(s.now())).Int()
	if err != nil {
		return fail("storing tokens", err)
	}
	if n == 0 {
		return session.ErrNotFound
	}
	return nil
}

// Delete implements session.Store.
func (s *Store) Delete(ctx context.Context, id string) (*session.Session, error) {
	sh := s.shardOfID(id)
	keys := []string{sh.sessionKey(id), sh.tokensKey(id), sh.byLast, sh.byCreated, sh.byDeadline, sh.byIP}
	args := []any{id, ms(s.now()), sh.userPrefix, sh.ended, s.userTTL.Milliseconds(), sh.devicePrefix}
	cmd, _, err := s.runReplicated(ctx, deleteScript, s.waitReplicas, s.replicaTimeout, keys, args...)
	if err != nil {
		return nil, fail("ending session", err)
	}
	r, err := cmd.Slice()
	if err != nil {
		return nil, fail("ending session", err)
	}
	return decodeReply(id, r)
}

// claimKey is the key of a ClaimOnce claim, in a shard chosen by a hash
// of the key so that claims (one per token refresh, per alert) spread.
func (s *Store) claimKey(key string) string {
	return s.shards[session.UserGroup(key)].claimPrefix + key
}

// ClaimOnce implements session.Store. The claim expires by the server's
// clock.
func (s *Store) ClaimOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := s.c.SetNX(ctx, s.claimKey(key), 1, max(ttl, time.Millisecond)).Result()
	if err != nil {
		return false, fail("claiming key", err)
	}
	return ok, nil
}

// AddSite implements session.Store: one field "<site> <scope>" of the
// sites hash per pair. Past MaxSites fields nothing more is added (a
// catch-all site with hostile Host headers cannot grow it); the check
// and the write race harmlessly, by a few fields at most.
func (s *Store) AddSite(ctx context.Context, site, scope string) error {
	n, err := s.c.HLen(ctx, s.sites).Result()
	if err != nil {
		return fail("counting sites", err)
	}
	if n >= session.MaxSites {
		return nil
	}
	return fail("recording site", s.c.HSet(ctx, s.sites, site+siteSep+scope, "1").Err())
}

// siteSep separates site and scope in a sites hash field; neither a Host
// header nor a scope contains it.
const siteSep = "\x1f"

// SiteScopes implements session.Store.
func (s *Store) SiteScopes(ctx context.Context) (map[string][]string, error) {
	m, err := s.c.HKeys(ctx, s.sites).Result()
	if err != nil {
		return nil, fail("reading sites", err)
	}
	out := make(map[string][]string)
	for _, f := range m {
		site, scope, ok := strings.Cut(f, siteSep)
		if !ok {
			continue
		}
		if _, known := out[site]; !known && len(out) >= session.MaxSites {
			continue
		}
		out[site] = append(out[site], scope)
	}
	return out, nil
}

// Claimed implements session.Store.
func (s *Store) Claimed(ctx context.Context, key string) (bool, error) {
	n, err := s.c.Exists(ctx, s.claimKey(key)).Result()
	if err != nil {
		return false, fail("checking claim", err)
	}
	return n == 1, nil
}

// UserByEmail implements session.Store from the email indexes that Create
// keeps (see doc.go): only a sign-in with a verified email adds to them,
// and a later sign-in of the same subject without it takes them out. An
// email says nothing of its subject's shard, so every shard's index is
// asked, in one pipelined round trip, and the latest login wins.
func (s *Store) UserByEmail(ctx context.Context, email string) (string, error) {
	if email == "" {
		return "", session.ErrNotFound
	}
	key := session.EmailKey(email)
	if err := userByEmailScript.Load(ctx, s.c).Err(); err != nil {
		return "", fail("finding user by email", err)
	}
	cmds := make([]*redis.Cmd, len(s.shards))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range s.shards {
			sh := &s.shards[i]
			cmds[i] = userByEmailScript.EvalSha(ctx, p, []string{sh.byEmail}, sh.userPrefix, key)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fail("finding user by email", err)
	}
	best, at := "", int64(-1)
	for _, c := range cmds {
		r, err := c.Slice()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil || len(r) != 2 {
			return "", fail("finding user by email", cmp.Or(err, errors.New("unexpected reply")))
		}
		name, _ := r[0].(string)
		t, _ := r[1].(string)
		n, _ := strconv.ParseInt(t, 10, 64)
		// As within one index: the latest login, ties to the greater
		// subject.
		if n > at || n == at && name > best {
			best, at = name, n
		}
	}
	if best == "" {
		return "", session.ErrNotFound
	}
	return best, nil
}

// SetReauth implements session.Store. The time is kept in the user's
// hash, so it lasts as long as the user's summary (UserTTL after their
// last activity), at millisecond precision.
func (s *Store) SetReauth(ctx context.Context, user string, t time.Time) error {
	if user == "" || ms(t) <= 0 {
		return nil
	}
	err := setReauthScript.Run(ctx, s.c, []string{s.shardOfUser(user).userKey(user)}, ms(t), s.userTTL.Milliseconds()).Err()
	return fail("setting re-authentication time", err)
}

// Reauth implements session.Store.
func (s *Store) Reauth(ctx context.Context, user string) (time.Time, error) {
	v, err := s.c.HGet(ctx, s.shardOfUser(user).userKey(user), "~r").Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fail("reading re-authentication time", err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading re-authentication time of %q: %w", user, err)
	}
	return time.UnixMilli(n).UTC(), nil
}

// Due implements session.Store. It leaves Tokens nil. It asks the shards
// in turn, starting from a different one each call, until it has n.
func (s *Store) Due(ctx context.Context, t time.Time, n int) ([]*session.Session, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []*session.Session
	first := int(s.dueTurn.Add(1))
	for k := range s.shards {
		sh := &s.shards[(first+k)%len(s.shards)]
		want := n - len(out)
		if want <= 0 {
			break
		}
		// Examine a little more than asked so that a run of vanished
		// entries does not starve the sweep; they are removed on the
		// way.
		keys := []string{sh.byDeadline, sh.byLast, sh.byCreated}
		r, err := dueScript.Run(ctx, s.c, keys, sh.sessionPrefix, sh.devicePrefix, ms(t), want, want+1000).Slice()
		if err != nil {
			return nil, fail("finding due sessions", err)
		}
		got, err := decodeListed(r)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// decodeListed decodes a flat list of id, hash, device.
func decodeListed(r []any) ([]*session.Session, error) {
	out := make([]*session.Session, 0, len(r)/3)
	for i := 0; i+2 < len(r); i += 3 {
		id, _ := r[i].(string)
		flat, _ := r[i+1].([]any)
		dev, _ := r[i+2].(string)
		m, err := toFields(flat)
		if err != nil {
			return nil, err
		}
		sess, err := decodeSession(id, m, nil, dev)
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	return out, nil
}

// List implements session.Store. It leaves Tokens nil. Ties in the sort
// key are broken by ID, descending. When filters other than User reject
// most sessions, one call examines at most MaxScan of them, for at most
// about MaxScanTime, and may return a short page whose Next continues the
// scan.
func (s *Store) List(ctx context.Context, q session.Query) (session.Page, error) {
	byCreated, err := q.ByCreated()
	if err != nil {
		return session.Page{}, err
	}
	var from *cursor.Cursor
	if q.Cursor != "" {
		c, err := cursor.Decode(q.Cursor, cursor.SortTag(byCreated))
		if err != nil {
			return session.Page{}, err
		}
		from = &c
	}
	limit := session.PageSize(q.Limit)
	if q.Sites != nil && len(q.Sites) == 0 {
		// An admin who reaches no site sees nothing.
		return session.Page{}, nil
	}
	if q.User != "" {
		return s.listUser(ctx, q, byCreated, from, limit)
	}

	field := fLast
	if byCreated {
		field = fCreated
	}
	country := strings.ToLower(q.Country)
	sites := []any{"0", s.smallList, limit + 1, "", 0}
	if q.IPPrefix != "" {
		// A rare prefix lists from the IP index (iprange.go).
		r := ipRanges(q.IPPrefix)
		sites[4] = len(r)
		for _, kr := range r {
			sites = append(sites, kr.lo, kr.hi)
		}
	}
	if q.Sites != nil {
		sites[0] = "1"
		for _, site := range q.Sites {
			sites = append(sites, site)
		}
	}
	// Every shard walks its own index from the cursor for the ids of a
	// page (scanScript), in parallel; merged, they give the page's ids,
	// whose sessions are then read in one round trip.
	start := s.now()
	same := func(c cursor.Cursor) cursor.Cursor { return c }
	ids, next, err := mergeShards(s, from, limit, same,
		func(sh *shard, pos *cursor.Cursor, want, budget int) ([]cursor.Cursor, *cursor.Cursor, bool, int, error) {
			index := sh.byLast
			if byCreated {
				index = sh.byCreated
			}
			return scan(s, "listing sessions", pos, want, budget, start,
				func(score, member string, want, budget int) ([]cursor.Cursor, []any, error) {
					args := append([]any{sh.sessionPrefix, sh.byDeadline, score, member,
						want, budget, q.IPPrefix, country, q.Site, field}, sites...)
					args[13] = sh.byIP // ARGV[14], the placeholder "" in sites
					r, err := scanScript.Run(ctx, s.c, []string{index}, args...).Slice()
					if err != nil || len(r) != 5 {
						return nil, r, err
					}
					flat, _ := r[0].([]any)
					got := make([]cursor.Cursor, 0, len(flat)/2)
					for i := 0; i+1 < len(flat); i += 2 {
						id, _ := flat[i].(string)
						sc, _ := flat[i+1].(string)
						n, err := strconv.ParseInt(sc, 10, 64)
						if err != nil {
							return nil, r, fmt.Errorf("score %q of %q: %w", sc, id, err)
						}
						got = append(got, cursor.Cursor{Score: n, Member: id})
					}
					return got, r, nil
				},
				same)
		})
	if err != nil {
		return session.Page{}, err
	}
	items, err := s.readListed(ctx, ids)
	if err != nil {
		return session.Page{}, err
	}
	page := session.Page{Items: items}
	if next != nil {
		page.Next = next.Encode(cursor.SortTag(byCreated))
	}
	return page, nil
}

// readListed reads the sessions of ids without their tokens, in order,
// in one pipelined round trip; a session deleted since it was listed is
// left out.
func (s *Store) readListed(ctx context.Context, ids []cursor.Cursor) ([]*session.Session, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if err := getScript.Load(ctx, s.c).Err(); err != nil {
		return nil, fail("listing sessions", err)
	}
	cmds := make([]*redis.Cmd, len(ids))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range ids {
			sh := s.shardOfID(c.Member)
			cmds[i] = getScript.EvalSha(ctx, p, []string{sh.sessionKey(c.Member), sh.tokensKey(c.Member)}, sh.devicePrefix, "1")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fail("listing sessions", err)
	}
	out := make([]*session.Session, 0, len(ids))
	for i, c := range cmds {
		r, err := c.Slice()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fail("listing sessions", err)
		}
		sess, err := decodeReply(ids[i].Member, r)
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	return out, nil
}

// mergeShards runs walk on every shard in parallel and merges what they
// found into one page in the index order (descending score, then
// member). walk returns, from the position after pos, at most want items
// in that order, the position to continue from (nil when its index ran
// out), whether it ran out, and how many entries it examined; it examines
// at most budget entries, what is left of the shard's part of MaxScan.
//
// The first round asks each shard for its share of the page, twice over;
// later rounds, each one parallel round trip, continue only the shards
// that may still hold items above the page's last, asking twice as many
// each time. So a page costs about what one index would, not one page per
// shard.
//
// A shard that stopped early (it gave what was asked, or used its
// budget) has seen nothing below where it stopped, so items of other
// shards below that point may come after ones it has not seen: the page
// ends at the highest such stop. Items below it are left for the next
// page, which continues from the page's last item, or from that stop when
// the page came back short.
func mergeShards[T any](s *Store, from *cursor.Cursor, limit int, key func(T) cursor.Cursor,
	walk func(sh *shard, pos *cursor.Cursor, want, budget int) ([]T, *cursor.Cursor, bool, int, error)) ([]T, *cursor.Cursor, error) {
	n := len(s.shards)
	type state struct {
		items []T
		stop  *cursor.Cursor
		done  bool // ran out
		spent int  // entries examined
		want  int
		err   error
	}
	budget := max(s.maxScan/n, 1)
	st := make([]state, n)
	for i := range st {
		st[i].stop = from
		st[i].want = min(max(2*(limit+1)/n+1, 8), limit+1)
	}
	type entry struct {
		item T
		key  cursor.Cursor
	}
	start := s.now()
	run := make([]bool, n)
	for i := range run {
		run[i] = true
	}
	var all []entry
	var bound *cursor.Cursor
	for {
		var wg sync.WaitGroup
		for i := range st {
			if !run[i] {
				continue
			}
			wg.Go(func() {
				r := &st[i]
				items, stop, exhausted, seen, err := walk(&s.shards[i], r.stop, r.want, budget-r.spent)
				if err != nil {
					r.err = err
					return
				}
				r.items = append(r.items, items...)
				r.stop, r.done = stop, exhausted || stop == nil
				r.spent += seen
				r.want = min(2*r.want, limit+1)
			})
		}
		wg.Wait()
		all, bound = all[:0], nil
		for i := range st {
			r := &st[i]
			if r.err != nil {
				return nil, nil, r.err
			}
			for _, it := range r.items {
				all = append(all, entry{it, key(it)})
			}
			// The highest stop: the one after which the others' items
			// may come.
			if !r.done && (bound == nil || r.stop.After(bound.Score, bound.Member)) {
				bound = r.stop
			}
		}
		slices.SortFunc(all, func(a, b entry) int {
			if c := cmp.Compare(b.key.Score, a.key.Score); c != 0 {
				return c
			}
			return strings.Compare(b.key.Member, a.key.Member)
		})
		if bound != nil {
			// Keep the items at or above the bound.
			all = slices.DeleteFunc(all, func(e entry) bool { return bound.After(e.key.Score, e.key.Member) })
		}
		if len(all) > limit || bound == nil || s.now().Sub(start) >= s.scanFor {
			break
		}
		// Continue the shards that may hold items above the page's end:
		// all of them while the page is short.
		more := false
		for i := range st {
			r := &st[i]
			run[i] = !r.done && r.spent < budget
			more = more || run[i]
		}
		if !more {
			break
		}
	}
	var next *cursor.Cursor
	switch {
	case len(all) > limit:
		all = all[:limit]
		k := all[limit-1].key
		next = &k
	case bound != nil:
		next = bound
	}
	out := make([]T, len(all))
	for i := range all {
		out[i] = all[i].item
	}
	return out, next, nil
}

// scan runs a chunked scan script until the page is full, the index is
// exhausted, or the work bound (budget entries, MaxScanTime since start)
// is reached. chunk runs the script once from a position (empty score:
// the start) for at most want more items and budget examined entries;
// the reply is [items, last score, last member, exhausted, examined]. It returns at
// most limit items and the position to continue from, nil when the index
// ran out.
func scan[T any](s *Store, what string, from *cursor.Cursor, limit, maxScan int, start time.Time,
	chunk func(score, member string, want, budget int) ([]T, []any, error),
	key func(T) cursor.Cursor) (_ []T, _ *cursor.Cursor, _ bool, seen int, _ error) {
	var (
		items []T
		pos   = from
	)
	for len(items) < limit && seen < maxScan && (seen == 0 || s.now().Sub(start) < s.scanFor) {
		score, member := "", ""
		if pos != nil {
			score, member = strconv.FormatInt(pos.Score, 10), pos.Member
		}
		budget := min(scanChunk, maxScan-seen)
		got, r, err := chunk(score, member, limit-len(items), budget)
		if err != nil {
			return nil, nil, false, seen, fail(what, err)
		}
		if len(r) != 5 {
			return nil, nil, false, seen, fmt.Errorf("%s: unexpected reply length %d", what, len(r))
		}
		items = append(items, got...)
		ls, _ := r[1].(string)
		lm, _ := r[2].(string)
		if ls == "" {
			// Nothing examined and nothing left.
			return items, nil, true, seen, nil
		}
		n, err := strconv.ParseInt(ls, 10, 64)
		if err != nil {
			return nil, nil, false, seen, fmt.Errorf("%s: cursor score %q: %w", what, ls, err)
		}
		pos = &cursor.Cursor{Score: n, Member: lm}
		examined, _ := r[4].(int64)
		seen += max(int(examined), 1)
		// Ran out: everything after from was seen, however many items
		// came (a partition or IP index read returns a whole page).
		if exhausted, _ := r[3].(int64); exhausted == 1 {
			return items, nil, true, seen, nil
		}
	}
	if len(items) >= limit {
		c := key(items[len(items)-1])
		return items, &c, false, seen, nil
	}
	// The work bound ended the walk early: continue from where it
	// stopped.
	return items, pos, false, seen, nil
}

// listUser serves List for one user from the per-user index: a user has
// few sessions, so all are read and sorted here.
func (s *Store) listUser(ctx context.Context, q session.Query, byCreated bool, from *cursor.Cursor, limit int) (session.Page, error) {
	sh := s.shardOfUser(q.User)
	r, err := userSessionsScript.Run(ctx, s.c, []string{sh.userKey(q.User)}, sh.sessionPrefix, sh.devicePrefix).Slice()
	if err != nil {
		return session.Page{}, fail("listing user sessions", err)
	}
	all, err := decodeListed(r)
	if err != nil {
		return session.Page{}, err
	}
	var items []*session.Session
	for _, sess := range all {
		if !q.Match(sess) {
			continue
		}
		if from != nil && !from.After(sortKey(sess, byCreated), sess.ID) {
			continue
		}
		items = append(items, sess)
	}
	slices.SortFunc(items, func(a, b *session.Session) int {
		if c := cmp.Compare(sortKey(b, byCreated), sortKey(a, byCreated)); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	var page session.Page
	if len(items) > limit {
		items = items[:limit]
		l := items[limit-1]
		page.Next = cursor.Cursor{Score: sortKey(l, byCreated), Member: l.ID}.Encode(cursor.SortTag(byCreated))
	}
	page.Items = items
	return page, nil
}

func sortKey(s *session.Session, byCreated bool) int64 {
	if byCreated {
		return s.CreatedAt.UnixMilli()
	}
	return s.LastAccess.UnixMilli()
}

// Users implements session.Store. Like List, it may return a short page
// with a cursor when a prefix matches few users.
func (s *Store) Users(ctx context.Context, q session.UserQuery) (session.UserPage, error) {
	var pos *cursor.Cursor
	if q.Cursor != "" {
		c, err := cursor.Decode(q.Cursor, cursor.Users)
		if err != nil {
			return session.UserPage{}, err
		}
		pos = &c
	}
	limit := session.PageSize(q.Limit)
	prefix := strings.ToLower(q.Prefix)
	start := s.now()
	byLogin := func(u session.User) cursor.Cursor {
		return cursor.Cursor{Score: u.LastLogin.UnixMilli(), Member: u.User}
	}
	items, next, err := mergeShards(s, pos, limit, byLogin,
		func(sh *shard, pos *cursor.Cursor, want, budget int) ([]session.User, *cursor.Cursor, bool, int, error) {
			return scan(s, "listing users", pos, want, budget, start,
				func(score, member string, want, budget int) ([]session.User, []any, error) {
					r, err := usersScript.Run(ctx, s.c, []string{sh.users}, sh.userPrefix, score, member,
						want, budget, prefix, ms(s.now()), s.grace.Milliseconds()).Slice()
					if err != nil || len(r) != 5 {
						return nil, r, err
					}
					flat, _ := r[0].([]any)
					var got []session.User
					for i := 0; i+5 < len(flat); i += 6 {
						u, err := decodeUser(flat[i : i+6])
						if err != nil {
							return nil, r, err
						}
						got = append(got, u)
					}
					return got, r, nil
				},
				byLogin)
		})
	if err != nil {
		return session.UserPage{}, err
	}
	page := session.UserPage{Items: items}
	if next != nil {
		page.Next = next.Encode(cursor.Users)
	}
	return page, nil
}

func decodeUser(v []any) (session.User, error) {
	str := func(i int) string { s, _ := v[i].(string); return s }
	msTime := func(i int) (time.Time, error) {
		n, err := strconv.ParseInt(str(i), 10, 64)
		if err != nil || n == 0 {
			return time.Time{}, err
		}
		return time.UnixMilli(n).UTC(), nil
	}
	u := session.User{User: str(0), Email: str(1), LastIP: str(4)}
	var err error
	if u.LastLogin, err = msTime(2); err != nil {
		return u, fmt.Errorf("decoding user %q: last login: %w", u.User, err)
	}
	if u.LastLogout, err = msTime(3); err != nil {
		return u, fmt.Errorf("decoding user %q: last logout: %w", u.User, err)
	}
	active, _ := v[5].(int64)
	u.ActiveSessions = int(active)
	u.Status = "signed_out"
	if active > 0 {
		u.Status = "active"
	}
	return u, nil
}

// Subscribe implements session.Store. Ends are published on each shard's
// sharded channel (SPUBLISH), so on a Cluster each goes only to the
// nodes serving that shard's slot, not to every node as PUBLISH would.
// A Cluster client subscribes to each shard's channel on its own
// connection (SSUBSCRIBE takes channels of one slot); other clients take
// all of them on one. Each connection is kept with backoff when Redis
// goes away; after each (re)connect it calls ended("") because ends
// published in the meantime were lost. It returns nil when ctx is done.
func (s *Store) Subscribe(ctx context.Context, ended func(id string)) error {
	channels := make([]string, len(s.shards))
	for i := range s.shards {
		channels[i] = s.shards[i].ended
	}
	if !s.cluster {
		s.keepListening(ctx, channels, ended, func() { ended("") })
		return nil
	}
	// One ended("") once every connection is up, then one for each
	// reconnect, as with a single connection.
	var (
		mu      sync.Mutex
		waiting = len(channels)
	)
	connected := func() {
		mu.Lock()
		defer mu.Unlock()
		if waiting > 0 {
			if waiting--; waiting > 0 {
				return
			}
		}
		ended("")
	}
	var wg sync.WaitGroup
	for _, ch := range channels {
		wg.Go(func() { s.keepListening(ctx, []string{ch}, ended, connected) })
	}
	wg.Wait()
	return nil
}

// keepListening runs listen on channels until ctx is done, reconnecting
// with backoff; it calls connected after each (re)connect.
func (s *Store) keepListening(ctx context.Context, channels []string, ended func(id string), connected func()) {
	const (
		minBackoff = 25 * time.Millisecond
		// The SPEC wants service back within 1s of Redis; retrying at
		// least twice a second keeps the gap after a restart short.
		maxBackoff = 500 * time.Millisecond
	)
	backoff := minBackoff
	for {
		ok := s.listen(ctx, channels, ended, connected)
		if ctx.Err() != nil {
			return
		}
		if ok {
			backoff = minBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listen runs one pub/sub connection until it fails or ctx is done, and
// reports whether it got as far as subscribing.
func (s *Store) listen(ctx context.Context, channels []string, ended func(id string), onConnect func()) (connected bool) {
	// A dead peer that never resets the connection would leave Receive
	// waiting forever; a periodic PING finds out.
	const pingEvery = 5 * time.Second
	ps := s.c.SSubscribe(ctx, channels...)
	defer ps.Close()
	// go-redis reads do not watch ctx; closing the connection ends a
	// blocked read at once.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	subscribed := 0
	for {
		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		if err != nil {
			if ctx.Err() != nil {
				return connected
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if err := ps.Ping(ctx); err == nil {
					continue
				}
			}
			return connected
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			// One confirmation per channel; ends may have been missed
			// until the last.
			if m.Kind == "ssubscribe" {
				if subscribed++; subscribed == len(channels) {
					connected = true
					onConnect()
				}
			}
		case *redis.Message:
			ended(m.Payload)
		}
	}
}

// LimitSessions implements session.Store in one script (limitScript),
// which publishes each ended id as Delete does.
func (s *Store) LimitSessions(ctx context.Context, l session.Limit) ([]*session.Session, error) {
	keep, user := l.Max, l.User
	if keep <= 0 || user == "" {
		return nil, nil
	}
	sh := s.shardOfUser(user)
	keys := []string{sh.userKey(user), sh.byLast, sh.byCreated, sh.byDeadline, sh.byIP}
	args := []any{keep, ms(s.now()), sh.sessionPrefix, sh.tokensPrefix, sh.ended,
		s.userTTL.Milliseconds(), sh.devicePrefix, l.IssuerKey, l.Keep}
	cmd, _, err := s.runReplicated(ctx, limitScript, s.waitReplicas, s.replicaTimeout, keys, args...)
	if err != nil {
		return nil, fail("limiting sessions", err)
	}
	r, err := cmd.Slice()
	if err != nil {
		return nil, fail("limiting sessions", err)
	}
	out := make([]*session.Session, 0, len(r)/4)
	for i := 0; i+3 < len(r); i += 4 {
		id, _ := r[i].(string)
		sess, err := decodeReply(id, r[i+1:i+4])
		if err != nil {
			return nil, fmt.Errorf("limiting sessions of %q: %w", user, err)
		}
		out = append(out, sess)
	}
	return out, nil
}
