package activity

import (
	"testing"
	"time"
)

func TestSplitDevice(t *testing.T) {
	for _, tc := range []struct{ label, browser, os string }{
		{"Chrome on Windows", "Chrome", "Windows"},
		{"Chrome", "Chrome", ""},
		{"", "", ""},
		{"Samsung Internet on Android", "Samsung Internet", "Android"},
	} {
		if b, o := SplitDevice(tc.label); b != tc.browser || o != tc.os {
			t.Errorf("SplitDevice(%q) = %q, %q; want %q, %q", tc.label, b, o, tc.browser, tc.os)
		}
	}
}

func TestHistoryFilterMatch(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := Login{User: "alice", Site: "a.example.com", LoginTime: t0}
	for _, tc := range []struct {
		name string
		f    HistoryFilter
		want bool
	}{
		{"none", HistoryFilter{}, true},
		{"user", HistoryFilter{User: "alice"}, true},
		{"other user", HistoryFilter{User: "bob"}, false},
		{"from at", HistoryFilter{From: t0}, true},
		{"from after", HistoryFilter{From: t0.Add(time.Millisecond)}, false},
		{"to at", HistoryFilter{To: t0}, true},
		{"to before", HistoryFilter{To: t0.Add(-time.Millisecond)}, false},
		{"site", HistoryFilter{Site: "a.example.com"}, true},
		{"other site", HistoryFilter{Site: "b.example.com"}, false},
		{"in reach", HistoryFilter{Sites: []string{"b.example.com", "a.example.com"}}, true},
		{"out of reach", HistoryFilter{Sites: []string{"b.example.com"}}, false},
		{"no reach", HistoryFilter{Sites: []string{}}, false},
		{"user and reach", HistoryFilter{User: "bob", Sites: []string{"a.example.com"}}, false},
	} {
		if got := tc.f.Match(&l); got != tc.want {
			t.Errorf("%s: Match = %v, want %v", tc.name, got, tc.want)
		}
	}
}
