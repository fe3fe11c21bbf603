package supervisor

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// readyOf returns the reported state and readiness of instance id
// (unspecified if unknown).
func readyOf(s *Supervisor, id string) (wire.InstanceState, bool) {
	for _, st := range s.Report(true).Instances {
		if st.Id == id {
			return st.StateCode, st.Ready
		}
	}
	return wire.InstanceState_INSTANCE_STATE_UNSPECIFIED, false
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCommandHealthCheck: an instance is ready while its health command
// exits 0 (run through the driver's Exec), and not ready after three
// failures in a row; it comes back when the command passes again.
func TestCommandHealthCheck(t *testing.T) {
	host := fake.NewHost()
	s := New(Config{Driver: fake.New(host), Dir: t.TempDir()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	err := s.Assign(&wire.Assignments{Version: 1, Instances: []*wire.Instance{{Id: "i1", App: "web", Tenant: "acme", Version: 1,
		Ports: []*wire.Port{{ContainerPort: 8080}}, Health: &wire.Health{Command: []string{"check"}, IntervalMs: 10}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "ready", func() bool { st, ok := readyOf(s, "i1"); return st == wire.InstanceRunning && ok })
	host.SetExecCode(1)
	waitUntil(t, "not ready after failing checks", func() bool { _, ok := readyOf(s, "i1"); return !ok })
	host.SetExecCode(0)
	waitUntil(t, "ready again", func() bool { _, ok := readyOf(s, "i1"); return ok })
	if host.Started("i1") != 1 {
		t.Fatalf("a failing health check restarted the instance (%d starts)", host.Started("i1"))
	}
}

// TestDrainDelay: a ready instance the hub unassigns keeps running for the
// drain delay (routers drop it meanwhile), then stops; one never ready
// stops at once.
func TestDrainDelay(t *testing.T) {
	host := fake.NewHost()
	s := New(Config{Driver: fake.New(host), Dir: t.TempDir()})
	s.drainDelay = 700 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := s.Assign(&wire.Assignments{Version: 1, Instances: []*wire.Instance{{Id: "i1", App: "web", Tenant: "acme", Version: 1}}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "i1 ready", func() bool { st, ok := readyOf(s, "i1"); return st == wire.InstanceRunning && ok })
	unassigned := time.Now()
	if err := s.Assign(&wire.Assignments{Version: 2}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "i1 reported stopping, not ready", func() bool { st, ok := readyOf(s, "i1"); return st == wire.InstanceStopping && !ok })
	if !slices.Contains(host.Running(), "i1") {
		t.Fatal("i1 stopped before the drain delay")
	}
	waitUntil(t, "i1 stopped", func() bool { return !slices.Contains(host.Running(), "i1") })
	if d := time.Since(unassigned); d < 700*time.Millisecond {
		t.Fatalf("i1 stopped %s after it was unassigned, before the drain delay", d)
	}
}

// TestBootingInstanceProbedOften: a new instance whose first checks fail
// (still booting) is probed again within moments, not after its
// interval: it is ready soon after it first answers. Once ready, the
// interval holds.
func TestBootingInstanceProbedOften(t *testing.T) {
	host := fake.NewHost()
	host.SetExecCode(1) // booting: not answering yet
	s := New(Config{Driver: fake.New(host), Dir: t.TempDir()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	err := s.Assign(&wire.Assignments{Version: 1, Instances: []*wire.Instance{{Id: "i1", App: "web", Tenant: "acme", Version: 1,
		Ports: []*wire.Port{{ContainerPort: 8080}}, Health: &wire.Health{Command: []string{"check"}, IntervalMs: 60_000}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "running, not ready", func() bool {
		st, ok := readyOf(s, "i1")
		return st == wire.InstanceRunning && !ok && s.Report(true).Instances[0].Message != ""
	})
	host.SetExecCode(0) // it answers now
	answered := time.Now()
	waitUntil(t, "ready", func() bool { _, ok := readyOf(s, "i1"); return ok })
	if took := time.Since(answered); took > 5*time.Second {
		t.Fatalf("ready %s after it first answered; want well under its 60 s interval", took)
	}
	// Ready: the next check waits its interval, so a failure now goes
	// unnoticed for a while (three would be needed anyway).
	host.SetExecCode(1)
	time.Sleep(300 * time.Millisecond)
	if _, ok := readyOf(s, "i1"); !ok {
		t.Fatal("a ready instance was probed faster than its interval")
	}
}

// barrierDriver is the fake driver whose Start waits (up to a while)
// until n Starts are under way at once.
type barrierDriver struct {
	*fake.Driver
	n       int
	mu      sync.Mutex
	entered int
	all     chan struct{}
}

func (d *barrierDriver) Start(ctx context.Context, spec driver.Spec) (driver.Status, error) {
	d.mu.Lock()
	d.entered++
	if d.entered == d.n {
		close(d.all)
	}
	d.mu.Unlock()
	select {
	case <-d.all:
	case <-time.After(5 * time.Second): // one after another: 15 s before the 4th
	}
	return d.Driver.Start(ctx, spec)
}

// TestStartsSideBySide: the instances of a scale-up start at the same
// time, not one after another (each start can take seconds).
func TestStartsSideBySide(t *testing.T) {
	host := fake.NewHost()
	drv := &barrierDriver{Driver: fake.New(host), n: 4, all: make(chan struct{})}
	s := New(Config{Driver: drv, Dir: t.TempDir()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var ins []*wire.Instance
	for _, id := range []string{"i1", "i2", "i3", "i4"} {
		ins = append(ins, &wire.Instance{Id: id, App: "web", Tenant: "acme", Version: 1, Ports: []*wire.Port{{ContainerPort: 8080}}})
	}
	if err := s.Assign(&wire.Assignments{Version: 1, Instances: ins}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-drv.all:
	case <-time.After(4 * time.Second):
		drv.mu.Lock()
		defer drv.mu.Unlock()
		t.Fatalf("only %d of 4 starts were under way at once", drv.entered)
	}
	waitUntil(t, "all running", func() bool { return len(host.Running()) == 4 })
}

// slowDriver is the fake driver whose Start of one instance waits until
// the test releases it.
type slowDriver struct {
	*fake.Driver
	slow    string
	release chan struct{}
}

func (d *slowDriver) Start(ctx context.Context, spec driver.Spec) (driver.Status, error) {
	if spec.InstanceID == d.slow {
		select {
		case <-d.release:
		case <-ctx.Done():
			return driver.Status{}, ctx.Err()
		}
	}
	return d.Driver.Start(ctx, spec)
}

// TestReadyWithoutWaitingForNeighbours: an instance that answers its
// health check is ready (and reported) while another instance of the
// same scale-up is still starting.
func TestReadyWithoutWaitingForNeighbours(t *testing.T) {
	host := fake.NewHost()
	drv := &slowDriver{Driver: fake.New(host), slow: "i2", release: make(chan struct{})}
	s := New(Config{Driver: drv, Dir: t.TempDir()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	released := false
	defer func() {
		if !released {
			close(drv.release)
		}
	}()
	var ins []*wire.Instance
	for _, id := range []string{"i1", "i2"} {
		ins = append(ins, &wire.Instance{Id: id, App: "web", Tenant: "acme", Version: 1, Ports: []*wire.Port{{ContainerPort: 8080}},
			Health: &wire.Health{Command: []string{"check"}, IntervalMs: 60_000}})
	}
	if err := s.Assign(&wire.Assignments{Version: 1, Instances: ins}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "i1 ready while i2 still starts", func() bool { st, ok := readyOf(s, "i1"); return st == wire.InstanceRunning && ok })
	close(drv.release)
	released = true
	waitUntil(t, "i2 ready", func() bool { _, ok := readyOf(s, "i2"); return ok })
}
