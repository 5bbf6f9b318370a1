package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// newestFirst is the history order of ss: login time descending, ties
// by session id descending.
func newestFirst(ss ...*session.Session) []string {
	ss = slices.Clone(ss)
	slices.SortFunc(ss, func(a, b *session.Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

type historyList = list[loginJSON]

func historyIDs(t *testing.T, w *httptest.ResponseRecorder) []string {
	t.Helper()
	if w.Code != 200 {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	var out []string
	for _, l := range decode[historyList](t, w).Items {
		out = append(out, l.SessionID)
	}
	return out
}

// Issue 8, item 2: /api/history lists one row per session, newest login
// first, with exactly the SPEC's fields; a row ends with the event that
// ended its session.
func TestHistoryAPI(t *testing.T) {
	e := newReachEnv(t)
	admin := func(path string) *httptest.ResponseRecorder {
		return e.do(req{as: e.alice, method: "GET", path: path, header: xhr})
	}
	// Newest login first: creation times from newEnv and newReachEnv.
	all := newestFirst(e.bob, e.carolB, e.bobB, e.aliceB, e.alice, e.bobTablet, e.alicePhone, e.bobMac)
	if got := historyIDs(t, admin("/api/history")); !slices.Equal(got, all) {
		t.Fatalf("history = %v\nwant %v", got, all)
	}

	// The fields are exactly the SPEC's.
	var raw struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(admin("/api/history?limit=1").Body.Bytes(), &raw); err != nil || len(raw.Items) != 1 {
		t.Fatalf("decoding: %v %v", err, raw)
	}
	if got := slices.Sorted(maps.Keys(raw.Items[0])); !slices.Equal(got, slices.Sorted(slices.Values(HistoryColumns))) {
		t.Errorf("row fields = %v, want %v", got, HistoryColumns)
	}

	// Ending a session completes its row.
	e.clock.Advance(time.Minute)
	if w := e.do(req{as: e.alice, method: "DELETE", path: "/api/sessions/" + e.bobTablet.ID, header: xhr}); w.Code != 204 {
		t.Fatalf("DELETE = %d %s", w.Code, w.Body)
	}
	rows := decode[historyList](t, admin("/api/history?user=bob%40example.com"))
	want := []string{e.bob.ID, e.bobB.ID, e.bobTablet.ID, e.bobMac.ID}
	var got []string
	for _, l := range rows.Items {
		got = append(got, l.SessionID)
		switch {
		case l.SessionID == e.bobTablet.ID:
			if l.Status != activity.SessionRevoked || l.EndTime == "" || l.Duration != int64((5*time.Hour+time.Minute)/time.Second) || l.Inactivity != int64((41*time.Minute)/time.Second) {
				t.Errorf("revoked row = %+v", l)
			}
			if l.Browser != "Chrome" || l.OS != "Android" || l.Device != "Chrome on Android" || l.City != "London" || l.User != "bob" {
				t.Errorf("revoked row's login fields = %+v", l)
			}
		case l.Status != activity.StatusActive || l.EndTime != "":
			t.Errorf("row %+v, want active with end_time \"\"", l)
		}
		if _, err := time.Parse(time.RFC3339, l.LoginTime); err != nil {
			t.Errorf("login_time %q: %v", l.LoginTime, err)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("bob's history by email = %v, want %v", got, want)
	}

	// Filters, paging, errors.
	tests := []struct {
		path string
		want []string
	}{
		{"/api/history?site=" + siteB, newestFirst(e.carolB, e.bobB, e.aliceB)},
		{"/api/history?user=alice&site=" + siteA, []string{e.alice.ID, e.alicePhone.ID}},
		{"/api/history?user=nobody", nil},
		{"/api/history?from=" + epoch.Add(-3*time.Hour).Format(time.RFC3339), newestFirst(e.bob, e.carolB, e.bobB, e.aliceB, e.alice)},
		{"/api/history?to=" + epoch.Add(-3*time.Hour).Format(time.RFC3339), []string{e.bobTablet.ID, e.alicePhone.ID, e.bobMac.ID}},
	}
	for _, tt := range tests {
		if got := historyIDs(t, admin(tt.path)); !slices.Equal(got, tt.want) {
			t.Errorf("GET %s = %v, want %v", tt.path, got, tt.want)
		}
	}
	var paged []string
	path := "/api/history?limit=3"
	for range 10 {
		l := decode[historyList](t, admin(path))
		for _, r := range l.Items {
			paged = append(paged, r.SessionID)
		}
		if l.NextCursor == "" {
			break
		}
		path = "/api/history?limit=3&cursor=" + l.NextCursor
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged = %v, want %v", paged, all)
	}
	for _, bad := range []string{"/api/history?limit=1001", "/api/history?cursor=garbage!", "/api/history?from=yesterday"} {
		if w := admin(bad); w.Code != 400 {
			t.Errorf("GET %s = %d, want 400", bad, w.Code)
		}
	}
}

// Issue 8, item 2: the history keeps to the caller's reach; /me/history
// is the caller's own, on every site, for everyone.
func TestHistoryReachAndMine(t *testing.T) {
	e := newReachEnv(t)
	onA := e.onA("GET", "/api/history")
	if got := historyIDs(t, e.do(onA)); !slices.Equal(got, newestFirst(e.bob, e.alice, e.bobTablet, e.alicePhone, e.bobMac)) {
		t.Errorf("history of an admin of %s = %v", siteA, got)
	}
	if got := historyIDs(t, e.do(e.onA("GET", "/api/history?site="+siteB))); len(got) != 0 {
		t.Errorf("a site beyond the reach lists %v", got)
	}
	if w := e.do(req{as: e.bob, method: "GET", path: "/api/history", header: xhr}); w.Code != 403 {
		t.Errorf("a non-admin's /api/history = %d, want 403", w.Code)
	}
	mine := historyIDs(t, e.do(req{as: e.bob, method: "GET", path: "/api/me/history", header: xhr}))
	if !slices.Equal(mine, []string{e.bob.ID, e.bobB.ID, e.bobTablet.ID, e.bobMac.ID}) {
		t.Errorf("bob's /me/history = %v", mine)
	}
	// Another provider's user of the same subject is someone else: a
	// login of "bob" at another issuer is not in bob's history.
	e.rt.Record(context.Background(), activity.Event{
		Time: e.clock.Now(), Type: activity.LoginSucceeded, User: "bob", SessionID: "other-issuer-session-01",
		Site: siteA, IssuerKey: "other-idp",
	})
	bob := *e.bob
	bob.IssuerKey = "bobs-idp"
	mine = historyIDs(t, e.do(req{as: &bob, method: "GET", path: "/api/me/history", header: xhr}))
	if slices.Contains(mine, "other-issuer-session-01") || len(mine) != 4 {
		t.Errorf("bob's /me/history = %v, want his 4 rows and not the other issuer's", mine)
	}
	// Caddy's admin endpoint: every site, no /me.
	w := httptest.NewRecorder()
	e.api.ServeHTTP(w, httptest.NewRequest("GET", "/gatehouse/history?user=carol", nil))
	if got := historyIDs(t, w); !slices.Equal(got, []string{e.carolB.ID}) {
		t.Errorf("/gatehouse/history?user=carol = %v", got)
	}
	w = httptest.NewRecorder()
	e.api.ServeHTTP(w, httptest.NewRequest("GET", "/gatehouse/me/history", nil))
	if w.Code != 404 {
		t.Errorf("/gatehouse/me/history = %d, want 404", w.Code)
	}
}

// Issue 8, item 2: "my sessions" shows the viewer's own login history,
// ended sessions with how they ended, and nobody else's.
func TestMyPageShowsOwnHistory(t *testing.T) {
	e := newReachEnv(t)
	if w := e.do(req{as: e.alice, method: "DELETE", path: "/api/sessions/" + e.bobMac.ID, header: xhr}); w.Code != 204 {
		t.Fatalf("DELETE = %d", w.Code)
	}
	body := e.do(req{as: e.bob, method: "GET", path: "/", header: html}).Body.String()
	for _, want := range []string{"Sign-in history", "Lasted", "Session revoked", "Safari on macOS", "New York, US", "192.0.2.99", "198.51.100.51"} {
		if !strings.Contains(body, want) {
			t.Errorf("my sessions lacks %q", want)
		}
	}
	for _, not := range []string{"203.0.113.10", "198.51.100.50", "Amsterdam"} {
		if strings.Contains(body, not) {
			t.Errorf("my sessions shows another user's %q", not)
		}
	}
}
