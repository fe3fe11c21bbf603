package state

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
)

func TestEnrollment(t *testing.T) {
	h := newHarness(t)
	fill(h) // CA, pool aws-bj, token jt1 (2 uses, 1 h), host1 enrolled with it
	enroll := func(id, name, tok, hash string, at time.Time) error {
		return h.apply(HostEnrollType, &HostEnrollRequest{TokenID: tok, SecretHash: hash, Host: Host{ID: id, Name: name}, Time: at})
	}
	tests := []struct {
		name string
		err  error
		do   func() error
	}{
		{"second CA", ErrConflict, func() error {
			return h.apply(AgentCACreateType, &AgentCACreateRequest{CA: AgentCA{CertPEM: []byte("x")}})
		}},
		{"token for missing pool", ErrRefused, func() error {
			return h.apply(JoinTokenCreateType, &JoinTokenCreateRequest{Token: JoinToken{ID: "jt9", Pool: "mars", SecretHash: "x"}})
		}},
		{"wrong secret", ErrRefused, func() error { return enroll("h2", "n2", "jt1", "nope", t0) }},
		{"unknown token", ErrRefused, func() error { return enroll("h2", "n2", "jt7", "sh", t0) }},
		{"expired", ErrRefused, func() error { return enroll("h2", "n2", "jt1", "sh", t0.Add(2*time.Hour)) }},
		{"name taken in pool", ErrConflict, func() error { return enroll("h2", "n1", "jt1", "sh", t0) }},
		{"second use", nil, func() error { return enroll("h2", "n2", "jt1", "sh", t0) }},
		{"used up", ErrRefused, func() error { return enroll("h3", "n3", "jt1", "sh", t0) }},
		{"state change", nil, func() error {
			return h.apply(HostStateType, &HostStateRequest{ID: "host1", State: HostDown, Disconnected: true, Reason: "no heartbeat for 10s", Time: t0})
		}},
		{"inventory", nil, func() error {
			return h.apply(HostInventoryType, &HostInventoryRequest{ID: "h2", Inventory: Inventory{CPUs: 8, MemoryBytes: 1 << 34, GossipAddr: "10.0.0.2:7484", Labels: map[string]string{"disk": "ssd"}}})
		}},
		{"inventory of a missing host", ErrNotFound, func() error {
			return h.apply(HostInventoryType, &HostInventoryRequest{ID: "h9", Inventory: Inventory{CPUs: 1}})
		}},
		{"bad state", ErrInvalid, func() error { return h.apply(HostStateType, &HostStateRequest{ID: "host1", State: "sleepy"}) }},
		{"revoke", nil, func() error { return h.apply(JoinTokenDeleteType, &JoinTokenDeleteRequest{ID: "jt1"}) }},
		{"revoked", ErrRefused, func() error { return enroll("h4", "n4", "jt1", "sh", t0) }},
		{"remove host", nil, func() error { return h.apply(HostDeleteType, &HostDeleteRequest{ID: "host1", Time: t0}) }},
		{"remove again", ErrNotFound, func() error { return h.apply(HostDeleteType, &HostDeleteRequest{ID: "host1"}) }},
	}
	for _, tt := range tests {
		err := tt.do()
		if (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
			t.Fatalf("%s: got %v, want %v", tt.name, err, tt.err)
		}
	}
	s := h.snap()
	if h2, _ := s.Host(nil, "h2"); h2 == nil || h2.Pool != "aws-bj" || h2.Datacenter != "dc1" || h2.State != HostReady {
		t.Fatalf("enrolled host: %+v", h2)
	} else if h2.Inventory.CPUs != 8 || h2.Inventory.GossipAddr != "10.0.0.2:7484" || h2.Inventory.Labels["disk"] != "ssd" {
		t.Fatalf("inventory not replaced: %+v", h2.Inventory)
	}
	evs, _ := s.Events(nil, 0)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	want := []string{"host.enrolled", "host.enrolled", "host.state", "host.removed"}
	if len(types) != len(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("events %v, want %v", types, want)
		}
	}
	if later, _ := s.Events(nil, evs[1].Index); len(later) != 2 {
		t.Fatalf("events after %d: %d, want 2", evs[1].Index, len(later))
	}
}

// TestHostStateFrom: a state change made from an older look at the host
// (liveness judging it suspect while an admin drained it) is refused
// and changes nothing; one that saw the current state applies.
func TestHostStateFrom(t *testing.T) {
	h := newHarness(t)
	fill(h) // host1 ready
	if err := h.apply(HostStateType, &HostStateRequest{ID: "host1", State: HostDraining, From: HostReady, Reason: "drained by admin", Time: t0}); err != nil {
		t.Fatal(err)
	}
	before, _ := h.snap().Events(nil, 0)
	err := h.apply(HostStateType, &HostStateRequest{ID: "host1", State: HostSuspect, From: HostReady, Reason: "no heartbeat for 2s", Time: t0})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("a verdict from a stale look: %v, want a conflict", err)
	}
	if got, _ := h.snap().Host(nil, "host1"); got.State != HostDraining {
		t.Fatalf("host state %s after a refused change, want draining", got.State)
	}
	if after, _ := h.snap().Events(nil, 0); len(after) != len(before) {
		t.Fatalf("a refused change recorded an event: %d events, want %d", len(after), len(before))
	}
	if err := h.apply(HostStateType, &HostStateRequest{ID: "host1", State: HostReady, From: HostDraining, Reason: "undrained", Time: t0}); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.snap().Host(nil, "host1"); got.State != HostReady {
		t.Fatalf("host state %s, want ready", got.State)
	}
}

