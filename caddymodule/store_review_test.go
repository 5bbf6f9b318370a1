package caddymodule

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// go-redis retries a command whose reply timed out (MaxRetries, 3 by
// default) on another connection, and the first one still runs once
// Redis answers again. With storeTimeout at 1 s a stall of a second or
// two, an fsync or a fork of a large Redis, made every write run twice:
// a callback's state claim (ClaimOnce, SET NX) then found itself and the
// sign-in failed as "already used"; an event was appended twice.
func TestReviewStoreStallClaimsOnce(t *testing.T) {
	srv := testredis.StartServer(t)
	h, err := openStore("redis://"+srv.Addr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { storePool.Delete(h.key) })
	ctx := context.Background()
	// A warm connection, so that the claim is written before the stall
	// ends.
	if _, err := h.sessions.Claimed(ctx, "warm"); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	resumed := make(chan struct{})
	go func() {
		defer close(resumed)
		time.Sleep(storeTimeout + storeTimeout/2)
		srv.Resume()
	}()
	ok, err := h.sessions.ClaimOnce(ctx, "state:review", time.Minute)
	<-resumed
	if err == nil && !ok {
		t.Fatalf("ClaimOnce across a %v stall = false (claimed by its own retry), want true or an error", storeTimeout+storeTimeout/2)
	}
	t.Logf("ClaimOnce across the stall: %v, %v", ok, err)
}
