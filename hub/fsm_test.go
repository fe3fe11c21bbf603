package hub

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// fsmState is a state store fed through the FSM, for tests of the
// features that read it.
type fsmState struct {
	t     testing.TB
	fsm   *state.FSM
	index uint64
}

var pt0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// newFSMState returns a store holding tenant acme and an agent CA.
func newFSMState(t testing.TB) *fsmState {
	s, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	h := &fsmState{t: t, fsm: state.NewFSM(s, nil)}
	h.must(state.TenantCreateType, &state.TenantCreateRequest{Tenant: state.Tenant{Name: "acme"}, Time: pt0})
	h.must(state.AgentCACreateType, &state.AgentCACreateRequest{CA: state.AgentCA{CertPEM: []byte("c"), KeyPEM: []byte("k"), Fingerprint: "f"}, Time: pt0})
	return h
}

func (h *fsmState) must(mt state.MessageType, req any) {
	h.t.Helper()
	b, err := state.Encode(mt, req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.index++
	if r := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: b}); r != nil {
		h.t.Fatalf("apply %d: %v", mt, r)
	}
}

func (h *fsmState) pool(name, dc string) {
	h.must(state.PoolCreateType, &state.PoolCreateRequest{Pool: state.Pool{Name: name, Datacenter: dc}, Time: pt0})
	h.must(state.JoinTokenCreateType, &state.JoinTokenCreateRequest{Token: state.JoinToken{ID: "jt-" + name, Pool: name, SecretHash: "s", ExpiresAt: pt0.Add(time.Hour)}, Time: pt0})
}

func (h *fsmState) host(id, pool string, cpus, memMB int) {
	h.must(state.HostEnrollType, &state.HostEnrollRequest{TokenID: "jt-" + pool, SecretHash: "s", Time: pt0,
		Host: state.Host{ID: id, Name: id, Inventory: state.Inventory{CPUs: cpus, MemoryBytes: uint64(memMB) << 20}}})
}

func (h *fsmState) app(spec apitypes.AppSpec) {
	spec.Normalize()
	h.must(state.AppUpsertType, &state.AppUpsertRequest{Tenant: "acme", Spec: spec, Time: pt0})
}
