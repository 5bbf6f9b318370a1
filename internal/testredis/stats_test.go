package testredis

import "testing"

func TestStats(t *testing.T) {
	s := StartServer(t)
	before, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"SET", "a", "1"},
		{"SET", "b", "2"},
		{"EVAL", "redis.call('set', 'c', '3'); return redis.call('get', 'a')", "0"},
	} {
		if _, err := command(s.Addr(), "", args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	after, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	d := after.Sub(before)
	// The script's SET and GET count as commands; the first reading's
	// INFO is counted in the second.
	if got := d.Commands["set"].Calls; got != 3 {
		t.Errorf("set calls = %d, want 3", got)
	}
	if got := d.Commands["get"].Calls; got != 1 {
		t.Errorf("get calls = %d, want 1", got)
	}
	if got := d.Calls("info"); got != 5 {
		t.Errorf("calls but info = %d, want 5 (%v)", got, d.Commands)
	}
	if d.Changes != 3 || d.Keys != 3 {
		t.Errorf("changes %d, keys %d; want 3 and 3", d.Changes, d.Keys)
	}
	// (used_memory also follows client buffers, so it is not checked.)
	if d.NetInput <= 0 || d.NetOutput <= 0 || d.CPU <= 0 {
		t.Errorf("net in %d, out %d, CPU %v: want all positive", d.NetInput, d.NetOutput, d.CPU)
	}
}
