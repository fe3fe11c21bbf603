package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// ErrNoLeader is returned when no leader answers in time. It matches
// state.ErrUnavailable, which the API maps to 503.
var ErrNoLeader = &state.Error{Kind: state.KindUnavailable, Msg: "no cluster leader"}

// errNotSubmitted is ErrNoLeader for a request that never reached a leader.
var errNotSubmitted = &state.Error{Kind: state.KindUnavailable, Msg: "no cluster leader", NotSubmitted: true}

// Cluster is this node's membership in the hub cluster.
type Cluster struct {
	cfg        Config
	log        *slog.Logger
	fsm        *trackingFSM
	mux        *mux
	raft       *raft.Raft
	logs       *wal.WAL
	logCache   *logCache      // Raft's view of logs
	stable     *guardedStable // logs, as Raft's stable store
	walMeta    *metadb.BoltMetaDB
	trans      *raft.NetworkTransport
	notices    *notifier // tells followers of commits (notice.go)
	ml         *memberlist.Memberlist
	rpcSrv     *http.Server
	rpcClient  *http.Client
	rpcMu      sync.RWMutex
	rpcs       map[string]http.Handler // by name, from Handle
	pipes      pipes                   // to the leader (pipe.go)
	pipeWG     sync.WaitGroup          // the pipes this node answers
	raftAddr   string
	gossipAddr string

	leaderReady atomic.Bool
	// readyMu guards readyCh, closed at the next change of leaderReady:
	// reads waiting for a new leader's barrier wake on it (awaitReady).
	readyMu  sync.Mutex
	readyCh  chan struct{}
	hasState atomic.Bool // Raft state exists: never bootstrap
	kickCh   chan struct{}

	membersMu sync.Mutex
	members   map[string]Member           // by gossip name, kept by the event delegate
	deadSince map[raft.ServerID]time.Time // leader loop only
	// refused holds the nodes not made voters for their entry format,
	// with the format they published (leader loop only: logged once).
	refused map[raft.ServerID]int

	shutdownOnce sync.Once
	shutdownErr  error
	wg           sync.WaitGroup
	stop         chan struct{}
}

