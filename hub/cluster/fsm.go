package cluster

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// trackingFSM wraps the caller's FSM to know the index of the last command
// the FSM has actually applied. Raft's AppliedIndex is raised when entries
// are dispatched to the FSM, before they are applied, so a follower serving
// a read-index read also waits for this.
type trackingFSM struct {
	inner raft.FSM
	// onApply, when set, is told the index and term of the last entry of
	// each apply.
	onApply func(index, term uint64)

	mu      sync.Mutex
	applied uint64
	changed chan struct{} // closed and replaced on every change
}

func newTrackingFSM(inner raft.FSM) *trackingFSM {
	return &trackingFSM{inner: inner, changed: make(chan struct{})}
}

func (f *trackingFSM) set(idx uint64) {
	f.mu.Lock()
	f.applied = idx
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// state returns the last applied command index and a channel closed when it
// changes.
func (f *trackingFSM) state() (uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied, f.changed
}

func (f *trackingFSM) Apply(l *raft.Log) interface{} {
	r := f.inner.Apply(l)
	f.set(l.Index)
	if f.onApply != nil {
		f.onApply(l.Index, l.Term)
	}
	return r
}

var _ raft.BatchingFSM = (*trackingFSM)(nil)

// ApplyBatch implements raft.BatchingFSM, so that Raft hands the inner FSM
// the entries committed together: in one call when it batches too, else
// one by one.
func (f *trackingFSM) ApplyBatch(logs []*raft.Log) []interface{} {
	var out []interface{}
	if b, ok := f.inner.(raft.BatchingFSM); ok {
		out = b.ApplyBatch(logs)
	} else {
		out = make([]interface{}, len(logs))
		for i, l := range logs {
			if l.Type == raft.LogCommand {
				out[i] = f.inner.Apply(l)
			}
		}
	}
	if len(logs) > 0 {
		last := logs[len(logs)-1]
		f.set(last.Index)
		if f.onApply != nil {
			f.onApply(last.Index, last.Term)
		}
	}
	return out
}

// Snapshot prefixes the inner snapshot with the last applied command index,
// so that a node restored from it knows which commands it contains.
func (f *trackingFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.inner.Snapshot()
	if err != nil {
		return nil, err
	}
	idx, _ := f.state()
	return &trackingSnapshot{inner: s, index: idx}, nil
}

func (f *trackingFSM) Restore(rc io.ReadCloser) error {
	var b [8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		rc.Close()
		return fmt.Errorf("snapshot prefix: %w", err)
	}
	if err := f.inner.Restore(rc); err != nil {
		return err
	}
	f.set(binary.BigEndian.Uint64(b[:]))
	return nil
}

type trackingSnapshot struct {
	inner raft.FSMSnapshot
	index uint64
}

func (s *trackingSnapshot) Persist(sink raft.SnapshotSink) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], s.index)
	if _, err := sink.Write(b[:]); err != nil {
		sink.Cancel()
		return err
	}
	return s.inner.Persist(sink)
}

func (s *trackingSnapshot) Release() { s.inner.Release() }