// TestHostStates: one entry changes many hosts; a change refused on its
// own (host gone, From no longer holding, unknown state) is skipped whole
// and the others apply, each with its event and, for a host going down,
// its instances' metering closed as a single change would.
func TestHostStates(t *testing.T) {
	h := newHarness(t)
	fill(h) // host1 ready, running i-1 (placed)
	h.must(HostEnrollType, &HostEnrollRequest{TokenID: "jt1", SecretHash: "sh", Host: Host{ID: "host2", Name: "n2"}, Time: t0})
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-1", State: InstanceRunning, Ready: true}}, Time: t0})
	if i, _ := h.snap().Instance(nil, "i-1"); i.MeteredSince == 0 {
		t.Fatal("i-1 not metered while running")
	}
	before, _ := h.snap().Events(nil, 0)
	at := t0.Add(time.Hour)
	err := h.apply(HostStatesType, &HostStatesRequest{Time: at, Changes: []HostStateChange{
		{ID: "host1", State: HostDown, Disconnected: true, Reason: "no heartbeat for 10s", From: HostReady},
		{ID: "gone", State: HostSuspect, Reason: "no heartbeat for 4s", From: HostReady},
		{ID: "host2", State: HostSuspect, Reason: "no heartbeat for 4s", From: HostDraining},
		{ID: "host2", State: "sleepy"},
	}})
	if err != nil {
		t.Fatalf("a batch with refused changes: %v, want the others applied", err)
	}
	s := h.snap()
	if h1, _ := s.Host(nil, "host1"); h1.State != HostDown || !h1.Disconnected {
		t.Fatalf("host1: %s disconnected=%v, want down and disconnected", h1.State, h1.Disconnected)
	}
	if h2, _ := s.Host(nil, "host2"); h2.State != HostReady {
		t.Fatalf("host2: %s, want ready (both its changes refused)", h2.State)
	}
	if i, _ := s.Instance(nil, "i-1"); i.MeteredSince != 0 {
		t.Fatal("i-1 still metered on a down host")
	}
	after, _ := s.Events(nil, 0)
	if len(after) != len(before)+1 {
		t.Fatalf("%d events recorded, want 1 (the applied change)", len(after)-len(before))
	}
	if e := after[len(after)-1]; e.Type != "host.state" || e.Subject != "host1" || !e.Time.Equal(at) ||
		e.Message != "host n1: ready -> down (disconnected: its pool peers still see it): no heartbeat for 10s" {
		t.Fatalf("event %+v", e)
	}
}

// TestPoolHosts: a pool's hosts, by name, and not those of a pool whose
// name it begins ("bj" against "bj2"); the channel it adds fires when one
// of them changes.
func TestPoolHosts(t *testing.T) {
	h := newHarness(t)
	h.must(AgentCACreateType, &AgentCACreateRequest{CA: AgentCA{CertPEM: []byte("cert"), KeyPEM: []byte("key"), Fingerprint: "sha256:00"}, Time: t0})
	for _, p := range []string{"bj", "bj2"} {
		h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: p, Datacenter: "dc1"}, Time: t0})
		h.must(JoinTokenCreateType, &JoinTokenCreateRequest{Token: JoinToken{ID: "jt-" + p, Pool: p, SecretHash: "s-" + p, ExpiresAt: t0.Add(time.Hour)}, Time: t0})
	}
	enrol := func(pool, id, name string) {
		h.must(HostEnrollType, &HostEnrollRequest{TokenID: "jt-" + pool, SecretHash: "s-" + pool, Host: Host{ID: id, Name: name, Inventory: Inventory{CPUs: 2, MemoryBytes: 1 << 30}}, Time: t0})
	}
	enrol("bj", "h-a", "zeta")
	enrol("bj2", "h-b", "alpha")
	enrol("bj", "h-c", "beta")
	ws := memdb.NewWatchSet()
	hosts, err := h.snap().PoolHosts(ws, "bj")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range hosts {
		got = append(got, x.Name)
	}
	if !slices.Equal(got, []string{"beta", "zeta"}) {
		t.Fatalf("hosts of bj: %v, want beta and zeta", got)
	}
	h.must(HostStateType, &HostStateRequest{ID: "h-c", State: HostSuspect, Time: t0})
	if ws.Watch(time.After(5 * time.Second)) {
		t.Fatal("a change of one of the pool's hosts did not fire its channel")
	}
}
