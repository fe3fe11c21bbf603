package scheduler

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsOnlyStdlib keeps the scheduler pure: no
// raft, memdb, quic-go, net/http, nor any other hub package.
func TestImportsOnlyStdlib(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const self = "github.com/wharf-platform/wharf/hub/scheduler"
	for _, pkg := range strings.Fields(string(out)) {
		if pkg != self {
			t.Errorf("imports %s: the scheduler may import only the standard library", pkg)
		}
	}
	out, err = exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "net" || strings.HasPrefix(pkg, "net/") || pkg == "os/exec" {
			t.Errorf("imports %s: the scheduler does no I/O", pkg)
		}
	}
}
