package autoscale

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/series"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/hub/traffic"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// rig is a runner over a store fed through the FSM, the real traffic sums
// and series store, and a clock the test moves.
type rig struct {
	t       *testing.T
	st      *statetest.State
	traffic *traffic.Store
	series  *series.Store
	now     time.Time
	r       *Runner
	mem     map[string]*appMemory
}

func newRig(t *testing.T, now time.Time, policy apitypes.Autoscale) *rig {
	st := statetest.New(t)
	st.Pool("p", "dc1")
	st.Host("h1", "p", 8, 8192, nil)
	x := &rig{t: t, st: st, traffic: &traffic.Store{}, series: series.NewStore(0), now: now, mem: map[string]*appMemory{}}
	st.App(apitypes.AppSpec{Name: "web", Image: "web:1", CPU: 500, Memory: 256, Autoscale: &policy})
	x.r = New(Config{State: st.Store(), Commit: st, Traffic: x.traffic, Series: x.series, Now: func() time.Time { return x.now }})
	return x
}

func (x *rig) app() *state.App {
	x.t.Helper()
	a, err := x.st.Store().Snapshot().App(nil, "acme", "web")
	if err != nil || a == nil {
		x.t.Fatalf("app: %v %v", a, err)
	}
	return a
}

// round moves the clock by d, then lets the runner decide once.
func (x *rig) round(d time.Duration) int {
	x.t.Helper()
	x.now = x.now.Add(d)
	x.r.round(context.Background(), x.mem)
	return *x.app().Spec.Instances
}

// requests adds rate requests per second for the seconds in (now-d, now].
func (x *rig) requests(d time.Duration, rate uint64) {
	var secs []traffic.Second
	for at := x.now.Add(-d).Unix() + 1; at <= x.now.Unix(); at++ {
		secs = append(secs, traffic.Second{App: "acme/web", Unix: at, Requests: rate})
	}
	x.traffic.Add(x.now, secs)
}

func intp(n int) *int { return &n }

// TestScheduleRaisesMinAtItsTime: the runner's clock crosses a schedule's
// firing and the count follows its min, with the schedule as the reason.
func TestScheduleRaisesMinAtItsTime(t *testing.T) {
	x := newRig(t, time.Date(2026, 12, 7, 8, 58, 0, 0, time.UTC), apitypes.Autoscale{Min: intp(1), Max: 8, QPS: 20, ScaleDownDelay: apitypes.Duration(time.Second),
		Schedules: []apitypes.AutoscaleSchedule{{Cron: "0 9 * * 1-5", Timezone: "UTC", Min: 4}, {Cron: "0 18 * * 1-5", Timezone: "UTC", Min: 1}}})
	// Monday 8:58: last week's Friday 18:00 schedule holds: min 1.
	if n := x.round(0); n != 1 {
		t.Fatalf("before 9:00: %d instances, want 1", n)
	}
	if n := x.round(90 * time.Second); n != 1 {
		t.Fatalf("at 8:59:30: %d instances, want 1", n)
	}
	if n := x.round(45 * time.Second); n != 4 {
		t.Fatalf("at 9:00:15: %d instances, want 4 (the schedule's min)", n)
	}
	if r := x.app().AutoscaleReason; !strings.Contains(r, `schedule "0 9 * * 1-5"`) {
		t.Fatalf("reason %q does not name the schedule", r)
	}
	// 18:00: back to 1, once the scale-down delay has passed.
	x.now = time.Date(2026, 12, 7, 18, 0, 30, 0, time.UTC)
	x.round(0)
	if n := x.round(2 * time.Second); n != 1 {
		t.Fatalf("after 18:00: %d instances, want 1", n)
	}
}

// TestRunnerScalesOnQPS: a burst scales up at once (in panic), the count
// holds while it lasts, and falls back to min only after the scale-down
// delay without load; each change is in the app's history.
func TestRunnerScalesOnQPS(t *testing.T) {
	x := newRig(t, time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), apitypes.Autoscale{Min: intp(1), Max: 6, QPS: 20,
		Window: apitypes.Duration(10 * time.Second), ScaleDownDelay: apitypes.Duration(20 * time.Second)})
	if n := x.round(0); n != 1 {
		t.Fatalf("start: %d", n)
	}
	// 100 req/s from now on: the panic window sees it first.
	x.now = x.now.Add(3 * time.Second)
	x.requests(3*time.Second, 100)
	n := x.round(2 * time.Second)
	if n < 4 {
		t.Fatalf("5 s into a burst of 100/s (target 20): %d instances, want at least 4 (panic)", n)
	}
	for i := 0; i < 10; i++ {
		x.requests(time.Second, 100)
		n = x.round(time.Second)
	}
	if n != 5 {
		t.Fatalf("10 s of 100/s: %d instances, want 5 (%s)", n, x.app().AutoscaleReason)
	}
	// The load stops: nothing changes for the delay, then back to 1.
	for i := 0; i < 15; i++ {
		if n = x.round(time.Second); n != 5 {
			t.Fatalf("%d s after the load stopped: %d instances, want 5 until the delay passes", i+1, n)
		}
	}
	for i := 0; i < 30 && n != 1; i++ {
		n = x.round(time.Second)
	}
	if n != 1 {
		t.Fatalf("after the delay: %d instances, want 1", n)
	}
	hist, _ := x.st.Store().Snapshot().History(nil, "acme", "web")
	var kinds []string
	for _, h := range hist {
		if h.Kind == state.DeployAutoscale {
			kinds = append(kinds, h.Message)
		}
	}
	if len(kinds) < 2 || !strings.Contains(kinds[len(kinds)-1], "to 1 instances") {
		t.Fatalf("autoscale history: %q", kinds)
	}
}

