// Package hubtest runs real hub nodes in one test process: a Raft cluster of
// several nodes over loopback TCP, each node on its own loopback IP so that
// tests can cut the network between nodes, kill a node and restart it from
// its data dir.
package hubtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub"
	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/hubtest/deadline"
	"github.com/wharf-platform/wharf/providers"
)

// Options tune a test cluster.
type Options struct {
	// Logger receives every node's logs; nil discards them (set
	// WHARF_TEST_LOG=1 to see them on stderr).
	Logger *slog.Logger
	// DeadServerGrace is how long the leader waits before removing a dead
	// node. Zero means 30 s.
	DeadServerGrace time.Duration
	// SnapshotThreshold makes Raft snapshot after this many entries. Zero
	// keeps Raft's default.
	SnapshotThreshold uint64
	// Datacenters, when set, gives node i datacenter Datacenters[i%len].
	Datacenters []string
	// SuspectAfter and DownAfter drive host liveness; zero keeps the hub's
	// defaults (4 s, 10 s).
	SuspectAfter, DownAfter time.Duration
	// AgentCertTTL, when set, shortens agent certificates.
	AgentCertTTL time.Duration
	// ProductionRaft keeps Raft's production timeouts (1 s heartbeat and
	// election) instead of the fast test ones (100 ms), for benchmarks
	// whose load would otherwise cost elections on a small machine.
	ProductionRaft bool
	// OpenProvider, when set, opens provider accounts for the API's
	// credential check instead of the providers built into the binary.
	OpenProvider func(providers.Account) (providers.Provider, error)
	// BindIP, when set, is the one IP every node binds (HTTP, QUIC, Raft
	// and gossip, on ports of its own) and advertises, instead of a
	// loopback IP per node: e.g. a netlab datacenter's gateway, which the
	// lab's hosts reach while 127.x stays the root namespace's own.
	// Partition cannot separate nodes that share one IP.
	BindIP string
	// OrphanGrace and ProvisionListEvery shorten the provisioning loop's
	// sweep of leaked cloud machines (4m grace, a listing every 30s).
	OrphanGrace, ProvisionListEvery time.Duration
	// AgentBinary is the wharf binary the nodes serve at
	// /download/wharf-OS-ARCH; "" serves the test binary itself.
	AgentBinary string
	// MeterHour shortens the metered hour (one hour when zero) so that
	// hours close in seconds.
	MeterHour time.Duration
}

// Cluster is a set of in-process hub nodes forming one Raft cluster.
type Cluster struct {
	t    testing.TB
	opts Options
	key  string
	// previousKey is given to the nodes as their previous cluster key
	// after RotateKey.
	previousKey string
	base        string // "127.A.B." prefix shared by the nodes

	mu    sync.Mutex
	cut   map[[2]string]bool // pairs of IPs that cannot talk
	Nodes []*Node
}

// Node is one hub node of a test cluster.
type Node struct {
	Index   int
	IP      string
	DataDir string

	c      *Cluster
	mu     sync.Mutex
	hub    *hub.Hub
	cancel context.CancelFunc
	done   chan error
	// Bound addresses, kept so a restart reuses them.
	httpAddr, raftAddr, gossipAddr, quicAddr string
}

// New starts an n-node cluster (bootstrap-expect n) and waits for a leader.
func New(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if opts.DeadServerGrace == 0 {
		opts.DeadServerGrace = 30 * time.Second
	}
	c := &Cluster{
		t:    t,
		opts: opts,
		key:  cluster.GenerateKey(),
		base: fmt.Sprintf("127.%d.%d.", 1+rand.IntN(250), 1+rand.IntN(250)),
		cut:  map[[2]string]bool{},
	}
	for i := 0; i < n; i++ {
		c.Nodes = append(c.Nodes, c.newNode(i))
	}
	var join []string
	for i, nd := range c.Nodes {
		nd.start(n, join)
		if i == 0 {
			join = []string{nd.gossipAddr}
		}
	}
	t.Cleanup(c.Stop)
	c.WaitLeader(15 * time.Second)
	return c
}

func (c *Cluster) newNode(i int) *Node {
	dir := filepath.Join(c.t.TempDir(), fmt.Sprintf("hub%d", i))
	ip := fmt.Sprintf("%s%d", c.base, 10+i)
	if c.opts.BindIP != "" {
		ip = c.opts.BindIP
	}
	return &Node{Index: i, IP: ip, DataDir: dir, c: c}
}

