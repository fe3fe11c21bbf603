package kubernetes_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/kubernetes"
	"github.com/wharf-platform/wharf/agent/logs"
	"github.com/wharf-platform/wharf/agent/logship"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// TestLogsResumeAcrossAgentRestart: a Pod's output comes through Logs
// with the kubelet's own timestamps (as `kubectl logs --timestamps`
// shows them), and the agent's capture (agent/logs over its on-disk
// buffer) stopped while the Pod goes on printing and started again with
// a new driver resumes where it stopped: every numbered line lands in
// the buffer exactly once, in order.
func TestLogsResumeAcrossAgentRestart(t *testing.T) {
	c := kube(t)
	image := testImage(t, c)
	host := drivertest.NewID("host-")
	d1 := newDriver(t, c, kubernetes.Config{HostID: host})
	spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Tenant: "acme", App: "chatty", Version: 1, Image: image,
		Env:   map[string]string{"TESTAPP_PRINT": "40"},
		Ports: []driver.Port{{ContainerPort: 8080}}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if st, err := d1.Start(ctx, spec); err != nil || st.State != driver.StateRunning {
		t.Fatalf("start: %+v, %v", st, err)
	}
	t.Cleanup(func() { _ = d1.Stop(context.Background(), spec.InstanceID, time.Second) })

	// The driver's times are the kubelet's.
	var lines []driver.LogLine
	drivertest.WaitFor(t, 30*time.Second, func() (bool, string) {
		lines = nil
		err := d1.Logs(ctx, spec.InstanceID, driver.LogOptions{}, func(l driver.LogLine) error {
			lines = append(lines, l)
			return nil
		})
		return err == nil && len(lines) >= 10, fmt.Sprintf("%d lines, %v", len(lines), err)
	})
	out, err := c.Kubectl(t, "logs", "--timestamps", "-n", kubernetes.Namespace(spec.Tenant), spec.InstanceID)
	if err != nil {
		t.Fatalf("kubectl logs: %v\n%s", err, out)
	}
	stamped := map[string]time.Time{}
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		ts, text, _ := strings.Cut(s, " ")
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("kubectl logs line %q: %v", s, err)
		}
		stamped[text] = tm
	}
	for _, l := range lines {
		if tm, ok := stamped[l.Line]; !ok || !tm.Equal(l.Time) {
			t.Fatalf("line %q at %v; kubectl logs has it at %v (%v)", l.Line, l.Time, tm, ok)
		}
	}

	// The agent's capture, stopped and started again over the same buffer.
	dir := t.TempDir()
	want := []*wire.Instance{{Id: spec.InstanceID, Tenant: spec.Tenant, App: spec.App, Version: 1}}
	capture := func(d driver.Driver, until func(*logship.Buffer) bool) {
		t.Helper()
		buf, err := logship.Open(logship.Config{Dir: dir, Logger: slog.Default()})
		if err != nil {
			t.Fatal(err)
		}
		cctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { logs.New(buf, d, slog.Default()).CaptureWanted(cctx, func() []*wire.Instance { return want }) })
		drivertest.WaitFor(t, 30*time.Second, func() (bool, string) {
			return until(buf), fmt.Sprintf("buffer: %+v", buf.Stats())
		})
		stop()
		wg.Wait()
		// An agent killed now loses what it had not written yet: the
		// next one must read it again from the kubelet.
		if err := buf.Close(); err != nil {
			t.Fatal(err)
		}
	}
	src := spec.Tenant + "/" + spec.App + "/" + spec.InstanceID
	var stoppedAt time.Time
	capture(d1, func(b *logship.Buffer) bool {
		stoppedAt = b.Last(src)["stdout"]
		return !stoppedAt.IsZero() && time.Since(lines[0].Time) > 3*time.Second
	})
	// The Pod prints on while no agent follows it.
	time.Sleep(2 * time.Second)
	// The same host's agent again: its Pods are d1's, whose cleanup
	// stops them.
	d2, err := kubernetes.New(kubernetes.Config{HostID: host, REST: restConfig(t, c)})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	capture(d2, func(b *logship.Buffer) bool { return b.Last(src)["stdout"].After(stoppedAt.Add(3 * time.Second)) })

	buf, err := logship.Open(logship.Config{Dir: dir, Logger: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	var got []logship.Line
	for {
		ls, err := buf.Read(1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) == 0 {
			break
		}
		got = append(got, ls...)
	}
	n, before := 0, 0
	for _, l := range got {
		var num int
		if _, err := fmt.Sscanf(l.Text, "line %d", &num); err != nil {
			continue // the app's own messages
		}
		if num != n+1 {
			t.Fatalf("line %d follows line %d in the buffer: lost or repeated across the restart", num, n)
		}
		if !l.Time.After(stoppedAt) {
			before++
		}
		n = num
	}
	if before == 0 || before == n {
		t.Fatalf("%d of %d lines from before the restart: the restart was not in the middle", before, n)
	}
	t.Logf("%d lines, %d captured before the restart, none lost or repeated", n, before)
}
