package admin

import (
	"net/url"
	"testing"
	"time"
)

func TestAgo(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-5 * time.Second, "just now"},
		{10 * time.Second, "just now"},
		{70 * time.Second, "1 minute ago"},
		{3 * time.Minute, "3 minutes ago"},
		{44 * time.Minute, "44 minutes ago"},
		{time.Hour, "1 hour ago"},
		{5 * time.Hour, "5 hours ago"},
		{30 * time.Hour, "yesterday"},
		{3 * 24 * time.Hour, "3 days ago"},
		{60 * 24 * time.Hour, "on 13 Jan 2025"},
	}
	for _, tt := range tests {
		if got := ago(epoch, epoch.Add(-tt.d)); got != tt.want {
			t.Errorf("ago(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := ago(epoch, time.Time{}); got != "never" {
		t.Errorf("ago(zero) = %q, want never", got)
	}
}

func TestSpan(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0 s"},
		{45 * time.Second, "45 s"},
		{3*time.Minute + 20*time.Second, "3 min"},
		{2 * time.Hour, "2 h"},
		{2*time.Hour + 5*time.Minute, "2 h 5 min"},
		{48 * time.Hour, "2 d"},
		{76 * time.Hour, "3 d 4 h"},
	}
	for _, tt := range tests {
		if got := span(tt.d); got != tt.want {
			t.Errorf("span(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestPlace(t *testing.T) {
	tests := []struct{ city, region, country, want string }{
		{"Amsterdam", "North Holland", "NL", "Amsterdam, North Holland, NL"},
		{"Singapore", "Singapore", "SG", "Singapore, SG"},
		{"", "", "DE", "DE"},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		if got := place(tt.city, tt.region, tt.country); got != tt.want {
			t.Errorf("place(%q, %q, %q) = %q, want %q", tt.city, tt.region, tt.country, got, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		v       string
		end     bool
		want    time.Time
		wantErr bool
	}{
		{"2025-03-01", false, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), false},
		{"2025-03-01", true, time.Date(2025, 3, 1, 23, 59, 59, 999999999, time.UTC), false},
		{"2025-03-01T10:00:00+02:00", true, time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC), false},
		{"2025-03-01T10:00:00.5Z", false, time.Date(2025, 3, 1, 10, 0, 0, 5e8, time.UTC), false},
		{"2025-02-30", false, time.Time{}, true},
		{"1 March", false, time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseTime(url.Values{"t": {tt.v}}, "t", tt.end)
		if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q, end=%v) = %v, %v; want %v, error %v", tt.v, tt.end, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFlashMessage(t *testing.T) {
	tests := []struct{ q, want string }{
		{"flash=revoked", "The session was signed out."},
		{"flash=others&n=1", "Signed out of 1 other session."},
		{"flash=others&n=0", "There were no other sessions to sign out."},
		{"flash=user&n=3", "Signed out 3 sessions of that user."},
		{"flash=user&n=-3", "That user had no active sessions."},
		{"flash=user&n=lots", "That user had no active sessions."},
		{"flash=Your+account+is+locked", ""},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.q)
		if got := flashMessage(q); got != tt.want {
			t.Errorf("flashMessage(%s) = %q, want %q", tt.q, got, tt.want)
		}
	}
}
