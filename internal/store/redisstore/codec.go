package redisstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// maxValue is the longest value Redis keeps in a listpack-encoded hash by
// default (hash-max-listpack-value). One longer value turns the whole hash
// into a hashtable, which costs about three times the memory, so longer
// values are split into chunks: field f holds the first maxValue bytes,
// f1 the next, and so on. See doc.go.
const maxValue = 64

// Hash field names of a session; doc.go lists them. No base name ends
// in a digit, so chunk names cannot collide with them.
const (
	fUser     = "u"
	fEmail    = "e"
	fVerified = "v" // "1" when the email is verified; absent otherwise
	fName     = "n"
	fUsername = "p"
	fGroups   = "g"
	fSite     = "s"
	fCreated  = "c"
	fLast     = "l"
	fExpires  = "x"
	fIdle     = "t"
	fIP       = "i"
	fLastIP   = "j"
	fDevice   = "a" // reference to the interned device summary
	fCity     = "y"
	fRegion   = "r"
	fCountry  = "k"
	fLat      = "la"
	fLon      = "lo"
	fIDPSID   = "z"
	fIssuer   = "o"
	fAMR      = "am" // authentication methods, joined by groupSep
	fMFA      = "mf" // "1" when the sign-in had a second factor; absent otherwise
)

// groupSep joins groups; the ASCII unit separator does not occur in group
// names, unlike commas and spaces.
const groupSep = "\x1f"

// appendField adds name=v to a flat HSET argument list, in chunks when v is
// long; empty values are left out (absent means empty).
func appendField(dst []any, name, v string) []any {
	if v == "" {
		return dst
	}
	for i := 0; len(v) > 0; i++ {
		n := min(len(v), maxValue)
		f := name
		if i > 0 {
			f = name + strconv.Itoa(i)
		}
		dst = append(dst, f, v[:n])
		v = v[n:]
	}
	return dst
}

func appendMillis(dst []any, name string, t time.Time) []any {
	if t.IsZero() {
		return dst
	}
	return append(dst, name, t.UnixMilli())
}

func appendFloat(dst []any, name string, f float64) []any {
	if f == 0 {
		return dst
	}
	return append(dst, name, strconv.FormatFloat(f, 'g', -1, 64))
}

// encodeSession returns the HSET field/value pairs for s (tokens and the
// device summary excluded; see deviceRef).
func encodeSession(s *session.Session) []any {
	// Redis finds a field of a listpack hash by scanning from the start:
	// the fields that Touch and the filtered listings read come first.
	f := make([]any, 0, 40)
	f = appendMillis(f, fLast, s.LastAccess)
	f = appendMillis(f, fCreated, s.CreatedAt)
	f = appendMillis(f, fExpires, s.ExpiresAt)
	if ms := s.IdleTimeout.Milliseconds(); ms > 0 {
		f = append(f, fIdle, ms)
	}
	f = appendField(f, fUser, s.User)
	f = appendField(f, fIP, s.IP)
	// Most sessions stay on their login address; storing the last IP only
	// when it differs saves a field. Present-but-empty means empty.
	if s.LastIP != s.IP {
		f = append(f, fLastIP, s.LastIP)
	}
	f = appendField(f, fCountry, s.Country)
	f = appendField(f, fSite, s.Site)
	if ref, _ := deviceRef(&s.Device); ref != "" {
		f = append(f, fDevice, ref)
	}
	f = appendField(f, fEmail, s.Email)
	if s.EmailVerified {
		f = append(f, fVerified, "1")
	}
	f = appendField(f, fName, s.Name)
	f = appendField(f, fUsername, s.Username)
	f = appendField(f, fGroups, strings.Join(s.Groups, groupSep))
	f = appendField(f, fCity, s.City)
	f = appendField(f, fRegion, s.Region)
	f = appendFloat(f, fLat, s.Latitude)
	f = appendFloat(f, fLon, s.Longitude)
	f = appendField(f, fIDPSID, s.IDPSessionID)
	f = appendField(f, fIssuer, s.IssuerKey)
	f = appendField(f, fAMR, strings.Join(s.AMR, groupSep))
	if s.MFA {
		f = append(f, fMFA, "1")
	}
	return f
}

// deviceRef returns the interned form of a device summary: the value
// stored once under the device key prefix, and the reference to it that
// the sessions using it store. Browsers of one make and version send the
// same user agent, so a million sessions share a few thousand of these
// instead of each carrying its own 100-200 bytes. Both are empty for an
// empty summary.
func deviceRef(d *session.Device) (ref, value string) {
	if *d == (session.Device{}) {
		return "", ""
	}
	b, _ := json.Marshal([4]string{d.UserAgent, d.Browser, d.OS, d.Device}) // strings always marshal
	sum := sha256.Sum256(b)
	// 72 bits: a collision among even millions of distinct user agents
	// is out of reach, and would only mislabel a device.
	return base64.RawURLEncoding.EncodeToString(sum[:9]), string(b)
}

