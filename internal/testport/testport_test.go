package testport

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// Every port is handed out once, and stays locked against other processes
// (a second open file description stands in for one) until this one exits.
func TestFreeHandsOutEachPortOnce(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		f, err := os.Open(filepath.Join(os.TempDir(), "gatehouse-testports", strconv.Itoa(p)))
		if err != nil {
			t.Fatal(err)
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		_ = f.Close()
		if err == nil {
			t.Fatalf("port %d: its lock file can be locked again, so another process could be given it", p)
		}
	}
}
