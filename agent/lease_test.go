package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/pkg/wire"
)

func TestLeaseSurvivesRestartNotReboot(t *testing.T) {
	dir := t.TempDir()
	l := openLease(dir)
	if !l.expired(time.Hour) {
		t.Fatal("a lease never renewed is not expired")
	}
	l.renew(100 * time.Millisecond)
	if age, ok := l.age(); !ok || age < 100*time.Millisecond || age > 5*time.Second {
		t.Fatalf("age after renewal by a heartbeat sent 100ms ago: %v %v", age, ok)
	}
	if l.expired(time.Minute) || !l.expired(50*time.Millisecond) {
		t.Fatal("expiry does not follow max_disconnect")
	}
	// An agent restart (same boot) keeps it.
	if again := openLease(dir); again.expired(time.Minute) {
		t.Fatal("the lease did not survive an agent restart")
	}
	// Another boot voids it.
	b, _ := os.ReadFile(filepath.Join(dir, fileLease))
	os.WriteFile(filepath.Join(dir, fileLease), append([]byte("another-boot"), b[len(bootID()):]...), 0o600)
	if rebooted := openLease(dir); !rebooted.expired(time.Hour) {
		t.Fatal("a lease from another boot still counts")
	}
}

// TestFencedInstanceRunsOnlyUnderLease: a fenced instance does not start
// before the lease is renewed, stops once it has gone max_disconnect
// without renewal, and starts again on renewal; an availability one runs
// throughout.
func TestFencedInstanceRunsOnlyUnderLease(t *testing.T) {
	host := fake.NewHost()
	s := newSupervisor(fake.New(host), t.TempDir(), "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.lease = openLease(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	err := s.assign(&wire.Assignments{Version: 1, Instances: []*wire.Instance{
		{Id: "db", App: "db", Tenant: "acme", Version: 1, Failover: wire.FailoverFenced, MaxDisconnectMs: 1500},
		{Id: "web", App: "web", Tenant: "acme", Version: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "web running", func() bool { st, _ := readyOf(s, "web"); return st == wire.InstanceRunning })
	if st, _ := readyOf(s, "db"); st != wire.InstanceStopped || host.Started("db") != 0 {
		t.Fatalf("fenced instance without a lease: %q, %d starts", st, host.Started("db"))
	}
	s.lease.renew(0)
	waitUntil(t, "db running once the lease is renewed", func() bool { st, _ := readyOf(s, "db"); return st == wire.InstanceRunning })
	waitUntil(t, "db stopped once the lease ran out", func() bool {
		st, _ := readyOf(s, "db")
		return st == wire.InstanceStopped && !slices.Contains(host.Running(), "db")
	})
	if !slices.Contains(host.Running(), "web") {
		t.Fatal("the lease stopped an availability instance")
	}
	s.lease.renew(0)
	waitUntil(t, "db running again", func() bool {
		st, _ := readyOf(s, "db")
		return st == wire.InstanceRunning && slices.Contains(host.Running(), "db")
	})
}

// TestLeaseFileWritesAreSpaced: renewals a heartbeat apart do not each
// rewrite the file; what a restart reads is at most leaseWriteEvery older
// than the last renewal (it fences sooner, never later).
func TestLeaseFileWritesAreSpaced(t *testing.T) {
	dir := t.TempDir()
	l := openLease(dir)
	l.renew(0)
	first, _ := os.ReadFile(filepath.Join(dir, fileLease))
	time.Sleep(50 * time.Millisecond)
	l.renew(0)
	if again, _ := os.ReadFile(filepath.Join(dir, fileLease)); string(again) != string(first) {
		t.Fatal("a renewal 50ms after the last rewrote the lease file")
	}
	restarted := openLease(dir)
	ra, _ := restarted.age()
	la, _ := l.age()
	if ra < la || ra > la+leaseWriteEvery {
		t.Fatalf("restart reads a lease aged %s, the live one is %s", ra, la)
	}
	l.mu.Lock()
	l.written -= leaseWriteEvery // as if the last write were 2s ago
	l.mu.Unlock()
	l.renew(0)
	if again, _ := os.ReadFile(filepath.Join(dir, fileLease)); string(again) == string(first) {
		t.Fatal("the file was not rewritten after leaseWriteEvery")
	}
}
