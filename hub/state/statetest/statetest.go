// Package statetest builds state stores for tests: every write goes
// through the FSM, as Raft would apply it, so tests of the features that
// read the state see what a hub node sees.
package statetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// T0 is the time stamped into the commands the helpers write.
var T0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// State is a store fed through the FSM.
type State struct {
	t     testing.TB
	FSM   *state.FSM
	index uint64
}

// New returns a store holding tenant acme and an agent CA.
func New(t testing.TB) *State {
	t.Helper()
	s, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	h := &State{t: t, FSM: state.NewFSM(s, nil)}
	h.Must(state.TenantCreateType, &state.TenantCreateRequest{Tenant: state.Tenant{Name: "acme"}, Time: T0})
	h.Must(state.AgentCACreateType, &state.AgentCACreateRequest{CA: state.AgentCA{CertPEM: []byte("c"), KeyPEM: []byte("k"), Fingerprint: "f"}, Time: T0})
	return h
}

// Store is the state store.
func (h *State) Store() *state.Store { return h.FSM.Store() }

// Must applies one command at the next index and fails the test if the
// FSM refuses it.
func (h *State) Must(mt state.MessageType, req any) {
	h.t.Helper()
	b, err := state.Encode(mt, req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.index++
	if r := h.FSM.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: b}); r != nil {
		h.t.Fatalf("apply %d: %v", mt, r)
	}
}

// Apply commits an encoded command at the next index, as a feature's
// committer would through Raft: it returns the index, or the FSM's
// refusal.
func (h *State) Apply(_ context.Context, msg []byte) (uint64, error) {
	h.index++
	if r := h.FSM.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: msg}); r != nil {
		return h.index, r.(error)
	}
	return h.index, nil
}

// RestoreFrom replaces h's database with a snapshot of from's, as a
// follower installs the leader's: h continues at from's index.
func (h *State) RestoreFrom(from *State) {
	h.t.Helper()
	snap, err := from.FSM.Snapshot()
	if err != nil {
		h.t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&memSink{Buffer: &buf}); err != nil {
		h.t.Fatal(err)
	}
	snap.Release()
	// The index first: a watcher the restore wakes may commit at once.
	h.index = from.index
	if err := h.FSM.Restore(io.NopCloser(&buf)); err != nil {
		h.t.Fatal(err)
	}
}

// memSink is a raft.SnapshotSink into memory.
type memSink struct{ *bytes.Buffer }

func (memSink) ID() string    { return "statetest" }
func (memSink) Cancel() error { return nil }
func (memSink) Close() error  { return nil }

// Pool creates a pool and a join token "jt-<name>" for it.
func (h *State) Pool(name, dc string) {
	h.t.Helper()
	h.Must(state.PoolCreateType, &state.PoolCreateRequest{Pool: state.Pool{Name: name, Datacenter: dc}, Time: T0})
	h.Must(state.JoinTokenCreateType, &state.JoinTokenCreateRequest{Token: state.JoinToken{ID: "jt-" + name, Pool: name, SecretHash: "s", ExpiresAt: T0.Add(time.Hour)}, Time: T0})
}

// Host enrols a ready host of pool with cpus, memMB and labels.
func (h *State) Host(id, pool string, cpus, memMB int, labels map[string]string) {
	h.t.Helper()
	h.Must(state.HostEnrollType, &state.HostEnrollRequest{TokenID: "jt-" + pool, SecretHash: "s", Time: T0,
		Host: state.Host{ID: id, Name: id, Inventory: state.Inventory{CPUs: cpus, MemoryBytes: uint64(memMB) << 20, Labels: labels}}})
}

// App creates or updates an app of tenant acme.
func (h *State) App(spec apitypes.AppSpec) {
	h.t.Helper()
	spec.Normalize()
	h.Must(state.AppUpsertType, &state.AppUpsertRequest{Tenant: "acme", Spec: Spec(h.t, spec), Time: T0})
}

// Spec converts an API spec to the store's, as the API does (the stored
// type keeps the API's JSON names).
func Spec(t testing.TB, spec apitypes.AppSpec) state.AppSpec {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var s state.AppSpec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}
