package supervisor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// boostDriver is the fake driver as a driver.Booster: it records each
// Settle, whether the instance was reported ready then, and fails the
// first one when told to.
type boostDriver struct {
	*fake.Driver
	s        *Supervisor
	failOnce atomic.Bool
	mu       sync.Mutex
	settled  []settleCall
}

type settleCall struct {
	id    string
	cpu   int
	ready bool
}

func (d *boostDriver) Settle(ctx context.Context, id string, cpu int) error {
	// The supervisor may hold no lock here: reading its report takes it.
	_, ready := readyOf(d.s, id)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.settled = append(d.settled, settleCall{id, cpu, ready})
	if d.failOnce.CompareAndSwap(true, false) {
		return errors.New("daemon busy")
	}
	return nil
}

func (d *boostDriver) calls() []settleCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]settleCall(nil), d.settled...)
}

var _ driver.Booster = (*boostDriver)(nil)

// TestSettleOnceReady: an instance booted above its CPU limit gets its
// own limit once it is ready, not before, and once; a failed settle is
// tried again; one that never gets ready is settled after its grace.
func TestSettleOnceReady(t *testing.T) {
	host := fake.NewHost()
	host.SetExecCode(1) // booting: its check fails
	drv := &boostDriver{Driver: fake.New(host)}
	s := New(Config{Driver: drv, Dir: t.TempDir()})
	drv.s = s
	var skew atomic.Int64 // the supervisor's clock runs this far ahead
	s.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	drv.failOnce.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	check := &wire.Health{Command: []string{"check"}, IntervalMs: 20}
	err := s.Assign(&wire.Assignments{Version: 1, Instances: []*wire.Instance{
		{Id: "i1", App: "web", Tenant: "acme", Version: 1, Cpu: 100, Ports: []*wire.Port{{ContainerPort: 8080}}, Health: check},
	}})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "i1 running, not ready", func() bool { st, ok := readyOf(s, "i1"); return st == wire.InstanceRunning && !ok })
	time.Sleep(300 * time.Millisecond) // several passes while it boots
	if c := drv.calls(); len(c) != 0 {
		t.Fatalf("settled while booting: %+v", c)
	}
	host.SetExecCode(0)
	// The first settle fails (daemon busy) and is tried again.
	waitUntil(t, "i1 settled twice", func() bool { return len(drv.calls()) >= 2 })
	time.Sleep(300 * time.Millisecond)
	c := drv.calls()
	if len(c) != 2 {
		t.Fatalf("settles %+v: want one failed and one that held, then none", c)
	}
	for _, sc := range c {
		if sc.id != "i1" || sc.cpu != 100 || !sc.ready {
			t.Fatalf("settle %+v: want i1 at 100m, once ready", sc)
		}
	}

	// Never ready: settled once the boot's grace is over.
	host.SetExecCode(1)
	if err := s.Assign(&wire.Assignments{Version: 2, Instances: []*wire.Instance{
		{Id: "i2", App: "api", Tenant: "acme", Version: 1, Cpu: 250, Ports: []*wire.Port{{ContainerPort: 8080}}, Health: check},
	}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "i2 running, not ready", func() bool { st, ok := readyOf(s, "i2"); return st == wire.InstanceRunning && !ok })
	time.Sleep(200 * time.Millisecond)
	if n := len(drv.calls()); n != 2 {
		t.Fatalf("i2 settled while booting: %+v", drv.calls())
	}
	skew.Store(int64(unhealthyGrace))
	waitUntil(t, "i2 settled after its grace", func() bool { c := drv.calls(); return len(c) == 3 && c[2].id == "i2" && c[2].cpu == 250 })
}
