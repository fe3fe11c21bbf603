package cluster

import (
	"io"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
)

// countFSM answers each command with its index and counts the calls.
type countFSM struct{ applies, batches int }

func (f *countFSM) Apply(l *raft.Log) interface{}       { f.applies++; return l.Index }
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, nil }
func (f *countFSM) Restore(io.ReadCloser) error         { return nil }

type batchFSM struct{ countFSM }

func (f *batchFSM) ApplyBatch(logs []*raft.Log) []interface{} {
	f.batches++
	out := make([]interface{}, len(logs))
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			out[i] = l.Index
		}
	}
	return out
}

// TestTrackingFSMBatches: Raft's batches reach a batching inner FSM in one
// call and a plain one entry by entry (commands only), and the applied
// index follows the batch's last entry.
func TestTrackingFSMBatches(t *testing.T) {
	logs := []*raft.Log{{Index: 5, Type: raft.LogCommand}, {Index: 6, Type: raft.LogConfiguration}, {Index: 7, Type: raft.LogCommand}}
	want := []interface{}{uint64(5), nil, uint64(7)}
	for _, tt := range []struct {
		name          string
		inner         raft.FSM
		wantApplies   int
		wantBatchCall int
	}{
		{name: "batching inner FSM", inner: &batchFSM{}, wantBatchCall: 1},
		{name: "plain inner FSM", inner: &countFSM{}, wantApplies: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newTrackingFSM(tt.inner)
			if got := f.ApplyBatch(logs); !reflect.DeepEqual(got, want) {
				t.Fatalf("responses %v, want %v", got, want)
			}
			var c countFSM
			switch in := tt.inner.(type) {
			case *batchFSM:
				c = in.countFSM
				c.batches = in.batches
			case *countFSM:
				c = *in
			}
			if c.applies != tt.wantApplies || c.batches != tt.wantBatchCall {
				t.Fatalf("%d applies and %d batches, want %d and %d", c.applies, c.batches, tt.wantApplies, tt.wantBatchCall)
			}
			if idx, _ := f.state(); idx != 7 {
				t.Fatalf("applied index %d, want 7", idx)
			}
		})
	}
}
