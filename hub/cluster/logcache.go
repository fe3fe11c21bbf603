package cluster

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// logCache keeps the newest entries Raft wrote in memory, so that
// replicating them (on the leader) and applying them (everywhere) does not
// read them back from the WAL. It is raft.LogCache with a bound on bytes as
// well as entries: an entry larger than maxEntryBytes (a plan placing
// thousands of instances, say) is not kept, so the cache never holds more
// than entries × maxEntryBytes of data; Raft reads such an entry from the
// WAL, a cost small beside its size.
type logCache struct {
	raft.LogStore
	maxEntryBytes int

	mu    sync.Mutex
	slots []*raft.Log // by index modulo len(slots)

	misses atomic.Int64 // entries read from the store, not the cache
}

func newLogCache(store raft.LogStore, entries, maxEntryBytes int) *logCache {
	return &logCache{LogStore: store, maxEntryBytes: maxEntryBytes, slots: make([]*raft.Log, entries)}
}

// GetLog answers from the cache when it holds the entry.
func (c *logCache) GetLog(index uint64, log *raft.Log) error {
	c.mu.Lock()
	cached := c.slots[index%uint64(len(c.slots))]
	c.mu.Unlock()
	if cached != nil && cached.Index == index {
		*log = *cached
		return nil
	}
	c.misses.Add(1)
	return c.LogStore.GetLog(index, log)
}

// StoreLog stores one entry.
func (c *logCache) StoreLog(log *raft.Log) error { return c.StoreLogs([]*raft.Log{log}) }

// StoreLogs stores the entries and, once they are stored, keeps those
// small enough. A slot whose entry is not replaced is emptied, so that
// it holds no older entry's data either.
func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		slot := l.Index % uint64(len(c.slots))
		if len(l.Data)+len(l.Extensions) > c.maxEntryBytes {
			c.slots[slot] = nil
			continue
		}
		c.slots[slot] = l
	}
	return nil
}

// DeleteRange deletes entries from the store and the cache (Raft deletes
// the oldest after a snapshot, which leaves the newest cached, or a
// conflicting suffix).
func (c *logCache) DeleteRange(min, max uint64) error {
	c.mu.Lock()
	for i, l := range c.slots {
		if l != nil && l.Index >= min && l.Index <= max {
			c.slots[i] = nil
		}
	}
	c.mu.Unlock()
	return c.LogStore.DeleteRange(min, max)
}

// IsMonotonic passes on the store's answer (raft.MonotonicLogStore): raft-wal
// cannot hold a gap, so Raft clears it whole after installing a snapshot.
func (c *logCache) IsMonotonic() bool {
	m, ok := c.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}
