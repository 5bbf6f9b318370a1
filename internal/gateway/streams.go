package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/session"
)

// longLivedAfter is how long a response must have been open, when it next
// writes or flushes, to be tracked as a stream (a var for tests).
var longLivedAfter = time.Second

// errStreamClosed is what writes to a stream return once its session has
// ended.
var errStreamClosed = errors.New("session ended: stream closed")

// streams is the runtime's registry of long-lived responses (WebSocket
// and other upgrades, server-sent events, responses open longer than
// longLivedAfter), by session id, so that the end of a session, wherever
// it happened, closes them. Its zero value is ready to use.
type streams struct {
	mu sync.Mutex
	m  map[string][]*stream
	// rechecking and again coordinate rechecks after a flush (see recheck).
	rechecking, again bool
}

// stream is one tracked response; it outlives neither its request nor
// the close of its session.
type stream struct {
	// dead is closed without the lock, for the writer's cheap check.
	dead atomic.Bool

	mu sync.Mutex
	// closed: the session ended. done: the handler has returned, and
	// nothing of the response may be touched any more.
	closed, done bool
	// w is the writer under the tracking one, for deadlines.
	w http.ResponseWriter
	// conn is the client's connection once hijacked (an upgrade).
	conn net.Conn
	// cancel cancels the request's context; only for streams tracked from
	// the start.
	cancel context.CancelFunc
}

// close stops the stream: whatever the proxy is doing, reading from the
// upstream or writing to the client, fails now. Cancelling the context
// ends the upstream request (for an upgrade, Caddy's reverse_proxy then
// closes both connections); closing a hijacked connection ends a tunnel
// at once; past deadlines make the server's pending read and any write
// fail, which cancels the context net/http gave the request on HTTP/1
// and resets just this stream on HTTP/2, so even a stream tracked late,
// without a context of ours, stops while idle; and the tracking writer
// refuses every further write.
func (st *stream) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed || st.done {
		return
	}
	st.closed = true
	st.dead.Store(true)
	if st.cancel != nil {
		st.cancel()
	}
	if st.conn != nil {
		_ = st.conn.Close()
		return
	}
	rc := http.NewResponseController(st.w)
	past := time.Unix(1, 0)
	_ = rc.SetReadDeadline(past)
	_ = rc.SetWriteDeadline(past)
}

func (ss *streams) add(id string, st *stream) {
	ss.mu.Lock()
	if ss.m == nil {
		ss.m = make(map[string][]*stream)
	}
	ss.m[id] = append(ss.m[id], st)
	ss.mu.Unlock()
}

func (ss *streams) remove(id string, st *stream) {
	ss.mu.Lock()
	list := ss.m[id]
	for i, x := range list {
		if x == st {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(ss.m, id)
	} else {
		ss.m[id] = list
	}
	ss.mu.Unlock()
}

// closeSession closes the open streams of session id and reports how
// many there were.
func (ss *streams) closeSession(id string) int {
	ss.mu.Lock()
	list := ss.m[id]
	delete(ss.m, id)
	ss.mu.Unlock()
	for _, st := range list {
		st.close()
	}
	return len(list)
}

// ids lists the sessions that have open streams.
func (ss *streams) ids() []string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]string, 0, len(ss.m))
	for id := range ss.m {
		out = append(out, id)
	}
	return out
}

// count is the number of open streams.
func (ss *streams) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	n := 0
	for _, l := range ss.m {
		n += len(l)
	}
	return n
}

// sessionEnded is the Store.Subscribe callback: the cache forgets the
// session and its open streams close. An empty id (ends may have been
// missed while the subscription was down) flushes the cache and has every
// session with open streams looked up again: closing none would leave a
// stream of a session ended during the outage open for as long as it
// lasts, and closing all would cut every user's streams on each
// reconnect.
func (rt *Runtime) sessionEnded(ctx context.Context, id string) {
	rt.cache.Invalidate(id)
	if id == "" {
		rt.recheckStreams(ctx)
		return
	}
	rt.streams.closeSession(id)
}

