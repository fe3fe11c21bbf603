package planner

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// planHarness is a state store fed through the FSM, for planner tests.
type planHarness struct {
	t       testing.TB
	fsm     *state.FSM
	index   uint64
	ids     int
	planner *planner // incremental, kept from round to round
	// checkFull makes every round also plan every app from scratch and
	// compare: a round that looks only at what changed must miss nothing.
	checkFull bool
	renewals  map[string]time.Time // host -> last lease renewal the leader knows
}

// newPlanner makes a planner that took office at pt0 and learns lease
// renewals from h.renewals.
func (h *planHarness) newPlanner() *planner {
	p := newPlanner()
	p.tookOffice = pt0
	p.lastRenewal = func(host string) time.Time { return h.renewals[host] }
	return p
}

var pt0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func newPlanHarness(t testing.TB) *planHarness {
	s, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	h := &planHarness{t: t, fsm: state.NewFSM(s, nil), checkFull: true, renewals: map[string]time.Time{}}
	h.planner = h.newPlanner()
	h.must(state.TenantCreateType, &state.TenantCreateRequest{Tenant: state.Tenant{Name: "acme"}, Time: pt0})
	h.must(state.AgentCACreateType, &state.AgentCACreateRequest{CA: state.AgentCA{CertPEM: []byte("c"), KeyPEM: []byte("k"), Fingerprint: "f"}, Time: pt0})
	return h
}

func (h *planHarness) must(mt state.MessageType, req any) {
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

func (h *planHarness) pool(name, dc string) {
	h.must(state.PoolCreateType, &state.PoolCreateRequest{Pool: state.Pool{Name: name, Datacenter: dc}, Time: pt0})
	h.must(state.JoinTokenCreateType, &state.JoinTokenCreateRequest{Token: state.JoinToken{ID: "jt-" + name, Pool: name, SecretHash: "s", ExpiresAt: pt0.Add(time.Hour)}, Time: pt0})
}

// host enrols a ready host with cpus and memMB.
func (h *planHarness) host(id, pool string, cpus, memMB int) {
	h.hostLabels(id, pool, cpus, memMB, nil)
}

func (h *planHarness) hostLabels(id, pool string, cpus, memMB int, labels map[string]string) {
	h.must(state.HostEnrollType, &state.HostEnrollRequest{TokenID: "jt-" + pool, SecretHash: "s", Time: pt0,
		Host: state.Host{ID: id, Name: id, Inventory: state.Inventory{CPUs: cpus, MemoryBytes: uint64(memMB) << 20, Labels: labels}}})
}

func (h *planHarness) app(spec apitypes.AppSpec) {
	h.t.Helper()
	spec.Normalize()
	h.must(state.AppUpsertType, &state.AppUpsertRequest{Tenant: "acme", Spec: statetest.Spec(h.t, spec), Time: pt0})
}

// plan builds a plan and commits it, returning it.
func (h *planHarness) plan() *state.PlanApplyRequest { return h.planAt(pt0) }

// planAt plans as if at now.
func (h *planHarness) planAt(now time.Time) *state.PlanApplyRequest {
	h.t.Helper()
	snap := h.fsm.Store().Snapshot()
	req, err := h.planner.build(snap, nil, now, func(app string) string { h.ids++; return fmt.Sprintf("%s-%d", app, h.ids) }, false)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.checkFull {
		fp := h.newPlanner()
		maps.Copy(fp.poolReady, h.planner.poolReady) // what the leader has seen so far
		full, err := fp.build(snap, nil, now, func(app string) string { return app + "-x" }, true)
		if err != nil {
			h.t.Fatal(err)
		}
		if a, b := planSummary(req), planSummary(full); a != b {
			h.t.Fatalf("incremental round differs from a full one:\n incremental %s\n full        %s", a, b)
		}
	}
	if h.checkFull && len(h.planner.view.from) > 0 {
		// The round's view is this snapshot's hosts, as a fresh one
		// would be: the round missed no host the log of changes named,
		// and put back everything it took out of the hosts' Used.
		hosts, err := snap.Hosts(nil)
		if err != nil {
			h.t.Fatal(err)
		}
		v := &h.planner.view
		var fresh hostView
		fresh.rebuild(hosts)
		if !slices.Equal(v.from, hosts) || !reflect.DeepEqual(v.hosts, fresh.hosts) || !maps.Equal(v.byID, fresh.byID) ||
			!maps.Equal(v.ready, fresh.ready) || v.draining != fresh.draining {
			h.t.Fatalf("the planner's host view after a round:\n %+v\n ready %v, draining %d\nbuilt afresh:\n %+v\n ready %v, draining %d",
				v.hosts, v.ready, v.draining, fresh.hosts, fresh.ready, fresh.draining)
		}
	}
	if req != nil {
		h.must(state.PlanApplyType, req)
	}
	return req
}

// planSummary describes a plan without its new instance ids.
func planSummary(r *state.PlanApplyRequest) string {
	if r == nil {
		return "nil"
	}
	var place, stop, pend []string
	for _, p := range r.Place {
		place = append(place, fmt.Sprintf("%s/%s@%s", p.Tenant, p.App, p.Host))
	}
	for _, s := range r.Stop {
		stop = append(stop, s.ID+":"+s.Reason)
	}
	for _, p := range r.Pending {
		pend = append(pend, p.App+":"+p.Reason)
	}
	slices.Sort(place)
	slices.Sort(stop)
	slices.Sort(pend)
	return fmt.Sprintf("place %v stop %v pending %v revert %v drained %v", place, stop, pend, r.Revert, r.Drained)
}

// report marks every live instance running and ready (as agents would).
func (h *planHarness) reportAll(ready bool) {
	is, _ := h.fsm.Store().Snapshot().Instances(nil)
	by := map[string][]state.InstanceUpdate{}
	for _, i := range is {
		if i.Desired == state.DesiredRun {
			by[i.Host] = append(by[i.Host], state.InstanceUpdate{ID: i.ID, State: state.InstanceRunning, Ready: ready})
		}
	}
	for host, us := range by {
		h.must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: host, Updates: us, Time: pt0})
	}
}

