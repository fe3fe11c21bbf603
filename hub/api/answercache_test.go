package api

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestInstancesCache: queries at one state share one build and its
// watches; a new state builds again; errors are not kept.
func TestInstancesCache(t *testing.T) {
	f := newFixture(t)
	f.applyState(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: "i-1", Tenant: "acme", App: "web", Version: 1, Host: "host1"}}})
	var c instancesCache
	builds := 0
	build := func(ws memdb.WatchSet, snap *state.Snapshot, tenant, name string) ([]apitypes.Instance, uint64, error) {
		builds++
		return appInstancesAt(ws, snap, tenant, name)
	}
	get := func(tenant, name string) ([]apitypes.Instance, memdb.WatchSet, error) {
		ws := memdb.NewWatchSet()
		body, _, err := c.get(ws, f.api.cfg.Store.Snapshot(), tenant, name, build)
		if err != nil {
			return nil, ws, err
		}
		var out []apitypes.Instance
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		return out, ws, nil
	}
	a, wsA, err := get("acme", "web")
	if err != nil || len(a) != 1 || builds != 1 || len(wsA) == 0 {
		t.Fatalf("first: %v %v, %d builds, %d watches", a, err, builds, len(wsA))
	}
	b, wsB, err := get("acme", "web")
	if err != nil || len(b) != 1 || builds != 1 || len(wsB) != len(wsA) {
		t.Fatalf("second at the same state: %v %v, %d builds, %d watches (want %d)", b, err, builds, len(wsB), len(wsA))
	}
	if _, _, err := get("beta", "web"); err != nil || builds != 2 {
		t.Fatalf("another tenant's app: %v, %d builds", err, builds)
	}
	f.applyState(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "host1", Updates: []state.InstanceUpdate{{ID: "i-1", State: state.InstanceRunning}}})
	if c, _, err := get("acme", "web"); err != nil || builds != 3 || c[0].State != state.InstanceRunning {
		t.Fatalf("after a write: %v %v, %d builds", c, err, builds)
	}
	for range 2 {
		if _, _, err := get("acme", "nope"); err == nil {
			t.Fatal("a missing app answered")
		}
	}
	if builds != 5 {
		t.Fatalf("%d builds: a missing app's error was kept", builds)
	}
}

// TestInstancesCacheKeepsIndexOfUnchangedAnswer: an answer built again
// with the same bytes keeps its index; one that differs gets the new
// state's; and a query at a state older than the last answer built gets
// that answer, never an older answer with an index above it (which a
// watcher of the newer one would then miss).
func TestInstancesCacheKeepsIndexOfUnchangedAnswer(t *testing.T) {
	f := newFixture(t)
	var snaps []*state.Snapshot
	for i := range 4 {
		f.applyState(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: fmt.Sprintf("x-%d", i), Tenant: "beta", App: "web", Version: 1, Host: "host1"}}})
		snaps = append(snaps, f.api.cfg.Store.Snapshot())
	}
	// What the app's list is at each state: the same at 0, 2 and 3 (read
	// as writes the list does not show), another at 1.
	content := []string{"a", "b", "a", "a"}
	var c instancesCache
	builds := 0
	build := func(ws memdb.WatchSet, snap *state.Snapshot, tenant, name string) ([]apitypes.Instance, uint64, error) {
		builds++
		for i, s := range snaps {
			if s.LatestIndex() == snap.LatestIndex() {
				return []apitypes.Instance{{ID: content[i]}}, snap.LatestIndex(), nil
			}
		}
		t.Fatal("a build at an unknown state")
		return nil, 0, nil
	}
	get := func(i int) (string, uint64) {
		body, idx, err := c.get(memdb.NewWatchSet(), snaps[i], "acme", "web", build)
		if err != nil {
			t.Fatal(err)
		}
		var out []apitypes.Instance
		if err := json.Unmarshal(body, &out); err != nil || len(out) != 1 {
			t.Fatalf("%s: %v", body, err)
		}
		return out[0].ID, idx
	}
	at := func(i int) uint64 { return snaps[i].LatestIndex() }
	if id, idx := get(0); id != "a" || idx != at(0) {
		t.Fatalf("state 0: %s at %d, want a at %d", id, idx, at(0))
	}
	if id, idx := get(2); id != "a" || idx != at(0) || builds != 2 {
		t.Fatalf("state 2, the same answer: %s at %d after %d builds, want a at %d (kept) after 2", id, idx, builds, at(0))
	}
	if id, idx := get(1); id != "a" || idx != at(0) || builds != 2 {
		t.Fatalf("state 1, older than the last built: %s at %d after %d builds, want the last answer (a at %d), no build", id, idx, builds, at(0))
	}
	content[3] = "c"
	if id, idx := get(3); id != "c" || idx != at(3) {
		t.Fatalf("state 3, a new answer: %s at %d, want c at %d", id, idx, at(3))
	}
}
