package testredis

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of private servers owned by a test, made the
// way an operator makes one: redis-server --cluster-enabled yes on every
// node, then redis-cli --cluster create.
type Cluster struct {
	t     testing.TB
	nodes []*Node
}

// Node is one server of a Cluster. Its Server methods stop (SIGKILL) and
// restart it; it keeps its node ID across restarts, as nodes.conf stays.
type Node struct {
	*Server
	id string
}

// ID is the node's cluster node ID.
func (n *Node) ID() string { return n.id }

// ClusterOption changes how a cluster is made.
type ClusterOption func(*clusterConfig)

type clusterConfig struct {
	replicas int
}

// Replicas gives every master n replicas (redis-cli's --cluster-replicas),
// so that the cluster survives losing a master.
func Replicas(n int) ClusterOption { return func(c *clusterConfig) { c.replicas = n } }

// nodeTimeout is cluster-node-timeout: how long a node may be unreachable
// before the others count it as failed. Redis's default, 15s, would make
// any test of a lost node wait that long; much lower, and a busy test
// machine gets spurious failovers.
const nodeTimeout = 2 * time.Second

// StartCluster runs a cluster of masters (at least 3, as redis-cli wants)
// for the duration of the test, with no replicas unless Replicas says so.
// It returns once every node reports cluster_state:ok and all agree on who
// serves which slot, so a client's first command finds the cluster whole.
func StartCluster(t testing.TB, masters int, opts ...ClusterOption) *Cluster {
	t.Helper()
	var cfg clusterConfig
	for _, o := range opts {
		o(&cfg)
	}
	if masters < 3 {
		t.Fatalf("testredis: a cluster needs at least 3 masters, not %d", masters)
	}
	cli := lookPath(t, "redis-cli")
	c := &Cluster{t: t}
	args := []string{"--cluster", "create"}
	for range masters * (1 + cfg.replicas) {
		s := newServer(t)
		s.cluster = true
		s.extra = []string{
			"--cluster-node-timeout", strconv.Itoa(int(nodeTimeout.Milliseconds())),
			// A replica may take over however long it was cut off: tests
			// kill masters at any moment.
			"--cluster-replica-validity-factor", "0",
			// Sync replicas at once rather than after the default 5s
			// wait for more replicas.
			"--repl-diskless-sync-delay", "0",
		}
		s.launch()
		c.nodes = append(c.nodes, &Node{Server: s})
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(cfg.replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// With one host for all nodes, redis-cli warns that replicas share
	// their master's host; --cluster-yes accepts that too.
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("testredis: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := waitFor(startTimeout, c.whole); err != nil {
		t.Fatalf("testredis: cluster not ready: %v", err)
	}
	return c
}

// Nodes are the cluster's servers, masters and replicas, in the order
// they were started; redis-cli makes the first ones masters.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns the node listening on addr, or nil.
func (c *Cluster) Node(addr string) *Node {
	for _, n := range c.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// Addrs are the addresses of all nodes.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr()
	}
	return out
}

// URL is a redis-cluster:// URL naming every node, in the form the
// store's ParseURL accepts.
func (c *Cluster) URL() string {
	return "redis-cluster://" + strings.Join(c.Addrs(), ",")
}

// SlotRange is a range of hash slots, both ends included.
type SlotRange struct{ First, Last int }

// Shard is a master with the slots it serves and its replicas.
type Shard struct {
	Addr, ID string
	Slots    []SlotRange
	Replicas []string // addresses
}

// Shards returns the masters as the first node that answers sees them
// now, in the order of their first slot.
func (c *Cluster) Shards() ([]Shard, error) {
	var lastErr error
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		view, err := clusterNodes(n.Addr())
		if err != nil {
			lastErr = err
			continue
		}
		return view.shards(), nil
	}
	if lastErr == nil {
		lastErr = errors.New("no node is running")
	}
	return nil, fmt.Errorf("reading the cluster's shards: %w", lastErr)
}