// recheckStreams looks up every session with open streams in the store,
// in the background so that deliveries go on meanwhile, and closes the
// streams of those that are gone. A flush during a recheck runs it again
// afterwards. When the store cannot answer the streams stay: the next
// reconnect flushes again.
func (rt *Runtime) recheckStreams(ctx context.Context) {
	ss := &rt.streams
	ss.mu.Lock()
	if ss.rechecking {
		ss.again = true
		ss.mu.Unlock()
		return
	}
	ss.rechecking = true
	ss.mu.Unlock()
	// The subscription's goroutine, which calls this, holds a count of
	// wg until it returns, so this Add cannot race Close's Wait.
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		for {
			ss.mu.Lock()
			ss.again = false
			ss.mu.Unlock()
			rt.recheckOnce(ctx)
			ss.mu.Lock()
			if !ss.again || ctx.Err() != nil {
				ss.rechecking = false
				ss.mu.Unlock()
				return
			}
			ss.mu.Unlock()
		}
	}()
}

func (rt *Runtime) recheckOnce(ctx context.Context) {
	for _, id := range rt.streams.ids() {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := rt.store.Get(c, id)
		cancel()
		switch {
		case errors.Is(err, session.ErrNotFound):
			rt.streams.closeSession(id)
		case err != nil:
			if ctx.Err() == nil {
				rt.cfg.OnError(fmt.Errorf("checking sessions with open streams: %w", err))
			}
			return
		}
	}
}

// Track wraps the response of a request that carries session s, so that
// the end of s, on any instance, closes the response if it is long-lived;
// call it after Serve returned s and pass the writer and request it
// returns on, and call done when the response is over (defer it).
//
// Upgrades (WebSocket), CONNECT and requests that accept
// text/event-stream are tracked from the start, with a context of their
// own. Any other response costs no allocation and no registration: it is
// tracked only if it declares text/event-stream, switches protocols or is
// hijacked, or still writes or flushes after a second.
func (g *Gateway) Track(w http.ResponseWriter, r *http.Request, s *session.Session) (http.ResponseWriter, *http.Request, func()) {
	if streamRequest(r) {
		ctx, cancel := context.WithCancel(r.Context())
		r = r.WithContext(ctx)
		t := &trackedWriter{w: w, r: r, rt: g.rt, id: s.ID}
		t.finishFn = t.finish
		t.register(cancel)
		return t, r, t.finishFn
	}
	t := trackedPool.Get().(*trackedWriter)
	t.w, t.r, t.rt, t.id, t.start = w, r, g.rt, s.ID, time.Now()
	t.pooled.Store(true)
	if r.Body != nil && r.Body != http.NoBody {
		// A request body still streaming after a second makes the
		// exchange long-lived too (an upload, client-streaming gRPC, a
		// full-duplex call), even before the response says anything: it
		// must stop when the session ends (issue 7 review).
		t.body = trackedBody{t: t, rc: r.Body}
		r.Body = &t.body
	}
	return t, r, t.finishFn
}

// trackedBody is a request body that tracks its exchange once it has been
// read from for longer than longLivedAfter. It lives inside its pooled
// trackedWriter, so wrapping costs no allocation.
type trackedBody struct {
	t  *trackedWriter
	rc io.ReadCloser
}

func (b *trackedBody) Read(p []byte) (int, error) {
	t := b.t
	if t.st.Load() == nil {
		t.lazy()
	}
	if st := t.st.Load(); st != nil && st.dead.Load() {
		return 0, errStreamClosed
	}
	return b.rc.Read(p)
}

func (b *trackedBody) Close() error { return b.rc.Close() }

// streamRequest tells, from the request alone, that its response is
// meant to stay open.
func streamRequest(r *http.Request) bool {
	if len(r.Header["Upgrade"]) > 0 || r.Method == http.MethodConnect {
		return true
	}
	for _, v := range r.Header["Accept"] {
		if strings.Contains(v, "text/event-stream") {
			return true
		}
	}
	return false
}

// trackedPool recycles the writers of plain responses, which is what makes
// tracking free for them. A writer goes back only when it never became a
// stream, since a stream's writer may still be referenced by a tunnel
// after the handler returns.
var trackedPool sync.Pool

