package supervisor

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharf-platform/wharf/pkg/wire"
)

// TestRegistryCredentialsStayInMemory: the assignments kept on disk lack
// the registry credentials, the ones in memory (what the driver gets)
// keep them.
func TestRegistryCredentialsStayInMemory(t *testing.T) {
	const password = "in-memory-only-password"
	dir := t.TempDir()
	a := &wire.Assignments{Version: 3, Instances: []*wire.Instance{
		{Id: "i-1", Tenant: "acme", App: "web", Image: "r.acme.test:5000/web:1",
			RegistryAuth: &wire.RegistryAuth{Server: "r.acme.test:5000", Username: "ci", Password: password}, AlwaysPull: true},
		{Id: "i-2", Tenant: "acme", App: "job", Image: "busybox"},
	}}
	if err := saveAssignments(dir, a); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileAssignments))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(password)) {
		t.Fatal("the assignments on disk hold the registry credentials")
	}
	if !bytes.Contains(b, []byte("r.acme.test:5000/web:1")) {
		t.Fatal("the assignments on disk lack the instance: the search would not find the password either")
	}
	if a.Instances[0].RegistryAuth == nil || a.Instances[0].RegistryAuth.Password != password {
		t.Fatal("saving stripped the credentials from the assignments in memory")
	}
	kept := loadAssignments(dir)
	if kept == nil || len(kept.Instances) != 2 || kept.Instances[0].RegistryAuth != nil {
		t.Fatalf("loaded %v", kept)
	}
	spec := specOf(a.Instances[0])
	if !spec.AlwaysPull || !kept.Instances[0].AlwaysPull {
		t.Fatal("always pull did not reach the driver's spec or the disk")
	}
	if spec.RegistryAuth == nil || spec.RegistryAuth.Server != "r.acme.test:5000" || spec.RegistryAuth.Username != "ci" || spec.RegistryAuth.Password != password {
		t.Fatalf("the driver's spec carries %+v", spec.RegistryAuth)
	}
	if specOf(a.Instances[1]).RegistryAuth != nil {
		t.Fatal("an image of Docker Hub got credentials")
	}
}
