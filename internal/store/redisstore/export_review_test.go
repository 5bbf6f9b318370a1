package redisstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// orderHook runs between an export's reads of one index: after the read
// of the index's stream it calls between (once), and it holds the read of
// the index's list until then, at most for a second.
type orderHook struct {
	stream, list string
	between      func()
	once         sync.Once
	done         chan struct{}
}

func (h *orderHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *orderHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *orderHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		key := ""
		if len(args) > 1 {
			key, _ = args[1].(string)
		}
		name := strings.ToLower(cmd.Name())
		if name == "lrange" && key == h.list {
			select {
			case <-h.done:
			case <-time.After(time.Second):
			}
		}
		err := next(ctx, cmd)
		if name == "xrevrange" && key == h.stream {
			h.once.Do(func() {
				h.between()
				close(h.done)
			})
		}
		return err
	}
}

var _ redis.Hook = (*orderHook)(nil)

// An index moves from its list to its stream when an Append brings it to
// smallIndex IDs. The export read an index's stream and its list in two
// goroutines, in no set order: with the move between the stream's read
// (nothing there yet) and the list's (emptied), every event of the index
// was missing from the export, which then looked complete.
func TestReviewExportIndexMovesToStream(t *testing.T) {
	addr := testredis.Start(t)
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	plain := newStorePrefix(t, addr, prefix, nil)
	ctx := t.Context()
	now := time.Now().Add(-time.Hour)
	// Enough other events that the user's index is sparse (exportDense)
	// and the export reads it rather than the streams.
	for i := range 5 * smallIndex {
		e := &activity.Event{Time: now.Add(time.Duration(i) * time.Millisecond), Type: activity.LoginSucceeded, User: fmt.Sprintf("other%d", i%50), Site: "a.example"}
		if err := plain.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	const user = "alice"
	for i := range smallIndex - 1 {
		e := &activity.Event{Time: now.Add(time.Duration(i) * time.Millisecond), Type: activity.LoginSucceeded, User: user, Site: "a.example"}
		if err := plain.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	sh := plain.shardOfUser(user)
	key := sh.eventIndexKey(ixUser, user)
	if n, err := plain.c.LLen(ctx, sh.indexList(key)).Result(); err != nil || n != smallIndex-1 {
		t.Fatalf("index list holds %d IDs (%v), want %d", n, err, smallIndex-1)
	}

	hook := &orderHook{stream: key, list: sh.indexList(key), done: make(chan struct{})}
	hook.between = func() {
		// The next event of the user moves the index to its stream.
		e := &activity.Event{Time: time.Now(), Type: activity.Logout, User: user, Site: "a.example"}
		if err := plain.Append(context.Background(), e); err != nil {
			t.Error(err)
		}
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	c.AddHook(hook)
	hooked, err := New(Options{Client: c, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = hooked.Export(ctx, activity.Filter{User: user}, func(*activity.Event) error {
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < smallIndex-1 {
		t.Fatalf("Export(user=%s) = %d events while its index moved to a stream, want %d or more", user, n, smallIndex-1)
	}
}
