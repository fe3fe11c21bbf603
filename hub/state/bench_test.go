package state

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
)

// BenchmarkApplyAppUpsert measures the FSM's cost of one app update, the
// write the API benchmark drives (decode, checks, memdb transaction).
func BenchmarkApplyAppUpsert(b *testing.B) {
	h := newHarness(b)
	fill(h)
	msgs := make([][]byte, 100)
	for i := range msgs {
		s := spec(fmt.Sprintf("b%d", i), "bench:1")
		s.Instances = intp(i % 5)
		s.Env = map[string]string{"PAD": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}
		m, err := Encode(AppUpsertType, &AppUpsertRequest{Tenant: "beta", Spec: s, Time: t0})
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.index++
		if r := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: msgs[i%len(msgs)]}); r != nil {
			b.Fatal(r)
		}
	}
}
