package state

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
)

// TestWatchIndexes: an app's instances index rises with every write and
// removal of its instances and with nothing else; a host's with its
// state, not with placements on it; after a restore, both are at least
// the restored state's index and rise again from there.
func TestWatchIndexes(t *testing.T) {
	h := newHarness(t)
	fill(h) // acme/web with instance i-1 on host1
	b := spec("web", "web:1")
	b.Pools = []string{"aws-bj"}
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "beta", Spec: b, Create: true, Time: t0})

	app := func() uint64 { return h.snap().AppInstancesIndex(nil, "acme", "web") }
	host := func() uint64 { return h.snap().HostIndex(nil, "host1") }
	steps := []struct {
		name          string
		mt            MessageType
		req           any
		app, hostMove bool // whether each index must move
	}{
		{"another app's instance placed on the host", PlanApplyType, &PlanApplyRequest{Place: []Instance{{ID: "b-1", Tenant: "beta", App: "web", Version: 1, Host: "host1", CPU: 100, Memory: 64}}, Time: t0}, false, false},
		{"another app's instance reported", InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "b-1", State: InstanceRunning}}, Time: t0}, false, false},
		{"its instance reported", InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-1", State: InstanceRunning, Ready: true}}, Time: t0}, true, false},
		{"the host suspect", HostStateType, &HostStateRequest{ID: "host1", State: HostSuspect, Time: t0}, false, true},
		{"the host's inventory", HostInventoryType, &HostInventoryRequest{ID: "host1", Inventory: Inventory{CPUs: 4, MemoryBytes: 8 << 30}}, false, true},
		{"its pending explanation", PlanApplyType, &PlanApplyRequest{Pending: []AppPending{{Tenant: "acme", App: "web", Reason: "no capacity"}}, Time: t0}, true, false},
		{"its instance stopped", PlanApplyType, &PlanApplyRequest{Stop: []InstanceStop{{ID: "i-1", Reason: "test"}}, Time: t0}, true, false},
		{"its instance removed", InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-1", State: InstanceStopped}}, Time: t0}, true, false},
	}
	for _, s := range steps {
		a0, h0 := app(), host()
		h.must(s.mt, s.req)
		if a, hh := app(), host(); (a > a0) != s.app || (hh > h0) != s.hostMove || a < a0 || hh < h0 {
			t.Fatalf("%s: app index %d -> %d (move %v), host index %d -> %d (move %v)", s.name, a0, a, s.app, h0, hh, s.hostMove)
		}
	}

	// A restored node: every index is at least the state's, and the
	// table is no part of the snapshot (snapshots stay byte for byte).
	var buf bytes.Buffer
	snapshotTo(t, h.fsm, &buf)
	raw := append([]byte(nil), buf.Bytes()...)
	if bytes.Contains(raw, []byte(tableWatch)) {
		t.Fatalf("the snapshot holds the derived %s table", tableWatch)
	}
	h2 := newHarness(t)
	if err := h2.fsm.Restore(nopCloser{bytes.NewBuffer(raw)}); err != nil {
		t.Fatal(err)
	}
	h2.index = h.index
	latest := h2.snap().LatestIndex()
	for _, got := range []uint64{h2.snap().AppInstancesIndex(nil, "acme", "web"), h2.snap().AppInstancesIndex(nil, "beta", "web"), h2.snap().HostIndex(nil, "host1")} {
		if got < latest || got < app() {
			t.Fatalf("after a restore an index is %d, below the state's %d (the log-replayed node's app index: %d)", got, latest, app())
		}
	}
	// Every app and host has its row: a query watches that row, not the
	// part of the table where a missing one would be.
	for _, key := range []string{appWatchKey("acme", "web"), appWatchKey("beta", "web"), hostWatchKey("host1")} {
		if obj, err := h2.snap().txn.First(tableWatch, "id", key); err != nil || obj == nil {
			t.Fatalf("after a restore, no watch row %s: %v", key, err)
		}
	}
	before := h2.snap().AppInstancesIndex(nil, "beta", "web")
	h2.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "b-1", State: InstanceRunning, Ready: true}}, Time: t0})
	if after := h2.snap().AppInstancesIndex(nil, "beta", "web"); after <= before {
		t.Fatalf("after a restore, a report of beta/web's instance left its index at %d (was %d)", after, before)
	}
	var again bytes.Buffer
	snapshotTo(t, h2.fsm, &again)
	if bytes.Contains(again.Bytes(), []byte(tableWatch)) {
		t.Fatalf("a restored node's snapshot holds the derived %s table", tableWatch)
	}
}

// TestWatchHosts: the one channel for every host's watch index fires when
// a host's state changes, and not on placements, reports or app writes.
func TestWatchHosts(t *testing.T) {
	h := newHarness(t)
	fill(h) // acme/web with instance i-1 on host1
	watch := func() memdb.WatchSet {
		ws := memdb.NewWatchSet()
		if err := h.snap().WatchHosts(ws); err != nil {
			t.Fatal(err)
		}
		return ws
	}
	ws := watch()
	h.must(PlanApplyType, &PlanApplyRequest{Place: []Instance{{ID: "i-2", Tenant: "acme", App: "web", Version: 2, Host: "host1", CPU: 100, Memory: 128}}, Time: t0})
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-2", State: InstanceRunning, Ready: true}}, Time: t0})
	h.must(AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 2, Time: t0})
	if !ws.Watch(time.After(50 * time.Millisecond)) {
		t.Fatal("the hosts' channel fired on placements, reports or an app write")
	}
	before := h.snap().HostIndex(nil, "host1")
	h.must(HostStateType, &HostStateRequest{ID: "host1", State: HostSuspect, Time: t0})
	if ws.Watch(time.After(5 * time.Second)) {
		t.Fatal("the hosts' channel did not fire when a host became suspect")
	}
	if after := h.snap().HostIndex(nil, "host1"); after <= before {
		t.Fatalf("host index %d -> %d", before, after)
	}
	if err := h.snap().WatchHosts(nil); err != nil {
		t.Fatal(err)
	}
}
