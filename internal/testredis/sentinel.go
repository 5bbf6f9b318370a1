package testredis

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Sentinel is a monitored master with one replica and three Sentinels
// (quorum 2), all private servers owned by a test.
type Sentinel struct {
	t         testing.TB
	name      string
	password  string
	data      []*Server // the master and the replica it started with
	sentinels []*Server

	mu     sync.Mutex
	killed string // address of the master KillMaster stopped last
}

// SentinelOption changes how a Sentinel set runs.
type SentinelOption func(*sentinelConfig)

type sentinelConfig struct {
	password string
}

// Password protects the master and the replica with requirepass (and
// masterauth, to replicate), and gives the Sentinels the password
// (sentinel auth-pass). The Sentinels themselves take none.
func Password(p string) SentinelOption { return func(c *sentinelConfig) { c.password = p } }

// Sentinel timings: quick enough that a test sees a failover in a few
// seconds, slow enough that a busy machine does not fail over by itself.
const (
	// downAfter is down-after-milliseconds: how long the master may not
	// answer before a Sentinel counts it as down.
	downAfter = time.Second
	// failoverTimeout is failover-timeout; a failed failover is retried
	// after twice this.
	failoverTimeout = 2 * time.Second
	// SentinelName is the name the Sentinels monitor the master under.
	SentinelName = "testmaster"
)

// StartSentinel runs a master, a replica of it and three Sentinels
// monitoring it for the duration of the test. It returns once the replica
// is in sync and every Sentinel knows the replica and the other two, so a
// failover can start as soon as the master is lost.
func StartSentinel(t testing.TB, opts ...SentinelOption) *Sentinel {
	t.Helper()
	var cfg sentinelConfig
	for _, o := range opts {
		o(&cfg)
	}
	s := &Sentinel{t: t, name: SentinelName, password: cfg.password}
	var master string
	for i := range 2 {
		srv := newServer(t)
		srv.password = cfg.password
		// Sync at once, not after the default 5s wait for more replicas;
		// either server may be the master after a failover.
		srv.extra = []string{"--repl-diskless-sync-delay", "0"}
		if cfg.password != "" {
			srv.extra = append(srv.extra, "--masterauth", cfg.password)
		}
		if i == 1 {
			host, port, _ := net.SplitHostPort(master)
			srv.extra = append(srv.extra, "--replicaof", host, port)
		}
		srv.launch()
		if i == 0 {
			master = srv.Addr()
		}
		s.data = append(s.data, srv)
	}
	if err := waitFor(startTimeout, func() error { return s.synced(s.data[1].Addr()) }); err != nil {
		t.Fatalf("testredis: replica not in sync: %v", err)
	}

	host, port, _ := net.SplitHostPort(master)
	conf := fmt.Sprintf(`sentinel resolve-hostnames no
sentinel announce-hostnames no
sentinel monitor %[1]s %[2]s %[3]s 2
sentinel down-after-milliseconds %[1]s %[4]d
sentinel failover-timeout %[1]s %[5]d
sentinel parallel-syncs %[1]s 1
`, s.name, host, port, downAfter.Milliseconds(), failoverTimeout.Milliseconds())
	if cfg.password != "" {
		conf += fmt.Sprintf("sentinel auth-pass %s %s\n", s.name, confQuote(cfg.password))
	}
	for range 3 {
		srv := newServer(t)
		srv.sentinel = true
		srv.conf, srv.confText = "sentinel.conf", conf
		srv.launch()
		s.sentinels = append(s.sentinels, srv)
	}
	// Sentinels find each other by hello messages through the master,
	// every 2s; ask for them every 100ms until they have, then go back
	// to the default so that failovers take as long as in production.
	for _, srv := range s.sentinels {
		if _, err := command(srv.Addr(), "", "SENTINEL", "DEBUG", "publish-period", "100"); err != nil {
			t.Fatalf("testredis: sentinel debug on %s: %v", srv.Addr(), err)
		}
	}
	if err := waitFor(startTimeout, s.watching); err != nil {
		t.Fatalf("testredis: sentinels not ready: %v", err)
	}
	for _, srv := range s.sentinels {
		if _, err := command(srv.Addr(), "", "SENTINEL", "DEBUG", "publish-period", "2000"); err != nil {
			t.Fatalf("testredis: sentinel debug on %s: %v", srv.Addr(), err)
		}
	}
	return s
}

// MasterName is the name the Sentinels know the master by.
func (s *Sentinel) MasterName() string { return s.name }

// Addrs are the Sentinels' addresses.
func (s *Sentinel) Addrs() []string {
	out := make([]string, len(s.sentinels))
	for i, srv := range s.sentinels {
		out[i] = srv.Addr()
	}
	return out
}

// Sentinels are the Sentinel servers, to stop and restart.
func (s *Sentinel) Sentinels() []*Server { return s.sentinels }

// Servers are the data servers: the first master, then its replica.
// After a failover their roles are swapped.
func (s *Sentinel) Servers() []*Server { return s.data }

// URL is a redis-sentinel:// URL for the set in the form the store's
// ParseURL accepts, with the data servers' password if there is one.
// Append "/<db>" for another database than 0.
func (s *Sentinel) URL() string {
	auth := ""
	if s.password != "" {
		auth = ":" + url.PathEscape(s.password) + "@"
	}
	return "redis-sentinel://" + auth + strings.Join(s.Addrs(), ",") + "/" + s.name
}

