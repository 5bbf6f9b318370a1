package admin

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// flipCase changes the case of the first letter in id, giving an id of
// the right shape that names nothing.
func flipCase(id string) string {
	b := []byte(id)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
			return string(b)
		case 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
			return string(b)
		}
	}
	return id
}

// Review 15b, item 1: a signed-in non-admin reading or ending sessions
// that are not theirs through /me: another user's ids, the same ids in odd
// case or padded, ids of the right shape that do not exist. Each is a 404
// and nothing ends; the "others" revoke ends only the caller's others.
func TestReview15bMeOwnership(t *testing.T) {
	e := newEnv(t)
	all := []*session.Session{e.alice, e.alicePhone, e.bob, e.bobMac, e.bobTablet}
	alive := func(t *testing.T, what string, except ...*session.Session) {
		t.Helper()
	next:
		for _, s := range all {
			for _, x := range except {
				if s == x {
					continue next
				}
			}
			if !e.exists(s) {
				t.Fatalf("%s ended session %s of %s", what, s.ID, s.User)
			}
		}
	}
	ghost := session.NewSecretFor("alice").ID()
	ids := []string{
		e.alice.ID,
		e.alicePhone.ID,
		flipCase(e.alice.ID),
		flipCase(e.bobMac.ID),
		strings.ToUpper(e.alice.ID),
		strings.ToLower(e.alice.ID),
		url.PathEscape(" " + e.alice.ID),
		url.PathEscape(e.alice.ID + " "),
		e.alice.ID + "%00",
		e.alice.ID + "%0a",
		url.PathEscape(e.alice.ID + "/"),
		e.alice.ID + "x",
		e.alice.ID[1:],
		ghost,
	}
	for _, id := range ids {
		for _, m := range []string{http.MethodGet, http.MethodDelete} {
			w := e.do(req{as: e.bob, method: m, path: "/api/me/sessions/" + id, header: xhr})
			if w.Code != http.StatusNotFound {
				t.Errorf("%s /api/me/sessions/%s as bob: %d %s, want 404", m, id, w.Code, w.Body)
			}
			if strings.Contains(w.Body.String(), "alice") {
				t.Errorf("%s /api/me/sessions/%s as bob leaks alice: %s", m, id, w.Body)
			}
			alive(t, m+" /api/me/sessions/"+id)
		}
		// The page's form, with the right token.
		w := e.do(req{as: e.bob, method: http.MethodPost, path: "/sessions/" + id + "/revoke",
			form: url.Values{"csrf": {e.rt.CSRFToken(e.bob.ID)}}})
		alive(t, "POST /sessions/"+id+"/revoke")
		if w.Code >= 500 {
			t.Errorf("POST /sessions/%s/revoke: %d", id, w.Code)
		}
	}
	// The admin routes stay closed to a non-admin.
	for _, p := range []string{"/api/sessions/" + e.alice.ID, "/api/users/alice/sessions", "/api/users/alice@example.com/sessions"} {
		if w := e.do(req{as: e.bob, method: http.MethodDelete, path: p, header: xhr}); w.Code != http.StatusForbidden {
			t.Errorf("DELETE %s as bob: %d, want 403", p, w.Code)
		}
		alive(t, "DELETE "+p)
	}
	for _, p := range []string{"/admin/sessions/" + e.alice.ID + "/revoke", "/admin/users/alice/revoke"} {
		if w := e.do(req{as: e.bob, method: http.MethodPost, path: p, form: url.Values{"csrf": {e.rt.CSRFToken(e.bob.ID)}}}); w.Code != http.StatusForbidden {
			t.Errorf("POST %s as bob: %d, want 403", p, w.Code)
		}
		alive(t, "POST "+p)
	}
	// A bare DELETE of the collection, or others with another value, ends
	// nothing.
	for _, q := range []string{"", "?others=false", "?others=TRUE", "?others=1", "?others=true%20"} {
		if w := e.do(req{as: e.bob, method: http.MethodDelete, path: "/api/me/sessions" + q, header: xhr}); w.Code == http.StatusNoContent {
			t.Errorf("DELETE /api/me/sessions%s: 204", q)
		}
		alive(t, "DELETE /api/me/sessions"+q)
	}
	// others=true ends bob's other sessions and nothing else.
	if w := e.do(req{as: e.bob, method: http.MethodDelete, path: "/api/me/sessions?others=true", header: xhr}); w.Code != http.StatusNoContent {
		t.Fatalf("DELETE /api/me/sessions?others=true: %d %s", w.Code, w.Body)
	}
	alive(t, "others=true", e.bobMac, e.bobTablet)
	if e.exists(e.bobMac) || e.exists(e.bobTablet) {
		t.Error("others=true left one of bob's other sessions")
	}
}