// placement returns host -> live instances of app (version v, 0: any).
func (h *planHarness) placement(app string, v int) map[string]int {
	is, _ := h.fsm.Store().Snapshot().AppInstances(nil, "acme", app)
	out := map[string]int{}
	for _, i := range is {
		if i.Desired == state.DesiredRun && (v == 0 || i.Version == v) {
			out[i.Host]++
		}
	}
	return out
}

func n(i int) *int { return &i }

func TestPlannerSpreadsThenPacks(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.host("h1", "p", 4, 8192)
	h.host("h2", "p", 4, 8192)
	h.host("h3", "p", 4, 4096)
	h.app(apitypes.AppSpec{Name: "web", Image: "w", Instances: n(4), CPU: 500, Memory: 512})
	h.plan()
	got := h.placement("web", 0)
	if got["h1"] != 1 || got["h2"] != 1 || got["h3"] != 2 {
		t.Fatalf("4 instances over 3 hosts: %v, want one each, then the 4th packed on the host with the least free memory that fits (h3)", got)
	}
	if h.plan() != nil {
		t.Fatal("a second plan on a converged state is not empty")
	}
}

func TestPlannerPoolOrderAndPending(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("small", "dc1")
	h.pool("big", "dc2")
	h.pool("empty", "dc3")
	h.host("s1", "small", 1, 1024)
	h.host("b1", "big", 8, 16384)
	h.app(apitypes.AppSpec{Name: "api", Image: "a", Instances: n(3), CPU: 400, Memory: 256, Pools: []string{"small", "big"}})
	h.plan()
	if got := h.placement("api", 0); got["s1"] != 2 || got["b1"] != 1 {
		t.Fatalf("pool order: %v, want the first pool filled (2 fit) and the rest in the second", got)
	}
	h.app(apitypes.AppSpec{Name: "db", Image: "d", Instances: n(2), CPU: 100, Memory: 64, Pools: []string{"empty"}})
	h.app(apitypes.AppSpec{Name: "huge", Image: "h", Instances: n(1), CPU: 64000, Memory: 64, Pools: []string{"big"}})
	h.plan()
	snap := h.fsm.Store().Snapshot()
	db, _ := snap.App(nil, "acme", "db")
	huge, _ := snap.App(nil, "acme", "huge")
	if !strings.Contains(db.Pending, `no host in pool "empty"`) {
		t.Fatalf("db pending %q", db.Pending)
	}
	if !strings.HasPrefix(huge.Pending, "the instance cannot be placed: ") || !strings.Contains(huge.Pending, `no capacity in pool "big": need 64000m CPU/64 MB`) {
		t.Fatalf("huge pending %q", huge.Pending)
	}
	// The host goes down: nothing placed there, said so.
	h.must(state.HostStateType, &state.HostStateRequest{ID: "s1", State: state.HostDown, Time: pt0})
	h.host("s2", "small", 1, 1024)
	h.must(state.HostStateType, &state.HostStateRequest{ID: "s2", State: state.HostDraining, Time: pt0})
	h.plan()
	if got := h.placement("api", 0); got["s1"] != 0 || got["b1"] != 3 {
		t.Fatalf("after s1 went down: %v, want its instances replaced in pool big (s2 is draining)", got)
	}
}

