package cluster

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

func openWAL(t *testing.T) *wal.WAL {
	t.Helper()
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(t.TempDir(), wal.WithMetaStore(meta))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(); meta.Close() })
	return w
}

// cachedBytes is the data the cache holds.
func (c *logCache) cachedBytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.slots {
		if l != nil {
			n += len(l.Data) + len(l.Extensions)
		}
	}
	return n
}

// The cache serves the newest entries, holds no entry above its size
// limit (read from the WAL instead, whole), drops what DeleteRange deletes
// and keeps the rest, and tells Raft the WAL cannot hold a gap.
func TestLogCache(t *testing.T) {
	c := newLogCache(openWAL(t), 8, 1024)
	if !c.IsMonotonic() {
		t.Fatal("a cache over raft-wal must say it is monotonic: Raft then clears the WAL after installing a snapshot")
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		data := []byte(fmt.Sprintf("entry %d", i))
		if i == 18 {
			data = bytes.Repeat([]byte("x"), 4096) // a big plan
		}
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: data})
	}
	if err := c.StoreLogs(logs[:10]); err != nil {
		t.Fatal(err)
	}
	if err := c.StoreLogs(logs[10:]); err != nil {
		t.Fatal(err)
	}
	read := func(i uint64) {
		t.Helper()
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if !bytes.Equal(l.Data, logs[i-1].Data) {
			t.Fatalf("entry %d holds %.20q", i, l.Data)
		}
	}
	before := c.misses.Load()
	for _, i := range []uint64{13, 14, 15, 16, 17, 19, 20} {
		read(i)
	}
	if got := c.misses.Load() - before; got != 0 {
		t.Fatalf("the newest small entries: %d read from the WAL", got)
	}
	read(18)
	read(3)
	if got := c.misses.Load() - before; got != 2 {
		t.Fatalf("the big entry and an old one: %d read from the WAL, want 2", got)
	}
	if got := c.cachedBytes(); got > 8*1024 || got == 0 {
		t.Fatalf("the cache holds %d bytes (at most 8 entries of 1 KB)", got)
	}
	// Raft deletes the oldest after a snapshot: the newest stay cached.
	if err := c.DeleteRange(1, 14); err != nil {
		t.Fatal(err)
	}
	before = c.misses.Load()
	read(16)
	if got := c.misses.Load() - before; got != 0 {
		t.Fatal("deleting the oldest entries emptied the cache")
	}
	// A conflicting suffix deleted is gone from the cache too.
	if err := c.DeleteRange(19, 20); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := c.GetLog(20, &l); err == nil {
		t.Fatalf("entry 20 read after its deletion: %q", l.Data)
	}
}

// TestFollowerCatchesUpFromASnapshot: a follower down while the others
// write past what their snapshots leave in the log is sent the leader's
// snapshot when it comes back, and then goes on replicating (its WAL,
// which cannot hold a gap, is cleared when it installs the snapshot).
func TestFollowerCatchesUpFromASnapshot(t *testing.T) {
	key, err := ParseKey(GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*node
	var join []string
	for i := range 3 {
		cfg := testConfig(t, i, key, 3, join)
		cfg.TrailingLogs, cfg.WALSegmentBytes = 4, 1024 // a snapshot frees most of the log
		n := startNode(t, cfg)
		if i == 0 {
			join = []string{n.c.GossipAddr()}
		}
		nodes = append(nodes, n)
	}
	waitFor(t, 15*time.Second, "a ready leader", func() bool { return leaderOf(nodes) != nil })
	if err := applyAgain(t, leaderOf(nodes), "first", "v"); err != nil {
		t.Fatal(err)
	}
	var gone *node
	for _, n := range nodes {
		if n != leaderOf(nodes) {
			gone = n
		}
	}
	waitFor(t, 10*time.Second, "the follower to apply the first write", func() bool { return gone.fsm.get("first") == "v" })
	gone.kill()
	live := func() *node {
		for _, n := range nodes {
			if n != gone && n.c.IsLeader() {
				return n
			}
		}
		return nodes[0]
	}
	for i := range 64 {
		if err := applyAgain(t, live(), fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if n != gone {
			if err := n.c.raft.Snapshot().Error(); err != nil {
				t.Fatalf("snapshot on %s: %v", n.cfg.NodeName, err)
			}
		}
	}
	cfg := gone.cfg
	cfg.RaftAddr, cfg.GossipAddr = gone.c.RaftAddr(), gone.c.GossipAddr()
	cfg.BootstrapExpect, cfg.Join = 0, []string{live().c.GossipAddr()}
	back := startNode(t, cfg)
	waitFor(t, 20*time.Second, "the follower to install the snapshot", func() bool { return back.fsm.get("k63") == "v" })
	for i := range 8 {
		if err := applyAgain(t, live(), fmt.Sprintf("after%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the follower to replicate after the snapshot", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return back.c.ConsistentRead(ctx) == nil && back.fsm.get("after7") == "v"
	})
}
