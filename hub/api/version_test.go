package api

import (
	"encoding/json"
	"testing"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/version"
)

// TestVersions: GET /v1/status names the hub's version; hosts show the
// version of their agent, from its inventory.
func TestVersions(t *testing.T) {
	f := newFixture(t)
	var st map[string]any
	f.ok("", "GET", "/v1/status", nil, &st)
	if st["version"] != version.Get().Version {
		t.Fatalf("status version %v, want %q", st["version"], version.Get().Version)
	}

	f.applyState(state.HostInventoryType, &state.HostInventoryRequest{ID: "host1", Inventory: state.Inventory{Hostname: "n1", AgentVersion: "v1.4.2"}})
	var hosts []map[string]json.RawMessage
	f.ok("admin", "GET", "/v1/hosts", nil, &hosts)
	if len(hosts) != 1 || string(hosts[0]["agent_version"]) != `"v1.4.2"` {
		t.Fatalf("GET /v1/hosts: %v", hosts)
	}
	var h map[string]json.RawMessage
	f.ok("admin", "GET", "/v1/hosts/host1", nil, &h)
	if string(h["agent_version"]) != `"v1.4.2"` {
		t.Fatalf("GET /v1/hosts/host1: agent_version %s", h["agent_version"])
	}
}
