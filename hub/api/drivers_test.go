package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestPoolDrivers: a pool's declared drivers are validated (400 for an
// unknown or repeated one, nothing stored), stored and returned.
func TestPoolDrivers(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		body string
		code int
	}{
		{"unknown driver", `{"name":"px","drivers":["docker","podman"]}`, 400},
		{"driver twice", `{"name":"px","drivers":["exec","exec"]}`, 400},
		{"not a list", `{"name":"px","drivers":"docker"}`, 400},
		{"declared", `{"name":"px","drivers":["docker","exec"]}`, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.api.cfg.Store.Snapshot().LatestIndex()
			code, body, _ := f.do("admin", "POST", "/v1/pools", tt.body)
			if code != tt.code {
				t.Fatalf("got %d %s, want %d", code, body, tt.code)
			}
			if code == 400 {
				var e apitypes.Error
				if json.Unmarshal(body, &e) != nil || e.Field != "drivers" {
					t.Fatalf("error %s: want field drivers", body)
				}
				if after := f.api.cfg.Store.Snapshot().LatestIndex(); after != before {
					t.Fatal("a refused pool changed the state")
				}
			}
		})
	}
	var p apitypes.Pool
	f.ok("admin", "GET", "/v1/pools/px", nil, &p)
	if !slices.Equal(p.Drivers, []string{"docker", "exec"}) {
		t.Fatalf("pool drivers %v", p.Drivers)
	}
	var ps []apitypes.Pool
	f.ok("admin", "GET", "/v1/pools", nil, &ps)
	for _, x := range ps {
		if x.Name == "px" && len(x.Drivers) != 2 {
			t.Fatalf("listed pool drivers %v", x.Drivers)
		}
	}
}

// TestAppNoPoolRuns: POST and PUT of an app that no pool it may use could
// ever run answer 422 on the field that decides it ("image" or
// "command") and change nothing; a pool that could run it, or one that
// says nothing of its drivers, accepts it.
func TestAppNoPoolRuns(t *testing.T) {
	f := newFixture(t) // pools aws-bj and vs-sh declare nothing
	f.ok("admin", "POST", "/v1/pools", apitypes.PoolRequest{Name: "dock", Drivers: []string{"docker"}}, nil)
	f.ok("admin", "POST", "/v1/pools", apitypes.PoolRequest{Name: "k8s", Provider: "kubernetes"}, nil)
	f.ok("admin", "POST", "/v1/pools", apitypes.PoolRequest{Name: "procs", Drivers: []string{"exec"}}, nil)
	tests := []struct {
		name, method, path, body string
		code                     int
		field                    string
	}{
		{"command on docker and kubernetes", "POST", "/v1/apps", `{"name":"job","command":["/bin/job"],"pools":["dock","k8s"]}`, 422, "command"},
		{"image on exec only", "PUT", "/v1/apps/web", `{"image":"web:2","pools":["procs"]}`, 422, "image"},
		{"command with an exec pool", "POST", "/v1/apps", `{"name":"job","command":["/bin/job"],"pools":["dock","procs"]}`, 201, ""},
		{"command in a pool that says nothing", "POST", "/v1/apps", `{"name":"job2","command":["/bin/job"],"pools":["aws-bj"]}`, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.api.cfg.Store.Snapshot().LatestIndex()
			code, body, _ := f.do("acme/developer", tt.method, tt.path, tt.body)
			if code != tt.code {
				t.Fatalf("got %d %s, want %d", code, body, tt.code)
			}
			if code != 422 {
				return
			}
			var e apitypes.Error
			if json.Unmarshal(body, &e) != nil || e.Field != tt.field || !strings.Contains(e.Message, "no pool this app may use") {
				t.Fatalf("error %s: want field %s and a clear message", body, tt.field)
			}
			if after := f.api.cfg.Store.Snapshot().LatestIndex(); after != before {
				t.Fatal("a refused app changed the state")
			}
		})
	}
	if a, _ := f.api.cfg.Store.Snapshot().App(nil, "acme", "web"); a.Spec.Image != "web:1" {
		t.Fatalf("the refused PUT changed web: image %s", a.Spec.Image)
	}
}

// TestInstanceReason: the reason an agent reports is returned with the
// instance.
func TestInstanceReason(t *testing.T) {
	f := newFixture(t)
	f.applyState(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: "i-1", Tenant: "acme", App: "web", Version: 1, Host: "host1"}}})
	f.applyState(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "host1", Updates: []state.InstanceUpdate{
		{ID: "i-1", State: state.InstanceStarting, Reason: state.ReasonImagePull, Message: "pull web:1: manifest unknown"}}})
	var is []apitypes.Instance
	f.ok("acme/viewer", "GET", "/v1/apps/web/instances", nil, &is)
	if len(is) != 1 || is[0].Reason != apitypes.ReasonImagePull || is[0].Message != "pull web:1: manifest unknown" {
		t.Fatalf("instances %+v", is)
	}
	// A pending instance whose host's drivers cannot run it.
	f.applyState(state.HostInventoryType, &state.HostInventoryRequest{ID: "host1", Inventory: state.Inventory{Drivers: []string{"exec"}}})
	f.applyState(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: "i-2", Tenant: "acme", App: "web", Version: 1, Host: "host1"}}})
	f.ok("acme/viewer", "GET", "/v1/apps/web/instances", nil, &is)
	for _, i := range is {
		if want := map[string]string{"i-1": apitypes.ReasonImagePull, "i-2": apitypes.ReasonNoDriver}[i.ID]; i.Reason != want {
			t.Fatalf("instance %s reason %q, want %q", i.ID, i.Reason, want)
		}
	}
}
