package planner

import (
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestPlannerKeepsBackingOffInstance: an instance whose agent backs off
// (its image cannot be pulled, it crash-loops) on a ready host keeps its
// id: the agent retries it; only when its host goes down is it replaced.
func TestPlannerKeepsBackingOffInstance(t *testing.T) {
	for _, reason := range []string{state.ReasonImagePull, state.ReasonCrashLoop, state.ReasonStartFailed} {
		t.Run(reason, func(t *testing.T) {
			h := newPlanHarness(t)
			h.pool("p", "dc1")
			h.host("h1", "p", 8, 8192)
			h.host("h2", "p", 8, 8192)
			h.app(apitypes.AppSpec{Name: "web", Image: "w", Instances: n(1)})
			h.plan()
			is, _ := h.fsm.Store().Snapshot().AppInstances(nil, "acme", "web")
			if len(is) != 1 {
				t.Fatalf("placed %d", len(is))
			}
			id, host := is[0].ID, is[0].Host
			for k := range 5 {
				h.must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: host, Time: pt0.Add(time.Duration(k) * time.Minute),
					Updates: []state.InstanceUpdate{{ID: id, State: state.InstanceStarting, Restarts: k, Reason: reason, Message: "no luck"}}})
				if req := h.planAt(pt0.Add(time.Duration(k) * time.Minute)); req != nil && (len(req.Stop) > 0 || len(req.Place) > 0) {
					t.Fatalf("retry %d: the planner replaced a backing-off instance: %s", k, planSummary(req))
				}
			}
			h.must(state.HostStateType, &state.HostStateRequest{ID: host, State: state.HostDown, Time: pt0})
			req := h.plan()
			if req == nil || len(req.Stop) != 1 || req.Stop[0].ID != id || len(req.Place) != 1 || req.Place[0].Host == host {
				t.Fatalf("its host down: want it replaced on the other host, got %s", planSummary(req))
			}
		})
	}
}

// TestPlannerRevertsVersionThatCannotRun: with auto_revert, a new
// version whose instance cannot run (its agent backs off) is reverted at
// once, without waiting for the health deadline.
func TestPlannerRevertsVersionThatCannotRun(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.host("h1", "p", 8, 8192)
	spec := apitypes.AppSpec{Name: "web", Image: "v1", Instances: n(2),
		Strategy: &apitypes.Strategy{AutoRevert: true, HealthDeadline: apitypes.Duration(time.Hour)}}
	h.app(spec)
	h.plan()
	h.reportAll(true)
	spec.Image = "v2:missing"
	h.app(spec)
	h.plan() // one v2 placed (surge 1)
	is, _ := h.fsm.Store().Snapshot().AppInstances(nil, "acme", "web")
	for _, i := range is {
		if i.Version == 2 {
			h.must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: i.Host, Time: pt0,
				Updates: []state.InstanceUpdate{{ID: i.ID, State: state.InstanceStarting, Reason: state.ReasonImagePull, Message: "manifest unknown"}}})
		}
	}
	req := h.planAt(pt0.Add(time.Second))
	if req == nil || len(req.Revert) != 1 || req.Revert[0].To != 1 || !strings.Contains(req.Revert[0].Reason, "manifest unknown") {
		t.Fatalf("want a revert to version 1 naming the pull error, got %s", planSummary(req))
	}
}

// TestPlannerPendingForMissingDriver: an app no host's driver runs stays
// pending with the missing driver named; an exec host enrolling places it.
func TestPlannerPendingForMissingDriver(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	enrol := func(id string, drivers ...string) {
		h.must(state.HostEnrollType, &state.HostEnrollRequest{TokenID: "jt-p", SecretHash: "s", Time: pt0,
			Host: state.Host{ID: id, Name: id, Inventory: state.Inventory{CPUs: 4, MemoryBytes: 4 << 30, Drivers: drivers}}})
	}
	enrol("d1", "docker")
	h.app(apitypes.AppSpec{Name: "job", Command: []string{"/bin/job"}, Instances: n(2)})
	h.plan()
	a, _ := h.fsm.Store().Snapshot().App(nil, "acme", "job")
	if want := "no host in pools [p] runs exec (apps with only a command need an exec host)"; !strings.Contains(a.Pending, want) {
		t.Fatalf("pending %q, want it to say %q", a.Pending, want)
	}
	if got := h.placement("job", 0); len(got) != 0 {
		t.Fatalf("placed on a docker host: %v", got)
	}
	enrol("e1", "exec")
	h.plan()
	if got := h.placement("job", 0); got["e1"] != 2 {
		t.Fatalf("placements once an exec host enrolled: %v", got)
	}
}

// TestPlannerMovesInstanceOffHostThatCannotRunIt: a host whose agent
// comes back with another driver cannot run the instances it has; they
// are replaced on a host that can (not left to back off there forever).
func TestPlannerMovesInstanceOffHostThatCannotRunIt(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	enrol := func(id string, drivers ...string) {
		h.must(state.HostEnrollType, &state.HostEnrollRequest{TokenID: "jt-p", SecretHash: "s", Time: pt0,
			Host: state.Host{ID: id, Name: id, Inventory: state.Inventory{CPUs: 4, MemoryBytes: 4 << 30, Drivers: drivers}}})
	}
	enrol("h1", "docker")
	h.app(apitypes.AppSpec{Name: "web", Image: "w", Instances: n(1)})
	h.plan()
	h.reportAll(true)
	enrol("h2", "docker")
	h.must(state.HostInventoryType, &state.HostInventoryRequest{ID: "h1", Inventory: state.Inventory{CPUs: 4, MemoryBytes: 4 << 30, Drivers: []string{"exec"}}})
	req := h.plan()
	if req == nil || len(req.Stop) != 1 || !strings.Contains(req.Stop[0].Reason, "cannot run it") || len(req.Place) != 1 || req.Place[0].Host != "h2" {
		t.Fatalf("want the instance moved from h1 (now exec) to h2, got %s", planSummary(req))
	}
}
