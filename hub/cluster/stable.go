package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
)

// guardedStable is Raft's stable store (the WAL's metadata) made safe to
// close under a heartbeat in flight: raft handles heartbeats on the
// transport's connection goroutines, which its Shutdown does not wait for,
// and it panics when storing a newer term fails. Once closed, writes are
// dropped (a term learnt while shutting down is learnt again after the
// restart); close waits for writes in progress.
type guardedStable struct {
	raft.StableStore
	mu     sync.RWMutex
	closed bool
}

func (g *guardedStable) Set(key, val []byte) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return nil
	}
	return g.StableStore.Set(key, val)
}

func (g *guardedStable) SetUint64(key []byte, val uint64) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return nil
	}
	return g.StableStore.SetUint64(key, val)
}

// close makes later writes no-ops once those in progress have finished.
func (g *guardedStable) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