func init() {
	// Set here, not in the declaration: finish puts writers back.
	trackedPool.New = func() any {
		t := new(trackedWriter)
		t.finishFn = t.finish
		return t
	}
}

// trackedWriter is the ResponseWriter Track hands out. Like any
// ResponseWriter it is used by one goroutine at a time; only its stream
// is shared with the closers.
type trackedWriter struct {
	w     http.ResponseWriter
	r     *http.Request
	rt    *Runtime
	id    string
	start time.Time
	// st is set once the response is tracked.
	st       atomic.Pointer[stream]
	pooled   atomic.Bool
	finishFn func()
	// body wraps the request body of a plain request (see Track).
	body trackedBody
}

// register tracks the response, then looks the session up: an end that
// arrived between the request's check and now found nothing to close, and
// the cache, invalidated by then, sends the lookup to the store.
func (t *trackedWriter) register(cancel context.CancelFunc) {
	st := &stream{w: t.w, cancel: cancel}
	// The request body may be read on another goroutine (the proxy's
	// transport) than the one writing the response: the first to
	// register wins.
	if !t.st.CompareAndSwap(nil, st) {
		return
	}
	t.pooled.Store(false)
	t.rt.streams.add(t.id, st)
	if _, err := t.rt.cache.Get(t.r.Context(), t.id); errors.Is(err, session.ErrNotFound) {
		st.close()
	}
}

// lazy tracks a response that has been open for longLivedAfter.
func (t *trackedWriter) lazy() {
	if time.Since(t.start) >= longLivedAfter {
		t.register(nil)
	}
}

func (t *trackedWriter) finish() {
	if st := t.st.Load(); st != nil {
		st.mu.Lock()
		st.done = true
		st.mu.Unlock()
		t.rt.streams.remove(t.id, st)
		if st.cancel != nil {
			st.cancel()
		}
	}
	if t.pooled.Load() {
		*t = trackedWriter{finishFn: t.finishFn}
		trackedPool.Put(t)
	}
}

func (t *trackedWriter) Header() http.Header { return t.w.Header() }

func (t *trackedWriter) WriteHeader(code int) {
	if t.st.Load() == nil && (code == http.StatusSwitchingProtocols || eventStream(t.w.Header())) {
		t.register(nil)
	}
	t.w.WriteHeader(code)
}

func eventStream(h http.Header) bool {
	v := h["Content-Type"]
	return len(v) > 0 && strings.HasPrefix(v[0], "text/event-stream")
}

func (t *trackedWriter) Write(p []byte) (int, error) {
	if t.st.Load() == nil {
		t.lazy()
	}
	if st := t.st.Load(); st != nil && st.dead.Load() {
		return 0, errStreamClosed
	}
	return t.w.Write(p)
}

// FlushError is what http.ResponseController.Flush calls.
func (t *trackedWriter) FlushError() error {
	if t.st.Load() == nil {
		t.lazy()
	}
	if st := t.st.Load(); st != nil && st.dead.Load() {
		return errStreamClosed
	}
	return http.NewResponseController(t.w).Flush()
}

func (t *trackedWriter) Flush() { _ = t.FlushError() }

// Hijack hands over the client's connection and keeps it, to close it
// when the session ends.
func (t *trackedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(t.w).Hijack()
	if err != nil {
		return conn, brw, err
	}
	if t.st.Load() == nil {
		t.register(nil)
	}
	st := t.st.Load()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		_ = conn.Close()
		return nil, nil, errStreamClosed
	}
	st.conn = conn
	return conn, brw, nil
}

// ReadFrom keeps sendfile and friends for plain responses.
func (t *trackedWriter) ReadFrom(src io.Reader) (int64, error) {
	if t.st.Load() == nil {
		t.lazy()
	}
	if st := t.st.Load(); st != nil && st.dead.Load() {
		return 0, errStreamClosed
	}
	if rf, ok := t.w.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{t.w}, src)
}

// writerOnly hides a writer's ReadFrom, so io.Copy does not call back.
type writerOnly struct{ io.Writer }

// Unwrap lets http.ResponseController reach the server's writer (read
// and write deadlines, full duplex).
func (t *trackedWriter) Unwrap() http.ResponseWriter { return t.w }
