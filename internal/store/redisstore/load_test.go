package redisstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// createMany stores sessions as Create does, through the same script, but
// pipelined in batches from a few connections, so that tests and
// benchmarks can load many thousands quickly. The writes of one session
// are atomic as always; their order across batches is not defined.
func createMany(ctx context.Context, s *Store, n int, next func(i int) *session.Session) error {
	if err := createScript.Load(ctx, s.c).Err(); err != nil {
		return fmt.Errorf("loading create script: %w", err)
	}
	const (
		batch   = 500
		workers = 4
	)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		jobs     = make(chan int)
	)
	for range workers {
		wg.Go(func() {
			for start := range jobs {
				if err := createBatch(ctx, s, start, min(start+batch, n), next); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for start := 0; start < n; start += batch {
		jobs <- start
	}
	close(jobs)
	wg.Wait()
	return firstErr
}

func createBatch(ctx context.Context, s *Store, from, to int, next func(i int) *session.Session) error {
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := from; i < to; i++ {
			keys, args, err := s.createArgs(next(i))
			if err != nil {
				return err
			}
			createScript.EvalSha(ctx, p, keys, args...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating sessions %d-%d: %w", from, to, err)
	}
	return nil
}
