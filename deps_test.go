package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/wharf-platform/wharf"

// TestImportRules enforces the import rules of the layout: pkg
// imports neither hub nor agent; hub and agent never import each other;
// providers import pkg only; the pure packages stay free of heavy deps;
// feature packages under hub never import the hub root.
func TestImportRules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}}|{{join .Deps " "}}|{{join .Imports " "}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	// direct rules look at a package's own imports, the others at
	// everything it pulls in.
	rules := []struct {
		pkgPrefix string
		forbidden []string
		direct    bool
		except    []string // packages under pkgPrefix the rule spares
	}{
		{module + "/pkg/", []string{module + "/hub", module + "/agent", module + "/providers"}, false, nil},
		{module + "/hub/", []string{module + "/agent", module + "/providers"}, false, nil},
		{module + "/agent/", []string{module + "/hub", module + "/providers"}, false, nil},
		{module + "/providers/", []string{module + "/hub", module + "/agent"}, false, nil},
		// The state store knows nothing of networking or of the API.
		{module + "/hub/state", []string{module + "/hub/api", module + "/hub/cluster", "github.com/hashicorp/memberlist"}, false, nil},
		{module + "/hub/state", []string{"net", "net/http"}, true, nil},
		// The API talks to the cluster through a small interface.
		{module + "/hub/api", []string{module + "/hub/cluster", "github.com/hashicorp/memberlist"}, false, nil},
		// Feature packages under hub/ reach each other through small
		// interfaces, never through the composition root; only the test
		// harness that starts whole nodes imports it.
		{module + "/hub/", []string{module + "/hub"}, true, []string{module + "/hub/hubtest"}},
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "|", 3)
		pkg, deps, imports := parts[0], parts[1], parts[2]
		for _, r := range rules {
			if pkg != strings.TrimSuffix(r.pkgPrefix, "/") && !strings.HasPrefix(pkg, r.pkgPrefix) || slices.Contains(r.except, pkg) {
				continue
			}
			checked++
			list := deps
			if r.direct {
				list = imports
			}
			for _, d := range strings.Fields(list) {
				for _, f := range r.forbidden {
					if d == f || (!r.direct && strings.HasPrefix(d, f+"/")) {
						t.Errorf("%s imports %s (forbidden by the layout)", pkg, d)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package matched any rule: the module path or layout changed")
	}
}
