package state

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestPlanApplyAndInstanceUpdates(t *testing.T) {
	h := newHarness(t)
	fill(h) // host1: 2 CPUs, 4 GiB, ready; i-1 (100m, 128 MB) on it
	place := func(id string, cpu, mem int) Instance {
		return Instance{ID: id, Tenant: "acme", App: "web", Version: 2, Host: "host1", CPU: cpu, Memory: mem}
	}
	tests := []struct {
		name    string
		req     any
		mt      MessageType
		want    error
		wantMsg string
	}{
		{"fits", &PlanApplyRequest{Place: []Instance{place("i-2", 1000, 1024)}, Pending: []AppPending{{Tenant: "acme", App: "web", Reason: "no capacity"}}}, PlanApplyType, nil, ""},
		{"id taken", &PlanApplyRequest{Place: []Instance{place("i-2", 1, 1)}}, PlanApplyType, ErrConflict, "taken"},
		{"no CPU left (plan built on stale state)", &PlanApplyRequest{Place: []Instance{place("i-3", 1000, 1)}}, PlanApplyType, ErrConflict, "free"},
		{"two placements that only fit one at a time", &PlanApplyRequest{Place: []Instance{place("i-3", 500, 1), place("i-4", 500, 1)}}, PlanApplyType, ErrConflict, "free"},
		{"a stop in the same plan frees room", &PlanApplyRequest{Stop: []InstanceStop{{ID: "i-2", Reason: "rolled"}}, Place: []Instance{place("i-3", 500, 1), place("i-4", 500, 1)}}, PlanApplyType, nil, ""},
		{"unknown host", &PlanApplyRequest{Place: []Instance{{ID: "i-9", Tenant: "acme", App: "web", Version: 2, Host: "nope", CPU: 1, Memory: 1}}}, PlanApplyType, ErrConflict, "gone"},
		{"host down", nil, 0, ErrConflict, "down"},
		{"bad placement", &PlanApplyRequest{Place: []Instance{{ID: "i-9", Host: "host1"}}}, PlanApplyType, ErrInvalid, ""},
		{"bad state", &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-1", State: "dancing"}}}, InstanceUpdateType, ErrInvalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.req == nil { // host down
				h.must(HostStateType, &HostStateRequest{ID: "host1", State: HostDown, Time: t0})
				err = h.apply(PlanApplyType, &PlanApplyRequest{Place: []Instance{place("i-8", 1, 1)}})
				h.must(HostStateType, &HostStateRequest{ID: "host1", State: HostReady, Time: t0})
			} else {
				err = h.apply(tt.mt, tt.req)
			}
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) || (err != nil && !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Fatalf("got %v, want %v (%q)", err, tt.want, tt.wantMsg)
			}
		})
	}
	s := h.snap()
	if a, _ := s.App(nil, "acme", "web"); a.Pending != "no capacity" {
		t.Fatalf("pending %q", a.Pending)
	}
	i2, _ := s.Instance(nil, "i-2")
	if i2 == nil || i2.Desired != DesiredStop || i2.StopReason != "rolled" {
		t.Fatalf("i-2 %+v", i2)
	}
	if host, _ := s.Host(nil, "host1"); host.AssignIndex == 0 {
		t.Fatal("the host's assignment version did not move")
	}
	// Agents report: running and ready; another host's report is ignored;
	// a stopped instance that was desired stopped disappears.
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-3", State: InstanceRunning, Ready: true, Address: "10.0.0.1:32768"}, {ID: "gone", State: InstanceRunning}}, Time: t0})
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host9", Updates: []InstanceUpdate{{ID: "i-4", State: InstanceFailed}}, Time: t0})
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-2", State: InstanceStopped}}, Time: t0})
	s = h.snap()
	if i3, _ := s.Instance(nil, "i-3"); !i3.Ready || i3.State != InstanceRunning || i3.Address != "10.0.0.1:32768" {
		t.Fatalf("i-3 %+v", i3)
	}
	if i4, _ := s.Instance(nil, "i-4"); i4.State != InstancePending {
		t.Fatalf("another host changed i-4: %+v", i4)
	}
	if i2, _ := s.Instance(nil, "i-2"); i2 != nil {
		t.Fatalf("stopped i-2 still there: %+v", i2)
	}
	// Deleting the app asks its instances to stop; removing the host drops them.
	h.must(AppDeleteType, &AppDeleteRequest{Tenant: "acme", Name: "web", Time: t0})
	is, _ := h.snap().AppInstances(nil, "acme", "web")
	for _, i := range is {
		if i.Desired != DesiredStop {
			t.Fatalf("instance %s of a deleted app still desired to run", i.ID)
		}
	}
	h.must(HostDeleteType, &HostDeleteRequest{ID: "host1", Time: t0})
	if is, _ := h.snap().Instances(nil); len(is) != 0 {
		t.Fatalf("instances of a removed host remain: %d", len(is))
	}
}