func (c *Cluster) logger() *slog.Logger {
	if c.opts.Logger != nil {
		return c.opts.Logger
	}
	if os.Getenv("WHARF_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (n *Node) start(expect int, join []string) {
	n.c.t.Helper()
	addr := func(kept string) string {
		if kept != "" {
			return kept
		}
		return net.JoinHostPort(n.IP, "0")
	}
	dc := "dc1"
	if d := n.c.opts.Datacenters; len(d) > 0 {
		dc = d[n.Index%len(d)]
	}
	cfg := hub.Config{
		NodeName:           fmt.Sprintf("hub%d", n.Index),
		DataDir:            n.DataDir,
		Datacenter:         dc,
		BootstrapExpect:    expect,
		Join:               join,
		ClusterKey:         n.c.key,
		PreviousClusterKey: n.c.previousKey,
		HTTPAddr:           addr(n.httpAddr),
		QUICAddr:           addr(n.quicAddr),
		RaftAddr:           addr(n.raftAddr),
		GossipAddr:         addr(n.gossipAddr),
		Advertise:          n.IP,
		SuspectAfter:       n.c.opts.SuspectAfter,
		DownAfter:          n.c.opts.DownAfter,
		Logger:             n.c.logger().With("test_node", n.Index),
		Tuning: &hub.Tuning{
			HeartbeatTimeout:   raftTimeout(100 * time.Millisecond),
			ElectionTimeout:    raftTimeout(100 * time.Millisecond),
			LeaderLeaseTimeout: raftTimeout(50 * time.Millisecond),
			CommitTimeout:      5 * time.Millisecond,
			DeadServerGrace:    n.c.opts.DeadServerGrace,
			SnapshotThreshold:  n.c.opts.SnapshotThreshold,
			AgentCertTTL:       n.c.opts.AgentCertTTL,
			Blocked:            func(remote string) bool { return n.c.blocked(n.IP, remote) },
			OpenProvider:       n.c.opts.OpenProvider,
			AgentBinary:        n.c.opts.AgentBinary,
			OrphanGrace:        n.c.opts.OrphanGrace,
			ProvisionListEvery: n.c.opts.ProvisionListEvery,
			MeterHour:          n.c.opts.MeterHour,
		},
	}
	if n.c.opts.ProductionRaft {
		cfg.Tuning.HeartbeatTimeout, cfg.Tuning.ElectionTimeout, cfg.Tuning.LeaderLeaseTimeout, cfg.Tuning.CommitTimeout = 0, 0, 0, 0
	}
	var h *hub.Hub
	var err error
	// A port freed by a killed node can take a moment to be bindable again.
	for try := 0; try < 50; try++ {
		if h, err = hub.New(cfg); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		n.c.t.Fatalf("start hub%d: %v", n.Index, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := h.Run(ctx)
		if ctx.Err() == nil { // not Kill: the node stopped by itself
			n.c.t.Logf("hub%d stopped by itself: %v", n.Index, err)
		}
		done <- err
	}()
	n.mu.Lock()
	n.hub, n.cancel, n.done = h, cancel, done
	n.httpAddr = h.HTTPAddr()
	n.raftAddr = h.Cluster().RaftAddr()
	n.gossipAddr = h.Cluster().GossipAddr()
	n.quicAddr = h.QUICAddr()
	n.mu.Unlock()
}

// raftTimeout stretches the fast test Raft timeouts like the tests'
// deadlines (at most tenfold: 100 ms becomes at most production's 1 s). On
// a loaded machine or under the race detector a 100 ms election timeout
// expires while the leader merely waits for a CPU, and the elections that
// follow fail writes and drop the leader's telemetry in tests that are
// not about elections.
func raftTimeout(d time.Duration) time.Duration {
	return time.Duration(float64(d) * min(deadline.Slowdown(), 10))
}

// Hub returns the node's running hub, or nil while it is stopped.
func (n *Node) Hub() *hub.Hub {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hub
}

// URL returns the node's API base URL, e.g. http://127.1.2.10:41234.
func (n *Node) URL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return "http://" + n.httpAddr
}

// QUICAddr returns the node's agent gateway address ("" while stopped).
func (n *Node) QUICAddr() string {
	if h := n.Hub(); h != nil {
		return h.QUICAddr()
	}
	return ""
}

// GossipAddr returns the node's gossip address.
func (n *Node) GossipAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gossipAddr
}

// Running reports whether the node runs.
func (n *Node) Running() bool { return n.Hub() != nil }

// Kill stops the node abruptly: no graceful leave, as after kill -9 (the
// process's sockets close, its data dir stays).
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	n := c.Nodes[i]
	n.mu.Lock()
	cancel, done := n.cancel, n.done
	n.hub, n.cancel, n.done = nil, nil, nil
	n.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case <-done:
	case <-time.After(deadline.Scale(20 * time.Second)):
		// What the node still waits for is in its goroutines' stacks.
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		c.t.Fatalf("hub%d did not stop within %s; every goroutine of the test process:\n%s", i, deadline.Scale(20*time.Second).Round(time.Second), buf)
	}
}

