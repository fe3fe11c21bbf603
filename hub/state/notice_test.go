package state

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestInstanceReasonNoticedOnce: an agent's reason is stored on the
// instance; the tenant hears of an image that cannot be pulled once per
// app version and reason, however many instances report it and however
// often they retry; a new version's trouble is news again.
func TestInstanceReasonNoticedOnce(t *testing.T) {
	h := newHarness(t)
	fill(h) // acme/web version 2 (image web:2), i-1 on host1
	h.must(PlanApplyType, &PlanApplyRequest{Place: []Instance{{ID: "i-2", Tenant: "acme", App: "web", Version: 2, Host: "host1", CPU: 100, Memory: 128}}, Time: t0})
	const pullErr = "pull web:2: manifest unknown: no such image in this registry"
	report := func(id string, restarts int) {
		h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Time: t0, Updates: []InstanceUpdate{
			{ID: id, State: InstanceStarting, Restarts: restarts, Message: pullErr, Reason: ReasonImagePull}}})
	}
	a0, _ := h.snap().App(nil, "acme", "web")
	for k := range 3 { // retries
		report("i-1", k)
		report("i-2", k)
	}
	i1, _ := h.snap().Instance(nil, "i-1")
	if i1.Reason != ReasonImagePull || i1.Message != pullErr || i1.State != InstanceStarting || i1.Desired != DesiredRun {
		t.Fatalf("i-1 %+v", i1)
	}
	pulls := func() []*Event {
		es, _ := h.snap().Events(nil, 0)
		var out []*Event
		for _, e := range es {
			if e.Type == "app.image_pull" {
				out = append(out, e)
			}
		}
		return out
	}
	es := pulls()
	if len(es) != 1 {
		t.Fatalf("%d image pull events, want 1: %+v", len(es), es)
	}
	if e := es[0]; e.Subject != "acme/web" || !strings.Contains(e.Message, "app web version 2") || !strings.Contains(e.Message, "web:2") || !strings.Contains(e.Message, pullErr) {
		t.Fatalf("event %+v", e)
	}
	if a, _ := h.snap().App(nil, "acme", "web"); a.ModifyIndex != a0.ModifyIndex {
		t.Fatal("noticing a trouble changed the app's modify index (its CAS token)")
	}
	// The image is fixed, then breaks again: the same version's trouble
	// was told already.
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Time: t0, Updates: []InstanceUpdate{{ID: "i-1", State: InstanceRunning, Ready: true}}})
	report("i-1", 4)
	if n := len(pulls()); n != 1 {
		t.Fatalf("%d image pull events after a relapse, want 1", n)
	}
	// A new version with the same trouble is news.
	s := spec("web", "web:3")
	s.Pools = []string{"aws-bj"}
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, Time: t0.Add(2 * time.Minute)})
	h.must(PlanApplyType, &PlanApplyRequest{Place: []Instance{
		{ID: "i-3", Tenant: "acme", App: "web", Version: 3, Host: "host1", CPU: 100, Memory: 128},
		{ID: "i-4", Tenant: "acme", App: "web", Version: 3, Host: "host1", CPU: 100, Memory: 128}}, Time: t0})
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Time: t0, Updates: []InstanceUpdate{ // both in one report
		{ID: "i-3", State: InstanceStarting, Message: pullErr, Reason: ReasonImagePull},
		{ID: "i-4", State: InstanceStarting, Message: pullErr, Reason: ReasonImagePull}}})
	if n := len(pulls()); n != 2 {
		t.Fatalf("%d image pull events after version 3 failed to pull, want 2", n)
	}
	err := h.apply(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-1", State: InstanceStarting, Reason: "bored"}}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown reason: got %v, want invalid", err)
	}
}

// TestAppRefusedWhereNoPoolRunsIt: an app no pool it may use could ever
// run is refused (422) on the field that decides it; pools are judged by
// their declared drivers, else their provider, and a pool that says
// neither accepts it.
func TestAppRefusedWhereNoPoolRunsIt(t *testing.T) {
	h := newHarness(t)
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "acme"}, Time: t0})
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "boxed", Pools: []string{"dock"}}, Time: t0})
	h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "dock", Datacenter: "dc1", Drivers: []string{"docker"}}, Time: t0})
	h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "k8s", Datacenter: "dc1", Provider: "kubernetes"}, Time: t0})
	h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "both", Datacenter: "dc1", Drivers: []string{"docker", "exec"}}, Time: t0})
	h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "cloud", Datacenter: "dc1", Provider: "aws"}, Time: t0})
	h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "bare", Datacenter: "dc1"}, Time: t0})
	cmd := func(pools ...string) AppSpec {
		return AppSpec{Name: "job", Command: []string{"/bin/job"}, Pools: pools}
	}
	img := func(pools ...string) AppSpec {
		return AppSpec{Name: "job", Image: "job:1", Pools: pools}
	}
	tests := []struct {
		name      string
		tenant    string
		spec      AppSpec
		wantField string // "" for accepted
	}{
		{"command on docker and kubernetes pools", "acme", cmd("dock", "k8s", "cloud"), "command"},
		{"command where a pool declares exec", "acme", cmd("dock", "both"), ""},
		{"command in a pool that says nothing", "acme", cmd("bare"), ""},
		{"command in a failover pool with exec", "acme", func() AppSpec { s := cmd("dock"); s.FailoverPools = []string{"both"}; return s }(), ""},
		{"command without pools: some pool may run it", "acme", cmd(), ""},
		{"command without pools for a tenant held to docker", "boxed", cmd(), "command"},
		{"image on an exec-only pool list", "acme", func() AppSpec {
			h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "procs", Datacenter: "dc1", Drivers: []string{"exec"}}, Time: t0})
			return img("procs")
		}(), "image"},
		{"image on kubernetes", "acme", img("k8s"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := h.apply(AppUpsertType, &AppUpsertRequest{Tenant: tt.tenant, Spec: tt.spec, Time: t0})
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				h.must(AppDeleteType, &AppDeleteRequest{Tenant: tt.tenant, Name: "job", Time: t0})
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindRefused || e.Field != tt.wantField {
				t.Fatalf("got %#v, want refused on %s", err, tt.wantField)
			}
			if a, _ := h.snap().App(nil, tt.tenant, "job"); a != nil {
				t.Fatal("a refused app was stored")
			}
			t.Log(e.Msg)
		})
	}
}
