package session

// Groups divide sessions so that a store can shard them (the Redis store
// keeps each group in its own Cluster slot) while every session of one
// user stays in one group: a user's sessions and summary can then change
// together atomically, and a session is found from its id alone, with no
// lookup across groups.
//
// A user's group comes from a hash of the subject; an id's group from its
// first character. NewSecretFor draws secrets until the id they lead to
// falls in the user's group, which takes Groups tries on average (a few
// microseconds at sign-in) and leaves the secret's 256 bits uniform among
// those that qualify; the id gives away 4 bits of a hash of the subject,
// which admins and the user see anyway.
const Groups = 16

// UserGroup returns the group of a user subject: FNV-1a of its bytes,
// modulo Groups. Every instance computes the same.
func UserGroup(user string) int {
	h := uint32(2166136261)
	for i := 0; i < len(user); i++ {
		h ^= uint32(user[i])
		h *= 16777619
	}
	return int(h % Groups)
}

// IDGroup returns the group of a session id: its first byte modulo
// Groups (0 for an empty id). Any string has one, so a forged id only
// names a group where its session is not.
func IDGroup(id string) int {
	if id == "" {
		return 0
	}
	return int(id[0]) % Groups
}

// IDStart returns an upper-case letter that starts ids of the user's
// group, for tests and tools that make ids by hand ('A' through 'P'
// cover the groups).
func IDStart(user string) byte {
	g := UserGroup(user)
	for c := byte('A'); c <= 'P'; c++ {
		if int(c)%Groups == g {
			return c
		}
	}
	panic("unreachable")
}

// NewSecretFor returns a fresh random secret whose id is in the user's
// group (see Groups).
func NewSecretFor(user string) Secret {
	g := UserGroup(user)
	for {
		s := NewSecret()
		var id [IDLen]byte
		s.id(&id)
		if int(id[0])%Groups == g {
			return s
		}
	}
}