// New binds the node's listeners and starts Raft and gossip. Run starts the
// background loops; Shutdown stops everything.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg:       cfg,
		log:       cfg.Logger,
		fsm:       newTrackingFSM(cfg.FSM),
		notices:   newNotifier(),
		kickCh:    make(chan struct{}, 1),
		deadSince: map[raft.ServerID]time.Time{},
		refused:   map[raft.ServerID]int{},
		stop:      make(chan struct{}),
	}
	ok := false
	defer func() {
		if !ok {
			c.Shutdown()
		}
	}()
	ip, err := advertiseIP(cfg.Advertise, cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("advertise address: %w", err)
	}
	serverTLS, clientTLS, err := tlsConfigs(cfg.Key, cfg.NodeName)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("listen raft %s: %w", cfg.RaftAddr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // re-bound by the mux right away; we needed the port for port 0
	c.raftAddr = net.JoinHostPort(ip, strconv.Itoa(port))
	bind, _, _ := net.SplitHostPort(cfg.RaftAddr)
	adv, _ := net.ResolveTCPAddr("tcp", c.raftAddr)
	c.mux, err = newMux(net.JoinHostPort(bind, strconv.Itoa(port)), adv, serverTLS, clientTLS, cfg.Blocked, c.log)
	if err != nil {
		return nil, fmt.Errorf("listen raft %s: %w", cfg.RaftAddr, err)
	}
	go c.mux.serve()

	if err := c.startRaft(); err != nil {
		return nil, err
	}
	c.startRPC()
	gip, err := advertiseIP(cfg.Advertise, cfg.GossipAddr)
	if err != nil {
		return nil, err
	}
	meta := Meta{ID: cfg.NodeID, Name: cfg.NodeName, Datacenter: cfg.Datacenter, RaftAddr: c.raftAddr, HTTPAddr: cfg.HTTPAddr, Expect: cfg.BootstrapExpect, Extra: cfg.Extra, Entries: cfg.EntryFormat}
	if err := c.startGossip(gip, meta); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// logCacheEntries is how many of the newest log entries Raft keeps in
// memory, and how many it sends a follower at once (MaxAppendEntries);
// logCacheEntryBytes is the largest entry kept, so the cache holds at most
// 16 MB of entries.
const (
	logCacheEntries    = 256
	logCacheEntryBytes = 64 << 10
)

func (c *Cluster) startRaft() error {
	dir := filepath.Join(c.cfg.DataDir, "raft")
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o700); err != nil {
		return err
	}
	hl := newHCLog(c.log, "raft")
	// raft-wal's Close leaves its meta database open (and locked), so we own it.
	c.walMeta = &metadb.BoltMetaDB{}
	// A segment size of zero is raft-wal's default.
	logs, err := wal.Open(filepath.Join(dir, "wal"), wal.WithLogger(hl), wal.WithMetaStore(c.walMeta), wal.WithSegmentSize(c.cfg.WALSegmentBytes))
	if err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	c.logs = logs
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hl)
	if err != nil {
		return fmt.Errorf("open snapshots: %w", err)
	}
	c.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{newChanListener(c.mux, c.mux.raft)},
		MaxPool: 4,
		Timeout: 10 * time.Second,
		Logger:  hl,
	})
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.cfg.NodeID)
	rc.Logger = hl
	rc.HeartbeatTimeout = c.cfg.HeartbeatTimeout
	rc.ElectionTimeout = c.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = c.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = c.cfg.CommitTimeout
	rc.SnapshotThreshold = c.cfg.SnapshotThreshold
	rc.SnapshotInterval = 30 * time.Second
	rc.TrailingLogs = c.cfg.TrailingLogs
	rc.MaxAppendEntries = logCacheEntries
	// Not BatchApplyCh: entries waiting in its buffered channel when Raft
	// shuts down never get an answer, and their callers wait forever. The
	// leader batches whatever is queued anyway (MaxAppendEntries).
	has, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	c.hasState.Store(has)
	notify := make(chan bool, 8)
	rc.NotifyCh = notify
	c.stable = &guardedStable{StableStore: logs}
	// Raft reads back every entry it replicates or applies: the newest
	// 256 are kept decoded in memory instead of read from the WAL again.
	c.logCache = newLogCache(logs, logCacheEntries, logCacheEntryBytes)
	c.fsm.onApply = c.notices.appliedUpTo
	r, err := raft.NewRaft(rc, c.fsm, c.logCache, c.stable, snaps, c.notices.transport(c.trans))
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	c.raft = r
	c.notices.raft.Store(r)
	c.wg.Add(1)
	go c.watchLeadership(notify)
	return nil
}

// Run runs the join, bootstrap and leader loops until ctx ends, then shuts
// the node down (without leaving: a restart rejoins).
func (c *Cluster) Run(ctx context.Context) error {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.joinLoop(ctx)
	}()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return c.Shutdown()
		case <-c.stop:
			return nil
		case <-t.C:
		case <-c.kickCh:
		}
		c.maybeBootstrap()
		if c.IsLeader() {
			c.reconcile()
		}
	}
}

func (c *Cluster) kick() {
	select {
	case c.kickCh <- struct{}{}:
	default:
	}
}

func (c *Cluster) joinLoop(ctx context.Context) {
	if len(c.cfg.Join) == 0 {
		return
	}
	backoff := 200 * time.Millisecond
	for {
		n, err := c.ml.Join(c.cfg.Join)
		if n > 0 {
			c.log.Info("joined hub cluster", "contacted", n)
			return
		}
		c.log.Warn("join hub cluster", "addrs", c.cfg.Join, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-c.stop:
			return
		case <-time.After(backoff):
		}
		if backoff < 10*time.Second {
			backoff *= 2
		}
	}
}

