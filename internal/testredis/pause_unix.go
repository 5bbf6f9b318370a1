//go:build unix

package testredis

import "syscall"

// Pause stops the server process (SIGSTOP) without killing it: its
// connections stay open but it answers nothing, like a server stalled by
// the machine it runs on. Resume continues it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd, port := s.cmd, s.port
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("testredis: signalling the server on port %d, which is stopped", port)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("testredis: signalling the server on port %d: %v", port, err)
	}
}
