package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
)

type sessionList struct {
	Items []struct {
		ID      string `json:"id"`
		User    string `json:"user"`
		Current bool   `json:"current"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func decodeList(t *testing.T, p testflow.Page) sessionList {
	t.Helper()
	var l sessionList
	if err := json.Unmarshal([]byte(p.Body), &l); err != nil {
		t.Fatalf("not a list (status %d): %.200s", p.Status, p.Body)
	}
	return l
}

// The JSON API through the whole stack, as each role: signed in through
// the provider, checked by the gateway, answered by the admin package.
func TestAPIRoles(t *testing.T) {
	d, _ := startTestDemo(t, "")
	site := d.SiteURL
	alice, bob, bob2 := testflow.New(t), testflow.New(t), testflow.New(t)
	alice.Login(site, "/", "alice")
	bob.Login(site, "/", "bob")
	bob2.Login(site, "/", "bob")
	xhr := []string{"X-Requested-With", "XMLHttpRequest"}

	all := decodeList(t, alice.Do(http.MethodGet, site+"/.gatehouse/api/sessions", nil, false))
	if len(all.Items) != 3 {
		t.Fatalf("admin sees %d sessions, want 3", len(all.Items))
	}
	var aliceID string
	for _, s := range all.Items {
		if s.User == "alice" {
			aliceID = s.ID
		}
	}

	// bob is not an admin.
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/.gatehouse/api/sessions"},
		{http.MethodGet, "/.gatehouse/api/sessions/" + aliceID},
		{http.MethodDelete, "/.gatehouse/api/sessions/" + aliceID},
		{http.MethodDelete, "/.gatehouse/api/users/alice/sessions"},
		{http.MethodGet, "/.gatehouse/api/users"},
		{http.MethodGet, "/.gatehouse/api/events"},
	} {
		if p := bob.Do(c.method, site+c.path, nil, false, xhr...); p.Status != http.StatusForbidden {
			t.Errorf("bob %s %s: %d, want 403", c.method, c.path, p.Status)
		}
	}
	// Under /me, alice's id does not exist for bob.
	if p := bob.Do(http.MethodDelete, site+"/.gatehouse/api/me/sessions/"+aliceID, nil, false, xhr...); p.Status != http.StatusNotFound {
		t.Errorf("bob deleting alice's session via /me: %d, want 404", p.Status)
	}
	if p := bob.Do(http.MethodGet, site+"/.gatehouse/api/me/sessions/"+aliceID, nil, false); p.Status != http.StatusNotFound {
		t.Errorf("bob reading alice's session via /me: %d, want 404", p.Status)
	}
	mine := decodeList(t, bob.Do(http.MethodGet, site+"/.gatehouse/api/me/sessions", nil, false))
	if len(mine.Items) != 2 {
		t.Fatalf("bob sees %d own sessions, want 2", len(mine.Items))
	}
	// Cross-site attempts to sign bob's other device out are refused.
	for _, hdr := range [][]string{
		nil,
		{"Origin", "https://evil.example"},
		{"X-Requested-With", "XMLHttpRequest", "Origin", "https://evil.example"},
		{"X-Gatehouse-CSRF", "guessed-token"},
	} {
		if p := bob.Do(http.MethodDelete, site+"/.gatehouse/api/me/sessions?others=true", nil, false, hdr...); p.Status != http.StatusForbidden {
			t.Errorf("DELETE others with %v: %d, want 403", hdr, p.Status)
		}
	}
	if p := bob2.Do(http.MethodGet, site+"/", nil, false); p.Status != http.StatusOK {
		t.Fatalf("bob's other device was signed out by a refused request: %d", p.Status)
	}
	if p := bob.Do(http.MethodDelete, site+"/.gatehouse/api/me/sessions?others=true", nil, false, "X-Requested-With", "XMLHttpRequest", "Origin", site); p.Status != http.StatusNoContent {
		t.Fatalf("DELETE others, same origin: %d %s", p.Status, p.Body)
	}
	if p := bob2.Do(http.MethodGet, site+"/", nil, false); p.Status != http.StatusUnauthorized {
		t.Errorf("bob's other device after sign-out of others: %d, want 401", p.Status)
	}
	if p := bob.Do(http.MethodGet, site+"/", nil, false); p.Status != http.StatusOK {
		t.Errorf("bob's current device after sign-out of others: %d, want 200", p.Status)
	}
	if p := alice.Do(http.MethodGet, site+"/", nil, false); p.Status != http.StatusOK {
		t.Errorf("alice after bob's sign-out of others: %d, want 200", p.Status)
	}
	// Unauthenticated API calls get 401, never the data.
	if p := testflow.New(t).Do(http.MethodGet, site+"/.gatehouse/api/sessions", nil, false); p.Status != http.StatusUnauthorized {
		t.Errorf("anonymous API call: %d, want 401", p.Status)
	}
}