// maybeBootstrap forms the first Raft configuration once BootstrapExpect
// servers that expect the same are alive in gossip. Every one of them
// computes the same sorted configuration, as Consul does.
func (c *Cluster) maybeBootstrap() {
	if c.cfg.BootstrapExpect == 0 {
		return
	}
	if c.hasState.Load() || c.raft.LastIndex() > 0 {
		return
	}
	var servers []raft.Server
	for _, m := range c.Members() {
		if !m.Alive || m.Expect == 0 {
			continue
		}
		if m.Expect != c.cfg.BootstrapExpect {
			c.log.Error("bootstrap-expect mismatch: not bootstrapping", "node", m.Name, "expect", m.Expect, "mine", c.cfg.BootstrapExpect)
			return
		}
		servers = append(servers, raft.Server{ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr), Suffrage: raft.Voter})
	}
	if len(servers) < c.cfg.BootstrapExpect {
		return
	}
	sortServers(servers)
	if err := c.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		c.log.Error("bootstrap raft", "err", err)
		return
	}
	c.hasState.Store(true)
	c.log.Info("bootstrapped hub cluster", "servers", len(servers))
}

// Shutdown stops the node abruptly (no graceful leave): Raft, gossip, RPC
// and listeners. Safe to call more than once.
func (c *Cluster) Shutdown() error {
	c.shutdownOnce.Do(func() {
		close(c.stop)
		var errs []error
		if c.raft != nil {
			errs = append(errs, c.raft.Shutdown().Error())
		}
		if c.stable != nil {
			c.stable.close() // before the WAL: a heartbeat may still be storing a term
		}
		if c.ml != nil {
			errs = append(errs, c.ml.Shutdown())
		}
		if c.rpcSrv != nil {
			// Raft is down, so in-flight handlers return at once; wait for
			// them rather than leave them behind.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			if err := c.rpcSrv.Shutdown(ctx); err != nil {
				c.rpcSrv.Close()
			}
			cancel()
		}
		if c.rpcClient != nil {
			c.rpcClient.CloseIdleConnections()
		}
		if c.trans != nil {
			errs = append(errs, c.trans.Close())
		}
		c.notices.close()
		if c.mux != nil {
			c.mux.close()
			// Their connections are closed and their requests cancelled;
			// wait for those handlers as for the RPC server's, bounded.
			waitBounded(&c.pipeWG, 3*time.Second)
		}
		if c.logs != nil {
			errs = append(errs, c.logs.Close())
		}
		if c.walMeta != nil {
			errs = append(errs, c.walMeta.Close())
		}
		c.wg.Wait()
		c.shutdownErr = errors.Join(errs...)
	})
	return c.shutdownErr
}

// RaftStats returns Raft's own statistics (hashicorp/raft Stats: state,
// term, last_log_index, commit_index, applied_index, last_contact, ...).
func (c *Cluster) RaftStats() map[string]string { return c.raft.Stats() }

// RaftAddr returns the advertised Raft/RPC address.
func (c *Cluster) RaftAddr() string { return c.raftAddr }

// GossipAddr returns the advertised gossip address.
func (c *Cluster) GossipAddr() string { return c.gossipAddr }

// IsLeader reports whether this node is the Raft leader.
func (c *Cluster) IsLeader() bool { return c.raft.State() == raft.Leader }

// LeaderContact reports how long ago this node last heard from the
// leader: zero on the leader itself (which steps down once it loses a
// quorum for longer than the leader lease), a large value when it never
// has.
func (c *Cluster) LeaderContact() time.Duration {
	if c.raft.State() == raft.Leader {
		return 0
	}
	last := c.raft.LastContact()
	if last.IsZero() {
		return time.Duration(1<<62 - 1)
	}
	return time.Since(last)
}