func TestPlannerRollingUpdate(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.host("h1", "p", 8, 8192)
	h.host("h2", "p", 8, 8192)
	spec := apitypes.AppSpec{Name: "web", Image: "v1", Instances: n(3)}
	h.app(spec)
	h.plan()
	h.reportAll(true)
	spec.Image = "v2"
	h.app(spec)
	// Each round: the planner may add one v2 (surge 1) and stop a v1 only
	// once a v2 is ready; never fewer than 3 ready.
	for round := 0; round < 10; round++ {
		h.plan()
		ready := 0
		is, _ := h.fsm.Store().Snapshot().AppInstances(nil, "acme", "web")
		liveN := 0
		for _, i := range is {
			if i.Desired == state.DesiredRun {
				liveN++
				if i.Ready {
					ready++
				}
			}
		}
		if ready < 3 {
			t.Fatalf("round %d: %d ready, want at least 3", round, ready)
		}
		if liveN > 4 {
			t.Fatalf("round %d: %d live, want at most 3+1 (surge)", round, liveN)
		}
		h.reportAll(true)
	}
	if v1, v2 := h.placement("web", 1), h.placement("web", 2); len(v1) != 0 || v2["h1"]+v2["h2"] != 3 {
		t.Fatalf("after the rollout: v1 %v, v2 %v", v1, v2)
	}
}

func TestPlannerRejectsStalePlan(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.host("h1", "p", 1, 1024)
	h.app(apitypes.AppSpec{Name: "a", Image: "a", Instances: n(1), CPU: 800, Memory: 128})
	stale, err := buildPlan(h.fsm.Store().Snapshot(), nil, pt0, func(string) string { return "a-stale" })
	if err != nil || stale == nil {
		t.Fatal(err)
	}
	h.plan() // someone else's plan takes the room first
	b, _ := state.Encode(state.PlanApplyType, stale)
	h.index++
	r := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: b})
	if err, _ := r.(error); err == nil || !strings.Contains(err.Error(), "stale plan") {
		t.Fatalf("stale plan applied: %v", r)
	}
}

func TestPlannerDrainsHostWithoutDroppingBelowReady(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.host("h1", "p", 8, 8192)
	h.host("h2", "p", 8, 8192)
	h.app(apitypes.AppSpec{Name: "web", Image: "v1", Instances: n(2)})
	h.plan()
	h.reportAll(true)
	if got := h.placement("web", 0); got["h1"] != 1 || got["h2"] != 1 {
		t.Fatalf("before the drain: %v", got)
	}
	h.must(state.HostStateType, &state.HostStateRequest{ID: "h1", State: state.HostDraining, Time: pt0})
	h.plan() // a replacement on h2 first; h1's copy stays until it is ready
	if got := h.placement("web", 0); got["h1"] != 1 || got["h2"] != 2 {
		t.Fatalf("first step of the drain: %v", got)
	}
	h.reportAll(true)
	h.plan()
	if got := h.placement("web", 0); got["h1"] != 0 || got["h2"] != 2 {
		t.Fatalf("after the drain: %v", got)
	}
	if h1, _ := h.fsm.Store().Snapshot().Host(nil, "h1"); h1.State != state.HostDraining {
		t.Fatalf("h1 is %s while its last instance is still stopping", h1.State)
	}
	h.must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "h1", Updates: h.stopped("h1"), Time: pt0})
	h.plan()
	if h1, _ := h.fsm.Store().Snapshot().Host(nil, "h1"); h1.State != state.HostDrained {
		t.Fatalf("h1 is %s with nothing left, want drained", h1.State)
	}
}

func TestPlannerConstraintsAndZoneSpread(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	for i, zone := range []string{"a", "a", "b"} {
		id := fmt.Sprintf("h%d", i+1)
		h.must(state.HostEnrollType, &state.HostEnrollRequest{TokenID: "jt-p", SecretHash: "s", Time: pt0,
			Host: state.Host{ID: id, Name: id, Inventory: state.Inventory{CPUs: 8, MemoryBytes: 8 << 30, Zone: zone, Labels: map[string]string{"disk": map[bool]string{true: "ssd", false: "hdd"}[i != 1]}}}})
	}
	h.app(apitypes.AppSpec{Name: "db", Image: "d", Instances: n(2), Constraints: []string{"label.disk=ssd"}})
	h.app(apitypes.AppSpec{Name: "web", Image: "w", Instances: n(2), Spread: "zone"})
	h.app(apitypes.AppSpec{Name: "bad", Image: "b", Instances: n(1), Constraints: []string{"label.x ~ y"}})
	h.plan()
	if got := h.placement("db", 0); got["h2"] != 0 || got["h1"]+got["h3"] != 2 {
		t.Fatalf("db (disk=ssd) placed %v; h2 has hdd", got)
	}
	if got := h.placement("web", 0); got["h3"] != 1 {
		t.Fatalf("web spread over zones: %v, want one in zone b (h3)", got)
	}
	bad, _ := h.fsm.Store().Snapshot().App(nil, "acme", "bad")
	if !strings.Contains(bad.Pending, "invalid constraints") {
		t.Fatalf("bad constraint pending %q", bad.Pending)
	}
}

