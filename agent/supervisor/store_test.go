package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/agent/lease"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// TestAssignmentsOfAnOlderBuildKeepTheirFence: an agent upgraded in place
// reads the assignments its protocol 1 build kept on disk, where the
// failover mode was a string; the fenced instance stays fenced (no lease
// yet after the restart) while the other one runs.
func TestAssignmentsOfAnOlderBuildKeepTheirFence(t *testing.T) {
	legacy := func(in *wire.Instance, failover string) []byte {
		b, err := proto.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		b = protowire.AppendTag(b, 12, protowire.BytesType) // desired_state
		b = protowire.AppendString(b, "run")
		if failover != "" {
			b = protowire.AppendTag(b, 13, protowire.BytesType) // failover_mode
			b = protowire.AppendString(b, failover)
		}
		return b
	}
	file := protowire.AppendTag(nil, 1, protowire.VarintType)
	file = protowire.AppendVarint(file, 3)
	for _, in := range [][]byte{
		legacy(&wire.Instance{Id: "db", App: "db", Tenant: "acme", Version: 1, MaxDisconnectMs: 1500}, "fenced"),
		legacy(&wire.Instance{Id: "web", App: "web", Tenant: "acme", Version: 1}, ""),
	} {
		file = protowire.AppendTag(file, 2, protowire.BytesType)
		file = protowire.AppendBytes(file, in)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileAssignments), file, 0o600); err != nil {
		t.Fatal(err)
	}
	host := fake.NewHost()
	s := New(Config{Driver: fake.New(host), Dir: dir})
	s.lease = lease.Open(t.TempDir())
	if s.Applied() != 3 {
		t.Fatalf("applied version %d, want 3 from the file", s.Applied())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, "web running", func() bool { st, _ := readyOf(s, "web"); return st == wire.InstanceRunning })
	if st, _ := readyOf(s, "db"); st != wire.InstanceStopped || host.Started("db") != 0 {
		t.Fatalf("a fenced instance from the old file without a lease: %v, %d starts", st, host.Started("db"))
	}
}
