// Package testport hands tests free loopback ports that no other test
// holds, in this process or in another package's test process.
//
// Asking the kernel for port 0 and closing the listener is not enough:
// go test runs packages in parallel processes, two of them may be given
// the same port, and Caddy listens with SO_REUSEPORT, so both Caddy
// instances (or a site and an admin endpoint) would bind it and the
// kernel would share the connections between them. Each port handed out
// here is locked with flock(2) on a file named after it until the process
// exits, and a port locked by anyone is never handed out.
package testport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

var (
	mu    sync.Mutex
	locks []*os.File // held open, so locked, until the process exits
)

// Free returns a loopback port that nothing listens on and that no test
// process has been handed and still runs.
func Free() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	dir := filepath.Join(os.TempDir(), "gatehouse-testports")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			_ = f.Close() // held by another test process, or by this one
			continue
		}
		locks = append(locks, f)
		return port, nil
	}
	return 0, errors.New("finding a free port: every port the kernel offered is held by another test")
}

// Addr is Free as "127.0.0.1:port", failing t if no port is found.
func Addr(t testing.TB) string {
	t.Helper()
	port, err := Free()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
