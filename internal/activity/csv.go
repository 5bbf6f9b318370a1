package activity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"hash"
	"io"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// CSVColumns is the header of an export. SPEC fixes the first twelve, in
// this order, so that spreadsheets and scripts built on them keep working;
// the rest follow and may grow at the end.
var CSVColumns = []string{
	"time", "type", "user", "email", "session_id", "ip", "city", "country",
	"device", "inactivity_duration", "reason", "actor",
	"site", "detail", "mfa", "id", "duration",
}

// CSVWriter writes events as CSV rows, one at a time, so an export of any
// size runs in constant memory. It is not safe for concurrent use.
type CSVWriter struct {
	w    *csv.Writer
	mask *Mask
	row  []string
}

// NewCSVWriter returns a writer to w. A non-nil mask pseudonymises the
// rows (Mask).
func NewCSVWriter(w io.Writer, mask *Mask) *CSVWriter {
	return &CSVWriter{w: csv.NewWriter(w), mask: mask, row: make([]string, len(CSVColumns))}
}

// WriteHeader writes the column names.
func (c *CSVWriter) WriteHeader() error {
	return c.w.Write(CSVColumns)
}

// Write writes one event. Cells go through NeutraliseCell: the log holds
// what anyone could type (a user agent, a subject, a provider's error), and
// the reader opens the file in a spreadsheet.
func (c *CSVWriter) Write(e *Event) error {
	user, email, ip, actor, detail := e.User, e.Email, e.IP, e.Actor, e.Detail
	if c.mask != nil {
		// The subject names the user as surely as the email does.
		user, email, ip = c.mask.Email(user), c.mask.Email(email), c.mask.IP(ip)
		actor, detail = c.mask.Text(actor), c.mask.Text(detail)
	}
	r := c.row
	r[0] = e.Time.UTC().Format(time.RFC3339)
	r[1], r[2], r[3], r[4], r[5] = e.Type, user, email, e.SessionID, ip
	inactivity, duration := "", ""
	if EndsSession(e.Type) {
		// Seconds, as the API gives them; empty for events that end no
		// session, so that 0 means "ended at once".
		inactivity, duration = strconv.FormatInt(e.Inactivity, 10), strconv.FormatInt(e.Duration, 10)
	}
	r[6], r[7], r[8], r[9] = e.City, e.Country, e.Device, inactivity
	r[10], r[11], r[12], r[13] = e.Reason, actor, e.Site, detail
	r[14], r[15], r[16] = strconv.FormatBool(e.MFA), e.ID, duration
	for i := range r {
		r[i] = NeutraliseCell(r[i])
	}
	return c.w.Write(r)
}

// Flush writes buffered rows to the underlying writer and reports any
// error of this or an earlier write.
func (c *CSVWriter) Flush() error {
	c.w.Flush()
	return c.w.Error()
}

// NeutraliseCell makes v safe to open in a spreadsheet: a cell beginning
// with =, +, -, @, a tab or a carriage return is run as a formula by Excel,
// LibreOffice or Google Sheets (CSV injection), so it gets a leading single
// quote, which they show as text (OWASP's advice). Quoting commas, quotes
// and newlines is encoding/csv's job.
func NeutraliseCell(v string) string {
	if v == "" {
		return v
	}
	switch v[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + v
	}
	return v
}

// Mask pseudonymises exports for sharing beyond the security team: emails
// become a keyed hash (the same email, the same hash, within one key, so
// rows still correlate; without the key, no dictionary of likely emails
// reverses it), and IP addresses are cut to their /24 or /48 network.
// A Mask is not safe for concurrent use: it remembers the values it
// hashed, since an export names the same few users again and again.
type Mask struct {
	key  []byte
	mac  hash.Hash
	seen map[string]string
}

// maskMemo bounds what a Mask remembers.
const maskMemo = 4096

// NewMask returns a Mask keyed by key, which should be secret and stable
// (derived from the app secret) so that two exports correlate.
func NewMask(key []byte) *Mask {
	return &Mask{key: key, mac: hmac.New(sha256.New, key), seen: make(map[string]string)}
}

