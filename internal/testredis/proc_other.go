//go:build !linux

package testredis

import "os/exec"

// dieWithParent does nothing outside Linux: the servers are stopped by the
// tests' cleanups only.
func dieWithParent(*exec.Cmd) {}
