package kubeenv

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStandardLibraryOnly keeps the harness light: every package that
// starts a cluster imports it, so it must not pull in client-go (or
// anything else outside the standard library but the deadline scaling).
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/wharf-platform/wharf/e2e/kubeenv":          true,
		"github.com/wharf-platform/wharf/hub/hubtest/deadline": true,
	}
	for _, p := range strings.Fields(string(out)) {
		if !allowed[p] {
			t.Errorf("e2e/kubeenv depends on %s: it may use only the standard library", p)
		}
	}
}
