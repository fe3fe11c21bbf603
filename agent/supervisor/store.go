package supervisor

import (
	"os"
	"path/filepath"
	"slices"

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

// saveAssignments keeps a in dir, atomically, without the apps' secrets
// and the registry credentials. An instance that had secrets is kept with
// SecretsWithheld set, and after an agent restart it waits for the hub to
// send them before it starts (a running one is adopted as it is). Registry
// credentials stay in memory (an image pulled once stays on the host, so a
// restart without the hub rarely needs them). Nothing on disk holds a
// secret's value or a registry password.
func saveAssignments(dir string, a *wire.Assignments) error {
	a = withoutSecrets(a)
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

// withoutSecrets returns a, or a copy of it without secret values.
func withoutSecrets(a *wire.Assignments) *wire.Assignments {
	if !slices.ContainsFunc(a.GetInstances(), func(in *wire.Instance) bool { return len(in.SecretEnv) > 0 }) {
		return a
	}
	c := proto.Clone(a).(*wire.Assignments)
	for _, in := range c.Instances {
		if len(in.SecretEnv) > 0 {
			in.SecretEnv, in.SecretsWithheld = nil, true
		}
	}
	return c
}
