package redisstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/storetest"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// benchStore is a store holding n realistic sessions with tokens.
func benchStore(b testing.TB, n int) (*Store, []string) {
	b.Helper()
	s := newStore(b, testredis.Start(b), nil)
	ids := make([]string, n)
	now := time.Now()
	for i := range n {
		sess := storetest.Session(i, fmt.Sprintf("user%d", i%100), now)
		sess.Tokens = make([]byte, 1500)
		if err := s.Create(b.Context(), sess); err != nil {
			b.Fatal(err)
		}
		ids[i] = sess.ID
	}
	return s, ids
}

// BenchmarkGet is one round trip (EVALSHA) on loopback.
func BenchmarkGet(b *testing.B) {
	s, ids := benchStore(b, 1000)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Get(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTouch is one round trip (EVALSHA) on loopback.
func BenchmarkTouch(b *testing.B) {
	s, ids := benchStore(b, 1000)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		a := session.Access{At: time.Now(), IP: "198.51.100.7"}
		if err := s.Touch(ctx, ids[i%len(ids)], a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetParallel shows throughput with concurrent requests.
func BenchmarkGetParallel(b *testing.B) {
	s, ids := benchStore(b, 1000)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Get(ctx, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkListFirstPage is the admin page's first query.
func BenchmarkListFirstPage(b *testing.B) {
	s, _ := benchStore(b, 5000)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.List(ctx, session.Query{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreate is one sign-in's write (EVALSHA) on loopback, into a
// store that already holds sessions.
func BenchmarkCreate(b *testing.B) {
	s, _ := benchStore(b, 1000)
	ctx := b.Context()
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		sess := storetest.Session(1000+i, fmt.Sprintf("user%d", i%100), now.Add(time.Duration(i)*time.Millisecond))
		sess.Tokens = make([]byte, 1500)
		if err := s.Create(ctx, sess); err != nil {
			b.Fatal(err)
		}
	}
}
