package session

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSealer(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	a, err := NewSealer(secret, "tokens")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSealer(secret, "login state")
	tok := Tokens{IDToken: "id.token.x", RefreshToken: "r", Expiry: time.Unix(1700000000, 0).UTC()}
	sealed, err := a.SealTokens("sid1", tok)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("id.token.x")) {
		t.Fatal("sealed tokens contain the plaintext")
	}
	got, err := a.OpenTokens("sid1", sealed)
	if err != nil || got != tok {
		t.Fatalf("OpenTokens = %+v, %v; want %+v", got, err, tok)
	}
	if _, err := a.OpenTokens("sid2", sealed); !errors.Is(err, ErrSealed) {
		t.Errorf("OpenTokens for another session: err = %v, want ErrSealed", err)
	}
	if _, err := other.OpenTokens("sid1", sealed); !errors.Is(err, ErrSealed) {
		t.Errorf("OpenTokens with another purpose's key: err = %v, want ErrSealed", err)
	}
	flipped := append([]byte(nil), sealed...)
	flipped[len(flipped)-1] ^= 1
	if _, err := a.OpenTokens("sid1", flipped); !errors.Is(err, ErrSealed) {
		t.Errorf("OpenTokens of a tampered value: err = %v, want ErrSealed", err)
	}
	if _, err := a.Open(sealed[:5], nil); !errors.Is(err, ErrSealed) {
		t.Errorf("Open of a truncated value: err = %v, want ErrSealed", err)
	}
	if _, err := NewSealer([]byte("short"), "x"); err == nil {
		t.Error("NewSealer accepted a short secret")
	}
}
