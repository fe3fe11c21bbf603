package supervisor

import (
	"context"
	"errors"
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

// TestOlderAssignmentsRefused: a set older than the one held (from a hub
// node behind the cluster) is refused and changes nothing, on disk or in
// memory, also after a restart.
func TestOlderAssignmentsRefused(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{Driver: fake.New(fake.NewHost()), Dir: dir})
	newer := &wire.Assignments{Version: 9, Instances: []*wire.Instance{{Id: "web-2", App: "web", Tenant: "acme", Version: 2}}}
	if err := s.Assign(newer); err != nil {
		t.Fatal(err)
	}
	older := &wire.Assignments{Version: 4, Instances: []*wire.Instance{{Id: "web-1", App: "web", Tenant: "acme", Version: 1}}}
	for _, sup := range []*Supervisor{s, New(Config{Driver: fake.New(fake.NewHost()), Dir: dir})} {
		if err := sup.Assign(older); !errors.Is(err, ErrOlderAssignments) {
			t.Fatalf("older set: %v, want ErrOlderAssignments", err)
		}
		if sup.Applied() != 9 || loadAssignments(dir).GetVersion() != 9 {
			t.Fatalf("after the older set: holding %d, on disk %d; want 9", sup.Applied(), loadAssignments(dir).GetVersion())
		}
	}
	// The same version again (registry credentials re-sent) is taken.
	if err := s.Assign(&wire.Assignments{Version: 9}); err != nil {
		t.Fatalf("the same version again: %v", err)
	}
}
