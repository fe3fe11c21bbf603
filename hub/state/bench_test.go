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
	msgs := appUpdates(b)
	applyEach(b, h, msgs)
}

// BenchmarkApplyAuditedAppUpsert is BenchmarkApplyAppUpsert as the API
// commits it: in the newest entry form, with the request's audit entry in
// the same log entry, in a full audit log (so applies drop the oldest
// entries too).
func BenchmarkApplyAuditedAppUpsert(b *testing.B) {
	h := newHarness(b)
	fill(h)
	batch := make([]AuditEntry, 0, 1000)
	for i := range 1000 {
		batch = append(batch, AuditEntry{Actor: "ci", Tenant: "beta", Method: "PUT", Path: fmt.Sprintf("/v1/apps/b%d", i), Status: 200})
	}
	for range DefaultAuditKeep / 1000 {
		h.must(AuditRecordType, &AuditRecordRequest{Entries: batch})
	}
	msgs := make([][]byte, 100)
	for i := range msgs {
		s := spec(fmt.Sprintf("b%d", i), "bench:1")
		s.Instances = intp(i % 5)
		s.Env = map[string]string{"PAD": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}
		m, err := EncodeFor(EntryFormat, AppUpsertType, &AppUpsertRequest{Tenant: "beta", Spec: s, Time: t0})
		if err != nil {
			b.Fatal(err)
		}
		e := AuditEntry{Time: t0, Actor: "ci", ActorID: "tok-1", Role: "admin", Tenant: "beta", Method: "PUT",
			Path: fmt.Sprintf("/v1/apps/b%d", i), Status: 200, Object: fmt.Sprintf("b%d", i), Node: "hub1"}
		a, err := EncodeFor(EntryFormat, AuditedType, &AuditedRequest{Command: m, Entry: e, Keep: DefaultAuditKeep})
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = a
	}
	applyEach(b, h, msgs)
}

// applyEach applies msgs in turn, b.N entries in all, timed.
func applyEach(b *testing.B, h *harness, msgs [][]byte) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.index++
		if r := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: msgs[i%len(msgs)]}); r != nil {
			b.Fatal(r)
		}
	}
}

// BenchmarkDecodeAppUpsert compares the two forms of the app update's log
// entry: what every node pays to read it before applying it.
func BenchmarkDecodeAppUpsert(b *testing.B) {
	s := spec("b1", "bench:1")
	s.Instances = intp(3)
	s.Env = map[string]string{"BENCH": "yes", "PAD": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}
	req := &AppUpsertRequest{Tenant: "bench", Spec: s, Time: t0}
	for _, c := range []struct {
		name string
		enc  func(MessageType, any) ([]byte, error)
	}{{"json", encodeJSON}, {"binary", Encode}} {
		msg, err := c.enc(AppUpsertType, req)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for i := 0; i < b.N; i++ {
				if _, _, err := Decode(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApplyBatchAppUpsert is BenchmarkApplyAppUpsert with the
// entries handed over 16 at a time, as Raft does under load (ApplyBatch):
// the cost per entry.
func BenchmarkApplyBatchAppUpsert(b *testing.B) {
	h := newHarness(b)
	fill(h)
	msgs := appUpdates(b)
	const batch = 16
	logs := make([]*raft.Log, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		n := min(batch, b.N-i)
		for j := range n {
			h.index++
			logs[j] = &raft.Log{Index: h.index, Type: raft.LogCommand, Data: msgs[(i+j)%len(msgs)]}
		}
		for _, r := range h.fsm.ApplyBatch(logs[:n]) {
			if r != nil {
				b.Fatal(r)
			}
		}
	}
}

// rolloutState is BenchmarkApplyRollout's state, and rollouts the
// rollouts it has made.
var (
	rolloutState *harness
	rollouts     int
)

// appUpdates returns 100 encoded updates of beta's apps, each ~250 bytes
// of spec like the API benchmark's.
func appUpdates(b *testing.B) [][]byte {
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
	return msgs
}

// BenchmarkApplyRollout measures the FSM's instance writes in a large
// state (bigState: 50,000 instances on 5,000 hosts): one op is a rolling
// update of a 50-instance app as the planner and agents write it, a plan
// that stops the old 50 and places 50 new, the hosts' reports of the new
// ones running, then of the old ones stopped (which removes them). Per op:
// 150 instance writes over 3 + ~100 entries.
func BenchmarkApplyRollout(b *testing.B) {
	// The testing package calls a benchmark again with a larger b.N: the
	// large state is built once and rolled on from where it was.
	if rolloutState == nil {
		rolloutState = bigState(b)
	}
	h := rolloutState
	h.t = b
	const tenant, app = "t042", "app3"
	old, err := h.snap().AppInstances(nil, tenant, app)
	if err != nil || len(old) != 50 {
		b.Fatalf("%d instances of %s/%s: %v", len(old), tenant, app, err)
	}
	apply := func(t MessageType, req any) {
		b.Helper()
		msg, err := Encode(t, req)
		if err != nil {
			b.Fatal(err)
		}
		h.index++
		if r := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: msg}); r != nil {
			b.Fatal(r)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rollouts++
		n := rollouts
		plan := &PlanApplyRequest{Time: t0}
		for k, i := range old {
			plan.Stop = append(plan.Stop, InstanceStop{ID: i.ID, Reason: "update"})
			plan.Place = append(plan.Place, Instance{ID: fmt.Sprintf("r%d-%02d", n, k), Tenant: tenant, App: app, Version: 2 + n,
				Host: i.Host, CPU: 100, Memory: 64})
		}
		apply(PlanApplyType, plan)
		for _, p := range plan.Place {
			apply(InstanceUpdateType, &InstanceUpdateRequest{Host: p.Host, Time: t0,
				Updates: []InstanceUpdate{{ID: p.ID, State: InstanceRunning, Ready: true, Address: "10.0.0.2:8080"}}})
		}
		for _, i := range old {
			apply(InstanceUpdateType, &InstanceUpdateRequest{Host: i.Host, Time: t0,
				Updates: []InstanceUpdate{{ID: i.ID, State: InstanceStopped}}})
		}
		b.StopTimer()
		if old, err = h.snap().AppInstances(nil, tenant, app); err != nil || len(old) != 50 {
			b.Fatalf("%d instances of %s/%s after the rollout: %v", len(old), tenant, app, err)
		}
		b.StartTimer()
	}
}
