package activity

import (
	"bytes"
	"encoding/csv"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// readBack parses what a CSVWriter wrote.
func readBack(t testing.TB, b []byte) [][]string {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = len(CSVColumns)
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("reading the export back: %v\n%s", err, b)
	}
	return recs
}

func writeOne(t testing.TB, e *Event, m *Mask) [][]string {
	t.Helper()
	var buf bytes.Buffer
	w := NewCSVWriter(&buf, m)
	if err := w.WriteHeader(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(e); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return readBack(t, buf.Bytes())
}

func TestCSVLeadingColumns(t *testing.T) {
	// SPEC fixes these, in this order.
	want := "time,type,user,email,session_id,ip,city,country,device,inactivity_duration,reason,actor"
	if got := strings.Join(CSVColumns[:12], ","); got != want {
		t.Fatalf("CSVColumns start %q, want %q", got, want)
	}
	e := &Event{ID: "42", Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.FixedZone("x", 3600)), Type: Logout,
		User: "sub1", Email: "a@example.com", SessionID: "sid", Site: "app.example.com", IP: "192.0.2.7",
		City: "Amsterdam", Country: "NL", Device: "Firefox on Linux", Inactivity: 1860, Duration: 7200, Reason: "r",
		Actor: "system", Detail: "d", MFA: true}
	recs := writeOne(t, e, nil)
	wantRow := []string{"2026-05-01T11:00:00Z", "logout", "sub1", "a@example.com", "sid", "192.0.2.7", "Amsterdam",
		"NL", "Firefox on Linux", "1860", "r", "system", "app.example.com", "d", "true", "42", "7200"}
	if !slices.Equal(recs[1], wantRow) {
		t.Fatalf("row = %q\nwant  %q", recs[1], wantRow)
	}
}

// Issue 8, item 3: hostile values survive the round trip as text, and
// none reaches a spreadsheet as a formula.
func TestCSVHostileValues(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a,b", "a,b"},
		{`say "hi"`, `say "hi"`},
		{"line1\nline2", "line1\nline2"},
		{"=HYPERLINK(\"http://evil\",\"x\")", "'=HYPERLINK(\"http://evil\",\"x\")"},
		{"+1+2", "'+1+2"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"a=1", "a=1"},
		{"Zürich ☃ 東京", "Zürich ☃ 東京"},
		{"'already", "'already"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e := &Event{Type: tt.in, User: tt.in, Email: tt.in, SessionID: tt.in, IP: tt.in, City: tt.in,
				Country: tt.in, Device: tt.in, Reason: tt.in, Actor: tt.in, Site: tt.in,
				Detail: tt.in, ID: tt.in}
			row := writeOne(t, e, nil)[1]
			for i, cell := range row {
				switch CSVColumns[i] {
				case "time", "mfa", "inactivity_duration", "duration":
					// Written by us, not from hostile text.
					continue
				}
				if i == 0 {
					continue
				}
				// encoding/csv reads \r\n inside quotes as \n; a lone \r
				// survives.
				if cell != tt.want {
					t.Errorf("%s = %q, want %q", CSVColumns[i], cell, tt.want)
				}
			}
		})
	}
}

func TestNeutraliseCell(t *testing.T) {
	for _, c := range "=+-@\t\r" {
		v := string(c) + "x"
		if got := NeutraliseCell(v); got != "'"+v {
			t.Errorf("NeutraliseCell(%q) = %q, want %q", v, got, "'"+v)
		}
	}
	for _, v := range []string{"", "x=1", " =1", "'=1", "é"} {
		if got := NeutraliseCell(v); got != v {
			t.Errorf("NeutraliseCell(%q) = %q, want it unchanged", v, got)
		}
	}
}

