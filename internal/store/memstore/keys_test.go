package memstore

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// The signing keys of jwt_header: set-if-absent (one winner of a race),
// listed by id, removed by id; what the caller passes or gets is a copy.
func TestSigningKeys(t *testing.T) {
	ctx := context.Background()
	s := New(Options{})
	got, err := s.SigningKeys(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("SigningKeys on an empty store = %v, %v; want none", got, err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			ok, err := s.AddSigningKey(ctx, "100", []byte{byte(i)})
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("AddSigningKey winners of 20 racing = %d, want 1", n)
	}
	rec := []byte("second")
	if ok, err := s.AddSigningKey(ctx, "101", rec); !ok || err != nil {
		t.Fatalf("AddSigningKey(101) = %v, %v", ok, err)
	}
	rec[0] = 'X'
	got, _ = s.SigningKeys(ctx)
	if len(got) != 2 || string(got["101"]) != "second" {
		t.Fatalf("SigningKeys = %q, want 100 and 101 (unchanged by the caller's later writes)", got)
	}
	got["101"][0] = 'Y'
	if err := s.RemoveSigningKey(ctx, "100"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveSigningKey(ctx, "nope"); err != nil {
		t.Errorf("RemoveSigningKey of a missing id = %v, want nil", err)
	}
	got, _ = s.SigningKeys(ctx)
	if len(got) != 1 || string(got["101"]) != "second" {
		t.Errorf("after removing 100: %q, want only 101 = second", got)
	}
}
