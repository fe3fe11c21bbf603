package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/wharf-platform/wharf"

// TestImportRules enforces the import rules of DESIGN.md section 7: pkg
// imports neither hub nor agent; hub and agent never import each other;
// providers import pkg only; the pure packages stay free of heavy deps.
func TestImportRules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}}|{{join .Deps " "}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	rules := []struct {
		pkgPrefix string
		forbidden []string
	}{
		{module + "/pkg/", []string{module + "/hub", module + "/agent", module + "/providers"}},
		{module + "/hub/", []string{module + "/agent", module + "/providers"}},
		{module + "/agent/", []string{module + "/hub", module + "/providers"}},
		{module + "/providers/", []string{module + "/hub", module + "/agent"}},
		// The state store knows nothing of networking or of the API.
		{module + "/hub/state", []string{module + "/hub/api", module + "/hub/cluster", "net/http", "github.com/hashicorp/memberlist"}},
		// The API talks to the cluster through a small interface.
		{module + "/hub/api", []string{module + "/hub/cluster", "github.com/hashicorp/memberlist"}},
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, "|")
		for _, r := range rules {
			if pkg != strings.TrimSuffix(r.pkgPrefix, "/") && !strings.HasPrefix(pkg, r.pkgPrefix) {
				continue
			}
			checked++
			for _, d := range strings.Fields(deps) {
				for _, f := range r.forbidden {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("%s imports %s (forbidden by DESIGN.md section 7)", pkg, d)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package matched any rule: the module path or layout changed")
	}
}