func decodeDevice(v string) (session.Device, error) {
	if v == "" {
		return session.Device{}, nil
	}
	var a [4]string
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		return session.Device{}, fmt.Errorf("decoding device summary: %w", err)
	}
	return session.Device{UserAgent: a[0], Browser: a[1], OS: a[2], Device: a[3]}, nil
}

func appendLocation(f []any, l *session.Location) []any {
	f = appendField(f, fCity, l.City)
	f = appendField(f, fRegion, l.Region)
	f = appendField(f, fCountry, l.Country)
	f = appendFloat(f, fLat, l.Latitude)
	return appendFloat(f, fLon, l.Longitude)
}

// fields is a decoded HGETALL reply.
type fields map[string]string

func toFields(flat []any) (fields, error) {
	if len(flat)%2 != 0 {
		return nil, fmt.Errorf("decoding session: odd hash reply length %d", len(flat))
	}
	m := make(fields, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		k, ok1 := flat[i].(string)
		v, ok2 := flat[i+1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("decoding session: unexpected hash reply types %T, %T", flat[i], flat[i+1])
		}
		m[k] = v
	}
	return m, nil
}

// str joins a field and its chunks.
func (m fields) str(name string) string {
	v := m[name]
	if _, ok := m[name+"1"]; !ok {
		return v
	}
	var b strings.Builder
	b.WriteString(v)
	for i := 1; ; i++ {
		c, ok := m[name+strconv.Itoa(i)]
		if !ok {
			break
		}
		b.WriteString(c)
	}
	return b.String()
}

func (m fields) millis(name string) (time.Time, error) {
	v, ok := m[name]
	if !ok || v == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("decoding session field %s: %w", name, err)
	}
	return time.UnixMilli(n).UTC(), nil
}

func (m fields) float(name string) (float64, error) {
	v, ok := m[name]
	if !ok || v == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("decoding session field %s: %w", name, err)
	}
	return f, nil
}

// decodeSession rebuilds a session from its hash fields, tokens and
// interned device summary.
func decodeSession(id string, m fields, tokens []byte, dev string) (*session.Session, error) {
	s := &session.Session{
		ID:       id,
		User:     m.str(fUser),
		Email:    m.str(fEmail),
		Name:     m.str(fName),
		Username: m.str(fUsername),
		Site:     m.str(fSite),
		IP:       m.str(fIP),
		Location: session.Location{
			City:    m.str(fCity),
			Region:  m.str(fRegion),
			Country: m.str(fCountry),
		},
		IDPSessionID:  m.str(fIDPSID),
		IssuerKey:     m.str(fIssuer),
		EmailVerified: m[fVerified] == "1",
		MFA:           m[fMFA] == "1",
	}
	if len(tokens) > 0 {
		s.Tokens = tokens
	}
	if g := m.str(fGroups); g != "" {
		s.Groups = strings.Split(g, groupSep)
	}
	if a := m.str(fAMR); a != "" {
		s.AMR = strings.Split(a, groupSep)
	}
	s.LastIP = s.IP
	if v, ok := m[fLastIP]; ok {
		s.LastIP = v
	}
	var err error
	if s.Device, err = decodeDevice(dev); err != nil {
		return nil, fmt.Errorf("decoding session %s: %w", id, err)
	}
	if s.CreatedAt, err = m.millis(fCreated); err != nil {
		return nil, err
	}
	if s.LastAccess, err = m.millis(fLast); err != nil {
		return nil, err
	}
	if s.ExpiresAt, err = m.millis(fExpires); err != nil {
		return nil, err
	}
	if v := m[fIdle]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("decoding session field %s: %w", fIdle, err)
		}
		s.IdleTimeout = time.Duration(n) * time.Millisecond
	}
	if s.Latitude, err = m.float(fLat); err != nil {
		return nil, err
	}
	if s.Longitude, err = m.float(fLon); err != nil {
		return nil, err
	}
	return s, nil
}

// deadlineMillis is s.Deadline() in Unix milliseconds, 0 for none. The Lua
// scripts compute the same from the stored fields.
func deadlineMillis(s *session.Session) int64 {
	d := s.Deadline()
	if d.IsZero() {
		return 0
	}
	return d.UnixMilli()
}

// Event stream fields, in the order encodeEvent packs them. New fields
// go at the end (du, the duration, came last); entries written before a
// field existed lack it and read it as empty. mf (MFA) is "1" or "". in
// and du are whole seconds, "" for 0; in written before issue 8 is a Go
// duration string ("31m0s") and still reads.
var eventFields = []string{"t", "y", "u", "e", "s", "si", "ip", "ci", "co", "d", "in", "r", "a", "dt", "mf", "du"}

