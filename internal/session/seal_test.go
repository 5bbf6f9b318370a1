package session

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSealer(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	a, err := NewSealer(secret, "tokens")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSealer(secret, "login state")
	plain := []byte("id.token.x")
	sealed := a.Seal(plain, []byte("sid1"))
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := a.Open(sealed, []byte("sid1"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v; want %q", got, err, plain)
	}
	if _, err := a.Open(sealed, []byte("sid2")); !errors.Is(err, ErrSealed) {
		t.Errorf("Open for another session: err = %v, want ErrSealed", err)
	}
	if _, err := other.Open(sealed, []byte("sid1")); !errors.Is(err, ErrSealed) {
		t.Errorf("Open with another purpose's key: err = %v, want ErrSealed", err)
	}
	flipped := append([]byte(nil), sealed...)
	flipped[len(flipped)-1] ^= 1
	if _, err := a.Open(flipped, []byte("sid1")); !errors.Is(err, ErrSealed) {
		t.Errorf("Open of a tampered value: err = %v, want ErrSealed", err)
	}
	if _, err := a.Open(sealed[:5], nil); !errors.Is(err, ErrSealed) {
		t.Errorf("Open of a truncated value: err = %v, want ErrSealed", err)
	}
	if _, err := NewSealer([]byte("short"), "x"); err == nil {
		t.Error("NewSealer accepted a short secret")
	}
}
