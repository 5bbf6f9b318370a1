package caddymodule

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/gatehouse-proxy/gatehouse/internal/devidp"
	"github.com/gatehouse-proxy/gatehouse/internal/gateway"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/redisstore"
	"github.com/gatehouse-proxy/gatehouse/internal/testflow"
	"github.com/gatehouse-proxy/gatehouse/internal/testredis"
)

// Regression (issue 7, item 8): through real Caddy, a WebSocket and a
// server-sent-event stream stayed open after their session was revoked.
// Caddy (instance A) serves the streams; a second runtime on the same
// Redis (instance B) revokes. The first session signs in through the dev
// provider; the latency rounds use sessions made in the store. The close
// latency is reported as p50/p99; only a generous bound is asserted (the
// 50 ms target is for a quiet machine: run with -run StreamsThroughCaddy
// -v and without -race to measure).
func TestStreamsThroughCaddyClosedByRevoke(t *testing.T) {
	secret := strings.Repeat("s", 40)
	t.Setenv("GH_E2E_SECRET", secret)
	t.Setenv("GH_E2E_CLIENT_SECRET", "cs")
	redisURL := "redis://" + testredis.Start(t)
	idpSrv, idp := startIDP(t)
	sids := make(chan string, 4)
	closed := make(chan string, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ws":
			sids <- r.Header.Get("X-Placeholder-Session")
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			h := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
				base64.StdEncoding.EncodeToString(h[:]))
			_ = brw.Flush()
			_, _ = io.Copy(io.Discard, conn)
			closed <- "ws"
		case "/sse":
			sids <- r.Header.Get("X-Placeholder-Session")
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: hello\n\n")
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
			closed <- "sse"
		default:
			_, _ = io.WriteString(w, "upstream ok")
		}
	}))
	defer up.Close()
	defer up.CloseClientConnections()
	listen := freePort(t)
	site := "http://" + listen
	idp.AddClient(devidp.Client{ID: "site", Secret: "cs", RedirectURIs: []string{site + "/.gatehouse/callback"}})
	cfg := siteConfig(t, listen, idpSrv.URL, strings.TrimPrefix(up.URL, "http://"), redisURL, filepath.Join(t.TempDir(), "activity.log"))
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	defer func() { _ = caddy.Stop() }()

	// Instance B.
	stB, err := redisstore.New(redisstore.Options{URL: redisURL})
	if err != nil {
		t.Fatal(err)
	}
	defer stB.Close()
	rtB, err := gateway.NewRuntime(gateway.RuntimeConfig{Store: stB, Events: stB, Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	revoke := func(id string) {
		t.Helper()
		if _, err := rtB.End(context.Background(), id, session.EndRevoked, "admin", ""); err != nil {
			t.Fatalf("revoking: %v", err)
		}
	}
	const limit = 3 * time.Second

	// A signed-in browser's two streams; one revoke closes both.
	b := testflow.New(t)
	if p := b.Login(site, "/", "alice"); p.Body != "upstream ok" {
		t.Fatalf("after login: %q", p.Body)
	}
	cookie := "gatehouse=" + b.Cookie(site, "gatehouse")
	waitWS := openCaddyStream(t, listen, "ws", cookie, limit)
	waitSSE := openCaddyStream(t, listen, "sse", cookie, limit)
	sid := <-sids
	if other := <-sids; other != sid || len(sid) != 22 {
		t.Fatalf("session ids seen upstream: %q, %q", sid, other)
	}
	revoke(sid)
	for _, wait := range []func() error{waitWS, waitSSE} {
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case <-closed:
		case <-time.After(limit):
			t.Fatal("the upstream's side of a stream stayed open")
		}
	}
	if p := b.Do(http.MethodGet, site+"/after", nil, false); p.Status != http.StatusUnauthorized {
		t.Errorf("after the revoke: %d, want 401", p.Status)
	}

	// Latency: half WebSockets, half event streams.
	rounds := 200
	if testing.Short() {
		rounds = 20
	}
	lat := map[string][]time.Duration{}
	for i := range rounds {
		kind := []string{"ws", "sse"}[i%2]
		sec := session.NewSecretFor("alice")
		now := time.Now().UTC().Truncate(time.Millisecond)
		s := &session.Session{ID: sec.ID(), User: "alice", Site: listen, CreatedAt: now, LastAccess: now, ExpiresAt: now.Add(time.Hour)}
		if err := stB.Create(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		wait := openCaddyStream(t, listen, kind, "gatehouse="+sec.Cookie(), limit)
		<-sids
		// The upstream has answered: the stream is tracked by now.
		start := time.Now()
		revoke(s.ID)
		if err := wait(); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		lat[kind] = append(lat[kind], time.Since(start))
		<-closed
	}
	for _, kind := range []string{"ws", "sse"} {
		l := lat[kind]
		slices.Sort(l)
		p50, p99 := l[len(l)/2], l[(len(l)-1)*99/100]
		t.Logf("%s closed after a revoke on the other instance, %d rounds: p50 %v, p99 %v, max %v", kind, len(l), p50, p99, l[len(l)-1])
		if p99 > time.Second {
			t.Errorf("%s: p99 close latency %v", kind, p99)
		}
	}
}

// openCaddyStream opens a WebSocket ("ws", a raw handshake) or an event
// stream ("sse") through addr and returns a func that blocks until the
// client sees it closed, or fails after limit.
func openCaddyStream(t *testing.T, addr, kind, cookie string, limit time.Duration) func() error {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hdr := "Accept: text/event-stream\r\n"
	if kind == "ws" {
		hdr = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	}
	if _, err := fmt.Fprintf(conn, "GET /%s HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\n%s\r\n", kind, addr, cookie, hdr); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	want := http.StatusOK
	if kind == "ws" {
		want = http.StatusSwitchingProtocols
	}
	if resp.StatusCode != want {
		t.Fatalf("%s: %s", kind, resp.Status)
	}
	var body io.Reader = br
	if kind == "sse" {
		rd := bufio.NewReader(resp.Body)
		body = rd
		if line, err := rd.ReadString('\n'); err != nil || line != "data: hello\n" {
			t.Fatalf("sse: first event %q, %v", line, err)
		}
	}
	return func() error {
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(limit))
		_, err := io.Copy(io.Discard, body)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("the %s stream is still open", kind)
		}
		return nil
	}
}
