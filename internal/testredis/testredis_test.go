package testredis

import "testing"

func TestStartStopRestart(t *testing.T) {
	s := StartServer(t)
	addr := s.Addr()
	if err := ping(addr, ""); err != nil {
		t.Fatalf("ping(%s) after start = %v, want nil", addr, err)
	}
	s.Stop()
	if err := ping(addr, ""); err == nil {
		t.Fatalf("ping(%s) after stop = nil, want an error", addr)
	}
	s.Restart()
	if got := s.Addr(); got != addr {
		t.Fatalf("Addr() after restart = %s, want %s", got, addr)
	}
	if err := ping(addr, ""); err != nil {
		t.Fatalf("ping(%s) after restart = %v, want nil", addr, err)
	}
}

func TestStartTwice(t *testing.T) {
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("two servers share address %s", a)
	}
}