func TestPlannerAutoRevert(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.host("h1", "p", 8, 8192)
	spec := apitypes.AppSpec{Name: "web", Image: "v1", Instances: n(2),
		Strategy: &apitypes.Strategy{AutoRevert: true, HealthDeadline: apitypes.Duration(30 * time.Second)}}
	h.app(spec)
	h.plan()
	h.reportAll(true)
	spec.Image = "v2"
	h.app(spec)
	h.plan()                // one v2 placed (surge 1), never ready
	h.reportAll(false)      // marks every live instance not ready...
	h.reportReadyVersion(1) // ...but v1 stays ready
	if req := h.planAt(pt0.Add(10 * time.Second)); req != nil && len(req.Revert) > 0 {
		t.Fatal("reverted before the health deadline")
	}
	req := h.planAt(pt0.Add(time.Minute))
	if req == nil {
		a, _ := h.fsm.Store().Snapshot().App(nil, "acme", "web")
		is, _ := h.fsm.Store().Snapshot().AppInstances(nil, "acme", "web")
		t.Logf("app v%d strategy %+v", a.Version, a.Spec.Strategy)
		for _, i := range is {
			t.Logf("instance %+v", *i)
		}
	}
	if req == nil || len(req.Revert) != 1 || req.Revert[0].To != 1 {
		t.Fatalf("no revert after the deadline: %+v", req)
	}
	a, _ := h.fsm.Store().Snapshot().App(nil, "acme", "web")
	if a.Version != 1 || a.Spec.Image != "v1" {
		t.Fatalf("after the revert: version %d image %s", a.Version, a.Spec.Image)
	}
	h.planAt(pt0.Add(time.Minute)) // the v2 instance is now the old one: stopped
	if v2 := h.placement("web", 2); len(v2) != 0 {
		t.Fatalf("v2 instances left after the revert: %v", v2)
	}
	if v1 := h.placement("web", 1); v1["h1"] != 2 {
		t.Fatalf("v1 instances after the revert: %v", v1)
	}
}

// reportReadyVersion marks the live instances of version v running and ready.
func (h *planHarness) reportReadyVersion(v int) {
	is, _ := h.fsm.Store().Snapshot().Instances(nil)
	by := map[string][]state.InstanceUpdate{}
	for _, i := range is {
		if i.Desired == state.DesiredRun && i.Version == v {
			by[i.Host] = append(by[i.Host], state.InstanceUpdate{ID: i.ID, State: state.InstanceRunning, Ready: true})
		}
	}
	for host, us := range by {
		h.must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: host, Updates: us, Time: pt0})
	}
}

func TestPlannerCanaryAndBlueGreen(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.host("h1", "p", 8, 8192)
	spec := apitypes.AppSpec{Name: "web", Image: "v1", Instances: n(4), Strategy: &apitypes.Strategy{Type: "canary", Canary: 1}}
	h.app(spec)
	h.plan()
	h.reportAll(true)
	spec.Image = "v2"
	h.app(spec)
	for i := 0; i < 3; i++ { // the canary waits for promote, old set untouched
		h.plan()
		h.reportAll(true)
	}
	if v1, v2 := h.placement("web", 1), h.placement("web", 2); v1["h1"] != 4 || v2["h1"] != 1 {
		t.Fatalf("canary: v1 %v v2 %v, want 4 and 1", v1, v2)
	}
	// Abort: back to v1, the canary goes.
	h.must(state.AppCanaryType, &state.AppCanaryRequest{Tenant: "acme", Name: "web", Time: pt0})
	h.plan()
	if v1, v2 := h.placement("web", 1), h.placement("web", 2); v1["h1"] != 4 || len(v2) != 0 {
		t.Fatalf("after abort: v1 %v v2 %v", v1, v2)
	}
	// Another canary (v3), promoted: rolls out to all.
	spec.Image = "v3"
	h.app(spec)
	h.plan()
	h.reportAll(true)
	h.must(state.AppCanaryType, &state.AppCanaryRequest{Tenant: "acme", Name: "web", Promote: true, Time: pt0})
	for i := 0; i < 12; i++ {
		h.plan()
		h.reportAll(true)
	}
	if v1, v3 := h.placement("web", 1), h.placement("web", 3); len(v1) != 0 || v3["h1"] != 4 {
		t.Fatalf("after promote: v1 %v v3 %v", v1, v3)
	}

	// Blue-green: the whole new set at once, the old stops when it is ready.
	spec.Image = "v4"
	spec.Strategy = &apitypes.Strategy{Type: "blue-green"}
	h.app(spec)
	h.plan()
	if v3, v4 := h.placement("web", 3), h.placement("web", 4); v3["h1"] != 4 || v4["h1"] != 4 {
		t.Fatalf("blue-green, first step: v3 %v v4 %v, want 4 and 4", v3, v4)
	}
	h.reportReadyVersion(3) // v4 not ready yet: nothing stops
	h.plan()
	if v3 := h.placement("web", 3); v3["h1"] != 4 {
		t.Fatalf("blue-green stopped the old set before the new one was ready: %v", v3)
	}
	h.reportAll(true)
	h.plan()
	if v3, v4 := h.placement("web", 3), h.placement("web", 4); len(v3) != 0 || v4["h1"] != 4 {
		t.Fatalf("blue-green, switched: v3 %v v4 %v", v3, v4)
	}
}