func TestAppsChangedSinceAndAllocation(t *testing.T) {
	h := newHarness(t)
	fill(h) // host1 holds i-1 (100m, 128 MB)
	snap := h.snap()
	host, _ := snap.Host(nil, "host1")
	if host.AllocCPU != 100 || host.AllocMemory != 128 {
		t.Fatalf("allocation after one placement: %dm %d MB", host.AllocCPU, host.AllocMemory)
	}
	base := h.index
	h.must(PlanApplyType, &PlanApplyRequest{Place: []Instance{{ID: "i-2", Tenant: "acme", App: "web", Version: 2, Host: "host1", CPU: 200, Memory: 256}}, Time: t0})
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-1", State: InstanceFailed, Message: "boom"}}, Time: t0})
	changed := func(idx uint64) []string {
		var out []string
		if known, err := h.snap().AppsChangedSince(nil, idx, func(tenant, app string) { out = append(out, tenant+"/"+app) }); err != nil || !known {
			t.Fatalf("apps changed since %d: known %v, %v", idx, known, err)
		}
		return out
	}
	if got := changed(base); !reflect.DeepEqual(got, []string{"acme/web"}) {
		t.Fatalf("apps changed since %d: %v, want [acme/web] once", base, got)
	}
	if got := changed(h.index); len(got) != 0 {
		t.Fatalf("nothing changed after the last index, got %v", got)
	}
	// A host's change is not an app's; a pending explanation is.
	h.must(HostStateType, &HostStateRequest{ID: "host1", State: HostSuspect, Time: t0})
	if got := changed(h.index - 1); len(got) != 0 {
		t.Fatalf("after a host's state changed: %v, want no app", got)
	}
	h.must(PlanApplyType, &PlanApplyRequest{Pending: []AppPending{{Tenant: "acme", App: "web", Reason: "no capacity"}}, Time: t0})
	if got := changed(h.index - 1); !reflect.DeepEqual(got, []string{"acme/web"}) {
		t.Fatalf("after a pending explanation: %v, want [acme/web]", got)
	}
	h.must(HostStateType, &HostStateRequest{ID: "host1", State: HostReady, Time: t0})
	// A failed instance holds nothing; a stop releases at once.
	host, _ = h.snap().Host(nil, "host1")
	if host.AllocCPU != 200 || host.AllocMemory != 256 {
		t.Fatalf("allocation after i-1 failed: %dm %d MB", host.AllocCPU, host.AllocMemory)
	}
	h.must(PlanApplyType, &PlanApplyRequest{Stop: []InstanceStop{{ID: "i-2", Reason: "test"}}, Time: t0})
	host, _ = h.snap().Host(nil, "host1")
	if host.AllocCPU != 0 || host.AllocMemory != 0 {
		t.Fatalf("allocation after every instance stopped: %dm %d MB", host.AllocCPU, host.AllocMemory)
	}
}

// Every write of an app's record is in the log of changes, so that the
// planner finds the apps written since its last round there: a create, a
// new spec, a status change (Pending), a deletion.
func TestAppWritesAreInTheLogOfChanges(t *testing.T) {
	h := newHarness(t)
	fill(h) // acme/web, written twice
	base := h.index
	names := func(since uint64) []string {
		var out []string
		known, err := h.snap().AppsChangedSince(nil, since, func(tenant, app string) { out = append(out, tenant+"/"+app) })
		if err != nil || !known {
			t.Fatalf("apps changed since %d: known %v, %v", since, known, err)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	for _, name := range []string{"zeta", "alpha"} {
		h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: spec(name, name+":1"), Create: true, Time: t0})
	}
	mid := h.index
	s := spec("web", "web:3")
	s.Pools, s.Instances = []string{"aws-bj"}, intp(3)
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, Time: t0})
	if got := names(base); !slices.Equal(got, []string{"acme/alpha", "acme/web", "acme/zeta"}) {
		t.Fatalf("apps changed since %d: %v", base, got)
	}
	if got := names(mid); !slices.Equal(got, []string{"acme/web"}) {
		t.Fatalf("apps changed since %d: %v", mid, got)
	}
	h.must(PlanApplyType, &PlanApplyRequest{Pending: []AppPending{{Tenant: "acme", App: "zeta", Reason: "no room"}}, Time: t0})
	if got := names(h.index - 1); !slices.Equal(got, []string{"acme/zeta"}) {
		t.Fatalf("apps changed by a Pending explanation: %v", got)
	}
	h.must(AppDeleteType, &AppDeleteRequest{Tenant: "acme", Name: "alpha", Time: t0})
	if got := names(h.index - 1); !slices.Equal(got, []string{"acme/alpha"}) {
		t.Fatalf("apps changed by alpha's deletion: %v", got)
	}
	if got := names(h.index); len(got) != 0 {
		t.Fatalf("apps changed after the last index: %v", got)
	}
}
