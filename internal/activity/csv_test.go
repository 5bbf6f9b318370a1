package activity

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"io"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
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

// Regression (found by FuzzCSV): an export's filter in the detail of an
// admin_export event kept its query-escaped email, and an address with a
// port (or run into letters) was not masked.
func TestMaskTextEscapedAndPorts(t *testing.T) {
	m := NewMask([]byte("k1"))
	tests := []struct{ in, want string }{
		{"events.csv?ip=10.1.2.&user=alice%40example.com&mask=true",
			"events.csv?ip=10.1.2.&user=" + m.Email("alice@example.com") + "&mask=true"},
		{"history.csv?user=Bob%2Btag%40Example.com", "history.csv?user=" + m.Email("bob+tag@example.com")},
		{"dial tcp 192.0.2.8:443: refused", "dial tcp 192.0.2.0/24:443: refused"},
		{"from 192.0.2.7abc and 010.0.0.1", "from 192.0.2.0/24abc and 10.0.0.0/24"},
		{"version 1.2.3.4.5", "version 1.2.3.0/24.5"},
		{"999.1.1.1:80", "999.1.1.1:80"},
	}
	for _, tt := range tests {
		if got := m.Text(tt.in); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzCSV writes one event of fuzzed fields, plain or masked, and reads it
// back. Plain: one row of the right width, each cell exactly its field,
// neutralised when (and only when) it would start a formula; the time in
// RFC 3339 UTC, the durations only on events that end a session. Masked:
// the user, email and IP columns hold only a hash or a network, and the
// detail, into which an email (raw or query-escaped, as an export's
// filter records it) and an address (alone or with a port) are spliced
// among fuzzed text, holds neither. No cell ever starts a formula.
func FuzzCSV(f *testing.F) {
	for _, s := range []string{"", "a,b", "\"", "\n", "=1", "+", "-", "@", "\t", "\r", "\r\n", "é", "\xff"} {
		f.Add(s, s, s, s, s, int64(1767225600), false, "", "", uint32(0), uint8(0))
	}
	f.Add(Logout, "sub-1", "Alice@Example.com", "192.0.2.7", "events.csv?user=", int64(0), true, "alice", "example.com", uint32(0xc0000207), uint8(1))
	f.Add(EndedNewLogin, "x", "", "2001:db8::1", "signed in from ", int64(253402300799), true, "bob.o+tag", "mail.example.org", uint32(0x0a000001), uint8(2))
	f.Add(AdminExport, "", "", "not an ip", "history.csv?mask=true&user=", int64(-1), false, "c", "d.e", uint32(0xffffffff), uint8(3))
	m := NewMask([]byte("fuzz key"))
	f.Fuzz(func(t *testing.T, typ, user, email, ip, text string, unix int64, masked bool, local, domain string, v4 uint32, how uint8) {
		// The detail: text with an email and an IPv4 address spliced in.
		local, domain = emailPart(local), emailPart(domain)
		addr := netip.AddrFrom4([4]byte{byte(v4 >> 24), byte(v4 >> 16), byte(v4 >> 8), byte(v4)})
		var secrets []string
		detail := text
		if local != "" && strings.Contains(domain, ".") {
			mail := local + "@" + domain
			secrets = append(secrets, mail, url.QueryEscape(mail))
			if how&1 != 0 {
				mail = url.QueryEscape(mail)
			}
			detail += mail + " "
		}
		if v4&0xff != 0 {
			// A /24 network ending in .0 names no one; another address
			// does, unless digits or dots run into it ("00.0.0.290" is
			// no address, nor does it show 0.0.0.29).
			glued := func(s string, at int) bool { return s != "" && strings.ContainsRune("0123456789.", rune(s[at])) }
			if !glued(detail, len(detail)-1) && (how&2 != 0 || !glued(text, 0)) {
				secrets = append(secrets, addr.String())
			}
			detail += addr.String()
			if how&2 != 0 {
				detail += ":443"
			}
		}
		detail += text
		at := time.Unix(unix%253402300800, 0)
		e := &Event{ID: user + "-0", Time: at, Type: typ, User: user, Email: email, SessionID: text, Site: email,
			IP: ip, City: text, Country: typ, Device: user + email, Inactivity: unix, Duration: -unix,
			Reason: text, Actor: email, Detail: detail, MFA: masked}
		var mask *Mask
		if masked {
			mask = m
		}
		var buf bytes.Buffer
		w := NewCSVWriter(&buf, mask)
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
		if _, err := r.Read(); err != io.EOF {
			t.Fatalf("one event gave more than one row: %v", err)
		}
		col := func(name string) string { return rec[slices.Index(CSVColumns, name)] }
		for i, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("%s = %q starts a formula", CSVColumns[i], cell)
			}
		}

		// Columns written by us.
		if got, want := col("time"), at.UTC().Format(time.RFC3339); got != want {
			t.Errorf("time = %q, want %q", got, want)
		}
		if got, want := col("mfa"), strconv.FormatBool(masked); got != want {
			t.Errorf("mfa = %q, want %q", got, want)
		}
		inactivity, duration := "", ""
		if EndsSession(typ) {
			inactivity, duration = strconv.FormatInt(unix, 10), strconv.FormatInt(-unix, 10)
		}
		if col("inactivity_duration") != neutral(inactivity) || col("duration") != neutral(duration) {
			t.Errorf("durations = %q, %q, want %q, %q", col("inactivity_duration"), col("duration"), inactivity, duration)
		}

		// Columns copied, neutralised, masked or not.
		copied := map[string]string{"type": typ, "session_id": text, "site": email, "city": text, "country": typ,
			"device": user + email, "reason": text, "id": user + "-0"}
		if !masked {
			copied["user"], copied["email"], copied["ip"], copied["actor"], copied["detail"] = user, email, ip, email, detail
		}
		for name, in := range copied {
			if got := col(name); got != neutral(in) {
				t.Errorf("%s = %q, want %q", name, got, neutral(in))
			}
		}
		if !masked {
			return
		}
		for name, in := range map[string]string{"user": user, "email": email} {
			if got := col(name); (in == "") != (got == "") || in != "" && !isHash(got) {
				t.Errorf("masked %s of %q = %q, want a hash", name, in, got)
			}
		}
		if strings.EqualFold(user, email) && col("user") != col("email") {
			t.Errorf("user %q and email %q hash apart: %q, %q", user, email, col("user"), col("email"))
		}
		switch got := col("ip"); {
		case (ip == "") != (got == ""):
			t.Errorf("masked ip of %q = %q", ip, got)
		case ip == "":
		default:
			a, err := netip.ParseAddr(ip)
			if err != nil {
				if !isHash(got) {
					t.Errorf("masked ip of %q = %q, want a hash", ip, got)
				}
				break
			}
			a = a.WithZone("").Unmap()
			p, err := netip.ParsePrefix(got)
			if err != nil || !p.Contains(a) || p.Bits() != map[bool]int{true: 24, false: 48}[a.Is4()] {
				t.Errorf("masked ip of %q = %q, want its /24 or /48", ip, got)
			}
		}
		for _, name := range []string{"actor", "detail"} {
			for _, secret := range secrets {
				if strings.Contains(col(name), secret) {
					t.Errorf("masked %s = %q still holds %q", name, col(name), secret)
				}
			}
		}
	})
}

// emailPart keeps the characters of s that common addresses use.
func emailPart(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || strings.ContainsRune(".-_+", r) {
			return r
		}
		return -1
	}, strings.ToLower(s))
}

// neutral is what a CSV reader gets back for a cell holding v: v, with a
// quote before a formula character, and \r\n read as \n.
func neutral(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		v = "'" + v
	}
	return strings.ReplaceAll(v, "\r\n", "\n")
}

// isHash tells whether v is a value Mask hashed.
func isHash(v string) bool {
	h, ok := strings.CutPrefix(v, maskPrefix)
	_, err := hex.DecodeString(h)
	return ok && len(h) == 16 && err == nil
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
