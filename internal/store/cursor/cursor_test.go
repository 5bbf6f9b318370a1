package cursor

import (
	"errors"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

func TestRoundTrip(t *testing.T) {
	c := Cursor{Score: 1700000000123, Member: "id:with:colons"}
	got, err := Decode(c.Encode(Created), Created)
	if err != nil || got != c {
		t.Fatalf("Decode(Encode(%+v)) = %+v, %v", c, got, err)
	}
	for _, bad := range []string{"", "!!!", c.Encode(LastAccess), "bDEyMw"} {
		if _, err := Decode(bad, Created); !errors.Is(err, session.ErrInvalidQuery) {
			t.Errorf("Decode(%q) err = %v, want ErrInvalidQuery", bad, err)
		}
	}
}

func TestAfter(t *testing.T) {
	c := Cursor{Score: 10, Member: "m"}
	tests := []struct {
		score  int64
		member string
		want   bool
	}{
		{9, "z", true}, {10, "a", true}, {10, "m", false}, {10, "z", false}, {11, "a", false},
	}
	for _, tt := range tests {
		if got := c.After(tt.score, tt.member); got != tt.want {
			t.Errorf("After(%d, %q) = %v, want %v", tt.score, tt.member, got, tt.want)
		}
	}
}
