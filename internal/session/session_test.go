package session

import (
	"testing"
	"time"
)

func TestExpiry(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s := &Session{CreatedAt: t0, LastAccess: t0, ExpiresAt: t0.Add(12 * time.Hour), IdleTimeout: 30 * time.Minute}
	tests := []struct {
		name string
		now  time.Time
		idle time.Duration
		want string
	}{
		{"fresh", t0.Add(time.Minute), 0, ""},
		{"idle by own timeout", t0.Add(30 * time.Minute), 0, EndIdle},
		{"site's shorter idle timeout applies", t0.Add(10 * time.Minute), 5 * time.Minute, EndIdle},
		{"site's longer idle timeout applies", t0.Add(40 * time.Minute), time.Hour, ""},
		{"lifetime wins over idle", t0.Add(13 * time.Hour), 0, EndLifetime},
	}
	for _, tt := range tests {
		if got := s.Expiry(tt.now, tt.idle); got != tt.want {
			t.Errorf("%s: Expiry(%v, %v) = %q, want %q", tt.name, tt.now, tt.idle, got, tt.want)
		}
	}
	if got, want := s.Deadline(), t0.Add(30*time.Minute); !got.Equal(want) {
		t.Errorf("Deadline() = %v, want %v", got, want)
	}
	noIdle := &Session{LastAccess: t0, ExpiresAt: t0.Add(time.Hour)}
	if got := noIdle.Deadline(); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("Deadline() without idle = %v, want lifetime", got)
	}
}