// maskPrefix marks a hashed value, so no one mistakes it for a real name.
const maskPrefix = "anon-"

// hash is the keyed hash of v: 64 bits of HMAC-SHA256 are plenty to tell
// the users of one export apart, and short enough to read.
func (m *Mask) hash(v string) string {
	if h, ok := m.seen[v]; ok {
		return h
	}
	m.mac.Reset()
	m.mac.Write([]byte(strings.ToLower(v)))
	h := maskPrefix + hex.EncodeToString(m.mac.Sum(nil)[:8])
	if len(m.seen) >= maskMemo {
		clear(m.seen)
	}
	m.seen[v] = h
	return h
}

// Email hashes an email (or a subject); empty stays empty.
func (m *Mask) Email(v string) string {
	if v == "" {
		return v
	}
	return m.hash(v)
}

// IP cuts an address to its network (/24 for IPv4, /48 for IPv6), written
// as CIDR; text that is not an address is hashed, since it may name
// someone.
func (m *Mask) IP(v string) string {
	if v == "" {
		return v
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return m.hash(v)
	}
	a = a.WithZone("").Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p.String()
}

// emailLike and ipLike find what Text replaces in free text. They are
// generous on purpose: masking a word too many is harmless, leaking an
// address is not.
var (
	emailLike = regexp.MustCompile(`[^\s@,;:"'<>()\[\]]+@[^\s@,;:"'<>()\[\]]+`)
	ipLike    = regexp.MustCompile(`[0-9A-Fa-f]*[:.][0-9A-Fa-f:.]*[0-9A-Fa-f]`)
	// escapedEmailLike finds an email query-escaped (alice%40example.com),
	// as the detail of an admin_export event records its user filter; it
	// stops at the separators of a query.
	escapedEmailLike = regexp.MustCompile(`[^\s@,;:"'<>()\[\]?&=]+%40[^\s@,;:"'<>()\[\]?&=]+`)
	// ipv4Like finds the dotted quads inside what ipLike found but could
	// not parse: an address with a port (192.0.2.7:443), one run into
	// letters or a further dot, or written with leading zeros.
	ipv4Like = regexp.MustCompile(`[0-9]{1,3}(?:\.[0-9]{1,3}){3}`)
)

// Text masks free text (a detail, an actor, a subject): the emails in it
// are hashed and the IP addresses cut. "system" and text without either
// pass unchanged.
func (m *Mask) Text(v string) string {
	if v == "" || !strings.ContainsAny(v, "@.:") {
		return v
	}
	if h, ok := m.seen[v]; ok {
		// An actor or subject seen before, hashed whole.
		return h
	}
	if !strings.ContainsAny(v, " \t\n,;<>()[]\"'") && strings.Count(v, "@") == 1 {
		// One email alone, as actors are: the regexp would find just it.
		return m.hash(v)
	}
	v = emailLike.ReplaceAllStringFunc(v, m.hash)
	if strings.Contains(v, "%40") {
		// Regression (found by FuzzCSV): masked exports showed the
		// escaped emails of admin_export details whole. The hash is the
		// address's, so both spellings correlate.
		v = escapedEmailLike.ReplaceAllStringFunc(v, func(s string) string {
			if u, err := url.QueryUnescape(s); err == nil {
				s = u
			}
			return m.hash(s)
		})
	}
	return ipLike.ReplaceAllStringFunc(v, func(s string) string {
		if _, err := netip.ParseAddr(s); err == nil {
			return m.IP(s)
		}
		// Regression (found by FuzzCSV): "192.0.2.7:443" or
		// "192.0.2.7e" did not parse, and passed unmasked.
		return ipv4Like.ReplaceAllStringFunc(s, func(q string) string {
			var b [4]byte
			for i, part := range strings.Split(q, ".") {
				n, err := strconv.Atoi(part)
				if err != nil || n > 255 {
					return q
				}
				b[i] = byte(n)
			}
			return m.IP(netip.AddrFrom4(b).String())
		})
	})
}