// Issue 8, item 3: mask=true hides who and where, and keeps rows that
// belong together recognisable.
func TestCSVMask(t *testing.T) {
	m := NewMask([]byte("k1"))
	e := &Event{Type: EndedNewLogin, User: "sub-alice", Email: "Alice@Example.com", IP: "192.0.2.77",
		Actor: "admin@example.com", Detail: "signed in from 198.51.100.9, used from 2001:db8:1:2::5 by bob@example.com"}
	row := writeOne(t, e, m)[1]
	col := func(name string) string { return row[slices.Index(CSVColumns, name)] }
	for _, name := range []string{"user", "email", "actor", "detail"} {
		for _, secret := range []string{"alice", "Alice", "admin@", "bob@", "198.51.100.9", "2001:db8:1:2::5", "192.0.2.77"} {
			if strings.Contains(col(name), secret) {
				t.Errorf("masked %s = %q still holds %q", name, col(name), secret)
			}
		}
	}
	if got := col("ip"); got != "192.0.2.0/24" {
		t.Errorf("masked ip = %q, want 192.0.2.0/24", got)
	}
	if d := col("detail"); !strings.Contains(d, "198.51.100.0/24") || !strings.Contains(d, "2001:db8:1::/48") {
		t.Errorf("masked detail = %q, want the networks", d)
	}
	// Same email, any case, same hash; another key, another hash.
	if m.Email("alice@example.com") != col("email") {
		t.Errorf("hash depends on case: %q vs %q", m.Email("alice@example.com"), col("email"))
	}
	if NewMask([]byte("k2")).Email("alice@example.com") == col("email") {
		t.Error("hash does not depend on the key")
	}
	if got := m.Text(ActorSystem); got != ActorSystem {
		t.Errorf("Text(system) = %q", got)
	}
	for in, want := range map[string]string{"2001:db8:aa:bb::1": "2001:db8:aa::/48", "::ffff:10.1.2.3": "10.1.2.0/24", "fe80::1%eth0": "fe80::/48"} {
		if got := m.IP(in); got != want {
			t.Errorf("IP(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzCSV: whatever the fields hold, an export reads back as one row of
// the right width, each cell the value itself or the value neutralised,
// and no cell starts a formula.
func FuzzCSV(f *testing.F) {
	for _, s := range []string{"", "a,b", "\"", "\n", "=1", "+", "-", "@", "\t", "\r", "\r\n", "é", "\xff"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		e := &Event{Type: a, User: b, Email: a, IP: b, Reason: a, Detail: b, Device: a + b}
		var buf bytes.Buffer
		w := NewCSVWriter(&buf, nil)
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		r := csv.NewReader(&buf)
		r.FieldsPerRecord = len(CSVColumns)
		rec, err := r.Read()
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if _, err := r.Read(); err == nil {
			t.Fatal("one event gave two rows")
		}
		for i, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("%s = %q starts a formula", CSVColumns[i], cell)
			}
		}
		// encoding/csv turns \r\n into \n inside a quoted field.
		norm := func(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }
		for i, in := range map[int]string{1: a, 2: b, 10: a, 13: b} {
			got := rec[i]
			if got != norm(in) && got != norm("'"+in) {
				t.Errorf("%s = %q, want %q", CSVColumns[i], rec[i], in)
			}
		}
	})
}

// BenchmarkCSVWriter is the writer alone, without a store: the export's
// own share of SPEC's ≥ 100k rows/s.
func BenchmarkCSVWriter(b *testing.B) {
	e := &Event{ID: "1714564800000-0", Time: time.Now(), Type: LoginSucceeded, User: "user-42", Email: "user-42@example.com",
		SessionID: "abcdefghijklmnopqrstuv", Site: "app.example.com", IP: "192.0.2.42", City: "Amsterdam", Country: "NL",
		Device: "Firefox on Linux", Actor: "user-42@example.com", MFA: true}
	for _, masked := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "masked"}[masked], func(b *testing.B) {
			var m *Mask
			if masked {
				m = NewMask([]byte("k"))
			}
			w := NewCSVWriter(io.Discard, m)
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Write(e); err != nil {
					b.Fatal(err)
				}
			}
			_ = w.Flush()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
