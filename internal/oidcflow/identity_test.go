package oidcflow

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"
)

func (p *fakeIdP) exchange(t *testing.T, idClaims, userinfo map[string]any) (*Result, error) {
	t.Helper()
	p.mu.Lock()
	p.idClaims, p.userinfo = maps.Clone(idClaims), maps.Clone(userinfo)
	p.mu.Unlock()
	return p.client().Exchange(context.Background(), "http://rp.test/cb", "code", State{State: "s", Nonce: fakeNonce, Verifier: "v"})
}

// Regression (issue 6, item 2): email_verified was never read. It comes
// from where the email came from: a flag in the ID token says nothing about
// an email that only userinfo supplied, and the reverse.
func TestIdentityEmailVerified(t *testing.T) {
	tests := []struct {
		name         string
		id, userinfo map[string]any // userinfo nil: no userinfo endpoint
		wantEmail    string
		wantVerified bool
	}{
		{"id token true", map[string]any{"email": "a@x.test", "email_verified": true}, nil, "a@x.test", true},
		{"id token false", map[string]any{"email": "a@x.test", "email_verified": false}, nil, "a@x.test", false},
		{"id token absent", map[string]any{"email": "a@x.test"}, nil, "a@x.test", false},
		{"id token string true (Cognito)", map[string]any{"email": "a@x.test", "email_verified": "true"}, nil, "a@x.test", true},
		{"id token string false (Cognito)", map[string]any{"email": "a@x.test", "email_verified": "false"}, nil, "a@x.test", false},
		{"id token number", map[string]any{"email": "a@x.test", "email_verified": 1}, nil, "a@x.test", false},
		{"id token other string", map[string]any{"email": "a@x.test", "email_verified": "yes"}, nil, "a@x.test", false},
		{"flag without email", map[string]any{"email_verified": true}, nil, "", false},
		{"userinfo email, its flag true",
			map[string]any{}, map[string]any{"sub": "alice", "email": "u@x.test", "email_verified": true}, "u@x.test", true},
		{"userinfo email, its flag string true",
			map[string]any{}, map[string]any{"sub": "alice", "email": "u@x.test", "email_verified": "true"}, "u@x.test", true},
		{"userinfo email, id token's flag not borrowed",
			map[string]any{"email_verified": true}, map[string]any{"sub": "alice", "email": "u@x.test"}, "u@x.test", false},
		{"userinfo email unverified, id token verified flag ignored",
			map[string]any{"email_verified": true}, map[string]any{"sub": "alice", "email": "u@x.test", "email_verified": false}, "u@x.test", false},
		{"id token email kept, userinfo flag not borrowed",
			map[string]any{"email": "a@x.test"}, map[string]any{"sub": "alice", "email": "a@x.test", "email_verified": true}, "a@x.test", false},
		{"id token email verified, userinfo email ignored",
			map[string]any{"email": "a@x.test", "email_verified": true}, map[string]any{"sub": "alice", "email": "u@x.test", "email_verified": false}, "a@x.test", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeIdP(t)
			res, err := p.exchange(t, tt.id, tt.userinfo)
			if err != nil {
				t.Fatal(err)
			}
			if id := res.Identity; id.Email != tt.wantEmail || id.EmailVerified != tt.wantVerified {
				t.Fatalf("Exchange: email %q verified %v, want %q %v", id.Email, id.EmailVerified, tt.wantEmail, tt.wantVerified)
			}
		})
	}
}

func TestIdentityAuthTimeAndAMR(t *testing.T) {
	tests := []struct {
		name     string
		id       map[string]any
		wantTime time.Time
		wantAMR  []string
	}{
		{"both", map[string]any{"auth_time": t0.Add(-time.Hour).Unix(), "amr": []any{"pwd", "otp"}}, t0.Add(-time.Hour), []string{"pwd", "otp"}},
		{"fractional auth_time", map[string]any{"auth_time": 1767225000.5}, time.Unix(1767225000, 5e8), nil},
		{"absent", map[string]any{}, time.Time{}, nil},
		{"auth_time a string", map[string]any{"auth_time": "1767225000"}, time.Time{}, nil},
		{"auth_time absurd", map[string]any{"auth_time": 1e300}, time.Time{}, nil},
		{"amr with a non-string", map[string]any{"amr": []any{"pwd", 3, "hwk"}}, time.Time{}, []string{"pwd", "hwk"}},
		{"amr a string", map[string]any{"amr": "pwd"}, time.Time{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newFakeIdP(t).exchange(t, tt.id, nil)
			if err != nil {
				t.Fatal(err)
			}
			if id := res.Identity; !id.AuthTime.Equal(tt.wantTime) || !slices.Equal(id.AMR, tt.wantAMR) {
				t.Fatalf("Exchange: auth_time %v amr %q, want %v %q", id.AuthTime, id.AMR, tt.wantTime, tt.wantAMR)
			}
		})
	}
}

// Regression (issue 6, review): no test noticed the userinfo subject check
// removed. A userinfo response about someone else must not be merged into
// this sign-in (OIDC Core 5.3.2).
func TestUserinfoSubjectMustMatch(t *testing.T) {
	p := newFakeIdP(t)
	if _, err := p.exchange(t, map[string]any{}, map[string]any{"sub": "alice", "email": "a@x.test"}); err != nil {
		t.Fatalf("matching userinfo subject: %v", err)
	}
	res, err := p.exchange(t, map[string]any{}, map[string]any{"sub": "mallory", "email": "mallory@x.test", "email_verified": true})
	if !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("userinfo sub mallory for ID token sub alice: %+v, %v; want ErrTokenInvalid", res, err)
	}
}

// Claims are read by their exact names (RFC 7519, 4): a token whose only
// email is under "EMAIL", or whose only sid is under "Sid" or "ſid", has
// neither. encoding/json, decoding into a struct, matched them anyway.
func TestIdentityClaimNamesExact(t *testing.T) {
	p := newFakeIdP(t)
	res, err := p.exchange(t, map[string]any{
		"EMAIL": "mallory@x.test", "email_verified": true, "Name": "Mallory", "PREFERRED_USERNAME": "mallory", "ſid": "s-1",
	}, map[string]any{"sub": "alice", "Email": "mallory@x.test", "Sid": "s-2"})
	if err != nil {
		t.Fatal(err)
	}
	if id := res.Identity; id.Email != "" || id.EmailVerified || id.Name != "" || id.Username != "" || id.SID != "" {
		t.Fatalf("identity %+v from claims under other spellings, want none of them", id)
	}
	res, err = p.exchange(t, map[string]any{"email": "a@x.test", "EMAIL": "mallory@x.test", "sid": "s-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id := res.Identity; id.Email != "a@x.test" || id.SID != "s-1" {
		t.Fatalf("identity %+v, want the exactly named email and sid", id)
	}
}
