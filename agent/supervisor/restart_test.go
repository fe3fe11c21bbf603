package supervisor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// clocked is a supervisor on a fake host whose clock the test steps: the
// test converges it by hand instead of running its loop.
type clocked struct {
	s    *Supervisor
	host *fake.Host
	now  time.Time
}

func newClocked(t *testing.T, ins ...*wire.Instance) *clocked {
	t.Helper()
	c := &clocked{host: fake.NewHost(), now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	c.s = New(Config{Driver: fake.New(c.host), Dir: t.TempDir()})
	c.s.now = func() time.Time { return c.now }
	if err := c.s.Assign(&wire.Assignments{Version: 1, Instances: ins}); err != nil {
		t.Fatal(err)
	}
	return c
}

// status returns what the hub would hear of instance id.
func (c *clocked) status(id string) *wire.InstanceStatus {
	for _, st := range c.s.Report(true).Instances {
		if st.Id == id {
			return st
		}
	}
	return nil
}

// run converges every step until d has passed and returns the offsets
// (from the start of the run) at which Start was called for id; after
// each converge, onTick may act (crash the instance, say).
func (c *clocked) run(id string, d, step time.Duration, onTick func()) []time.Duration {
	var at []time.Duration
	begin, seen := c.now, c.host.Attempts(id)
	for c.now.Sub(begin) <= d {
		c.s.converge(context.Background())
		if n := c.host.Attempts(id); n != seen {
			seen = n
			at = append(at, c.now.Sub(begin))
		}
		if onTick != nil {
			onTick()
		}
		c.now = c.now.Add(step)
	}
	return at
}

func gaps(at []time.Duration) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(at); i++ {
		out = append(out, at[i]-at[i-1])
	}
	return out
}

func secs(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Second
	}
	return out
}

// TestBackoffImagePull: an image that cannot be pulled is retried on the
// same instance, 1 s after the first failure and twice as long after each
// further one up to 5 minutes, never reported failed; the hub hears
// reason IMAGE_PULL with the driver's own error. Once the image comes,
// the instance runs and the reason clears.
func TestBackoffImagePull(t *testing.T) {
	c := newClocked(t, &wire.Instance{Id: "i1", App: "web", Tenant: "acme", Version: 1, Image: "registry.test/web:404"})
	const registry = `manifest for registry.test/web:404 not found: manifest unknown: this registry has no such image`
	c.host.FailStarts(driver.ImagePullError(errors.New(registry)))
	at := c.run("i1", 30*time.Minute, 250*time.Millisecond, func() {
		if st := c.status("i1"); st.StateCode == wire.InstanceFailed {
			t.Fatal("reported failed: the hub would replace it with a new id")
		}
	})
	want := secs(1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300)
	if got := gaps(at); len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("retry gaps %v, want %v then 5m0s", got, want)
	}
	st := c.status("i1")
	if st.StateCode != wire.InstanceStarting || st.Reason != wire.Reason_REASON_IMAGE_PULL || st.Message != registry || st.Ready {
		t.Fatalf("status %+v, want starting with reason IMAGE_PULL and the registry's error", st)
	}
	if st.Restarts == 0 {
		t.Fatal("retries not counted as restarts")
	}
	c.host.FailStarts(nil)
	c.run("i1", 6*time.Minute, time.Second, nil)
	if st := c.status("i1"); st.StateCode != wire.InstanceRunning || st.Reason != wire.Reason_REASON_NONE || st.Message != "" {
		t.Fatalf("after the image came: %+v", st)
	}
	if got := c.host.Running(); !slices.Equal(got, []string{"i1"}) {
		t.Fatalf("running %v, want the same instance i1", got)
	}
}

// TestBackoffStartFailed: a start the runtime refuses is START_FAILED.
func TestBackoffStartFailed(t *testing.T) {
	c := newClocked(t, &wire.Instance{Id: "i1", App: "job", Tenant: "acme", Version: 1, Command: []string{"/nope"}})
	c.host.FailStarts(driver.StartFailedError(errors.New(`exec "/nope": no such file or directory`)))
	c.run("i1", 2*time.Second, 500*time.Millisecond, nil)
	if st := c.status("i1"); st.StateCode != wire.InstanceStarting || st.Reason != wire.Reason_REASON_START_FAILED || !strings.Contains(st.Message, "/nope") {
		t.Fatalf("status %+v", st)
	}
}

// TestBackoffCrashLoop: an instance that exits right after each start is
// restarted on the same id with growing waits and reported CRASH_LOOP
// from its third exit in a row; one that ran well for a while before it
// exited starts again after the minimum wait, and is no crash loop.
func TestBackoffCrashLoop(t *testing.T) {
	c := newClocked(t, &wire.Instance{Id: "i1", App: "web", Tenant: "acme", Version: 1})
	crash := func() {
		if slices.Contains(c.host.Running(), "i1") {
			if err := c.host.Crash("i1", 2); err != nil {
				t.Fatal(err)
			}
		}
	}
	at := c.run("i1", 2*time.Minute, 100*time.Millisecond, crash)
	// Each crash is seen on the next converge, 100 ms after the start.
	want := []time.Duration{1100 * time.Millisecond, 2100 * time.Millisecond, 4100 * time.Millisecond, 8100 * time.Millisecond, 16100 * time.Millisecond}
	if got := gaps(at); len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("restart gaps %v, want %v...", got, want)
	}
	st := c.status("i1")
	if st.Reason != wire.Reason_REASON_CRASH_LOOP || st.StateCode == wire.InstanceFailed || !strings.Contains(st.Message, "code 2") {
		t.Fatalf("status %+v, want a crash loop on the same instance", st)
	}
	if n := c.host.Attempts("i1"); int(st.Restarts) != n-1 {
		t.Fatalf("restarts %d after %d starts", st.Restarts, n)
	}

	// Let it start and run well, then crash once: restarted after 1 s.
	c.run("i1", 6*time.Minute, time.Second, nil)
	if st := c.status("i1"); st.StateCode != wire.InstanceRunning || st.Reason != wire.Reason_REASON_NONE {
		t.Fatalf("running again: %+v", st)
	}
	c.run("i1", 2*time.Minute, time.Second, nil) // runs well
	crash()
	at = c.run("i1", 3*time.Second, 100*time.Millisecond, nil)
	if len(at) != 1 || at[0] != time.Second {
		t.Fatalf("after running well, the restart came at %v, want 1s", at)
	}
	if st := c.status("i1"); st.Reason != wire.Reason_REASON_NONE {
		t.Fatalf("one exit after running well is reported %v", st.Reason)
	}
}
