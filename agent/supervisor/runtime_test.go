package supervisor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// clusterDriver is the fake driver dressed as a cluster's: its instances
// are pending until scheduled, its readiness is its own (the Pod's Ready
// condition) and its addresses are routable as they are (Pod IPs).
type clusterDriver struct {
	*fake.Driver
	mu               sync.Mutex
	scheduled, ready bool
}

func (d *clusterDriver) set(scheduled, ready bool) {
	d.mu.Lock()
	d.scheduled, d.ready = scheduled, ready
	d.mu.Unlock()
}

func (d *clusterDriver) dress(st driver.Status) driver.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st.Address, st.Routable, st.Ready = "10.244.0.9:8080", true, d.ready
	if st.State == driver.StateRunning && !d.scheduled {
		st.State = driver.StatePending
	}
	return st
}

func (d *clusterDriver) Start(ctx context.Context, spec driver.Spec) (driver.Status, error) {
	st, err := d.Driver.Start(ctx, spec)
	return d.dress(st), err
}

func (d *clusterDriver) Inspect(ctx context.Context, id string) (driver.Status, error) {
	st, err := d.Driver.Inspect(ctx, id)
	if err != nil {
		return st, err
	}
	return d.dress(st), nil
}

func (d *clusterDriver) Ready(st driver.Status) bool { return st.Ready }

func reportOf(s *Supervisor, id string) *wire.InstanceStatus {
	for _, st := range s.Report(true).Instances {
		if st.Id == id {
			return st
		}
	}
	return nil
}

// TestRuntimeReadiness: with a driver whose runtime owns readiness, an
// instance the runtime has not started (a Pod waiting for a node) stays
// starting and is never restarted for that; once running, its readiness
// is the runtime's word (the agent's own HTTP check, which could not reach
// it, is not run), and its address is kept as the driver gave it.
func TestRuntimeReadiness(t *testing.T) {
	host := fake.NewHost()
	d := &clusterDriver{Driver: fake.New(host)}
	s := New(Config{Driver: d, Dir: t.TempDir(), Advertise: "192.0.2.1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	err := s.Assign(&wire.Assignments{Version: 1, Instances: []*wire.Instance{{Id: "i1", App: "web", Tenant: "acme", Version: 1,
		Ports: []*wire.Port{{ContainerPort: 8080}}, Health: &wire.Health{Http: "/healthz", IntervalMs: 10}}}})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "i1 starting", func() bool { r := reportOf(s, "i1"); return r != nil && r.StateCode == wire.InstanceStarting })
	time.Sleep(1500 * time.Millisecond) // past the minimum restart backoff
	if r := reportOf(s, "i1"); r.StateCode != wire.InstanceStarting || r.Reason != wire.Reason_REASON_NONE || r.Ready {
		t.Fatalf("a pending instance reported %+v, want starting without a reason", r)
	}
	if n := host.Started("i1"); n != 1 {
		t.Fatalf("a pending instance was started %d times", n)
	}

	d.set(true, false)
	waitUntil(t, "i1 running, not ready", func() bool {
		r := reportOf(s, "i1")
		return r.StateCode == wire.InstanceRunning && !r.Ready && r.Address == "10.244.0.9:8080"
	})
	d.set(true, true)
	waitUntil(t, "i1 ready by the runtime's word", func() bool { return reportOf(s, "i1").Ready })
	d.set(true, false)
	waitUntil(t, "i1 not ready by the runtime's word", func() bool { return !reportOf(s, "i1").Ready })
	if n := host.Started("i1"); n != 1 {
		t.Fatalf("the instance was started %d times", n)
	}
}
