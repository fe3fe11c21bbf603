package e2e

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/exec"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestAppRestartStopStartExec runs real processes (the exec driver):
// restart replaces every instance with a new process of a new version and
// history says restart; stop leaves no process running and start runs the
// remembered count again; a host drained and undrained takes placements
// again.
func TestAppRestartStopStartExec(t *testing.T) {
	bin := drivertest.BuildTestApp(t)
	c, admin, _ := newCluster(t, hubtest.Options{SuspectAfter: time.Second, DownAfter: 3 * time.Second}, "p", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})
	dir := t.TempDir()
	newDriver := func(hostID string) (driver.Driver, error) {
		return exec.New(exec.Config{HostID: hostID, DataDir: dir, ShimEnv: []string{"GORACE=atexit_sleep_ms=0"}})
	}
	var ag *agent.Agent
	stopStrays(t, func() []string { return []string{dir} })
	stopLeftovers(t, func() []driver.Driver {
		if ag == nil || ag.HostID() == "" {
			return nil
		}
		d, err := newDriver(ag.HostID())
		if err != nil {
			return nil
		}
		return []driver.Driver{d}
	})
	ag, _ = runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dir, Name: "a", NewDriver: newDriver})
	hubtest.WaitFor(t, 20*time.Second, "a ready host", func() bool {
		hs, _, err := admin.Hosts().List(ctx, nil)
		return err == nil && len(hs) == 1 && hs[0].State == "ready" && hs[0].MemoryBytes > 0
	})
	w := &client.WriteOptions{Tenant: "acme"}
	q := &client.QueryOptions{Tenant: "acme"}
	spec := apitypes.AppSpec{Name: "hello", Command: []string{bin}, Instances: intp(2), Ports: []apitypes.Port{{ContainerPort: 8080}},
		Health: &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)}}
	if _, err := admin.Apps().Create(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	get := func(addr string) string {
		hc := &http.Client{Timeout: 2 * time.Second}
		resp, err := hc.Get("http://" + addr + "/")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// serving: the instances meant to run, ready at version v and answering.
	serving := func(v int) []apitypes.Instance {
		is, _, err := admin.Apps().Instances(ctx, "hello", q)
		if err != nil {
			return nil
		}
		var out []apitypes.Instance
		for _, i := range is {
			if i.Desired == "run" && i.Ready && i.Version == v && get(i.Address) != "" {
				out = append(out, i)
			}
		}
		return out
	}
	hubtest.WaitFor(t, 60*time.Second, "2 instances of version 1 serving", func() bool { return len(serving(1)) == 2 })
	before := serving(1)

	// Restart: every instance replaced by a new one of version 2, the old
	// processes gone.
	a, err := admin.Apps().Restart(ctx, "hello", w)
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != 2 {
		t.Fatalf("restart made version %d, want 2", a.Version)
	}
	hubtest.WaitFor(t, 60*time.Second, "2 new instances of version 2 serving, none of version 1 meant to run", func() bool {
		is, _, err := admin.Apps().Instances(ctx, "hello", q)
		if err != nil {
			return false
		}
		for _, i := range is {
			if i.Desired == "run" && i.Version != 2 {
				return false
			}
		}
		return len(serving(2)) == 2
	})
	for _, old := range before {
		for _, now := range serving(2) {
			if now.ID == old.ID {
				t.Fatalf("instance %s survived the restart", old.ID)
			}
		}
		hubtest.WaitFor(t, 30*time.Second, "old instance "+old.ID+" no longer answering", func() bool { return get(old.Address) == "" })
	}
	hist, _, err := admin.Apps().History(ctx, "hello", q)
	if err != nil || hist[len(hist)-1].Kind != "restart" {
		t.Fatalf("history %+v (%v): want the last entry a restart", hist, err)
	}

	// Stop: no process left on the host; the count remembered.
	a, err = admin.Apps().Stop(ctx, "hello", w)
	if err != nil || !a.Stopped || a.StoppedInstances != 2 || *a.Instances != 0 {
		t.Fatalf("stop: %+v %v", a, err)
	}
	listed := func() int {
		d, err := newDriver(ag.HostID())
		if err != nil {
			t.Fatal(err)
		}
		l, err := d.List(ctx)
		if cl, ok := d.(interface{ Close() error }); ok {
			cl.Close()
		}
		if err != nil {
			return -1
		}
		return len(l)
	}
	hubtest.WaitFor(t, 30*time.Second, "no instance process on the host", func() bool { return listed() == 0 })

	// Start: the remembered 2 again, same version.
	a, err = admin.Apps().Start(ctx, "hello", w)
	if err != nil || a.Stopped || *a.Instances != 2 || a.Version != 2 {
		t.Fatalf("start: %+v %v", a, err)
	}
	hubtest.WaitFor(t, 60*time.Second, "2 instances serving after start", func() bool { return len(serving(2)) == 2 && listed() == 2 })

	// Drain and undrain the host: a drained host takes no new instance,
	// an undrained one does.
	host := ag.HostID()
	if h, err := admin.Hosts().Drain(ctx, host); err != nil || h.State != "draining" {
		t.Fatalf("drain: %+v %v", h, err)
	}
	if h, err := admin.Hosts().Undrain(ctx, host); err != nil || h.State != "ready" {
		t.Fatalf("undrain: %+v %v", h, err)
	}
	if _, err := admin.Apps().Scale(ctx, "hello", 3, w); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 60*time.Second, "3 instances serving on the undrained host", func() bool { return len(serving(2)) == 3 })
	if err := admin.Apps().Delete(ctx, "hello", w); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 30*time.Second, "every process stopped", func() bool { return listed() == 0 })
}
