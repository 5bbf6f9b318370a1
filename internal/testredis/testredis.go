// Package testredis runs a private redis-server for tests.
//
// Tests use a real server rather than a fake because the stores rely on Lua
// scripts, streams, pub/sub and memory encodings that fakes do not
// reproduce faithfully. Each server listens on a free loopback port with
// persistence off and its working directory in t.TempDir(), so tests never
// touch a shared Redis (such as one on :6379) and leave nothing behind.
//
// StartCluster and StartSentinel run the real thing for the store's
// scale-out: a Redis Cluster made by redis-cli --cluster create, and a
// master with a replica watched by three Sentinels. Every process is
// stopped by its PID when the test ends, and on Linux also dies with the
// test binary if that is killed before its cleanups run.
package testredis

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/testport"
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
	// conf, when set, is a configuration file in dir written with
	// confText before the first start and given to redis-server ahead of
	// the other arguments. Sentinel needs one, which it rewrites.
	conf, confText string
	// sentinel runs the server in Sentinel mode.
	sentinel bool
	// cluster runs a Cluster node, whose bus listens on busPort.
	cluster bool
	// password is the server's requirepass, which PING needs.
	password string
	// extra are more arguments for redis-server, after the defaults.
	extra []string

	mu      sync.Mutex
	port    int
	busPort int
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{} // closed when cmd has been waited for
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
	s := newServer(t)
	for _, o := range opts {
		o(s)
	}
	s.launch()
	return s
}

// newServer returns a server to configure and launch.
func newServer(t testing.TB) *Server {
	t.Helper()
	return &Server{t: t, path: lookPath(t, "redis-server"), dir: t.TempDir()}
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		// Never skip: a skipped store test hides regressions in CI. The
		// project's test command installs redis-server (which brings
		// redis-cli and Sentinel) when missing.
		t.Fatalf("%s not found on PATH (%v): run the project's test command from the README, which installs it", name, err)
	}
	return path
}

// launch starts s on free ports and stops it when the test ends.
func (s *Server) launch() {
	s.t.Helper()
	var lastErr error
	// A free port found by listening and closing may be taken by someone
	// else before redis-server binds it; try a few.
	for range 5 {
		port, err := freePort()
		if err == nil && s.cluster {
			// The bus gets a port of its own (cluster-port) rather than
			// the default port+10000, which may be taken or above 65535.
			s.busPort, err = freePort()
		}
		if err != nil {
			s.t.Fatalf("testredis: finding a free port: %v", err)
		}
		if s.conf != "" {
			// Afresh on every attempt: a failed start may have rewritten it.
			if err := os.WriteFile(filepath.Join(s.dir, s.conf), []byte(s.confText), 0o600); err != nil {
				s.t.Fatalf("testredis: writing %s: %v", s.conf, err)
			}
		}
		if lastErr = s.start(port); lastErr == nil {
			s.t.Cleanup(s.Stop)
			return
		}
	}
	s.t.Fatalf("testredis: starting redis-server: %v", lastErr)
}

// Addr is the server's address, stable across Restart.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// String names the server by its address, for messages.
func (s *Server) String() string { return s.Addr() }

// PID is the process ID of the running server, 0 when it is stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Running reports whether the server process is running (it may not be
// answering yet, or any more).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
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
	var args []string
	if s.conf != "" {
		args = append(args, filepath.Join(s.dir, s.conf))
	}
	if s.sentinel {
		args = append(args, "--sentinel")
	}
	args = append(args,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "",
	)
	if !s.sentinel {
		args = append(args, "--save", "")
		args = append(args, aof...)
	}
	if s.cluster {
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(s.dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(s.busPort),
		)
	}
	if s.password != "" {
		args = append(args, "--requirepass", s.password)
	}
	args = append(args, s.extra...)
	cmd := exec.Command(s.path, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	dieWithParent(cmd)
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
		if err := ping(addr, s.password); err == nil {
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

// ping checks that addr answers PING (after AUTH with password, if set).
func ping(addr, password string) error {
	v, err := command(addr, password, "PING")
	if err != nil {
		// "-LOADING ..." and the like: not ready yet.
		return err
	}
	if v != "PONG" {
		return fmt.Errorf("unexpected reply %v", v)
	}
	return nil
}

func freePort() (int, error) {
	return testport.Free()
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