// whole reports the first thing that keeps the cluster from being whole:
// every node must be in state ok, know every other node with none failing
// or still in a handshake, see all 16384 slots served and the same map of
// slots and replicas as the others; every replica must be in sync.
func (c *Cluster) whole() error {
	var first *nodesView
	for _, n := range c.nodes {
		addr := n.Addr()
		info, err := text(addr, "", "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: cluster info: %w", addr, err)
		}
		if st := infoField(info, "cluster_state"); st != "ok" {
			return fmt.Errorf("%s: cluster_state %q", addr, st)
		}
		view, err := clusterNodes(addr)
		if err != nil {
			return err
		}
		if len(view.nodes) != len(c.nodes) {
			return fmt.Errorf("%s knows %d nodes, want %d", addr, len(view.nodes), len(c.nodes))
		}
		if err := view.healthy(); err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
		if first == nil {
			first = view
		} else if got, want := view.String(), first.String(); got != want {
			return fmt.Errorf("%s sees\n%s\nbut %s sees\n%s", addr, got, c.nodes[0].Addr(), want)
		}
		n.id = view.self
		if view.byID[view.self].master != "" {
			info, err := text(addr, "", "INFO", "replication")
			if err != nil {
				return fmt.Errorf("%s: info replication: %w", addr, err)
			}
			if st := infoField(info, "master_link_status"); st != "up" {
				return fmt.Errorf("replica %s: master_link_status %q", addr, st)
			}
		}
	}
	return nil
}

// nodesView is one node's CLUSTER NODES.
type nodesView struct {
	self  string // ID of the node asked
	nodes []clusterNode
	byID  map[string]*clusterNode
}

type clusterNode struct {
	id, addr string
	flags    []string
	master   string // ID of its master; "" for a master
	slots    []SlotRange
}

func clusterNodes(addr string) (*nodesView, error) {
	out, err := text(addr, "", "CLUSTER", "NODES")
	if err != nil {
		return nil, fmt.Errorf("%s: cluster nodes: %w", addr, err)
	}
	v := &nodesView{byID: map[string]*clusterNode{}}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		// <id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent>
		// <pong-recv> <config-epoch> <link-state> <slot> <slot> ...
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("%s: cluster nodes line %q", addr, line)
		}
		n := clusterNode{id: f[0], flags: strings.Split(f[2], ",")}
		n.addr, _, _ = strings.Cut(f[1], "@")
		if f[3] != "-" {
			n.master = f[3]
		}
		for _, sl := range f[8:] {
			if strings.HasPrefix(sl, "[") {
				continue // a slot being migrated or imported
			}
			a, b, isRange := strings.Cut(sl, "-")
			if !isRange {
				b = a
			}
			first, err1 := strconv.Atoi(a)
			last, err2 := strconv.Atoi(b)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("%s: slot %q in %q", addr, sl, line)
			}
			n.slots = append(n.slots, SlotRange{first, last})
		}
		if slices.Contains(n.flags, "myself") {
			v.self = n.id
		}
		v.nodes = append(v.nodes, n)
	}
	slices.SortFunc(v.nodes, func(a, b clusterNode) int { return strings.Compare(a.id, b.id) })
	for i := range v.nodes {
		v.byID[v.nodes[i].id] = &v.nodes[i]
	}
	return v, nil
}

// healthy reports the first thing that keeps the view from being whole.
func (v *nodesView) healthy() error {
	served := 0
	for _, n := range v.nodes {
		for _, f := range n.flags {
			switch f {
			case "fail", "fail?", "handshake", "noaddr":
				return fmt.Errorf("node %s is %s", n.addr, f)
			}
		}
		for _, r := range n.slots {
			served += r.Last - r.First + 1
		}
	}
	if served != 16384 {
		return fmt.Errorf("%d of 16384 slots served", served)
	}
	return nil
}

// String lists who serves what, without the asking node's own view of
// itself (flags, timings), so that views of a settled cluster compare equal.
func (v *nodesView) String() string {
	var b strings.Builder
	for _, n := range v.nodes {
		fmt.Fprintf(&b, "%s %s master=%s slots=%v\n", n.id, n.addr, n.master, n.slots)
	}
	return b.String()
}

func (v *nodesView) shards() []Shard {
	var out []Shard
	for _, n := range v.nodes {
		if n.master != "" || len(n.slots) == 0 {
			continue
		}
		sh := Shard{Addr: n.addr, ID: n.id, Slots: n.slots}
		for _, r := range v.nodes {
			if r.master == n.id {
				sh.Replicas = append(sh.Replicas, r.addr)
			}
		}
		out = append(out, sh)
	}
	slices.SortFunc(out, func(a, b Shard) int { return a.Slots[0].First - b.Slots[0].First })
	return out
}