// stopped reports every instance on host that is desired stopped as stopped.
func (h *planHarness) stopped(host string) []state.InstanceUpdate {
	is, _ := h.fsm.Store().Snapshot().HostInstances(nil, host)
	var out []state.InstanceUpdate
	for _, i := range is {
		if i.Desired == state.DesiredStop {
			out = append(out, state.InstanceUpdate{ID: i.ID, State: state.InstanceStopped})
		}
	}
	return out
}

func TestPlannerMovesCrashLoopingInstanceElsewhere(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.host("h1", "p", 8, 8192)
	h.host("h2", "p", 8, 4096) // best fit prefers h2
	h.app(apitypes.AppSpec{Name: "web", Image: "w", Instances: n(1)})
	h.plan()
	is, _ := h.fsm.Store().Snapshot().AppInstances(nil, "acme", "web")
	if len(is) != 1 || is[0].Host != "h2" {
		t.Fatalf("first placement %+v", is)
	}
	h.must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "h2", Time: pt0,
		Updates: []state.InstanceUpdate{{ID: is[0].ID, State: state.InstanceFailed, Message: "exited 5 times in a row"}}})
	h.plan()
	if got := h.placement("web", 0); got["h1"] != 1 || got["h2"] != 0 {
		t.Fatalf("replacement of a crash-looping instance: %v, want it on h1", got)
	}
}

// The planner's rounds look only at what changed; these changes reach
// apps that are otherwise settled (every instance ready, nothing to do).
func TestPlannerRoundsSeeEveryChange(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.host("h1", "p", 2, 1024)
	h.host("h2", "p", 2, 1024)
	h.app(apitypes.AppSpec{Name: "big", Image: "b", Instances: n(2), CPU: 100, Memory: 1024})
	h.plan()
	h.reportAll(true)
	h.app(apitypes.AppSpec{Name: "late", Image: "l", Instances: n(1), CPU: 100, Memory: 512})
	if req := h.plan(); req == nil || len(req.Place) != 0 || len(req.Pending) != 1 {
		t.Fatalf("no room for late: want it pending, got %s", planSummary(req))
	}
	if h.plan() != nil {
		t.Fatal("a settled cluster plans again")
	}
	// Capacity freed by another app reaches the pending one.
	h.must(state.AppScaleType, &state.AppScaleRequest{Tenant: "acme", Name: "big", Instances: 1, Time: pt0})
	h.plan() // stops one of big
	h.plan() // places late where it went
	if got := h.placement("late", 0); len(got) != 1 {
		t.Fatalf("late not placed once big freed a host: %v", got)
	}
	h.reportAll(true)
	h.plan()
	if h.plan() != nil {
		t.Fatal("not settled")
	}
	// An instance of a settled app fails: it is replaced.
	is, _ := h.fsm.Store().Snapshot().AppInstances(nil, "acme", "late")
	h.must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: is[0].Host, Time: pt0,
		Updates: []state.InstanceUpdate{{ID: is[0].ID, State: state.InstanceFailed, Message: "exit 1"}}})
	if req := h.plan(); req == nil || len(req.Stop) != 1 {
		t.Fatalf("failed instance of a settled app: %s", planSummary(req))
	}
	h.reportAll(true)
	h.plan()
	// A settled app's host goes down: its instance moves.
	is, _ = h.fsm.Store().Snapshot().AppInstances(nil, "acme", "big")
	var live string
	for _, i := range is {
		if i.Desired == state.DesiredRun {
			live = i.Host
		}
	}
	h.must(state.HostStateType, &state.HostStateRequest{ID: live, State: state.HostDown, Time: pt0})
	if req := h.plan(); req == nil || len(req.Stop) == 0 {
		t.Fatalf("instances on a down host stay: %s", planSummary(req))
	}
}