// Status describes this node and the cluster as it sees it.
func (c *Cluster) Status() apitypes.Status {
	names := map[string]string{}
	for _, m := range c.Members() {
		names[m.ID] = m.Name
	}
	names[c.cfg.NodeID] = c.cfg.NodeName
	_, leaderID := c.raft.LeaderWithID()
	st := apitypes.Status{
		Node:       c.cfg.NodeName,
		Datacenter: c.cfg.Datacenter,
		State:      strings.ToLower(c.raft.State().String()),
		Leader:     names[string(leaderID)],
		Peers:      []apitypes.Peer{},
		Index:      c.raft.AppliedIndex(),
	}
	if leaderID != "" && st.Leader == "" {
		st.Leader = string(leaderID)
	}
	if f := c.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			st.Peers = append(st.Peers, apitypes.Peer{ID: string(s.ID), Name: names[string(s.ID)], Address: string(s.Address), Leader: s.ID == leaderID, Voter: s.Suffrage == raft.Voter})
		}
	}
	return st
}

// Apply commits msg through Raft and returns its index and the FSM's
// answer (nil or *state.Error). A follower forwards it to the leader.
func (c *Cluster) Apply(ctx context.Context, msg []byte) (uint64, error) {
	addr, err := c.leaderAddr(ctx)
	if err != nil {
		return 0, err
	}
	if addr == c.raftAddr {
		return c.applyLocal(ctx, msg)
	}
	return c.forwardApply(ctx, addr, msg)
}