// Review 15b, item 2: cross-site requests against the /me and admin APIs
// and the page forms. None may end a session.
func TestReview15bCrossSite(t *testing.T) {
	e := newEnv(t)
	bobTok := e.rt.CSRFToken(e.bob.ID)
	aliceTok := e.rt.CSRFToken(e.alice.ID)
	type hdr = map[string]string
	apiCases := []struct {
		name string
		as   *session.Session
		path string
		h    hdr
		form url.Values
	}{
		{"no header", e.bob, "/api/me/sessions/" + e.bobMac.ID, nil, nil},
		{"xhr, foreign origin", e.bob, "/api/me/sessions/" + e.bobMac.ID, hdr{"X-Requested-With": "XMLHttpRequest", "Origin": "https://evil.example"}, nil},
		{"xhr, null origin", e.bob, "/api/me/sessions/" + e.bobMac.ID, hdr{"X-Requested-With": "XMLHttpRequest", "Origin": "null"}, nil},
		{"xhr, sibling origin", e.bob, "/api/me/sessions/" + e.bobMac.ID, hdr{"X-Requested-With": "XMLHttpRequest", "Origin": "http://app.example.com.evil.example"}, nil},
		{"xhr, other port", e.bob, "/api/me/sessions/" + e.bobMac.ID, hdr{"X-Requested-With": "XMLHttpRequest", "Origin": "http://app.example.com:8443"}, nil},
		{"xhr, https origin", e.bob, "/api/me/sessions/" + e.bobMac.ID, hdr{"X-Requested-With": "XMLHttpRequest", "Origin": "https://app.example.com"}, nil},
		{"xhr, user info origin", e.bob, "/api/me/sessions/" + e.bobMac.ID, hdr{"X-Requested-With": "XMLHttpRequest", "Origin": "http://x@app.example.com"}, nil},
		{"xhr, cross-site fetch", e.bob, "/api/me/sessions/" + e.bobMac.ID, hdr{"X-Requested-With": "XMLHttpRequest", "Sec-Fetch-Site": "cross-site"}, nil},
		{"xhr other value", e.bob, "/api/me/sessions/" + e.bobMac.ID, hdr{"X-Requested-With": "fetch"}, nil},
		{"token, foreign origin", e.bob, "/api/me/sessions/" + e.bobMac.ID, hdr{"X-Gatehouse-CSRF": bobTok, "Origin": "https://evil.example"}, nil},
		{"another session's token", e.bob, "/api/me/sessions/" + e.bobMac.ID, hdr{"X-Gatehouse-CSRF": aliceTok}, nil},
		{"form token on the API", e.bob, "/api/me/sessions/" + e.bobMac.ID, nil, url.Values{"csrf": {bobTok}}},
		{"form post, others", e.bob, "/api/me/sessions?others=true", nil, url.Values{"csrf": {bobTok}}},
		{"admin, no header", e.alice, "/api/sessions/" + e.bobMac.ID, nil, nil},
		{"admin, foreign origin", e.alice, "/api/users/bob/sessions", hdr{"X-Requested-With": "XMLHttpRequest", "Origin": "https://evil.example"}, nil},
		{"admin, form", e.alice, "/api/users/bob/sessions", nil, url.Values{"csrf": {aliceTok}}},
	}
	for _, tt := range apiCases {
		for _, m := range []string{http.MethodDelete, http.MethodPost, http.MethodPut, http.MethodPatch} {
			w := e.do(req{as: tt.as, method: m, path: tt.path, header: tt.h, form: tt.form})
			if w.Code != http.StatusForbidden && m == http.MethodDelete {
				t.Errorf("%s: DELETE %s: %d %s, want 403", tt.name, tt.path, w.Code, w.Body)
			}
			if !e.exists(e.bobMac) || !e.exists(e.bobTablet) || !e.exists(e.bob) {
				t.Fatalf("%s: %s %s ended a session", tt.name, m, tt.path)
			}
		}
	}
	pageCases := []struct {
		name string
		as   *session.Session
		path string
		h    hdr
		form url.Values
	}{
		{"no token", e.bob, "/sessions/revoke-others", nil, url.Values{}},
		{"empty token", e.bob, "/sessions/revoke-others", nil, url.Values{"csrf": {""}}},
		{"another session's token", e.bob, "/sessions/revoke-others", nil, url.Values{"csrf": {aliceTok}}},
		{"token, foreign origin", e.bob, "/sessions/revoke-others", hdr{"Origin": "https://evil.example"}, url.Values{"csrf": {bobTok}}},
		{"token, null origin", e.bob, "/sessions/revoke-others", hdr{"Origin": "null"}, url.Values{"csrf": {bobTok}}},
		{"token, cross-site", e.bob, "/sessions/revoke-others", hdr{"Sec-Fetch-Site": "cross-site"}, url.Values{"csrf": {bobTok}}},
		{"xhr instead of token", e.bob, "/sessions/revoke-others", hdr{"X-Requested-With": "XMLHttpRequest"}, url.Values{}},
		{"token in query", e.bob, "/sessions/revoke-others?csrf=" + url.QueryEscape(bobTok), nil, url.Values{}},
		{"one, no token", e.bob, "/sessions/" + e.bobMac.ID + "/revoke", nil, url.Values{}},
		{"admin user, no token", e.alice, "/admin/users/bob/revoke", nil, url.Values{}},
		{"admin user, foreign origin", e.alice, "/admin/users/bob/revoke", hdr{"Origin": "https://evil.example"}, url.Values{"csrf": {aliceTok}}},
		{"admin one, bob's token", e.alice, "/admin/sessions/" + e.bobMac.ID + "/revoke", nil, url.Values{"csrf": {bobTok}}},
	}
	for _, tt := range pageCases {
		w := e.do(req{as: tt.as, method: http.MethodPost, path: tt.path, header: tt.h, form: tt.form})
		if w.Code != http.StatusForbidden {
			t.Errorf("%s: POST %s: %d, want 403", tt.name, tt.path, w.Code)
		}
		if !e.exists(e.bobMac) || !e.exists(e.bobTablet) || !e.exists(e.bob) {
			t.Fatalf("%s: POST %s ended a session", tt.name, tt.path)
		}
	}
	// No GET ends anything.
	for _, p := range []string{"/sessions/revoke-others", "/sessions/" + e.bobMac.ID + "/revoke", "/api/me/sessions?others=true"} {
		e.do(req{as: e.bob, method: http.MethodGet, path: p})
		if !e.exists(e.bobMac) || !e.exists(e.bobTablet) {
			t.Fatalf("GET %s ended a session", p)
		}
	}
	// The same-origin controls work, so the refusals above are the checks.
	if w := e.do(req{as: e.bob, method: http.MethodDelete, path: "/api/me/sessions/" + e.bobMac.ID,
		header: hdr{"X-Requested-With": "XMLHttpRequest", "Origin": "http://app.example.com"}}); w.Code != http.StatusNoContent {
		t.Errorf("same-origin DELETE: %d %s", w.Code, w.Body)
	}
	if w := e.do(req{as: e.bob, method: http.MethodPost, path: "/sessions/revoke-others",
		header: hdr{"Origin": "http://app.example.com"}, form: url.Values{"csrf": {bobTok}}}); w.Code != http.StatusSeeOther {
		t.Errorf("same-origin revoke-others: %d %s", w.Code, w.Body)
	}
	if e.exists(e.bobTablet) {
		t.Error("same-origin revoke-others left bobTablet")
	}
}