// TestRunnerScalesOnCPU: ready instances that burn 90% of their CPU
// limit against a 50% target make the count grow in proportion.
func TestRunnerScalesOnCPU(t *testing.T) {
	x := newRig(t, time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), apitypes.Autoscale{Min: intp(2), Max: 10, CPU: 50})
	if n := x.round(0); n != 2 {
		t.Fatalf("start: %d", n)
	}
	x.st.Must(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{
		{ID: "i1", Tenant: "acme", App: "web", Version: 1, Host: "h1", CPU: 500, Memory: 256},
		{ID: "i2", Tenant: "acme", App: "web", Version: 1, Host: "h1", CPU: 500, Memory: 256}}, Time: x.now})
	x.st.Must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "h1", Updates: []state.InstanceUpdate{
		{ID: "i1", State: state.InstanceRunning, Ready: true}, {ID: "i2", State: state.InstanceRunning, Ready: true}}, Time: x.now})
	// 0.45 cores each, sampled every second, against 500 millicores.
	for s := 0; s <= 12; s++ {
		at := x.now.Add(time.Duration(s-12) * time.Second)
		for _, id := range []string{"i1", "i2"} {
			x.series.Add(series.Owner{Kind: "instance", ID: id, App: "acme/web", Tenant: "acme", Host: "h1"}, at,
				map[string]float64{series.CPUSeconds: 0.45 * float64(s), series.MemoryWorkingSet: 64 << 20})
		}
	}
	if n := x.round(0); n != 4 {
		t.Fatalf("2 instances at 90%% for 50%%: %d instances, want 4 (%s)", n, x.app().AutoscaleReason)
	}
	st, _ := x.r.Status(context.Background(), "acme/web")
	if st.CPU == nil || *st.CPU < 85 || *st.CPU > 95 || st.Memory == nil || *st.Memory != 25 || st.Ready != 2 {
		t.Fatalf("status: %+v", st)
	}
}

// TestRunnerLeavesRolloutsAndDrillsAlone: while instances of an older
// version run (a rolling update) the count is not scaled down, whatever
// the load; while a drill runs on the app's pool it does not change at
// all; once both are over the idle app goes down to its min.
func TestRunnerLeavesRolloutsAndDrillsAlone(t *testing.T) {
	policy := apitypes.Autoscale{Min: intp(1), Max: 6, QPS: 20, Window: apitypes.Duration(5 * time.Second), ScaleDownDelay: apitypes.Duration(5 * time.Second)}
	x := newRig(t, time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), policy)
	x.st.Must(state.AutoscaleType, &state.AutoscaleRequest{Tenant: "acme", Name: "web", Instances: 4, Reason: "a burst", Time: x.now})
	var place []state.Instance
	var ready []state.InstanceUpdate
	for _, id := range []string{"i1", "i2", "i3", "i4"} {
		place = append(place, state.Instance{ID: id, Tenant: "acme", App: "web", Version: 1, Host: "h1", CPU: 500, Memory: 256})
		ready = append(ready, state.InstanceUpdate{ID: id, State: state.InstanceRunning, Ready: true})
	}
	x.st.Must(state.PlanApplyType, &state.PlanApplyRequest{Place: place, Time: x.now})
	x.st.Must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "h1", Updates: ready, Time: x.now})
	// Version 2: the version 1 instances run on until replaced.
	x.st.App(apitypes.AppSpec{Name: "web", Image: "web:2", CPU: 500, Memory: 256, Autoscale: &policy})
	for i := 0; i < 20; i++ {
		if n := x.round(time.Second); n != 4 {
			t.Fatalf("during the rollout, %d s in: %d instances, want 4 (%s)", i+1, n, x.app().AutoscaleReason)
		}
	}
	st, _ := x.r.Status(context.Background(), "acme/web")
	if !strings.Contains(st.WantedReason, "rollout to version 2") {
		t.Fatalf("wanted reason during the rollout: %q", st.WantedReason)
	}

	// The rollout is over (version 1 stopped); a drill on the pool starts.
	var stops []state.InstanceStop
	for _, id := range []string{"i1", "i2", "i3", "i4"} {
		stops = append(stops, state.InstanceStop{ID: id, Reason: "replaced by version 2"})
	}
	x.st.Must(state.PlanApplyType, &state.PlanApplyRequest{Stop: stops, Place: []state.Instance{
		{ID: "j1", Tenant: "acme", App: "web", Version: 2, Host: "h1", CPU: 500, Memory: 256}}, Time: x.now})
	x.st.Must(state.DrillStartType, &state.DrillStartRequest{ID: "d1", Pool: "p", Mode: state.DrillEvacuate, Time: x.now})
	for i := 0; i < 20; i++ {
		if n := x.round(time.Second); n != 4 {
			t.Fatalf("during the drill, %d s in: %d instances, want 4 (%s)", i+1, n, x.app().AutoscaleReason)
		}
	}
	x.st.Must(state.DrillEndType, &state.DrillEndRequest{ID: "d1", Time: x.now})
	n := 4
	for i := 0; i < 20 && n != 1; i++ {
		n = x.round(time.Second)
	}
	if n != 1 {
		t.Fatalf("after the rollout and the drill: %d instances, want 1", n)
	}
}
