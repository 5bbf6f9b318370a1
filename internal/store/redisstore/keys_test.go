package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// The signing keys of jwt_header, as two instances see them: of 20
// racing adds on two clients exactly one wins and both read the winner;
// records are binary-safe; removal is by id; everything lives in
// {prefix}:jwk.
func TestSigningKeys(t *testing.T) {
	ctx := context.Background()
	addr := testredis.Start(t)
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	a, b := newStorePrefix(t, addr, prefix, nil), newStorePrefix(t, addr, prefix, nil)
	if got, err := a.SigningKeys(ctx); err != nil || len(got) != 0 {
		t.Fatalf("SigningKeys on an empty store = %v, %v; want none", got, err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Go(func() {
			ok, err := st.AddSigningKey(ctx, "100", []byte{0, byte(i), 0xff})
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
	ga, _ := a.SigningKeys(ctx)
	gb, err := b.SigningKeys(ctx)
	if err != nil || len(gb) != 1 || string(ga["100"]) != string(gb["100"]) || len(gb["100"]) != 3 || gb["100"][0] != 0 || gb["100"][2] != 0xff {
		t.Fatalf("instances read %q and %q (%v), want the same 3-byte record", ga, gb, err)
	}
	if ok, err := b.AddSigningKey(ctx, "101", []byte("next")); !ok || err != nil {
		t.Fatalf("AddSigningKey(101) = %v, %v", ok, err)
	}
	if err := a.RemoveSigningKey(ctx, "100"); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveSigningKey(ctx, "nope"); err != nil {
		t.Errorf("RemoveSigningKey of a missing id = %v, want nil", err)
	}
	got, _ := b.SigningKeys(ctx)
	if len(got) != 1 || string(got["101"]) != "next" {
		t.Errorf("after removing 100: %q, want only 101 = next", got)
	}
	// doc.go's key table names this key.
	if n, err := a.c.HLen(ctx, "{"+prefix+"}:jwk").Result(); err != nil || n != 1 {
		t.Errorf("HLEN {%s}:jwk = %d, %v; want 1", prefix, n, err)
	}
}

// A store that cannot be reached says so as session.ErrUnavailable, so the
// gateway keeps signing with the keys it has.
func TestSigningKeysUnavailable(t *testing.T) {
	srv := testredis.StartServer(t)
	s := newStore(t, srv.Addr(), nil)
	srv.Stop()
	if _, err := s.SigningKeys(context.Background()); !errors.Is(err, session.ErrUnavailable) {
		t.Errorf("SigningKeys with Redis down = %v, want session.ErrUnavailable", err)
	}
}
