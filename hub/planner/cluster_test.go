package planner

import (
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestPlannerClusterCapacity: a Kubernetes cluster enrolled as one host
// is scheduled by its exact capacity in millicores (7.5 cores fit fifteen
// half-core instances, not fourteen), minus what Wharf placed on it; a
// capacity it reports later (a node joined) is used at once; and it runs
// image apps but never command-only ones.
func TestPlannerClusterCapacity(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("k8s", "dc3")
	h.must(state.HostEnrollType, &state.HostEnrollRequest{TokenID: "jt-k8s", SecretHash: "s", Time: pt0,
		Host: state.Host{ID: "gz", Name: "gz", Inventory: state.Inventory{Kind: state.KindCluster, CPUs: 7, CPUMillis: 7500,
			MemoryBytes: 64 << 30, Drivers: []string{"kubernetes"}}}})

	h.app(apitypes.AppSpec{Name: "web", Image: "web:1", Instances: n(16), CPU: 500, Memory: 64})
	h.plan()
	if got := h.placement("web", 0); got["gz"] != 15 {
		t.Fatalf("placements %v, want 15 on the cluster (7500 millicores)", got)
	}
	a, _ := h.fsm.Store().Snapshot().App(nil, "acme", "web")
	if a.Pending == "" {
		t.Fatal("the 16th instance is not pending")
	}

	// A node joined: the agent's new inventory is used at once.
	h.must(state.HostInventoryType, &state.HostInventoryRequest{ID: "gz", Inventory: state.Inventory{Kind: state.KindCluster, CPUs: 8,
		CPUMillis: 8000, MemoryBytes: 64 << 30, Drivers: []string{"kubernetes"}}})
	h.plan()
	if got := h.placement("web", 0); got["gz"] != 16 {
		t.Fatalf("placements after the cluster grew to 8000 millicores: %v, want 16", got)
	}

	h.app(apitypes.AppSpec{Name: "job", Command: []string{"/bin/job"}, Instances: n(1)})
	h.plan()
	if got := h.placement("job", 0); len(got) != 0 {
		t.Fatalf("a command-only app placed on a cluster: %v", got)
	}
	j, _ := h.fsm.Store().Snapshot().App(nil, "acme", "job")
	if !strings.Contains(j.Pending, "exec") {
		t.Fatalf("job pending %q, want it to say it needs an exec host", j.Pending)
	}
}
