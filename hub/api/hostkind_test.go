package api

import (
	"encoding/json"
	"testing"

	"github.com/wharf-platform/wharf/hub/state"
)

// TestHostKind: GET /v1/hosts shows what each agent enrolled, "host"
// (also for agents that report no kind) or "cluster", and the CPU in
// millicores, exact for a cluster's 7.5 cores.
func TestHostKind(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		inv             state.Inventory
		kind, cpus, cpu string
	}{
		{state.Inventory{CPUs: 4}, `"host"`, `4`, `4000`},
		{state.Inventory{Kind: state.KindHost, CPUs: 2}, `"host"`, `2`, `2000`},
		{state.Inventory{Kind: state.KindCluster, CPUs: 7, CPUMillis: 7500, Drivers: []string{"kubernetes"}}, `"cluster"`, `7`, `7500`},
	}
	for _, tt := range tests {
		f.applyState(state.HostInventoryType, &state.HostInventoryRequest{ID: "host1", Inventory: tt.inv})
		var h map[string]json.RawMessage
		f.ok("admin", "GET", "/v1/hosts/host1", nil, &h)
		if string(h["kind"]) != tt.kind || string(h["cpus"]) != tt.cpus || string(h["cpu_millis"]) != tt.cpu {
			t.Errorf("inventory %+v: kind %s cpus %s cpu_millis %s, want %s %s %s", tt.inv, h["kind"], h["cpus"], h["cpu_millis"], tt.kind, tt.cpus, tt.cpu)
		}
		var hosts []map[string]json.RawMessage
		f.ok("admin", "GET", "/v1/hosts", nil, &hosts)
		if len(hosts) != 1 || string(hosts[0]["kind"]) != tt.kind {
			t.Errorf("GET /v1/hosts: %v", hosts)
		}
	}
}
