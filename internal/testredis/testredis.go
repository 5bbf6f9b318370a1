// Package testredis runs a private redis-server for tests.
//
// Tests use a real server rather than a fake because the stores rely on Lua
// scripts, streams, pub/sub and memory encodings that fakes do not
// reproduce faithfully. Each server listens on a free loopback port with
// persistence off and its working directory in t.TempDir(), so tests never
// touch a shared Redis (such as one on :6379) and leave nothing behind.
package testredis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// How long a server may take to answer PING after it is started.
const startTimeout = 10 * time.Second

// Server is one running redis-server owned by a test.
type Server struct {
	t    testing.TB
	path string
	dir  string

	// persistent keeps data across Stop/Restart (AOF, fsync always).
	persistent bool

	mu   sync.Mutex
	port int
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when cmd has been waited for
}

// Start runs a redis-server for the duration of the test and returns its
// address (127.0.0.1:port).
func Start(t testing.TB) (addr string) {
	t.Helper()
	return StartServer(t).Addr()
}

// Option changes how a server runs.
type Option func(*Server)

// Persistent makes the server write every command to an append-only file
// before answering, so that data survives Stop (a SIGKILL) and Restart,
// as with a production Redis that has persistence on.
func Persistent() Option { return func(s *Server) { s.persistent = true } }

// StartServer is Start for tests that need to stop and restart the server,
// for example to check that clients survive an outage.
func StartServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		// Never skip: a skipped store test hides regressions in CI. The
		// project's test command installs redis-server when missing.
		t.Fatalf("redis-server not found on PATH (%v): run the project's test command from the README, which installs it", err)
	}
	s := &Server{t: t, path: path, dir: t.TempDir()}
	for _, o := range opts {
		o(s)
	}
	var lastErr error
	// A free port found by listening and closing may be taken by someone
	// else before redis-server binds it; try a few.
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testredis: finding a free port: %v", err)
		}
		if lastErr = s.start(port); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("testredis: starting redis-server: %v", lastErr)
	return nil
}

// Addr is the server's address, stable across Restart.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop kills the server (SIGKILL, like a crash) and waits for it to exit.
// Its data is lost. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Restart starts the server again on the same port, stopping the current
// one first if it is still running. It comes back empty unless it was
// started Persistent.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	var err error
	// The port was ours a moment ago; if another process grabbed it in
	// between, the test cannot go on meaningfully, but give the kernel a
	// few chances to release it first.
	for range 20 {
		if err = s.startLocked(s.port); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("testredis: restarting redis-server on port %d: %v", s.port, err)
}

func (s *Server) start(port int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked(port)
}

func (s *Server) startLocked(port int) error {
	out := &syncBuffer{}
	aof := []string{"--appendonly", "no"}
	if s.persistent {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	args := append([]string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "",
	}, aof...)
	cmd := exec.Command(s.path, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running %s: %w", s.path, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(startTimeout)
	for {
		if err := ping(addr); err == nil {
			break
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited early: %s", bytes.TrimSpace(out.Bytes()))
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server did not answer PING on %s within %v: %s", addr, startTimeout, bytes.TrimSpace(out.Bytes()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.port, s.cmd, s.out, s.done = port, cmd, out, done
	return nil
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// ping sends an inline PING and expects +PONG, without a client library so
// that this package has no dependencies.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		// "-LOADING ..." and the like: not ready yet.
		return errors.New("unexpected reply " + strconv.Quote(line))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects the server's output for error messages; the process
// writes to it from another goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Keep the tail only: a long test must not grow this without bound.
	if b.buf.Len() > 64<<10 {
		b.buf.Reset()
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}
