package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/goleak"

	"github.com/wharf-platform/wharf/hub/hubtest/deadline"
	"github.com/wharf-platform/wharf/hub/state"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// memberlist's Shutdown does not wait for an in-flight probe, which
		// ends by itself within the probe timeout.
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		// A future Raft never answers because it shut down while the
		// future sat in its queue (see Cluster.await).
		goleak.IgnoreTopFunction("github.com/hashicorp/raft.(*deferError).Error"),
	)
}

// kvFSM is a replicated map; a command "k=v" sets a key, "!k" fails with a
// conflict if k is set.
type kvFSM struct {
	mu sync.Mutex
	m  map[string]string
}

type kvCmd struct{ K, V string }

func (f *kvFSM) Apply(l *raft.Log) interface{} {
	var c kvCmd
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return &state.Error{Kind: state.KindInvalid, Msg: err.Error()}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[c.K]; ok && c.V == "" {
		return &state.Error{Kind: state.KindConflict, Msg: c.K + " is set"}
	}
	f.m[c.K] = c.V
	return nil
}

func (f *kvFSM) get(k string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[k]
}

func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(f.m)
	return kvSnap(b), err
}

func (f *kvFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	m := map[string]string{}
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return err
	}
	f.mu.Lock()
	f.m = m
	f.mu.Unlock()
	return nil
}

type kvSnap []byte

func (s kvSnap) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}
func (s kvSnap) Release() {}

type node struct {
	c      *Cluster
	fsm    *kvFSM
	cfg    Config
	cancel context.CancelFunc
	done   chan error
}

