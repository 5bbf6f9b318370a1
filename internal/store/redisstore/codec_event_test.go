package redisstore

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// packedValues counts the values in a packedField value, failing t when
// it does not decode.
func packedValues(t *testing.T, v string) int {
	t.Helper()
	if len(v) == 0 || v[0] != eventPackV1 {
		t.Fatalf("packed value %q: unknown encoding", v)
	}
	n := 0
	for off := 1; off < len(v); n++ {
		l, w := uvarint(v[off:])
		if w <= 0 || l > uint64(len(v)-off-w) {
			t.Fatalf("packed value %q: truncated at value %d", v, n)
		}
		off += w + int(l)
	}
	return n
}

// encodeEventFlat is how entries were written before packedField: every
// one of eventFields as a field of its own.
func encodeEventFlat(e *activity.Event) []any {
	mfa := ""
	if e.MFA {
		mfa = "1"
	}
	vals := []string{strconv.FormatInt(e.Time.UnixMilli(), 10), e.Type, e.User, e.Email, e.SessionID, e.Site, e.IP, e.City, e.Country, e.Device, secondsField(e.Inactivity), e.Reason, e.Actor, e.Detail, mfa, secondsField(e.Duration)}
	out := make([]any, 0, 2*len(vals))
	for i, v := range vals {
		out = append(out, eventFields[i], v)
	}
	return out
}

// packed is encodeEvent's value as Redis hands it back: a string.
func packed(e *activity.Event) string {
	return string(encodeEvent(e)[1].([]byte))
}

// hostileEvent has a value in every field, some of them long or odd.
func hostileEvent() activity.Event {
	return activity.Event{
		Time: time.UnixMilli(1_764_000_000_123).UTC(), Type: activity.Anomaly,
		User:  strings.Repeat("s", 100) + ",\x00\n",
		Email: "zoë@exämple.com", SessionID: "sess,1", Site: "app.example.com",
		IP: "2001:db8::1", City: "Zürich", Country: "CH", Device: "Firefox on Linux\r\n",
		Inactivity: 1860, Duration: 7200, Reason: "impossible_travel", Actor: "admin@example.com",
		Detail: strings.Repeat("é", 3000) + "\"=cmd|' /C calc'!A0", MFA: true,
	}
}

func TestEventPackRoundTrip(t *testing.T) {
	for _, e := range []activity.Event{{}, {Type: activity.Logout}, hostileEvent()} {
		e.ID = "1764000000123-3"
		got, err := decodeEventFlat(e.ID, []any{packedField, packed(&e)})
		if err != nil {
			t.Fatalf("decoding %+v: %v", e, err)
		}
		if got != e {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
		}
		// The old encoding reads as the same event.
		flat := encodeEventFlat(&e)
		kv := make([]any, len(flat))
		copy(kv, flat)
		old, err := decodeEventFlat(e.ID, kv)
		if err != nil {
			t.Fatal(err)
		}
		if !e.Time.IsZero() && old != e {
			t.Errorf("old encoding:\n got %+v\nwant %+v", old, e)
		}
	}
}

// A value that does not decode is an error naming the event, never a
// panic or a half-filled event passed as whole.
func TestEventPackMalformed(t *testing.T) {
	e := hostileEvent()
	good := packed(&e)
	for name, v := range map[string]string{
		"empty":           "",
		"unknown version": "\x02" + good[1:],
		"truncated value": good[:len(good)-1],
		"length past end": "\x01\x7fshort",
		"unended varint":  "\x01\xff\xff",
		"varint overflow": "\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02",
		"bad time":        "\x01\x03abc",
	} {
		_, err := decodeEventFlat("1-0", []any{packedField, v})
		if err == nil || !strings.Contains(err.Error(), "decoding event 1-0") {
			t.Errorf("%s: err = %v, want a decoding error for 1-0", name, err)
		}
	}
	// A newer writer's extra value is ignored.
	more := good + "\x03new"
	got, err := decodeEventFlat("1-0", []any{packedField, more})
	if e.ID = "1-0"; err != nil || got != e {
		t.Errorf("with an extra value: %+v, %v", got, err)
	}
}

func FuzzUnpackEvent(f *testing.F) {
	e := hostileEvent()
	f.Add(packed(&e))
	f.Add(packed(&activity.Event{}))
	f.Add("\x01\x7f")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		got, err := decodeEventFlat("1-0", []any{packedField, v})
		if err != nil {
			return
		}
		// What decodes encodes back to a value that decodes the same.
		again, err := decodeEventFlat("1-0", []any{packedField, packed(&got)})
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", got, err)
		}
		// What encodeEvent cannot write: a time at the epoch (0 stands
		// for none) and negative seconds ("" stands for none).
		if !got.Time.IsZero() && got.Time.UnixMilli() == 0 {
			got.Time = time.Time{}
		}
		got.Inactivity, got.Duration = max(got.Inactivity, 0), max(got.Duration, 0)
		if again != got {
			t.Fatalf("re-decoded %+v, want %+v", again, got)
		}
	})
}

// Entries written before packedField (one field each of eventFields) and
// packed ones read alike, side by side in one stream, through Query and
// through Export.
func TestEventOldEncodingStillReads(t *testing.T) {
	s := newStorePrefix(t, testredis.Start(t), "old", nil)
	ctx := t.Context()
	old := hostileEvent()
	sh := s.shardOfEvent(&old)
	old.ID = strconv.FormatInt(old.Time.UnixMilli(), 10) + "-" + strconv.Itoa(sh.n)
	if err := s.c.XAdd(ctx, &redis.XAddArgs{Stream: sh.events, ID: old.ID, Values: encodeEventFlat(&old)}).Err(); err != nil {
		t.Fatal(err)
	}
	cur := hostileEvent()
	cur.Time = cur.Time.Add(time.Second)
	cur.Type = activity.LoginSucceeded
	if err := s.Append(ctx, &cur); err != nil {
		t.Fatal(err)
	}
	page, err := s.Query(ctx, activity.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var exported []activity.Event
	err = s.Export(ctx, activity.Filter{}, func(e *activity.Event) error {
		exported = append(exported, *e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]activity.Event{"query": page.Items, "export": exported} {
		if len(got) != 2 {
			t.Fatalf("%s: %d events, want 2", name, len(got))
		}
		cur.ID = got[0].ID
		if got[0] != cur || got[1] != old {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, []activity.Event{cur, old})
		}
	}
}
