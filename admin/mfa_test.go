package admin

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

func TestAuthLabel(t *testing.T) {
	tests := []struct {
		amr          []string
		mfa          bool
		label, title string
	}{
		{nil, false, "", ""},
		{[]string{"pwd"}, false, "Password", "Password"},
		{[]string{"pwd", "otp"}, true, "MFA", "Password, One-time code"},
		{[]string{"hwk"}, true, "MFA", "Security key"},
		{[]string{"x-custom"}, false, "x-custom", "x-custom"},
	}
	for _, tt := range tests {
		if label, title := authLabel(tt.amr, tt.mfa); label != tt.label || title != tt.title {
			t.Errorf("authLabel(%q, %v) = %q, %q; want %q, %q", tt.amr, tt.mfa, label, title, tt.label, tt.title)
		}
	}
}

// Issue 7, item 5: the pages show "MFA" or the sign-in method of each
// session, and the API gives amr and mfa.
func TestSessionsShowMFA(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	add := func(from *session.Session, amr []string, mfa bool) *session.Session {
		s := from.Clone()
		s.ID = session.NewSecretFor(s.User).ID()
		s.AMR, s.MFA = amr, mfa
		if err := e.store.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	two := add(e.bob, []string{"pwd", "otp"}, true)
	one := add(e.bob, []string{"pwd"}, false)

	body := e.do(req{as: e.alice, method: "GET", path: "/admin/?user=bob", header: html}).Body.String()
	for _, want := range []string{`title="Signed in with: Password, One-time code">MFA<`, `title="Signed in with: Password">Password<`} {
		if !strings.Contains(body, want) {
			t.Errorf("admin sessions page lacks %q", want)
		}
	}
	me := e.do(req{as: e.bob, method: "GET", path: "/", header: html}).Body.String()
	if !strings.Contains(me, `<dt>Sign-in</dt><dd title="Password, One-time code">MFA</dd>`) {
		t.Error("my sessions page does not show the MFA session as such")
	}

	for _, tt := range []struct {
		s   *session.Session
		amr []any
		mfa bool
	}{{two, []any{"pwd", "otp"}, true}, {one, []any{"pwd"}, false}, {e.bob, []any{}, false}} {
		m := decode[map[string]any](t, e.do(req{as: e.alice, method: "GET", path: "/api/sessions/" + tt.s.ID}))
		amr, ok := m["amr"].([]any)
		if !ok || !slices.Equal(amr, tt.amr) || m["mfa"] != tt.mfa {
			t.Errorf("session %s: amr %#v mfa %#v, want %v and %v", tt.s.ID, m["amr"], m["mfa"], tt.amr, tt.mfa)
		}
	}
}
