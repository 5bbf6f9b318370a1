package testredis

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Stats is what a server's INFO says about the work it has done, for
// tests and benchmarks that measure what operations cost: take one
// before and one after, and Sub.
type Stats struct {
	// Commands are calls and time by command name as INFO commandstats
	// spells it ("evalsha", "config|get"). Commands that scripts run are
	// counted too, and a script's time includes theirs.
	Commands map[string]CommandStat
	// CPU is the server process's used_cpu_user + used_cpu_sys: command
	// execution and everything around it (reading requests, writing
	// replies, pub/sub delivery, the server's periodic work).
	CPU time.Duration
	// UsedMemory is used_memory, in bytes.
	UsedMemory int64
	// NetInput and NetOutput are total_net_input_bytes and
	// total_net_output_bytes: what clients sent and were sent (replication
	// traffic is counted apart by Redis and not included).
	NetInput, NetOutput int64
	// Changes is rdb_changes_since_last_save, which counts every write to
	// the dataset (a command run by a script, an expired key deleted),
	// test servers never saving: the server's own count of writes.
	Changes int64
	// Keys is the number of keys in all databases.
	Keys int64
}

// CommandStat is one line of INFO commandstats.
type CommandStat struct {
	Calls int64
	Usec  int64
}

// Stats reads the server's Stats. The INFO call itself is counted in
// the next reading's "info" calls and network bytes.
func (s *Server) Stats() (Stats, error) {
	return readStats(s.Addr(), s.password)
}

// ReadStats reads the Stats of the server at addr (no password).
func ReadStats(addr string) (Stats, error) { return readStats(addr, "") }

func readStats(addr, password string) (Stats, error) {
	info, err := text(addr, password, "INFO", "commandstats", "cpu", "memory", "stats", "persistence", "keyspace")
	if err != nil {
		return Stats{}, fmt.Errorf("%s: info: %w", addr, err)
	}
	st := Stats{Commands: map[string]CommandStat{}}
	var user, sys float64
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		num := func() int64 { n, _ := strconv.ParseInt(v, 10, 64); return n }
		switch {
		case strings.HasPrefix(k, "cmdstat_"):
			var c CommandStat
			for f := range strings.SplitSeq(v, ",") {
				name, val, _ := strings.Cut(f, "=")
				n, _ := strconv.ParseInt(val, 10, 64)
				switch name {
				case "calls":
					c.Calls = n
				case "usec":
					c.Usec = n
				}
			}
			st.Commands[strings.TrimPrefix(k, "cmdstat_")] = c
		case k == "used_cpu_user":
			user, _ = strconv.ParseFloat(v, 64)
		case k == "used_cpu_sys":
			sys, _ = strconv.ParseFloat(v, 64)
		case k == "used_memory":
			st.UsedMemory = num()
		case k == "total_net_input_bytes":
			st.NetInput = num()
		case k == "total_net_output_bytes":
			st.NetOutput = num()
		case k == "rdb_changes_since_last_save":
			st.Changes = num()
		case strings.HasPrefix(k, "db"):
			// db0:keys=12,expires=3,avg_ttl=0
			if keys, ok := strings.CutPrefix(v, "keys="); ok {
				keys, _, _ = strings.Cut(keys, ",")
				n, _ := strconv.ParseInt(keys, 10, 64)
				st.Keys += n
			}
		}
	}
	st.CPU = time.Duration((user + sys) * float64(time.Second))
	return st, nil
}

// Sub returns the work done between before and s: every counter is the
// difference (UsedMemory and Keys may be negative).
func (s Stats) Sub(before Stats) Stats {
	d := Stats{
		Commands:   map[string]CommandStat{},
		CPU:        s.CPU - before.CPU,
		UsedMemory: s.UsedMemory - before.UsedMemory,
		NetInput:   s.NetInput - before.NetInput,
		NetOutput:  s.NetOutput - before.NetOutput,
		Changes:    s.Changes - before.Changes,
		Keys:       s.Keys - before.Keys,
	}
	for name, c := range s.Commands {
		b := before.Commands[name]
		if c.Calls != b.Calls {
			d.Commands[name] = CommandStat{Calls: c.Calls - b.Calls, Usec: c.Usec - b.Usec}
		}
	}
	return d
}

// Calls is the number of command calls, those in the names left out
// ("info" for the readings themselves, say).
func (s Stats) Calls(except ...string) int64 {
	var n int64
	for name, c := range s.Commands {
		if !contains(except, name) {
			n += c.Calls
		}
	}
	return n
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
