package main

import (
	"encoding/csv"
	"strings"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
)

// Issue 8, item 3: `gatehouse events --csv` prints the export of Caddy's
// admin endpoint, --mask pseudonymises it, and both are in the log as
// admin_export events by "system".
func TestCLIEventsCSV(t *testing.T) {
	d, admin := startTestDemo(t, "")
	addr := strings.TrimPrefix(admin, "http://")
	testflow.New(t).Login(d.SiteURL, "/", "alice")

	out, err := gatehouse(t, "events", "--csv", "--type", "login_succeeded", "--address", addr)
	if err != nil {
		t.Fatalf("gatehouse events --csv: %v\n%s", err, out)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, out)
	}
	if strings.Join(recs[0], ",") != strings.Join(activity.CSVColumns, ",") || len(recs) != 2 || recs[1][1] != "login_succeeded" || recs[1][3] != "alice@example.com" {
		t.Fatalf("gatehouse events --csv =\n%s", out)
	}

	out, err = gatehouse(t, "events", "--csv", "--mask", "--address", addr)
	if err != nil {
		t.Fatalf("gatehouse events --csv --mask: %v\n%s", err, out)
	}
	if strings.Contains(out, "alice@") || !strings.Contains(out, "anon-") {
		t.Errorf("masked export shows the email or no hash:\n%s", out)
	}
	if out, err := gatehouse(t, "events", "--mask", "--address", addr); err == nil {
		t.Errorf("--mask without --csv succeeded:\n%s", out)
	}

	out, err = gatehouse(t, "events", "--type", "admin_export", "--address", addr)
	if err != nil {
		t.Fatalf("gatehouse events: %v\n%s", err, out)
	}
	if n := strings.Count(out, "admin_export"); n != 2 {
		t.Errorf("%d admin_export events, want 2:\n%s", n, out)
	}
}

// Issue 8, item 3: gatehouse history --csv streams the login history.
func TestCLIHistoryCSV(t *testing.T) {
	d, admin := startTestDemo(t, "")
	addr := strings.TrimPrefix(admin, "http://")
	testflow.New(t).Login(d.SiteURL, "/", "alice")
	testflow.New(t).Login(d.SiteURL, "/", "bob")

	out, err := gatehouse(t, "history", "--csv", "--user", "alice@example.com", "--address", addr)
	if err != nil {
		t.Fatalf("gatehouse history --csv: %v\n%s", err, out)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, out)
	}
	if recs[0][0] != "session_id" || len(recs) != 2 || recs[1][1] != "alice" || recs[1][len(recs[1])-1] != "active" {
		t.Fatalf("gatehouse history --csv =\n%s", out)
	}
	out, err = gatehouse(t, "history", "--csv", "--mask", "--address", addr)
	if err != nil {
		t.Fatalf("gatehouse history --csv --mask: %v\n%s", err, out)
	}
	if strings.Contains(out, "@example.com") || strings.Count(out, "anon-") < 2 {
		t.Errorf("masked history shows emails or no hashes:\n%s", out)
	}
	if out, err := gatehouse(t, "history", "--mask", "--address", addr); err == nil {
		t.Errorf("--mask without --csv succeeded:\n%s", out)
	}
}
