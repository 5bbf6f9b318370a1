package caddymodule

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Issue 8, item 2: gatehouse history pages through /gatehouse/history
// with the user and since filters, and prints one line a row.
func TestPrintHistory(t *testing.T) {
	pages := map[string]string{
		"": `{"items":[{"session_id":"s2","user":"bob","email":"bob@example.com","site":"app.example.com","ip":"192.0.2.1",
			"city":"Berlin","country":"DE","device":"Firefox on Linux","mfa":true,"login_time":"2026-03-01T10:00:00Z","end_time":"",
			"duration":90,"inactivity_duration":30,"status":"active"}],"next_cursor":"c1"}`,
		"c1": `{"items":[{"session_id":"s1","user":"bob","login_time":"2026-02-28T10:00:00Z","end_time":"2026-02-28T11:00:00Z",
			"duration":3600,"inactivity_duration":60,"status":"session_expired_idle"}],"next_cursor":""}`,
	}
	from := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	var asked []url.Values
	get := func(uri string) ([]byte, error) {
		path, raw, _ := strings.Cut(uri, "?")
		if path != "/gatehouse/history" {
			t.Fatalf("asked for %s", uri)
		}
		q, _ := url.ParseQuery(raw)
		asked = append(asked, q)
		return []byte(pages[q.Get("cursor")]), nil
	}
	var out bytes.Buffer
	if err := printHistory(&out, get, "bob@example.com", from, false); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 2 || asked[0].Get("user") != "bob@example.com" || asked[0].Get("from") != "2026-02-01T00:00:00Z" || asked[1].Get("cursor") != "c1" {
		t.Errorf("queries = %v", asked)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SIGNED IN") {
		t.Fatalf("output:\n%s", out.String())
	}
	for _, want := range []string{"active", "Berlin, DE", "Firefox on Linux", "yes", "1m30s"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row 1 %q lacks %q", lines[1], want)
		}
	}
	if !strings.Contains(lines[2], "session_expired_idle") || !strings.Contains(lines[2], "1h0m0s") {
		t.Errorf("row 2 = %q", lines[2])
	}

	out.Reset()
	asked = nil
	if err := printHistory(&out, get, "", from, true); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 2 || !strings.HasPrefix(out.String(), `{"session_id":"s2"`) {
		t.Errorf("--json output:\n%s", out.String())
	}
}