// A fenced app's instance on a lost host is replaced only once the
// host's lease has certainly run out: last renewal + max_disconnect +
// stop grace + quorum window + margin; an availability app's at once.
func TestPlannerFencedWaitsForTheLease(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.host("h1", "p", 2, 2048)
	h.host("h2", "p", 2, 2048)
	fenced := &apitypes.Failover{Mode: apitypes.FailoverFenced, MaxDisconnect: apitypes.Duration(5 * time.Second)}
	h.app(apitypes.AppSpec{Name: "db", Image: "d", Instances: n(1), CPU: 100, Memory: 128, Failover: fenced, Constraints: []string{"name=h1"}})
	h.app(apitypes.AppSpec{Name: "web", Image: "w", Instances: n(1), CPU: 100, Memory: 128, Constraints: []string{"name=h1"}})
	h.plan()
	h.reportAll(true)
	h.plan()
	// Drop the constraints so the replacements may go to h2.
	h.app(apitypes.AppSpec{Name: "db", Image: "d", Instances: n(1), CPU: 100, Memory: 128, Failover: fenced})
	h.app(apitypes.AppSpec{Name: "web", Image: "w", Instances: n(1), CPU: 100, Memory: 128})
	h.plan()
	lost := pt0.Add(time.Minute)
	h.renewals["h1"] = lost
	h.must(state.HostStateType, &state.HostStateRequest{ID: "h1", State: state.HostDown, Time: lost})
	req := h.planAt(lost.Add(11 * time.Second))
	if got := h.placement("web", 0); got["h2"] != 1 {
		t.Fatalf("availability app not replaced at once: %v (%s)", got, planSummary(req))
	}
	if got := h.placement("db", 0); got["h1"] != 1 || got["h2"] != 0 {
		t.Fatalf("fenced app replaced before its lease ran out: %v", got)
	}
	deadline := lost.Add(5*time.Second + FenceStopGrace + QuorumWindow + fenceMargin)
	h.planAt(deadline.Add(-time.Second))
	if got := h.placement("db", 0); got["h2"] != 0 {
		t.Fatalf("fenced app replaced a second before the deadline: %v", got)
	}
	h.planAt(deadline.Add(time.Second))
	h.planAt(deadline.Add(time.Second))
	if got := h.placement("db", 0); got["h1"] != 0 || got["h2"] != 1 {
		t.Fatalf("fenced app not replaced after its lease ran out: %v", got)
	}
}

// Instances moved to a failover pool come back: with failback auto only
// once the app's pool has stayed ready for the hold time (new copies
// first, in the app's pool only); with failback manual only when asked.
func TestPlannerFailback(t *testing.T) {
	for _, mode := range []string{"auto", "manual"} {
		t.Run(mode, func(t *testing.T) {
			h := newPlanHarness(t)
			h.pool("p1", "dc1")
			h.pool("p2", "dc2")
			h.host("h1", "p1", 2, 2048)
			h.host("h2", "p2", 2, 2048)
			h.app(apitypes.AppSpec{Name: "web", Image: "w", Instances: n(2), CPU: 100, Memory: 128, Pools: []string{"p1"}, FailoverPools: []string{"p2"},
				Failover: &apitypes.Failover{Failback: mode, FailbackHold: apitypes.Duration(time.Minute)}})
			h.plan()
			h.reportAll(true)
			h.must(state.HostStateType, &state.HostStateRequest{ID: "h1", State: state.HostDown, Time: pt0})
			h.plan()
			h.reportAll(true)
			h.plan()
			if got := h.placement("web", 0); got["h2"] != 2 || got["h1"] != 0 {
				t.Fatalf("after p1 was lost: %v, want both on h2 (failover pool)", got)
			}
			// h1's agent, back, reports its replaced copies stopped: they
			// are gone before h1 is ready again.
			h.must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "h1", Updates: h.stopped("h1"), Time: pt0})
			back := pt0.Add(time.Hour)
			h.must(state.HostStateType, &state.HostStateRequest{ID: "h1", State: state.HostReady, Time: back})
			h.planAt(back)
			h.planAt(back.Add(30 * time.Second))
			if got := h.placement("web", 0); got["h1"] != 0 {
				t.Fatalf("moved back before the hold time: %v", got)
			}
			h.planAt(back.Add(61 * time.Second))
			if mode == "manual" {
				if got := h.placement("web", 0); got["h1"] != 0 {
					t.Fatalf("failback manual moved back by itself: %v", got)
				}
				h.must(state.AppFailbackType, &state.AppFailbackRequest{Tenant: "acme", Name: "web", Time: back})
				h.planAt(back.Add(62 * time.Second))
			}
			for k := 0; k < 6; k++ { // new copies on h1 get ready, old ones stop
				h.reportAll(true)
				h.planAt(back.Add(time.Duration(63+k) * time.Second))
			}
			if got := h.placement("web", 0); got["h1"] != 2 || got["h2"] != 0 {
				t.Fatalf("after failback: %v, want both on h1", got)
			}
		})
	}
}

