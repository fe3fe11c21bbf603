package api

import (
	"encoding/json"
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
