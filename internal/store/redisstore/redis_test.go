package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/storetest"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

func TestNewDoesNoIO(t *testing.T) {
	// Nothing listens on port 1; New must still succeed (configuration
	// validation calls it), and the first operation reports the outage.
	s, err := New(Options{URL: "redis://127.0.0.1:1/0?dial_timeout=200ms"})
	if err != nil {
		t.Fatalf("New = %v, want nil", err)
	}
	defer s.Close()
	if _, err := s.Get(t.Context(), "x"); !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("Get with no server error = %v, want ErrUnavailable", err)
	}
}

func TestNewOptions(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, o := range []Options{
		{},
		{Client: c, URL: "redis://h"},
		{URL: "http://h"},
		{Client: c, Prefix: "a{b}"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
	s, err := New(Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close leaves a caller's client alone.
	if err := c.Ping(t.Context()).Err(); errors.Is(err, redis.ErrClosed) {
		t.Fatal("Close closed the caller's client")
	}
}

func TestUnavailable(t *testing.T) {
	srv := testredis.StartServer(t)
	// ParseURL's defaults: fail fast.
	s, err := New(Options{URL: "redis://" + srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	sess := storetest.Session(1, "alice", time.Now())
	if err := s.Create(ctx, sess); err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	ops := map[string]func() error{
		"Create": func() error { return s.Create(ctx, storetest.Session(2, "bob", time.Now())) },
		"Get":    func() error { _, err := s.Get(ctx, sess.ID); return err },
		"Touch":  func() error { return s.Touch(ctx, sess.ID, session.Access{At: time.Now(), IP: "192.0.2.1"}) },
		"Delete": func() error { _, err := s.Delete(ctx, sess.ID); return err },
		"List":   func() error { _, err := s.List(ctx, session.Query{}); return err },
		"ListUser": func() error {
			_, err := s.List(ctx, session.Query{User: "alice"})
			return err
		},
		"Users":     func() error { _, err := s.Users(ctx, session.UserQuery{}); return err },
		"Due":       func() error { _, err := s.Due(ctx, time.Now(), 10); return err },
		"ClaimOnce": func() error { _, err := s.ClaimOnce(ctx, "k", time.Second); return err },
		"Append":    func() error { return s.Append(ctx, &activity.Event{Time: time.Now(), Type: activity.Logout}) },
		"Query":     func() error { _, err := s.Query(ctx, activity.Filter{}); return err },
		"Trim":      func() error { return s.Trim(ctx, time.Now()) },
	}
	for name, op := range ops {
		start := time.Now()
		err := op()
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("%s with Redis stopped took %v, want a quick failure", name, d)
		}
		if !errors.Is(err, session.ErrUnavailable) {
			t.Errorf("%s with Redis stopped: error = %v, want ErrUnavailable", name, err)
		}
		if errors.Is(err, session.ErrNotFound) {
			t.Errorf("%s with Redis stopped: error %v is also ErrNotFound; callers would sign the user out", name, err)
		}
	}

	// Back within a second of Redis: the same store works again.
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.Create(ctx, sess)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Create after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSubscribeSurvivesRestart(t *testing.T) {
	srv := testredis.StartServer(t)
	a := newStorePrefix(t, srv.Addr(), "sub", nil)
	b := newStorePrefix(t, srv.Addr(), "sub", nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := b.Subscribe(ctx, func(id string) { got <- id }); err != nil {
			t.Errorf("Subscribe = %v", err)
		}
	}()
	expect := func(want string, within time.Duration) {
		t.Helper()
		timer := time.After(within)
		for {
			select {
			case id := <-got:
				if id == want {
					return
				}
				if id != "" {
					t.Fatalf("ended(%q), want ended(%q)", id, want)
				}
			case <-timer:
				t.Fatalf("no ended(%q) within %v", want, within)
			}
		}
	}
	end := func(i int) string {
		t.Helper()
		s := storetest.Session(i, "alice", time.Now())
		var err error
		for range 100 { // the client's pool may still hold dead connections
			if err = a.Create(ctx, s); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if _, err := a.Delete(ctx, s.ID); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		return s.ID
	}

	expect("", 5*time.Second)
	expect(end(1), 5*time.Second)

	for round := range 2 {
		srv.Stop()
		time.Sleep(100 * time.Millisecond)
		srv.Restart()
		start := time.Now()
		select {
		case id := <-got:
			if id != "" {
				t.Fatalf("round %d: first call after restart ended(%q), want ended(\"\")", round, id)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: no ended(\"\") within 5s of the restart", round)
		}
		t.Logf("round %d: resubscribed %v after the restart", round, time.Since(start))
		if d := time.Since(start); d > time.Second {
			t.Errorf("round %d: resubscribed after %v, want within 1s of Redis", round, d)
		}
		expect(end(10+round), 5*time.Second)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return after cancel")
	}
}

func TestEveryKeyExpires(t *testing.T) {
	addr := testredis.Start(t)
	clock := storetest.NewClock(storetest.T0)
	s := newStorePrefix(t, addr, "ttl", clock.Now)
	ctx := t.Context()
	var live *session.Session
	for i := range 5 {
		sess := storetest.Session(i, fmt.Sprintf("user%d", i%2), storetest.T0)
		sess.Tokens = []byte("sealed")
		sess.EmailVerified = true
		if err := s.Create(ctx, sess); err != nil {
			t.Fatal(err)
		}
		live = sess
	}
	clock.Advance(time.Minute)
	if err := s.Touch(ctx, live.ID, session.Access{At: clock.Now(), IP: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, storetest.Session(0, "user0", storetest.T0).ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimOnce(ctx, "state", time.Minute); err != nil {
		t.Fatal(err)
	}
	// Re-authentication times, also of a user who has no summary.
	for _, u := range []string{"user0", "nobody"} {
		if err := s.SetReauth(ctx, u, storetest.T0); err != nil {
			t.Fatal(err)
		}
		if ttl := s.c.PTTL(ctx, s.userKey(u)).Val(); ttl < DefaultUserTTL-time.Minute {
			t.Errorf("PTTL of %s's user hash after SetReauth = %v, want at least UserTTL", u, ttl)
		}
	}
	if n := len(shardEntries(t, s, func(sh *shard) string { return sh.byEmail })); n != 2 {
		t.Errorf("email index has %d entries, want one for each of the 2 users", n)
	}
	if err := s.Append(ctx, &activity.Event{Time: storetest.T0, Type: activity.Logout}); err != nil {
		t.Fatal(err)
	}

	// Indexes (directories, buckets, counters), the stream and its
	// indexes have no TTL; they are cleaned as documented in doc.go (Trim
	// for the event indexes). Everything else must expire.
	noTTL := func(k string) bool {
		return s.noTTLKey(k)
	}
	keys, err := s.c.Keys(ctx, "{ttl*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 10 {
		t.Fatalf("only %d keys: %v", len(keys), keys)
	}
	for _, k := range keys {
		ttl, err := s.c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case noTTL(k) && ttl >= 0:
			t.Errorf("index %s has a TTL (%v)", k, ttl)
		case !noTTL(k) && ttl < 0:
			t.Errorf("key %s has no TTL", k)
		}
	}

	// Session keys expire Grace after the deadline: the touched session
	// has 30m of idle time left at the clock's now.
	want := 30*time.Minute + DefaultGrace
	ref, _ := deviceRef(&live.Device)
	for _, k := range []string{s.sessionKey(live.ID), s.tokensKey(live.ID)} {
		ttl, _ := s.c.PTTL(ctx, k).Result()
		if ttl > want || ttl < want-5*time.Second {
			t.Errorf("PTTL %s = %v, want about %v", k, ttl, want)
		}
	}
	// The device summary, shared by all five sessions, lives as long as
	// the longest-lived of them.
	if ttl := s.c.PTTL(ctx, s.shardOfID(live.ID).devicePrefix+ref).Val(); ttl < want-5*time.Second {
		t.Errorf("PTTL of the shared device summary = %v, want at least %v", ttl, want)
	}
	if err := s.SetTokens(ctx, live.ID, []byte("refreshed")); err != nil {
		t.Fatal(err)
	}
	if ttl := s.c.PTTL(ctx, s.tokensKey(live.ID)).Val(); ttl > want || ttl < want-5*time.Second {
		t.Errorf("PTTL of tokens set by SetTokens = %v, want about %v", ttl, want)
	}
}

// Regression guard: a user hash that expired and was recreated by Touch
// or Delete was left without a TTL.
func TestRecreatedUserHashExpires(t *testing.T) {
	addr := testredis.Start(t)
	s := newStorePrefix(t, addr, "urecreate", nil)
	ctx := t.Context()
	a := storetest.Session(1, "alice", time.Now())
	b := storetest.Session(2, "alice", time.Now())
	for _, sess := range []*session.Session{a, b} {
		if err := s.Create(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	for _, op := range []func() error{
		func() error { return s.Touch(ctx, a.ID, session.Access{At: time.Now(), IP: "192.0.2.1"}) },
		func() error { _, err := s.Delete(ctx, b.ID); return err },
	} {
		s.c.Del(ctx, s.userKey("alice"))
		if err := op(); err != nil {
			t.Fatal(err)
		}
		if ttl := s.c.PTTL(ctx, s.userKey("alice")).Val(); ttl < 0 {
			t.Fatalf("recreated user hash has PTTL %v, want a TTL", ttl)
		}
	}
}

func TestStaleIndexEntriesAreCleaned(t *testing.T) {
	// A session hash that expired by TTL leaves index entries behind; the
	// listings that meet them remove them, and the sweep (Due) removes
	// all of them.
	addr := testredis.Start(t)
	clock := storetest.NewClock(storetest.T0)
	s := newStorePrefix(t, addr, "stale", clock.Now)
	ctx := t.Context()
	a := storetest.Session(1, "alice", storetest.T0)
	b := storetest.Session(2, "alice", storetest.T0.Add(time.Second))
	for _, sess := range []*session.Session{a, b} {
		if err := s.Create(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	has := func(ix, id string) bool {
		entries := indexEntries
		if ix == s.shardOfUser("alice").byDeadline {
			entries = deadlineEntries
		}
		for m := range entries(t, s.c, ix) {
			if m == id || strings.HasPrefix(m, id+" ") {
				return true
			}
		}
		return false
	}
	s.c.Del(ctx, s.sessionKey(a.ID)) // as its TTL would
	page, err := s.List(ctx, session.Query{})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != b.ID {
		t.Fatalf("List = %v, %v; want only %s", page.Items, err, b.ID)
	}
	sh := s.shardOfUser("alice")
	if has(sh.byLast, a.ID) {
		t.Error("after List, the last-access index still holds the vanished session")
	}
	page, err = s.List(ctx, session.Query{User: "alice"})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("List(user) = %v, %v; want one session", page.Items, err)
	}
	if ok, _ := s.c.HExists(ctx, s.userKey("alice"), a.ID).Result(); ok {
		t.Error("after List(user), the user hash still lists the vanished session")
	}

	c := storetest.Session(3, "alice", storetest.T0)
	if err := s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	s.c.Del(ctx, s.sessionKey(c.ID))
	due, err := s.Due(ctx, storetest.T0.Add(time.Hour), 10)
	if err != nil || len(due) != 1 || due[0].ID != b.ID {
		t.Fatalf("Due = %v, %v; want only %s", due, err, b.ID)
	}
	for _, id := range []string{a.ID, c.ID} {
		for _, ix := range []string{sh.byLast, sh.byCreated, sh.byDeadline} {
			if has(ix, id) {
				t.Errorf("after Due, %s still holds vanished session %s", ix, id)
			}
		}
	}
}

// Regression guard: a Touch racing a Delete must never leave the session
// (or any index entry) behind.
func TestTouchNeverResurrects(t *testing.T) {
	addr := testredis.Start(t)
	a := newStorePrefix(t, addr, "race", nil)
	b := newStorePrefix(t, addr, "race", nil)
	ctx := t.Context()
	for i := range 50 {
		sess := storetest.Session(i, "alice", time.Now())
		if err := a.Create(ctx, sess); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				err := b.Touch(ctx, sess.ID, session.Access{At: time.Now(), IP: "192.0.2.1"})
				if err != nil && !errors.Is(err, session.ErrNotFound) {
					t.Errorf("Touch: %v", err)
				}
			})
		}
		wg.Go(func() {
			if _, err := a.Delete(ctx, sess.ID); err != nil {
				t.Errorf("Delete: %v", err)
			}
		})
		wg.Wait()
		keys, _ := a.c.Keys(ctx, "{race*}:*:"+sess.ID).Result()
		if len(keys) != 0 {
			t.Fatalf("after Delete raced with Touch, keys remain: %v", keys)
		}
		sh := a.shardOfUser("alice")
		for _, ix := range []string{sh.byLast, sh.byCreated, sh.byDeadline} {
			entries := indexEntries
			if ix == sh.byDeadline {
				entries = deadlineEntries
			}
			for m := range entries(t, a.c, ix) {
				if strings.HasPrefix(m, sess.ID) {
					t.Fatalf("after Delete raced with Touch, %s holds the session", ix)
				}
			}
		}
		if ok, _ := a.c.HExists(ctx, a.userKey("alice"), sess.ID).Result(); ok {
			t.Fatal("after Delete raced with Touch, the user hash lists the session")
		}
	}
}

func TestLongValuesKeepListpack(t *testing.T) {
	addr := testredis.Start(t)
	s := newStore(t, addr, nil)
	ctx := t.Context()
	sess := storetest.Session(1, "alice", time.Now())
	sess.UserAgent = strings.Repeat("Mozilla/5.0 ", 40)
	sess.Groups = []string{strings.Repeat("g", 200)}
	if err := s.Create(ctx, sess); err != nil {
		t.Fatal(err)
	}
	dev := session.Device{UserAgent: strings.Repeat("x", 150), Browser: "X"}
	if err := s.Touch(ctx, sess.ID, session.Access{At: time.Now(), IP: sess.IP, Device: &dev}); err != nil {
		t.Fatal(err)
	}
	if enc := s.c.ObjectEncoding(ctx, s.sessionKey(sess.ID)).Val(); enc != "listpack" {
		t.Errorf("session hash encoding = %q, want listpack", enc)
	}
	// The old, longer user agent's extra chunks are gone.
	if n := s.c.HLen(ctx, s.sessionKey(sess.ID)).Val(); n > 30 {
		t.Errorf("session hash has %d fields after the user agent shrank", n)
	}
	got, err := s.Get(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Device != dev {
		t.Errorf("Device after Touch = %+v, want %+v", got.Device, dev)
	}
}

// A filter that matches few sessions must not hold a List call for long:
// it returns a short page and a cursor once MaxScanTime has passed, and
// the cursors lead to every match.
func TestListTimeBound(t *testing.T) {
	addr := testredis.Start(t)
	var calls atomic.Int64
	// Every reading of the clock is a second later.
	clock := func() time.Time { return storetest.T0.Add(time.Duration(calls.Add(1)) * time.Second) }
	s, err := New(Options{Client: newClient(t, addr), Prefix: "slow", Now: clock, MaxScanTime: time.Millisecond, Grace: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Filter by scanning, as for a country too common for its partitions.
	s.smallList = 0
	ctx := t.Context()
	const n = 30000
	var want []string
	err = createMany(ctx, s, n, func(i int) *session.Session {
		sess := storetest.Session(i, fmt.Sprintf("user%d", i%500), storetest.T0.Add(time.Duration(i)*time.Millisecond))
		sess.IdleTimeout = 0
		if i%1000 == 7 {
			sess.Country = "IS"
		}
		return sess
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := n - 1; i >= 0; i-- {
		if i%1000 == 7 {
			want = append(want, storetest.SessionID(i, fmt.Sprintf("user%d", i%500)))
		}
	}
	var got []string
	q := session.Query{Country: "is"}
	pages := 0
	for {
		page, err := s.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, sess := range page.Items {
			got = append(got, sess.ID)
		}
		if q.Cursor = page.Next; q.Cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List(country IS) over all pages = %v, want %v", got, want)
	}
	// The time bound ends each call after one round of chunks: without
	// it one call would return every match. A call still examines no
	// more than a chunk a shard, so the calls needed are at most those of
	// the fullest shard's chunks plus the rounds that the 30 matches,
	// found a few at a time, take.
	per := map[int]int{}
	for i := range n {
		per[session.UserGroup(fmt.Sprintf("user%d", i%500))]++
	}
	chunk := min(scanChunk, s.maxScan/len(s.shards))
	most := 0
	for _, c := range per {
		most = max(most, (c+chunk-1)/chunk)
	}
	if pages < 2 || pages > most+len(want) {
		t.Errorf("List took %d calls, want 2 to %d", pages, most+len(want))
	}
	t.Logf("%d calls for %d matches", pages, len(want))
}

// Regression (issue 6, item 5): Touch and Delete named the user's hash by
// the first 64-byte chunk of a longer subject, so Touch created a stray
// hash under that prefix and Delete left the session listed as active in
// the real one.
func TestLongSubjectUserHash(t *testing.T) {
	addr := testredis.Start(t)
	s := newStorePrefix(t, addr, "long", nil)
	ctx := t.Context()
	user := strings.Repeat("ü-subject,", 12) // 132 bytes, cut mid-character at 64
	sess := storetest.Session(1, user, time.Now())
	if err := s.Create(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, sess.ID, session.Access{At: time.Now(), IP: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	keys := keysOfShards(t, s, ":u:*")
	if len(keys) != 1 || keys[0] != s.userKey(user) {
		t.Fatalf("user hashes = %q, want only %q", keys, s.userKey(user))
	}
	if ok := s.c.HExists(ctx, s.userKey(user), sess.ID).Val(); ok {
		t.Fatal("the user hash still lists the deleted session")
	}
	if ip := s.c.HGet(ctx, s.userKey(user), "~p").Val(); ip != "192.0.2.1" {
		t.Fatalf("user hash last IP = %q, want the touched 192.0.2.1", ip)
	}
}

// The email index has no TTL: entries of users whose summary expired must
// never resolve, and are removed when met, by UserByEmail and by later
// sign-ins.
func TestEmailIndexStaleEntries(t *testing.T) {
	addr := testredis.Start(t)
	s := newStorePrefix(t, addr, "email", nil)
	ctx := t.Context()
	create := func(i int, user string) {
		t.Helper()
		sess := storetest.Session(i, user, time.Now())
		sess.EmailVerified = true
		if err := s.Create(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	create(0, "alice")
	s.c.Del(ctx, s.userKey("alice")) // as its TTL would
	if got, err := s.UserByEmail(ctx, "alice@example.com"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("UserByEmail of an expired user = %q, %v; want ErrNotFound", got, err)
	}
	if n := len(shardEntries(t, s, func(sh *shard) string { return sh.byEmail })); n != 0 {
		t.Fatalf("email index has %d entries after UserByEmail met a stale one, want 0", n)
	}

	const n = 200
	for i := range n {
		create(i, fmt.Sprintf("old%d", i))
		s.c.Del(ctx, s.userKey(fmt.Sprintf("old%d", i)))
	}
	for i := range n {
		create(n+i, fmt.Sprintf("new%d", i))
	}
	entries := shardEntries(t, s, func(sh *shard) string { return sh.byEmail })
	stale := 0
	for m := range entries {
		if strings.HasPrefix(m, "old") {
			stale++
		}
	}
	if len(entries)-stale != n {
		t.Fatalf("email index holds %d live entries, want %d", len(entries)-stale, n)
	}
	// Each sign-in checks two neighbours; most stale entries are gone.
	if stale > n/2 {
		t.Fatalf("%d of %d stale email index entries remain after %d sign-ins", stale, n, n)
	}
	t.Logf("%d of %d stale entries remain", stale, n)
}

// A site or country that few sessions have lists from its partitions of
// the deadline index: one call gives a full first page (or every match)
// however many other sessions the shards hold, and the pages that follow
// are the rest, in order, with no gaps or duplicates.
func TestRareFilterFullPages(t *testing.T) {
	addr := testredis.Start(t)
	// Every reading of the clock is a second later: a scan would stop
	// after one chunk a shard and return a short page.
	var calls atomic.Int64
	clock := func() time.Time { return storetest.T0.Add(time.Duration(calls.Add(1)) * time.Second) }
	s, err := New(Options{Client: newClient(t, addr), Prefix: "rare", Now: clock, MaxScanTime: time.Millisecond, Grace: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const n = 40000
	var rareSite, rareCountry, rareIP, rareIP6 []string
	err = createMany(ctx, s, n, func(i int) *session.Session {
		user := fmt.Sprintf("user%d", i%3000)
		sess := storetest.Session(i, user, storetest.T0.Add(time.Duration(i)*time.Millisecond))
		sess.IdleTimeout = 0
		if i%400 == 9 {
			sess.IP, sess.LastIP = fmt.Sprintf("157.%d.%d.1", i%256, i/256%256), fmt.Sprintf("157.%d.%d.1", i%256, i/256%256)
		}
		if i%500 == 13 {
			sess.LastIP = fmt.Sprintf("2001:db8:%x::1", i)
		}
		if i%300 == 11 {
			sess.Site = "payroll.example.com"
		}
		if i%250 == 3 {
			sess.Country = "IS"
		}
		return sess
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := n - 1; i >= 0; i-- {
		id := storetest.SessionID(i, fmt.Sprintf("user%d", i%3000))
		if i%300 == 11 {
			rareSite = append(rareSite, id)
		}
		if i%250 == 3 && i%300 != 11 {
			rareCountry = append(rareCountry, id)
		}
		if i%400 == 9 {
			rareIP = append(rareIP, id)
		}
		if i%500 == 13 {
			rareIP6 = append(rareIP6, id)
		}
	}
	for _, tt := range []struct {
		name string
		q    session.Query
		want []string
	}{
		{"site", session.Query{Site: "payroll.example.com"}, rareSite},
		{"reach", session.Query{Sites: []string{"payroll.example.com"}}, rareSite},
		{"country", session.Query{Country: "is", Site: "app.example.com"}, rareCountry},
		{"ip", session.Query{IPPrefix: "157."}, rareIP},
		{"ip6", session.Query{IPPrefix: "2001:db8:"}, rareIP6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.q
			var got []string
			for calls := 0; ; calls++ {
				page, err := s.List(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if full := min(session.DefaultLimit, len(tt.want)); calls == 0 && len(page.Items) != full {
					t.Fatalf("first page holds %d sessions, want a full %d", len(page.Items), full)
				}
				for _, sess := range page.Items {
					got = append(got, sess.ID)
				}
				if q.Cursor = page.Next; q.Cursor == "" {
					break
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("over all pages: %d sessions, want %d\ngot  %v\nwant %v", len(got), len(tt.want), got, tt.want)
			}
		})
	}
}

// A session whose location changes on Touch moves to its new country's
// partition of the deadline index, and every end takes it out of its
// partition, keeping the partitions' counts exact.
func TestDeadlinePartitionsFollowSessions(t *testing.T) {
	addr := testredis.Start(t)
	s := newStorePrefix(t, addr, "parts", nil)
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond)
	var ids []string
	for i := range 4 {
		sess := storetest.Session(i, "alice", now.Add(time.Duration(i)*time.Millisecond))
		sess.Country = "IS"
		if err := s.Create(ctx, sess); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sess.ID)
	}
	count := func(country string) int {
		t.Helper()
		page, err := s.List(ctx, session.Query{Country: country})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Items)
	}
	moved := &session.Location{City: "Berlin", Country: "DE"}
	if err := s.Touch(ctx, ids[0], session.Access{At: now.Add(time.Second), IP: "91.1.2.3", Location: moved}); err != nil {
		t.Fatal(err)
	}
	// A location change without a later access moves it too.
	if err := s.Touch(ctx, ids[1], session.Access{At: now, Location: moved}); err != nil {
		t.Fatal(err)
	}
	if is, de := count("is"), count("DE"); is != 2 || de != 2 {
		t.Fatalf("after two moves: %d in IS, %d in DE; want 2 and 2", is, de)
	}
	if _, err := s.Delete(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LimitSessions(ctx, session.Limit{User: "alice", Max: 2}); err != nil {
		t.Fatal(err)
	}
	if is, de := count("is"), count("de"); is+de != 2 {
		t.Fatalf("after a delete and a limit of 2: %d in IS, %d in DE; want 2 in all", is, de)
	}
	sh := s.shardOfUser("alice")
	if got := deadlineEntries(t, s.c, sh.byDeadline); len(got) != 2 {
		t.Fatalf("deadline partitions hold %d entries, want 2: %v", len(got), got)
	}
	for _, id := range ids {
		_, _ = s.Delete(ctx, id)
	}
	if n := s.c.Exists(ctx, sh.byDeadline).Val(); n != 0 {
		t.Fatalf("the partitions' hash is still there after every session ended: %v", s.c.HGetAll(ctx, sh.byDeadline).Val())
	}
	if keys := keysOfShards(t, s, ":i:dl:*"); len(keys) != 0 {
		t.Fatalf("partition keys left after every session ended: %q", keys)
	}
}
