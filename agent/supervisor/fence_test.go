package supervisor

import (
	"context"
	"slices"
	"testing"

	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/agent/lease"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// TestFencedInstanceRunsOnlyUnderLease: a fenced instance does not start
// before the lease is renewed, stops once it has gone max_disconnect
// without renewal, and starts again on renewal; an availability one runs
// throughout.
func TestFencedInstanceRunsOnlyUnderLease(t *testing.T) {
	host := fake.NewHost()
	s := New(Config{Driver: fake.New(host), Dir: t.TempDir()})
	l := lease.Open(t.TempDir())
	s.lease = l
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	err := s.Assign(&wire.Assignments{Version: 1, Instances: []*wire.Instance{
		{Id: "db", App: "db", Tenant: "acme", Version: 1, Failover: wire.FailoverFenced, MaxDisconnectMs: 1500},
		{Id: "web", App: "web", Tenant: "acme", Version: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "web running", func() bool { st, _ := readyOf(s, "web"); return st == wire.InstanceRunning })
	if st, _ := readyOf(s, "db"); st != wire.InstanceStopped || host.Started("db") != 0 {
		t.Fatalf("fenced instance without a lease: %q, %d starts", st, host.Started("db"))
	}
	l.Renew(0)
	waitUntil(t, "db running once the lease is renewed", func() bool { st, _ := readyOf(s, "db"); return st == wire.InstanceRunning })
	waitUntil(t, "db stopped once the lease ran out", func() bool {
		st, _ := readyOf(s, "db")
		return st == wire.InstanceStopped && !slices.Contains(host.Running(), "db")
	})
	if !slices.Contains(host.Running(), "web") {
		t.Fatal("the lease stopped an availability instance")
	}
	l.Renew(0)
	waitUntil(t, "db running again", func() bool {
		st, _ := readyOf(s, "db")
		return st == wire.InstanceRunning && slices.Contains(host.Running(), "db")
	})
}
