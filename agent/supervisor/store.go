package supervisor

import (
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/internal/atomicfile"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// FileAssignments keeps the last assignment set applied, in the agent's
// data dir (protobuf wire.Assignments).
const FileAssignments = "assignments.pb"

// loadAssignments reads the assignments kept in dir; nil when there are
// none (or they do not parse).
func loadAssignments(dir string) *wire.Assignments {
	b, err := os.ReadFile(filepath.Join(dir, FileAssignments))
	if err != nil {
		return nil
	}
	var a wire.Assignments
	if proto.Unmarshal(b, &a) != nil {
		return nil
	}
	wire.UpgradeLegacy(&a) // kept by an older build
	return &a
}

// saveAssignments keeps a in dir, atomically, without the registry
// credentials: those stay in memory (an image pulled once stays on the
// host, so a restart without the hub rarely needs them).
func saveAssignments(dir string, a *wire.Assignments) error {
	kept := a
	for i, in := range a.Instances {
		if in.RegistryAuth == nil {
			continue
		}
		if kept == a {
			kept = proto.CloneOf(a)
		}
		kept.Instances[i].RegistryAuth = nil
	}
	b, err := proto.Marshal(kept)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, FileAssignments), b, 0o600)
}