// leaderAddr waits (bounded) until a leader is known and returns its
// Raft address.
func (c *Cluster) leaderAddr(ctx context.Context) (string, error) {
	deadline := time.Now().Add(c.cfg.LeaderWait)
	for {
		if c.IsLeader() {
			return c.raftAddr, nil
		}
		if addr, _ := c.raft.LeaderWithID(); addr != "" {
			return string(addr), nil
		}
		if time.Now().After(deadline) {
			return "", errNotSubmitted
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: %v", errNotSubmitted, ctx.Err())
		case <-c.stop:
			return "", errNotSubmitted
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 10 * time.Second
}

func (c *Cluster) applyLocal(ctx context.Context, msg []byte) (uint64, error) {
	f := c.raft.Apply(msg, timeoutOf(ctx))
	if err := c.await(ctx, f); err != nil {
		// Not leader (any more), lost leadership or timed out: the entry may
		// or may not commit. Clients retry; CAS makes that safe.
		return 0, fmt.Errorf("%w: %v", ErrNoLeader, err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return f.Index(), err
	}
	return f.Index(), nil
}

// readIndex is the leader's half of a linearizable read: an index that
// covers every write acknowledged so far, confirmed by a quorum.
func (c *Cluster) readIndex(ctx context.Context) (uint64, error) {
	if !c.IsLeader() {
		return 0, ErrNoLeader
	}
	if err := c.awaitReady(ctx); err != nil {
		return 0, err
	}
	idx := c.raft.AppliedIndex()
	if err := c.await(context.Background(), c.raft.VerifyLeader()); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoLeader, err)
	}
	return idx, nil
}

// setLeaderReady sets leaderReady and wakes the reads waiting for it.
func (c *Cluster) setLeaderReady(ready bool) {
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	c.leaderReady.Store(ready)
	if c.readyCh != nil {
		close(c.readyCh)
		c.readyCh = nil
	}
}

// awaitReady waits, while this node leads, until its barrier has applied
// what earlier leaders committed (leaderReady), ctx ends or LeaderWait
// passes. Reads refused for the moment a new leader's barrier takes
// would fail every agent that reconnects to a node that has just
// restarted and been elected, sending each to a longer wait.
func (c *Cluster) awaitReady(ctx context.Context) error {
	var timeout <-chan time.Time
	for {
		c.readyMu.Lock()
		ready := c.leaderReady.Load()
		if !ready && c.readyCh == nil {
			c.readyCh = make(chan struct{})
		}
		ch := c.readyCh
		c.readyMu.Unlock()
		if ready {
			return nil
		}
		if !c.IsLeader() {
			return ErrNoLeader
		}
		if timeout == nil {
			t := time.NewTimer(c.cfg.LeaderWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-ch:
		case <-timeout:
			return ErrNoLeader
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
		case <-c.stop:
			return ErrNoLeader
		}
	}
}

// ConsistentRead returns once the local FSM reflects every write
// acknowledged before the call (Raft's read-index protocol).
func (c *Cluster) ConsistentRead(ctx context.Context) error {
	addr, err := c.leaderAddr(ctx)
	if err != nil {
		return err
	}
	if addr == c.raftAddr {
		// The leader acknowledges a write only after applying it, so a
		// confirmed leader's store already holds every acknowledged write.
		_, err := c.readIndex(ctx)
		return err
	}
	idx, err := c.forwardReadIndex(ctx, addr)
	if err != nil {
		return err
	}
	return c.waitApplied(ctx, idx)
}

// waitApplied waits until Raft has dispatched index idx and the FSM has
// applied the last command at or below it. It wakes when the FSM applies
// commands, and every 2 ms while idx may be an entry the FSM never sees
// (a configuration change, a new leader's first entry).
func (c *Cluster) waitApplied(ctx context.Context, idx uint64) error {
	deadline := time.Now().Add(c.cfg.LeaderWait)
	var need uint64
	known := false
	for {
		applied, changed := c.fsm.state()
		if !known && c.raft.AppliedIndex() >= idx {
			need, known = c.lastCommandAtOrBelow(idx), true
		}
		if known && applied >= need {
			return nil
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return fmt.Errorf("%w: this node lags behind the leader", ErrNoLeader)
		}
		if !known {
			wait = min(wait, 2*time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-c.stop:
			t.Stop()
			return raft.ErrRaftShutdown
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// lastCommandAtOrBelow finds the index of the last FSM command at or below
// idx in the local log (0 when it is compacted into a snapshot, which has
// then been restored already).
func (c *Cluster) lastCommandAtOrBelow(idx uint64) uint64 {
	for i, n := idx, 0; i > 0 && n < 4096; i, n = i-1, n+1 {
		var l raft.Log
		if err := c.logs.GetLog(i, &l); err != nil {
			return 0
		}
		if l.Type == raft.LogCommand {
			return i
		}
	}
	return 0
}

func (c *Cluster) watchLeadership(notify <-chan bool) {
	defer c.wg.Done()
	var term leaderTerm
	defer term.end()
	for {
		select {
		case <-c.stop:
			return
		case leader := <-notify:
			c.setLeaderReady(false)
			term.end()
			if !leader {
				continue
			}
			// Barrier: apply everything earlier leaders committed before
			// serving linearizable reads.
			for c.IsLeader() {
				if err := c.await(context.Background(), c.raft.Barrier(10*time.Second)); err == nil {
					c.setLeaderReady(true)
					c.log.Info("leader ready", "index", c.raft.AppliedIndex())
					c.kick()
					if c.cfg.OnLeader != nil {
						ctx := term.begin()
						c.wg.Add(1)
						go func() {
							defer c.wg.Done()
							c.cfg.OnLeader(ctx)
						}()
					}
					break
				}
				select {
				case <-c.stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
	}
}

// leaderTerm holds the context of the current term of leadership.
type leaderTerm struct {
	cancel context.CancelFunc
}

func (t *leaderTerm) begin() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	return ctx
}

func (t *leaderTerm) end() {
	if t.cancel != nil {
		t.cancel()
		t.cancel = nil
	}
}

// await waits for a Raft future, but no longer than ctx or this node's
// shutdown: Raft does not answer futures still queued in its buffered
// channels when it shuts down, and their callers must not hang with it.
func (c *Cluster) await(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stop:
		return raft.ErrRaftShutdown
	}
}

// waitBounded waits for wg, at most d.
func waitBounded(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}
