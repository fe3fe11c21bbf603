package supervisor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// TestSecretsNeverOnDiskAndWaitForTheHub: the assignments kept on disk
// hold no secret's value; after a restart an instance with secrets is not
// started from them until the hub sends the secrets again.
func TestSecretsNeverOnDiskAndWaitForTheHub(t *testing.T) {
	const plain = "sup-secret-VALUE-77"
	in := &wire.Instance{Id: "web", App: "web", Tenant: "acme", Version: 2, Desired: wire.DesiredRun,
		Env: map[string]string{"MODE": "prod"}, SecretEnv: map[string]string{"DB_PASSWORD": plain}}
	if got := specOf(in); got.Secrets["DB_PASSWORD"] != plain || got.Env["DB_PASSWORD"] != "" {
		t.Fatalf("the driver's spec: secrets %v, env %v", got.Secrets, got.Env)
	}
	dir := t.TempDir()
	host := fake.NewHost()
	s := New(Config{Driver: fake.New(host), Dir: dir})
	if err := s.Assign(&wire.Assignments{Version: 5, Instances: []*wire.Instance{in}}); err != nil {
		t.Fatal(err)
	}
	if in.SecretEnv["DB_PASSWORD"] != plain || s.Wanted()[0].SecretEnv["DB_PASSWORD"] != plain {
		t.Fatal("saving the assignments took the secrets from the ones in memory")
	}
	b, err := os.ReadFile(filepath.Join(dir, FileAssignments))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(plain)) {
		t.Fatal("the assignments on disk hold a secret's value")
	}

	// A restarted agent on a host where the instance no longer runs.
	host2 := fake.NewHost()
	s2 := New(Config{Driver: fake.New(host2), Dir: dir})
	if w := s2.Wanted(); len(w) != 1 || !w[0].SecretsWithheld || len(w[0].SecretEnv) != 0 {
		t.Fatalf("loaded from disk: %v", w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s2.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, "web waiting for the hub", func() bool { st, _ := readyOf(s2, "web"); return st == wire.InstanceStarting })
	time.Sleep(300 * time.Millisecond) // a few rounds of the loop
	if n := host2.Started("web"); n != 0 {
		t.Fatalf("started %d times without its secrets", n)
	}
	if err := s2.Assign(&wire.Assignments{Version: 6, Instances: []*wire.Instance{in}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "web running once the hub sent its secrets", func() bool { st, _ := readyOf(s2, "web"); return st == wire.InstanceRunning })
}