// packedField is the one field of an entry encodeEvent writes: its value
// is eventPackV1 and then every one of eventFields' values in their order,
// each as a uvarint length and its bytes. Entries written before it carry
// eventFields as fields of their own, and still read (setEventField).
//
// One value instead of sixteen is what makes reading events cheap: Redis
// replies with 3 strings an entry instead of 33, looks an entry up by ID
// in its stream node through a sixth of the elements, and the client
// allocates one string an event, whose fields are pieces of it (doc.go,
// "Event stream", has the figures).
const (
	packedField = "p"
	eventPackV1 = 1
	// eventPackV1Values is how many values every eventPackV1 value
	// holds at least: the sixteen fields it was introduced with. Fewer
	// is a damaged value, not an older one, and does not decode.
	eventPackV1Values = 16
)

// secondsField encodes a count of seconds, "" for none.
func secondsField(n int64) string {
	if n <= 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// parseSeconds decodes secondsField, and the Go duration strings that
// the inactivity field held before issue 8; anything else reads as 0.
func parseSeconds(v string) int64 {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	if d, err := time.ParseDuration(v); err == nil {
		return int64(d / time.Second)
	}
	return 0
}

func encodeEvent(e *activity.Event) []any {
	var t int64
	if !e.Time.IsZero() {
		t = e.Time.UnixMilli()
	}
	mfa := ""
	if e.MFA {
		mfa = "1"
	}
	vals := [...]string{strconv.FormatInt(t, 10), e.Type, e.User, e.Email, e.SessionID, e.Site, e.IP, e.City, e.Country, e.Device, secondsField(e.Inactivity), e.Reason, e.Actor, e.Detail, mfa, secondsField(e.Duration)}
	n := 1
	for _, v := range vals {
		n += binary.MaxVarintLen64 + len(v)
	}
	b := make([]byte, 1, n)
	b[0] = eventPackV1
	for _, v := range vals {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return []any{packedField, b}
}

// decodeEventFlat decodes an entry read as a flat field, value list (a
// raw XRANGE reply): go-redis's XMessage builds a map per entry, which
// was most of the decoding.
//
// An entry with neither packedField nor the old encoding's t (which
// every entry of it carries) is not an event, and is an error rather
// than a blank event.
func decodeEventFlat(id string, kv []any) (activity.Event, error) {
	e := activity.Event{ID: id}
	found := false
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		v, _ := kv[i+1].(string)
		var err error
		if k == packedField {
			err = unpackEvent(&e, v)
		} else {
			err = setEventField(&e, k, v)
		}
		if err != nil {
			return e, err
		}
		found = found || k == packedField || k == "t"
	}
	if !found {
		return e, fmt.Errorf("decoding event %s: no event fields", id)
	}
	return e, nil
}

// unpackEvent sets e's fields from a packedField value. The strings are
// pieces of v. Values past the known fields, from a newer version, are
// ignored; fewer than eventPackV1Values is an error.
func unpackEvent(e *activity.Event, v string) error {
	if len(v) == 0 || v[0] != eventPackV1 {
		return fmt.Errorf("decoding event %s: unknown encoding", e.ID)
	}
	i, off := 0, 1
	for ; off < len(v); i++ {
		n, w := uvarint(v[off:])
		if w <= 0 || n > uint64(len(v)-off-w) {
			return fmt.Errorf("decoding event %s: truncated field %d", e.ID, i)
		}
		off += w
		if i < len(eventFields) {
			if err := setEventField(e, eventFields[i], v[off:off+int(n)]); err != nil {
				return err
			}
		}
		off += int(n)
	}
	if i < eventPackV1Values {
		return fmt.Errorf("decoding event %s: %d values, want at least %d", e.ID, i, eventPackV1Values)
	}
	return nil
}

// uvarint is binary.Uvarint on a string, without copying it.
func uvarint(s string) (uint64, int) {
	var x uint64
	var sh uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -(i + 1)
			}
			return x | uint64(c)<<sh, i + 1
		}
		x |= uint64(c&0x7f) << sh
		sh += 7
	}
	return 0, 0
}

// setEventField sets the field of e that an entry's field name stands
// for (eventFields); unknown names are ignored.
func setEventField(e *activity.Event, name, v string) error {
	switch name {
	case "t":
		if v != "" && v != "0" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("decoding event %s: time: %w", e.ID, err)
			}
			e.Time = time.UnixMilli(n).UTC()
		}
	case "y":
		e.Type = v
	case "u":
		e.User = v
	case "e":
		e.Email = v
	case "s":
		e.SessionID = v
	case "si":
		e.Site = v
	case "ip":
		e.IP = v
	case "ci":
		e.City = v
	case "co":
		e.Country = v
	case "d":
		e.Device = v
	case "in":
		e.Inactivity = parseSeconds(v)
	case "r":
		e.Reason = v
	case "a":
		e.Actor = v
	case "dt":
		e.Detail = v
	case "mf":
		e.MFA = v == "1"
	case "du":
		e.Duration = parseSeconds(v)
	}
	return nil
}
