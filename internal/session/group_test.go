package session

import (
	"fmt"
	"strings"
	"testing"
)

func TestNewSecretForIsInUserGroup(t *testing.T) {
	for i := 0; i < 200; i++ {
		user := fmt.Sprintf("user-%d-%s", i, strings.Repeat("é", i%7))
		sec := NewSecretFor(user)
		id := sec.ID()
		if IDGroup(id) != UserGroup(user) {
			t.Fatalf("user %q: id %q in group %d, user in %d", user, id, IDGroup(id), UserGroup(user))
		}
		if !ValidID(id) {
			t.Fatalf("id %q is not valid", id)
		}
		c, err := ParseCookie(sec.Cookie())
		if err != nil || c != id {
			t.Fatalf("cookie leads to %q, %v; want %q", c, err, id)
		}
	}
}

func TestUserGroupsSpread(t *testing.T) {
	var n [Groups]int
	const users = 16000
	for i := 0; i < users; i++ {
		n[UserGroup(fmt.Sprintf("%08x-4e3f-2a1b-0c9d-%d", i*7919, i))]++
	}
	for g, c := range n {
		// Expect 1000 each; a fair hash stays well within ±20 %.
		if c < 800 || c > 1200 {
			t.Errorf("group %d holds %d of %d users: %v", g, c, users, n)
		}
	}
}

func TestIDStart(t *testing.T) {
	for _, user := range []string{"alice", "bob", "", "ünïcode", strings.Repeat("x", 100)} {
		id := string(IDStart(user)) + "ess000000000000000001"
		if IDGroup(id) != UserGroup(user) {
			t.Errorf("IDStart(%q) = %q, group %d, want %d", user, IDStart(user), IDGroup(id), UserGroup(user))
		}
		if !ValidID(id) {
			t.Errorf("id %q is not valid", id)
		}
	}
	if IDGroup("") != 0 {
		t.Errorf("IDGroup(\"\") = %d", IDGroup(""))
	}
}

func BenchmarkNewSecretFor(b *testing.B) {
	for b.Loop() {
		_ = NewSecretFor("8a7b6c5d-4e3f-2a1b-0c9d-8e7f6a5b4c3d")
	}
}