// Restart starts a killed node again from its data dir, on the same addresses.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	n := c.Nodes[i]
	if n.Running() {
		c.t.Fatalf("hub%d is running", i)
	}
	var join []string
	for _, o := range c.Nodes {
		if o != n && o.Running() {
			join = append(join, o.GossipAddr())
		}
	}
	n.start(0, join)
}

// Key returns the cluster key the nodes run with.
func (c *Cluster) Key() string { return c.key }

// RotateKey stops every node and starts them all again from their data
// dirs with a new cluster key and previous as their previous cluster key
// ("" for none), then waits for a leader: a cluster key rotation.
func (c *Cluster) RotateKey(key, previous string) {
	c.t.Helper()
	c.Stop()
	c.key, c.previousKey = key, previous
	for _, n := range c.Nodes {
		var join []string
		for _, o := range c.Nodes {
			if o != n {
				join = append(join, o.GossipAddr())
			}
		}
		n.start(0, join)
	}
	c.WaitLeader(15 * time.Second)
}

// Add starts a new node that joins the running cluster.
func (c *Cluster) Add() *Node {
	c.t.Helper()
	n := c.newNode(len(c.Nodes))
	c.mu.Lock()
	c.Nodes = append(c.Nodes, n)
	c.mu.Unlock()
	var join []string
	for _, o := range c.Nodes {
		if o != n && o.Running() {
			join = append(join, o.GossipAddr())
		}
	}
	n.start(0, join)
	return n
}

// Stop kills every node. It is registered as a test cleanup.
func (c *Cluster) Stop() {
	for i := range c.Nodes {
		c.Kill(i)
	}
}

// Partition cuts every link between the nodes in group and the others,
// the connections already open across the cut included.
func (c *Cluster) Partition(group ...int) {
	defer c.enforce()
	c.mu.Lock()
	defer c.mu.Unlock()
	in := map[int]bool{}
	for _, i := range group {
		in[i] = true
	}
	for i, a := range c.Nodes {
		for j, b := range c.Nodes {
			if in[i] != in[j] {
				c.cut[[2]string{a.IP, b.IP}] = true
			}
		}
	}
}

// Heal restores every link.
func (c *Cluster) Heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = map[[2]string]bool{}
}

// enforce closes the open connections that the cut now refuses, on every
// running node.
func (c *Cluster) enforce() {
	c.mu.Lock()
	nodes := append([]*Node(nil), c.Nodes...)
	c.mu.Unlock()
	for _, n := range nodes {
		if h := n.Hub(); h != nil {
			h.Cluster().EnforceBlocked()
		}
	}
}

func (c *Cluster) blocked(local, remote string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut[[2]string{local, remote}]
}

// Leader returns the node that is leader now, or nil.
func (c *Cluster) Leader() *Node {
	for _, n := range c.Nodes {
		if h := n.Hub(); h != nil && h.Cluster().IsLeader() {
			return n
		}
	}
	return nil
}

// WaitLeader waits until exactly one running node reports itself leader and
// it answers linearizable reads, and returns it.
func (c *Cluster) WaitLeader(timeout time.Duration) *Node {
	c.t.Helper()
	var leader *Node
	WaitFor(c.t, timeout, "a leader", func() bool {
		leader = c.Leader()
		if leader == nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return leader.Hub().Cluster().ConsistentRead(ctx) == nil
	})
	return leader
}

// WaitFor polls cond every 20 ms until it holds or the deadline passes,
// then fails the test naming what it waited for. The deadline is timeout
// stretched by Scale: callers state what an idle machine needs.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout = scaledWithin(t, timeout)
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout.Round(time.Millisecond), what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scaledWithin is timeout stretched to the machine (deadline.Scale) but
// ending at least 30 s before the test binary's own deadline (-timeout),
// so that a wait that cannot succeed fails with what it saw instead of the
// binary panicking with only a goroutine dump.
func scaledWithin(t testing.TB, timeout time.Duration) time.Duration {
	timeout = deadline.Scale(timeout)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if end, ok := d.Deadline(); ok {
			if left := time.Until(end) - 30*time.Second; left < timeout {
				timeout = max(left, time.Second)
			}
		}
	}
	return timeout
}

// WaitUntil is WaitFor for a check that says what is still missing: it
// polls until check returns nil and, on timeout, fails with the last
// answer, so a failure shows the state the test saw rather than only what
// it waited for.
func WaitUntil(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	timeout = scaledWithin(t, timeout)
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout.Round(time.Millisecond), what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
