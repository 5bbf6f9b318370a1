package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
)

// TestMain lets tests run this binary's main as a subprocess, to exercise
// the CLI exactly as users type it.
func TestMain(m *testing.M) {
	if os.Getenv("GATEHOUSE_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// gatehouse runs `gatehouse args...` and returns its output.
func gatehouse(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GATEHOUSE_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestCLI(t *testing.T) {
	d, admin := startTestDemo(t, "")
	addr := strings.TrimPrefix(admin, "http://")
	alice, bob := testflow.New(t), testflow.New(t)
	alice.Login(d.SiteURL, "/", "alice")
	bob.Login(d.SiteURL, "/", "bob")

	out, err := gatehouse(t, "sessions", "--address", addr)
	if err != nil {
		t.Fatalf("gatehouse sessions: %v\n%s", err, out)
	}
	if !strings.Contains(out, "alice@example.com") || !strings.Contains(out, "bob@example.com") || !strings.Contains(out, "Firefox on Linux") {
		t.Errorf("gatehouse sessions output lacks the sessions:\n%s", out)
	}

	out, err = gatehouse(t, "sessions", "--user", "alice", "--json", "--address", addr)
	if err != nil {
		t.Fatalf("gatehouse sessions --json: %v\n%s", err, out)
	}
	var aliceID string
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var s struct{ ID, User string }
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("--json line is not JSON: %q", sc.Text())
		}
		if s.User != "alice" {
			t.Errorf("--user alice listed %q", s.User)
		}
		aliceID = s.ID
		lines++
	}
	if lines != 1 {
		t.Fatalf("--user alice --json printed %d sessions, want 1:\n%s", lines, out)
	}

	if out, err := gatehouse(t, "revoke", "--user", "bob", "--address", addr); err != nil {
		t.Fatalf("gatehouse revoke --user bob: %v\n%s", err, out)
	}
	if p := bob.Do(http.MethodGet, d.SiteURL+"/", nil, false); p.Status != http.StatusUnauthorized {
		t.Errorf("bob after revoke --user: %d, want 401", p.Status)
	}
	if p := alice.Do(http.MethodGet, d.SiteURL+"/", nil, false); p.Status != http.StatusOK {
		t.Errorf("alice after bob's revocation: %d, want 200", p.Status)
	}
	// With --, whatever the id begins with (about one in 64 older ids
	// begins with "-").
	if out, err := gatehouse(t, "revoke", "--address", addr, "--", aliceID); err != nil {
		t.Fatalf("gatehouse revoke ID: %v\n%s", err, out)
	}
	if p := alice.Do(http.MethodGet, d.SiteURL+"/", nil, false); p.Status != http.StatusUnauthorized {
		t.Errorf("alice after revoke ID: %d, want 401", p.Status)
	}
	if out, err := gatehouse(t, "revoke", "no-such-session-id-xx", "--address", addr); err == nil {
		t.Errorf("revoking an unknown id succeeded:\n%s", out)
	}
	if out, err := gatehouse(t, "revoke", "--address", addr); err == nil {
		t.Errorf("revoke without an id succeeded:\n%s", out)
	}

	out, err = gatehouse(t, "events", "--since", "1h", "--address", addr)
	if err != nil {
		t.Fatalf("gatehouse events: %v\n%s", err, out)
	}
	for _, want := range []string{"login_succeeded", "session_revoked", "bob@example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("gatehouse events lacks %q:\n%s", want, out)
		}
	}
}

// Regression (issue 6, item 12): a session id can begin with "-", and
// `gatehouse revoke -F9e7...` then fails with "unknown shorthand flag".
// After --, such an id must reach the admin endpoint unchanged; without
// --, the error must point to it and nothing be ended. A fake admin
// endpoint records what the CLI asks, so the id need not exist.
func TestRevokeIDBeginningWithDash(t *testing.T) {
	const id = "-F9e7TbdUDEQd-h7OppmKg"
	var (
		mu   sync.Mutex
		asks []string
	)
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asks = append(asks, r.Method+" "+r.URL.EscapedPath())
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer admin.Close()
	addr := strings.TrimPrefix(admin.URL, "http://")
	asked := func() []string {
		mu.Lock()
		defer mu.Unlock()
		defer func() { asks = nil }()
		return asks
	}

	out, err := gatehouse(t, "revoke", "--address", addr, "--", id)
	if err != nil {
		t.Fatalf("gatehouse revoke --address %s -- %s: %v\n%s", addr, id, err, out)
	}
	if got, want := asked(), []string{"DELETE /gatehouse/sessions/" + id}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("admin endpoint was asked %q, want %q", got, want)
	}
	if !strings.Contains(out, "ended session "+id) {
		t.Errorf("output lacks the ended id:\n%s", out)
	}

	out, err = gatehouse(t, "revoke", "--address", addr, id)
	if err == nil {
		t.Errorf("revoke %s without -- succeeded; it must be refused as a flag:\n%s", id, out)
	}
	if !strings.Contains(out, "--") || !strings.Contains(out, "goes after --") {
		t.Errorf("error without -- does not point to --:\n%s", out)
	}
	if got := asked(); len(got) != 0 {
		t.Errorf("revoke without -- asked the admin endpoint %q", got)
	}

	out, err = gatehouse(t, "help", "revoke")
	if err != nil || !strings.Contains(out, "[--] <session-id>") {
		t.Errorf("revoke's usage does not mention --: %v\n%s", err, out)
	}
}