// A round with no capacity freed reads only the apps that changed, not
// every app; one that frees capacity reads those and the apps that wait
// for capacity (instances pending, or in failover pools), not every app
// either, and both plan as a full round does (checkFull).
func TestPlannerReadsOnlyChangedApps(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.pool("q", "dc2") // no host: the failover pool of "fo"
	h.host("h1", "p", 64, 64*1024)
	const apps = 200
	for i := range apps {
		h.app(apitypes.AppSpec{Name: fmt.Sprintf("a%03d", i), Image: "i", Instances: n(1), CPU: 100, Memory: 64})
	}
	h.plan()
	h.reportAll(true)
	h.plan()
	if h.plan() != nil {
		t.Fatal("not settled")
	}
	if h.planner.appsRead != 0 {
		t.Fatalf("a round with nothing changed read %d apps", h.planner.appsRead)
	}
	h.app(apitypes.AppSpec{Name: "a007", Image: "i", Instances: n(2), CPU: 100, Memory: 64})
	if req := h.plan(); req == nil || len(req.Place) != 1 {
		t.Fatalf("scaled a007 to 2: %s", planSummary(req))
	}
	if h.planner.appsRead != 1 {
		t.Fatalf("a round after one app's write read %d apps, want 1", h.planner.appsRead)
	}
	h.reportAll(true)
	h.plan()
	// An app with a failover pool, and one that does not fit by 50
	// millicores (the 200 apps, a007's second instance and fo hold 20,200
	// of 64,000).
	h.app(apitypes.AppSpec{Name: "fo", Image: "i", Instances: n(1), CPU: 100, Memory: 64, Pools: []string{"p"}, FailoverPools: []string{"q"}})
	h.plan()
	h.reportAll(true)
	h.app(apitypes.AppSpec{Name: "big", Image: "i", Instances: n(1), CPU: 64000 - 20200 + 50, Memory: 64})
	h.plan()
	h.reportAll(true)
	h.plan()
	if a, _ := h.fsm.Store().Snapshot().App(nil, "acme", "big"); a == nil || a.Pending == "" {
		t.Fatalf("big is not pending: %+v", a)
	}
	// A stopped instance frees capacity: a007 (its instances changed), big
	// and fo are read, and big fits now.
	h.must(state.AppScaleType, &state.AppScaleRequest{Tenant: "acme", Name: "a007", Instances: 1, Time: pt0})
	h.plan() // stops one of a007
	is, _ := h.fsm.Store().Snapshot().AppInstances(nil, "acme", "a007")
	var stops []state.InstanceUpdate
	for _, i := range is {
		if i.Desired == state.DesiredStop {
			stops = append(stops, state.InstanceUpdate{ID: i.ID, State: state.InstanceStopped})
		}
	}
	h.must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "h1", Updates: stops, Time: pt0})
	if req := h.plan(); req == nil || len(req.Place) != 1 || req.Place[0].App != "big" {
		t.Fatalf("capacity freed for big: %s", planSummary(req))
	}
	if h.planner.appsRead != 3 {
		t.Fatalf("a round after capacity was freed read %d apps, want 3 (a007, big, fo)", h.planner.appsRead)
	}
}

// TestPlannerHostViewFollowsHosts checks the view of hosts the planner
// keeps from round to round through hosts that come, go, fill up and
// change state: each round plans what a fresh planner plans (checkFull),
// and leaves a view equal to one built afresh (planAt).
func TestPlannerHostViewFollowsHosts(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.host("h1", "p", 2, 2048)
	h.host("h2", "p", 2, 2048)
	h.app(apitypes.AppSpec{Name: "web", Image: "v1", Instances: n(3), CPU: 500, Memory: 512})
	h.plan()
	h.reportAll(true)
	h.host("h3", "p", 2, 2048) // a host comes: the view is rebuilt
	h.app(apitypes.AppSpec{Name: "api", Image: "v1", Instances: n(4), CPU: 500, Memory: 512})
	if got := h.plan(); got == nil || len(got.Place) != 4 {
		t.Fatalf("api's plan: %v", got)
	}
	h.reportAll(true)
	h.app(apitypes.AppSpec{Name: "web", Image: "v1", Instances: n(5), CPU: 500, Memory: 512})
	h.plan() // hosts fill up: their records change, the view's entries with them
	h.reportAll(true)
	h.must(state.HostStateType, &state.HostStateRequest{ID: "h2", State: state.HostDown, Time: pt0})
	h.plan() // h2's instances move; h2 is no longer schedulable
	h.reportAll(true)
	h.must(state.HostDeleteType, &state.HostDeleteRequest{ID: "h2", Time: pt0})
	h.host("h4", "p", 4, 4096) // one goes, one comes: the same count, other ids
	h.plan()
	h.reportAll(true)
	if got := h.placement("web", 0); got["h2"] != 0 || got["h1"]+got["h3"]+got["h4"] != 5 {
		t.Fatalf("web after h2 went: %v", got)
	}
}

