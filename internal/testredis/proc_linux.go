package testredis

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill the server when the test binary dies
// without running its cleanups (go test's -timeout panics, a SIGKILL), so
// that no redis-server outlives its test. Linux ties this to the thread
// that started the process; the Go runtime does not end threads of its own
// accord, so in practice it is the test process.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
