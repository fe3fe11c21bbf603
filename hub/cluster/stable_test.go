package cluster

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// closedStore fails every write, as the WAL's metadata does once closed.
type closedStore struct{ raft.StableStore }

func (closedStore) Set([]byte, []byte) error       { return errors.New("closed") }
func (closedStore) SetUint64([]byte, uint64) error { return errors.New("closed") }

func TestGuardedStableDropsWritesOnceClosed(t *testing.T) {
	mem := raft.NewInmemStore()
	g := &guardedStable{StableStore: mem}
	if err := g.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	if v, _ := mem.GetUint64([]byte("CurrentTerm")); v != 3 {
		t.Fatalf("write before close not stored: %d", v)
	}
	g.close()
	g.StableStore = closedStore{mem} // the WAL, closed after the guard
	if err := g.SetUint64([]byte("CurrentTerm"), 4); err != nil {
		t.Fatalf("a write after close failed (raft would panic): %v", err)
	}
	if err := g.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatalf("a write after close failed: %v", err)
	}
	if v, _ := g.GetUint64([]byte("CurrentTerm")); v != 3 {
		t.Fatalf("reads still reach the store: got %d", v)
	}
}