func logger() *slog.Logger {
	if os.Getenv("WHARF_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testConfig(t *testing.T, i int, key []byte, expect int, join []string) Config {
	cfg := DefaultConfig()
	ip := fmt.Sprintf("127.0.%d.%d", 100+i, 11+i)
	cfg.NodeID, cfg.NodeName = fmt.Sprintf("id-%d", i), fmt.Sprintf("n%d", i)
	cfg.DataDir = t.TempDir()
	cfg.BootstrapExpect, cfg.Join, cfg.Key = expect, join, key
	cfg.RaftAddr, cfg.GossipAddr = ip+":0", ip+":0"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout, cfg.CommitTimeout = 100*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond, 5*time.Millisecond
	cfg.DeadServerGrace = time.Second
	cfg.Logger = logger().With("n", i)
	return cfg
}

func startNode(t *testing.T, cfg Config) *node {
	t.Helper()
	n := &node{fsm: &kvFSM{m: map[string]string{}}, cfg: cfg, done: make(chan error, 1)}
	cfg.FSM = n.fsm
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.c = c
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { n.done <- c.Run(ctx) }()
	t.Cleanup(n.kill)
	return n
}

func (n *node) kill() {
	if n.cancel != nil {
		n.cancel()
		<-n.done
		n.cancel = nil
	}
}

// waitFor polls cond until it holds; the deadline is d stretched by
// deadline.Scale for a slow or loaded machine.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	d = deadline.Scale(d)
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d.Round(time.Millisecond), what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cluster3(t *testing.T, key []byte) []*node {
	var nodes []*node
	var join []string
	for i := 0; i < 3; i++ {
		n := startNode(t, testConfig(t, i, key, 3, join))
		if i == 0 {
			join = []string{n.c.GossipAddr()}
		}
		nodes = append(nodes, n)
	}
	waitFor(t, 15*time.Second, "a ready leader", func() bool { return leaderOf(nodes) != nil })
	return nodes
}

func leaderOf(nodes []*node) *node {
	for _, n := range nodes {
		if n.cancel != nil && n.c.IsLeader() && n.c.leaderReady.Load() {
			return n
		}
	}
	return nil
}

func apply(t *testing.T, n *node, k, v string) error {
	t.Helper()
	b, _ := json.Marshal(kvCmd{k, v})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := n.c.Apply(ctx, b)
	return err
}

// applyAgain is apply retried while the cluster has no leader (a loaded
// machine may hold an election at any time); only for writes that may be
// applied twice.
func applyAgain(t *testing.T, n *node, k, v string) error {
	t.Helper()
	end := time.Now().Add(deadline.Scale(20 * time.Second))
	for {
		err := apply(t, n, k, v)
		if !errors.Is(err, ErrNoLeader) || time.Now().After(end) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestClusterFormsForwardsAndFailsOver(t *testing.T) {
	key, _ := ParseKey(GenerateKey())
	nodes := cluster3(t, key)
	for i, n := range nodes {
		if err := applyAgain(t, n, fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatalf("apply through n%d: %v", i, err)
		}
	}
	// FSM errors come back typed through forwarding.
	for _, n := range nodes {
		if err := apply(t, n, "k0", ""); !errors.Is(err, state.ErrConflict) {
			t.Fatalf("conflict through %s: %v", n.cfg.NodeName, err)
		}
	}
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := n.c.ConsistentRead(ctx)
		cancel()
		if err != nil || n.fsm.get("k2") != "v" {
			t.Fatalf("consistent read on %s: %v %q", n.cfg.NodeName, err, n.fsm.get("k2"))
		}
		if st := n.c.Status(); len(st.Peers) != 3 || st.Leader == "" {
			t.Fatalf("status %+v", st)
		}
	}
	old := leaderOf(nodes)
	old.kill()
	waitFor(t, 10*time.Second, "a new leader", func() bool { l := leaderOf(nodes); return l != nil && l != old })
	l := leaderOf(nodes)
	if err := apply(t, l, "after", "v"); err != nil {
		t.Fatal(err)
	}
	// Restarted from its data dir, the old leader catches up.
	cfg := old.cfg
	cfg.RaftAddr, cfg.GossipAddr = old.c.RaftAddr(), old.c.GossipAddr()
	cfg.Join = []string{l.c.GossipAddr()}
	cfg.BootstrapExpect = 0
	back := startNode(t, cfg)
	waitFor(t, 10*time.Second, "the restarted node to catch up", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return back.c.ConsistentRead(ctx) == nil && back.fsm.get("after") == "v" && back.fsm.get("k0") == "v"
	})
}

// TestPartitionedLeaderCannotServeReads: a leader cut off from both
// followers serves no linearizable read, the majority elects a leader and
// writes, and the old leader catches up once the network heals.
//
// The read is asserted only once the cut is complete from Raft's side:
// hashicorp/raft's VerifyLeader counts every successful AppendEntries
// answer processed after it was called, including the answer to a
// heartbeat that crossed the network before the cut and was still being
// handled. Such a read was confirmed by a follower before the cut, which is
// legitimate; the test waits for a failed heartbeat to each follower,
// which each follower's heartbeat loop reports only after handling its
// earlier answer.
func TestPartitionedLeaderCannotServeReads(t *testing.T) {
	key, _ := ParseKey(GenerateKey())
	var mu sync.Mutex
	cut := map[string]bool{}
	var nodes []*node
	var join []string
	for i := 0; i < 3; i++ {
		cfg := testConfig(t, i, key, 3, join)
		self := fmt.Sprintf("127.0.%d.%d", 100+i, 11+i)
		cfg.Blocked = func(remote string) bool {
			mu.Lock()
			defer mu.Unlock()
			return cut[self] != cut[remote]
		}
		cfg.LeaderWait = time.Second
		n := startNode(t, cfg)
		if i == 0 {
			join = []string{n.c.GossipAddr()}
		}
		nodes = append(nodes, n)
	}
	setCut := func(m map[string]bool) {
		mu.Lock()
		cut = m
		mu.Unlock()
		for _, n := range nodes {
			n.c.EnforceBlocked()
		}
	}
	waitFor(t, 15*time.Second, "a leader", func() bool { return leaderOf(nodes) != nil })
	old := leaderOf(nodes)
	// Only failures reported after the cut count: they come from heartbeat
	// rounds that began after the previous round's answer was handled.
	var isCut atomic.Bool
	failed := make(chan raft.ServerID, 64)
	obs := raft.NewObserver(nil, false, func(o *raft.Observation) bool {
		if f, ok := o.Data.(raft.FailedHeartbeatObservation); ok && isCut.Load() {
			select {
			case failed <- f.PeerID:
			default:
			}
		}
		return false
	})
	old.c.raft.RegisterObserver(obs)
	defer old.c.raft.DeregisterObserver(obs)
	host, _, _ := splitHost(old.c.RaftAddr())
	setCut(map[string]bool{host: true})
	isCut.Store(true)

	lost := map[raft.ServerID]bool{}
	end := time.After(deadline.Scale(10 * time.Second))
	for len(lost) < 2 && old.c.IsLeader() {
		select {
		case id := <-failed:
			lost[id] = true
		case <-end:
			t.Fatalf("the cut leader is still leader and reported failed heartbeats to only %v", lost)
		case <-time.After(10 * time.Millisecond):
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := old.c.ConsistentRead(ctx); err == nil {
		t.Fatalf("a partitioned leader served a linearizable read (failed heartbeats to %v, still leader: %v)", lost, old.c.IsLeader())
	}
	waitFor(t, 10*time.Second, "a new leader in the majority", func() bool {
		for _, n := range nodes {
			if n != old && n.c.IsLeader() && n.c.leaderReady.Load() {
				return true
			}
		}
		return false
	})
	// A write through the majority may still meet the end of an election
	// (a follower that knows no leader yet, a leader that just stepped
	// down): it is retried until the majority takes it.
	waitFor(t, 10*time.Second, "a write through the majority", func() bool {
		for _, n := range nodes {
			if n != old && apply(t, n, "maj", "v") == nil {
				return true
			}
		}
		return false
	})
	setCut(map[string]bool{})
	waitFor(t, 10*time.Second, "the old leader to catch up after healing", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return old.c.ConsistentRead(ctx) == nil && old.fsm.get("maj") == "v"
	})
}

func TestWrongKeyCannotJoin(t *testing.T) {
	key, _ := ParseKey(GenerateKey())
	other, _ := ParseKey(GenerateKey())
	a := startNode(t, testConfig(t, 0, key, 1, nil))
	waitFor(t, 10*time.Second, "a leader", func() bool { return leaderOf([]*node{a}) != nil })
	b := startNode(t, testConfig(t, 1, other, 0, []string{a.c.GossipAddr()}))
	time.Sleep(time.Second)
	if n := len(a.c.Members()); n != 1 {
		t.Fatalf("a node with another key joined gossip: %d members", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if c, err := b.c.mux.dial(ctx, a.c.RaftAddr(), alpnRPC); err == nil {
		c.Close()
		t.Fatal("a node with another key completed a TLS handshake on the Raft port")
	}
}

func TestDeadServerRemovedAfterGrace(t *testing.T) {
	key, _ := ParseKey(GenerateKey())
	nodes := cluster3(t, key)
	var victim *node
	for _, n := range nodes {
		if !n.c.IsLeader() {
			victim = n
			break
		}
	}
	victim.kill()
	waitFor(t, 20*time.Second, "the dead node's removal", func() bool {
		l := leaderOf(nodes)
		return l != nil && len(l.c.Status().Peers) == 2
	})
}

func TestParseKey(t *testing.T) {
	for _, bad := range []string{"", "not base64!", "c2hvcnQ="} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
	if _, err := ParseKey(GenerateKey()); err != nil {
		t.Fatal(err)
	}
}

func splitHost(addr string) (string, string, error) { return net.SplitHostPort(addr) }

// TestEntryFormatFollowsTheVoters: commands are written in the newest
// format every voter reads, and a node that reads less than the cluster
// writes is not made a voter.
func TestEntryFormatFollowsTheVoters(t *testing.T) {
	key, _ := ParseKey(GenerateKey())
	// An upgrade under way: the leader is an older version.
	oldCfg := testConfig(t, 0, key, 1, nil)
	oldCfg.EntryFormat = 1
	old := startNode(t, oldCfg)
	waitFor(t, 10*time.Second, "a leader", func() bool { return leaderOf([]*node{old}) != nil })
	if f := old.c.EntryFormat(); f != 1 {
		t.Fatalf("a format-1 node alone writes format %d", f)
	}
	upgraded := startNode(t, testConfig(t, 1, key, 0, []string{old.c.GossipAddr()}))
	waitFor(t, 15*time.Second, "the upgraded node as a voter, in both nodes' configurations", func() bool {
		return len(old.c.Status().Peers) == 2 && len(upgraded.c.Status().Peers) == 2
	})
	if f := upgraded.c.EntryFormat(); f != 1 {
		t.Fatalf("beside a format-1 voter the upgraded node writes format %d, want 1", f)
	}

	// Every voter upgraded: the newest format; an older node does not join.
	key2, _ := ParseKey(GenerateKey())
	a := startNode(t, testConfig(t, 2, key2, 1, nil))
	waitFor(t, 10*time.Second, "a leader", func() bool { return leaderOf([]*node{a}) != nil })
	if f := a.c.EntryFormat(); f != state.EntryFormat {
		t.Fatalf("a node of this version alone writes format %d, want %d", f, state.EntryFormat)
	}
	bCfg := testConfig(t, 3, key2, 0, []string{a.c.GossipAddr()})
	bCfg.EntryFormat = 1
	startNode(t, bCfg)
	waitFor(t, 10*time.Second, "the older node in gossip", func() bool { return len(a.c.Members()) == 2 })
	// Reconcile runs every 500 ms and on every gossip change.
	time.Sleep(deadline.Scale(2 * time.Second))
	if p := a.c.Status().Peers; len(p) != 1 {
		t.Fatalf("a format-1 node joined a format-%d cluster: peers %+v", state.EntryFormat, p)
	}
	if f := a.c.EntryFormat(); f != state.EntryFormat {
		t.Fatalf("beside a node that is no voter the cluster writes format %d", f)
	}
}

// TestAdmitVoter: who may become a voter, by the formats gossip tells.
func TestAdmitVoter(t *testing.T) {
	voters := func(ids ...string) []raft.Server {
		var out []raft.Server
		for _, id := range ids {
			out = append(out, raft.Server{ID: raft.ServerID(id), Suffrage: raft.Voter})
		}
		return out
	}
	c := &Cluster{cfg: Config{NodeID: "self", EntryFormat: 3}, members: map[string]Member{
		"old":    {Meta: Meta{ID: "old"}, Alive: true},               // published nothing: 1
		"new":    {Meta: Meta{ID: "new", Entries: 3}, Alive: true},   // this version
		"gone":   {Meta: Meta{ID: "gone", Entries: 1}, Alive: false}, // dead: says nothing
		"cand":   {Meta: Meta{ID: "cand", Entries: 1}, Alive: true},
		"cand2":  {Meta: Meta{ID: "cand2", Entries: 2}, Alive: true},
		"newer":  {Meta: Meta{ID: "newer", Entries: 4}, Alive: true},
		"silent": {Meta: Meta{ID: "silent"}, Alive: true},
	}}
	for _, tc := range []struct {
		name    string
		id      string
		f       int
		servers []raft.Server
		want    bool
	}{
		{"this version", "new", 3, voters("self"), true},
		{"a newer version", "newer", 4, voters("self", "new"), true},
		{"an older one, every voter upgraded", "cand", 1, voters("self", "new"), false},
		{"an older one beside an old voter", "cand", 1, voters("self", "old"), true},
		{"format 2 beside an old voter", "cand2", 2, voters("self", "old"), true},
		{"an older one beside a dead old voter", "cand", 1, voters("self", "gone"), false},
		{"an unpublished one, every voter upgraded", "silent", 0, voters("self", "new"), false},
		{"a rejoining old voter counts not for itself", "old", 0, voters("self", "old", "new"), false},
	} {
		if got := c.admitVoter(tc.id, tc.f, tc.servers); got != tc.want {
			t.Errorf("%s: admitted %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A leader's "no leader" answer, sent over the RPC, is ErrNoLeader on the
// follower too (callers retry on it), keeps its wording and whether the
// write was submitted, and other kinds stay as they are.
func TestNoLeaderCrossesTheRPC(t *testing.T) {
	for _, tc := range []struct {
		err          error
		noLeader     bool
		notSubmitted bool
	}{
		{fmt.Errorf("%w: leadership lost while committing", ErrNoLeader), true, false},
		{errNotSubmitted, true, true},
		{&state.Error{Kind: state.KindConflict, Msg: "stale cas index 3"}, false, false},
	} {
		got := toRPCError(tc.err).err()
		if errors.Is(got, ErrNoLeader) != tc.noLeader {
			t.Errorf("%v: errors.Is(ErrNoLeader) = %v", got, !tc.noLeader)
		}
		var se *state.Error
		if !errors.As(got, &se) || se.NotSubmitted != tc.notSubmitted {
			t.Errorf("%v: as *state.Error %+v, want not_submitted %v", got, se, tc.notSubmitted)
		}
		if errors.Is(got, errNotSubmitted) != tc.notSubmitted {
			t.Errorf("%v: errors.Is(errNotSubmitted) = %v", got, !tc.notSubmitted)
		}
		if tc.noLeader && got.Error() != "from leader: "+tc.err.Error() {
			t.Errorf("message %q", got.Error())
		}
	}
	if errors.Is(toRPCError(state.ErrConflict).err(), ErrNoLeader) {
		t.Error("a conflict is not ErrNoLeader")
	}
}

// TestRaftReadsItsLogCache: the entries Raft replicates and applies come
// from its in-memory cache of the newest entries, not read back from the
// WAL, on the leader and the followers alike.
func TestRaftReadsItsLogCache(t *testing.T) {
	key, err := ParseKey(GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	nodes := cluster3(t, key)
	before := make([]int64, len(nodes))
	for i, n := range nodes {
		before[i] = n.c.logCache.misses.Load()
	}
	const writes = 200
	for i := range writes {
		if err := applyAgain(t, nodes[i%3], fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "every node to apply every write", func() bool {
		for _, n := range nodes {
			if n.fsm.get(fmt.Sprintf("k%d", writes-1)) != "v" {
				return false
			}
		}
		return true
	})
	for i, n := range nodes {
		// A few reads are normal (an election looks at the last entry).
		if got := n.c.logCache.misses.Load() - before[i]; got > writes/10 {
			t.Errorf("%s read %d entries from the WAL for %d writes", n.cfg.NodeName, got, writes)
		}
	}
}

// TestWaitAppliedEndsWithTheNode checks that a read waiting for this node
// to catch up returns when the node shuts down rather than keep polling a
// stopped Raft until its deadline (an API's shared read barrier would
// outlive the node).
func TestWaitAppliedEndsWithTheNode(t *testing.T) {
	key, _ := ParseKey(GenerateKey())
	cfg := testConfig(t, 0, key, 1, nil)
	cfg.LeaderWait = time.Minute
	n := startNode(t, cfg)
	waitFor(t, 15*time.Second, "a ready leader", func() bool { return n.c.IsLeader() && n.c.leaderReady.Load() })
	done := make(chan error, 1)
	go func() { done <- n.c.waitApplied(context.Background(), n.c.raft.AppliedIndex()+1000) }()
	time.Sleep(50 * time.Millisecond) // polling by now
	n.kill()
	select {
	case err := <-done:
		if !errors.Is(err, raft.ErrRaftShutdown) {
			t.Fatalf("waitApplied on a stopped node: %v, want %v", err, raft.ErrRaftShutdown)
		}
	case <-time.After(deadline.Scale(5 * time.Second)):
		t.Fatal("waitApplied still polls a node that shut down")
	}
}

// TestReadsWaitForANewLeadersBarrier: a consistent read on a leader
// whose barrier has not applied yet waits for it instead of failing at
// once, and a read that waits past LeaderWait still fails.
func TestReadsWaitForANewLeadersBarrier(t *testing.T) {
	key, _ := ParseKey(GenerateKey())
	cfg := testConfig(t, 0, key, 1, nil)
	cfg.LeaderWait = 2 * time.Second
	n := startNode(t, cfg)
	waitFor(t, 15*time.Second, "a ready leader", func() bool { return n.c.IsLeader() && n.c.leaderReady.Load() })

	// As the leader is between its election and its barrier.
	n.c.setLeaderReady(false)
	done := make(chan error, 1)
	go func() { done <- n.c.ConsistentRead(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("a read on a leader before its barrier returned at once: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	n.c.setLeaderReady(true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the read after the barrier: %v", err)
		}
	case <-time.After(deadline.Scale(time.Second)):
		t.Fatal("the read did not wake when the leader became ready")
	}

	n.c.setLeaderReady(false)
	start := time.Now()
	if err := n.c.ConsistentRead(context.Background()); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("a read on a leader that never becomes ready: %v, want %v", err, ErrNoLeader)
	}
	if waited := time.Since(start); waited < cfg.LeaderWait {
		t.Fatalf("the read gave up after %s, before LeaderWait (%s)", waited, cfg.LeaderWait)
	}
}

// Followers learn of a commit from the leader's notice, not from Raft's
// next AppendEntries: with CommitTimeout at ten minutes, a lone write
// would reach the followers' stores only then.
func TestFollowersLearnCommitsAtOnce(t *testing.T) {
	key, _ := ParseKey(GenerateKey())
	var nodes []*node
	var join []string
	for i := 0; i < 3; i++ {
		cfg := testConfig(t, i, key, 3, join)
		cfg.CommitTimeout = 10 * time.Minute
		n := startNode(t, cfg)
		if i == 0 {
			join = []string{n.c.GossipAddr()}
		}
		nodes = append(nodes, n)
	}
	waitFor(t, 15*time.Second, "a ready leader", func() bool { return leaderOf(nodes) != nil })
	leader := leaderOf(nodes)
	for round := 0; round < 3; round++ {
		k := fmt.Sprintf("k%d", round)
		if err := apply(t, leader, k, "v"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitFor(t, 5*time.Second, "the followers' stores", func() bool {
			for _, n := range nodes {
				if n.fsm.get(k) != "v" {
					return false
				}
			}
			return true
		})
		t.Logf("round %d: on every follower %v after the leader", round, time.Since(start).Round(time.Millisecond))
		time.Sleep(200 * time.Millisecond) // a write after a quiet spell
	}
}