// Master is the master's address as the first Sentinel that answers has it.
func (s *Sentinel) Master() (string, error) {
	var lastErr error
	for _, srv := range s.sentinels {
		if !srv.Running() {
			continue
		}
		addr, err := s.masterOf(srv.Addr())
		if err == nil {
			return addr, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = errors.New("no sentinel is running")
	}
	return "", fmt.Errorf("asking for the master: %w", lastErr)
}

// KillMaster stops the current master with SIGKILL, like a crash, and
// returns its address.
func (s *Sentinel) KillMaster() string {
	s.t.Helper()
	addr, err := s.Master()
	if err != nil {
		s.t.Fatalf("testredis: %v", err)
	}
	i := slices.IndexFunc(s.data, func(srv *Server) bool { return srv.Addr() == addr })
	if i < 0 {
		s.t.Fatalf("testredis: the sentinels name %s as master, which is none of %v", addr, s.data)
	}
	s.data[i].Stop()
	s.mu.Lock()
	s.killed = addr
	s.mu.Unlock()
	return addr
}

// WaitFailover waits until every running Sentinel names a new master
// (not the one KillMaster stopped last) and that server says it is a
// master, and returns its address. It fails the test after timeout.
func (s *Sentinel) WaitFailover(timeout time.Duration) string {
	s.t.Helper()
	s.mu.Lock()
	killed := s.killed
	s.mu.Unlock()
	var addr string
	err := waitFor(timeout, func() error {
		addr = ""
		for _, srv := range s.sentinels {
			if !srv.Running() {
				continue
			}
			a, err := s.masterOf(srv.Addr())
			switch {
			case err != nil:
				return err
			case a == killed:
				return fmt.Errorf("sentinel %s still names %s", srv.Addr(), a)
			case addr != "" && a != addr:
				return fmt.Errorf("sentinels name %s and %s", addr, a)
			}
			addr = a
		}
		if addr == "" {
			return errors.New("no sentinel is running")
		}
		info, err := text(addr, s.password, "INFO", "replication")
		if err != nil {
			return fmt.Errorf("new master %s: %w", addr, err)
		}
		if role := infoField(info, "role"); role != "master" {
			return fmt.Errorf("new master %s has role %q", addr, role)
		}
		return nil
	})
	if err != nil {
		s.t.Fatalf("testredis: no failover from %s: %v", killed, err)
	}
	return addr
}

func (s *Sentinel) masterOf(sentinel string) (string, error) {
	v, err := command(sentinel, "", "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.name)
	if err != nil {
		return "", fmt.Errorf("sentinel %s: %w", sentinel, err)
	}
	hp, ok := v.([]any)
	if !ok || len(hp) != 2 {
		return "", fmt.Errorf("sentinel %s: master address %v", sentinel, v)
	}
	host, _ := hp[0].(string)
	port, _ := hp[1].(string)
	return net.JoinHostPort(host, port), nil
}

// synced reports why the replica at addr is not in sync, or nil.
func (s *Sentinel) synced(addr string) error {
	info, err := text(addr, s.password, "INFO", "replication")
	if err != nil {
		return fmt.Errorf("replica %s: %w", addr, err)
	}
	if st := infoField(info, "master_link_status"); st != "up" {
		return fmt.Errorf("replica %s: master_link_status %q", addr, st)
	}
	return nil
}

// watching reports why some Sentinel could not yet run a failover.
func (s *Sentinel) watching() error {
	for _, srv := range s.sentinels {
		m, err := pairs(command(srv.Addr(), "", "SENTINEL", "MASTER", s.name))
		if err != nil {
			return fmt.Errorf("sentinel %s: %w", srv.Addr(), err)
		}
		if m["flags"] != "master" || m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
			return fmt.Errorf("sentinel %s: master flags %q, %s replicas, %s other sentinels", srv.Addr(), m["flags"], m["num-slaves"], m["num-other-sentinels"])
		}
		v, err := command(srv.Addr(), "", "SENTINEL", "REPLICAS", s.name)
		if err != nil {
			return fmt.Errorf("sentinel %s: %w", srv.Addr(), err)
		}
		reps, _ := v.([]any)
		for _, r := range reps {
			m, err := pairs(r, nil)
			if err != nil {
				return fmt.Errorf("sentinel %s: %w", srv.Addr(), err)
			}
			if m["flags"] != "slave" || m["master-link-status"] != "ok" {
				return fmt.Errorf("sentinel %s: replica %s:%s flags %q, link %q", srv.Addr(), m["ip"], m["port"], m["flags"], m["master-link-status"])
			}
		}
	}
	return nil
}

// pairs reads a flat array of names and values (SENTINEL MASTER).
func pairs(v any, err error) (map[string]string, error) {
	if err != nil {
		return nil, err
	}
	a, ok := v.([]any)
	if !ok || len(a)%2 != 0 {
		return nil, fmt.Errorf("reply %v is not a list of pairs", v)
	}
	m := make(map[string]string, len(a)/2)
	for i := 0; i < len(a); i += 2 {
		k, _ := a[i].(string)
		val, _ := a[i+1].(string)
		m[k] = val
	}
	return m, nil
}

// confQuote quotes v for a Redis configuration file, whose parser
// (sdssplitargs) knows \", \\ and \xHH inside double quotes.
func confQuote(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// waitFor calls ready until it returns nil, or returns its last error
// after timeout.
func waitFor(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