// TestPlannerRewriteOfPendingAppCommitsNothing: an app that cannot be
// placed, written again with the same count, leaves the planner nothing
// to commit: its explanation still holds. A scale changes the explanation,
// which the planner commits.
func TestPlannerRewriteOfPendingAppCommitsNothing(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("empty", "dc1")
	spec := apitypes.AppSpec{Name: "db", Image: "d", Instances: n(3), CPU: 100, Memory: 64, Pools: []string{"empty"}}
	h.app(spec)
	if req := h.plan(); req == nil || len(req.Pending) != 1 || !strings.HasPrefix(req.Pending[0].Reason, "3 of 3 instances") {
		t.Fatalf("first round: %s, want db's explanation", planSummary(req))
	}
	h.app(spec)
	if req := h.plan(); req != nil {
		t.Fatalf("after the same spec again: %s, want nothing to commit", planSummary(req))
	}
	spec.Instances = n(4)
	h.app(spec)
	if req := h.plan(); req == nil || len(req.Pending) != 1 || !strings.HasPrefix(req.Pending[0].Reason, "4 of 4 instances") {
		t.Fatalf("after a scale: %s, want the new count explained", planSummary(req))
	}
}

// TestPlannerReadsEveryAppWhenTheLogFallsShort: when the store's log of
// changed apps no longer reaches back to the planner's last round (it
// keeps a bounded range; a restore starts it afresh), the round looks at
// every app rather than at none.
func TestPlannerReadsEveryAppWhenTheLogFallsShort(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.host("h1", "p", 2, 1024)
	h.host("h2", "p", 2, 1024)
	h.app(apitypes.AppSpec{Name: "web", Image: "w", Instances: n(2), CPU: 100, Memory: 256})
	h.plan()
	h.reportAll(true)
	h.plan()
	if h.plan() != nil {
		t.Fatal("not settled")
	}
	is, _ := h.fsm.Store().Snapshot().AppInstances(nil, "acme", "web")
	h.must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: is[0].Host, Time: pt0,
		Updates: []state.InstanceUpdate{{ID: is[0].ID, State: state.InstanceFailed, Message: "exit 1"}}})
	// The store restored from its own snapshot: the same state, with a
	// log that starts at this index.
	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&bufSink{Buffer: &buf}); err != nil {
		t.Fatal(err)
	}
	if err := h.fsm.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	if req := h.plan(); req == nil || len(req.Stop) != 1 || req.Stop[0].ID != is[0].ID {
		t.Fatalf("the failed instance, changed before the log's start: %s", planSummary(req))
	}
}

// bufSink is a raft.SnapshotSink into a buffer.
type bufSink struct{ *bytes.Buffer }

func (bufSink) ID() string    { return "test" }
func (bufSink) Cancel() error { return nil }
func (bufSink) Close() error  { return nil }

// TestPlannerFullRoundWaitsOnInstanceChanges: a round that reads every
// app (the first, or the minutely one) still leaves a watch that an
// instance's report fires, so that the planner's next round follows it
// at once rather than after its idle wait.
func TestPlannerFullRoundWaitsOnInstanceChanges(t *testing.T) {
	h := newPlanHarness(t)
	h.pool("p", "dc1")
	h.host("h1", "p", 2, 1024)
	h.app(apitypes.AppSpec{Name: "web", Image: "w", Instances: n(1), CPU: 100, Memory: 256})
	h.plan()
	ws := memdb.NewWatchSet()
	if _, err := h.newPlanner().build(h.fsm.Store().Snapshot(), ws, pt0, func(app string) string { return app + "-x" }, true); err != nil {
		t.Fatal(err)
	}
	is, _ := h.fsm.Store().Snapshot().AppInstances(nil, "acme", "web")
	h.must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: is[0].Host, Time: pt0,
		Updates: []state.InstanceUpdate{{ID: is[0].ID, State: state.InstanceRunning, Ready: true}}})
	if ws.Watch(time.After(5 * time.Second)) {
		t.Fatal("a full round's watch did not fire on an instance's report")
	}
}
