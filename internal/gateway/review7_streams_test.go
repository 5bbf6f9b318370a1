package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// Review (issue 7, item 8): a long-lived request is tracked only when its
// response is (an upgrade, an event stream, or a write or flush after
// longLivedAfter). A request that streams its body to the upstream and
// gets no answer until it is done (a chunked upload, a client-streaming
// gRPC or HTTP/2 full-duplex call, a long-poll that only reads) is never
// tracked: after the session is revoked, the client goes on feeding the
// upstream for as long as it likes.
func TestReview7RequestBodyStreamOutlivesSession(t *testing.T) {
	// Restored last, once the servers (cleaned up later) have stopped.
	prev := longLivedAfter
	t.Cleanup(func() { longLivedAfter = prev })
	longLivedAfter = 150 * time.Millisecond
	ss := newStreamSite(t, "memory")
	var received atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := ss.gw.Serve(w, r)
		if s == nil {
			return
		}
		w, r, done := ss.gw.Track(w, r, s)
		defer done()
		// The upstream: reads the upload, answers when it ends.
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			received.Add(int64(n))
			if err != nil {
				break
			}
		}
		_, _ = io.WriteString(w, "done")
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(srv.CloseClientConnections)

	s, cookie := ss.newSession(t)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/upload", pr)
	req.Header.Set("Cookie", cookie)
	go func() {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	stop := make(chan struct{})
	writeErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				pw.Close()
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := pw.Write([]byte("chunk\n")); err != nil {
				writeErr <- err
				return
			}
		}
	}()
	defer close(stop)

	time.Sleep(3 * longLivedAfter)
	if _, err := ss.rtB.End(context.Background(), s.ID, session.EndRevoked, "admin", ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // well past the 50 ms target
	before := received.Load()
	time.Sleep(300 * time.Millisecond)
	if after := received.Load(); after > before {
		t.Errorf("the upstream received %d more bytes of the revoked session's request after the end", after-before)
	}
}
