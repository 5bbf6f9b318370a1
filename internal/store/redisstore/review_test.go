package redisstore

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/storetest"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// reviewIDs lists the ids of a page.
func reviewIDs(p session.Page) []string {
	var out []string
	for _, s := range p.Items {
		out = append(out, s.ID)
	}
	return out
}

// A session without a deadline is in no partition of the deadline index,
// so the partition read for a rare site or country must not be the only
// source of its matches.
func TestReviewRareSiteWithoutDeadline(t *testing.T) {
	s := newStore(t, testredis.Start(t), nil)
	ctx := t.Context()
	now := time.Now()
	sess := storetest.Session(1, "alice", now)
	sess.ExpiresAt, sess.IdleTimeout = time.Time{}, 0
	sess.Site = "rare.example"
	if err := s.Create(ctx, sess); err != nil {
		t.Fatal(err)
	}
	for _, q := range []session.Query{{Site: "rare.example"}, {Country: "NL"}, {Sites: []string{"rare.example"}}} {
		p, err := s.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) != 1 {
			t.Errorf("List(%+v) = %v, want the session without a deadline", q, reviewIDs(p))
		}
	}
}

// The partition read matches countries with their non-alphanumerics
// stripped; the walk (and Query.Match) compares them whole.
func TestReviewCountryFilterOddCharacters(t *testing.T) {
	s := newStore(t, testredis.Start(t), nil)
	ctx := t.Context()
	now := time.Now()
	noCountry := storetest.Session(1, "alice", now)
	noCountry.Location.Country = ""
	dotted := storetest.Session(2, "bob", now)
	dotted.Location.Country = "U.S."
	for _, sess := range []*session.Session{noCountry, dotted} {
		if err := s.Create(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []session.Query{{Country: "--"}, {Country: "US"}, {Country: "ü"}} {
		p, err := s.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, got := range p.Items {
			if !q.Match(got) {
				t.Errorf("List(country %q) returned %s with country %q", q.Country, got.ID, got.Location.Country)
			}
		}
	}
}

// A country longer than one hash chunk (maxValue) names its partition in
// full on Create but by its first chunk on Delete and Touch.
func TestReviewLongCountryPartition(t *testing.T) {
	s := newStore(t, testredis.Start(t), nil)
	ctx := t.Context()
	now := time.Now()
	long := strings.Repeat("x", maxValue+10)
	sess := storetest.Session(1, "alice", now)
	sess.Location.Country = long
	if err := s.Create(ctx, sess); err != nil {
		t.Fatal(err)
	}
	sh := s.shardOfID(sess.ID)
	if err := s.Touch(ctx, sess.ID, session.Access{At: now.Add(time.Minute), Location: &session.Location{Country: long}}); err != nil {
		t.Fatal(err)
	}
	if got := deadlineEntries(t, s.c, sh.byDeadline); len(got) != 1 {
		t.Errorf("after Touch: %d deadline entries, want 1: %v", len(got), got)
	}
	if _, err := s.Delete(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	if got := deadlineEntries(t, s.c, sh.byDeadline); len(got) != 0 {
		t.Errorf("after Delete: deadline entries left: %v", got)
	}
}

// Creating a session over an existing id of another user (same group)
// leaves the id in the old user's hash: the old user still lists it.
func TestReviewCreateOverIDOfAnotherUser(t *testing.T) {
	s := newStore(t, testredis.Start(t), nil)
	ctx := t.Context()
	now := time.Now()
	a := "alice"
	b := ""
	for i := 0; ; i++ {
		if u := "u" + strings.Repeat("b", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)); session.UserGroup(u) == session.UserGroup(a) && u != a {
			b = u
			break
		}
	}
	first := storetest.Session(1, a, now)
	if err := s.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := storetest.Session(1, b, now.Add(time.Second))
	if second.ID != first.ID {
		t.Fatalf("ids differ: %s %s", first.ID, second.ID)
	}
	if err := s.Create(ctx, second); err != nil {
		t.Fatal(err)
	}
	p, err := s.List(ctx, session.Query{User: a})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range p.Items {
		if got.User != a {
			t.Errorf("List(User %s) returned session %s of %s", a, got.ID, got.User)
		}
	}
	up, err := s.Users(ctx, session.UserQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range up.Items {
		if u.User == a && u.ActiveSessions != 0 {
			t.Errorf("Users: %s has %d active sessions, want 0", a, u.ActiveSessions)
		}
	}
}

// Every prefix of a session's address text finds it, whichever path
// (IP index or walk) a shard takes.
func TestReviewIPPrefixesOfOddAddresses(t *testing.T) {
	s := newStore(t, testredis.Start(t), nil)
	ctx := t.Context()
	now := time.Now()
	ips := []string{"::ffff:203.0.113.45", "2001:db8::5", "::1", "fe80::1:2:3", "2001:db8:0:1::", "10.0.0.1", "64:ff9b::192.0.2.33", "2001:DB8:AB::1"}
	for i, ip := range ips {
		sess := storetest.Session(i+1, "user"+string(rune('a'+i)), now.Add(time.Duration(i)*time.Second))
		sess.IP, sess.LastIP = ip, ip
		if err := s.Create(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	for i, ip := range ips {
		id := storetest.SessionID(i+1, "user"+string(rune('a'+i)))
		for n := 1; n <= len(ip); n++ {
			q := session.Query{IPPrefix: ip[:n]}
			p, err := s.List(ctx, q)
			if err != nil {
				t.Fatalf("List(ip %q): %v", q.IPPrefix, err)
			}
			found := false
			for _, got := range p.Items {
				found = found || got.ID == id
			}
			if !found {
				t.Errorf("List(ip %q) = %v, misses %s (%s)", q.IPPrefix, reviewIDs(p), id, ip)
			}
		}
	}
}
