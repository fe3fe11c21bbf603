package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/exec"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestWorkloadsDocker runs the workload flow on real containers: two agents
// sharing one Docker daemon (their labels keep them apart).
func TestWorkloadsDocker(t *testing.T) {
	image := drivertest.BuildTestAppImage(t, dockerDaemon(t).Client())
	var mu sync.Mutex
	var drivers []driver.Driver
	t.Cleanup(func() { // whatever a failed test leaves, by these hosts' labels only
		mu.Lock()
		defer mu.Unlock()
		for _, d := range drivers {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if l, err := d.List(ctx); err == nil {
				for _, st := range l {
					d.Stop(ctx, st.InstanceID, time.Second)
				}
			}
			cancel()
		}
	})
	newDriver := func(_ string) func(string) (driver.Driver, error) {
		return func(hostID string) (driver.Driver, error) {
			d, err := docker.New(docker.Config{HostID: hostID, PublishIP: "127.0.0.1"})
			if err == nil {
				mu.Lock()
				drivers = append(drivers, d)
				mu.Unlock()
			}
			return d, err
		}
	}
	workloadFlow(t, newDriver, apitypes.AppSpec{Name: "hello", Image: image})
}

// TestWorkloadsExec runs the same flow with the exec driver: supervised
// processes (in namespaces and a cgroup when root).
func TestWorkloadsExec(t *testing.T) {
	bin := drivertest.BuildTestApp(t)
	newDriver := func(dir string) func(string) (driver.Driver, error) {
		return func(hostID string) (driver.Driver, error) {
			return exec.New(exec.Config{HostID: hostID, DataDir: dir, ShimEnv: []string{"GORACE=atexit_sleep_ms=0"}})
		}
	}
	workloadFlow(t, newDriver, apitypes.AppSpec{Name: "hello", Command: []string{bin}})
}

// workloadFlow: two agents; deploy 2 instances with an HTTP health check,
// reach each through its reported address, a crash restarted in place, a
// rolling update to version 2 served by every instance, deletion.
func workloadFlow(t *testing.T, newDriver func(dataDir string) func(string) (driver.Driver, error), spec apitypes.AppSpec) {
	c, admin, _ := newCluster(t, hubtest.Options{SuspectAfter: time.Second, DownAfter: 3 * time.Second}, "p", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})
	dirs := map[string]string{}
	stops := map[string]func(){}
	agents := map[string]*agent.Agent{}
	stopStrays(t, func() []string {
		var ds []string
		for _, d := range dirs {
			ds = append(ds, d)
		}
		return ds
	})
	stopLeftovers(t, func() []driver.Driver {
		var ds []driver.Driver
		for name, ag := range agents {
			if id := ag.HostID(); id != "" {
				if d, err := newDriver(dirs[name])(id); err == nil {
					ds = append(ds, d)
				}
			}
		}
		return ds
	})
	for _, name := range []string{"a", "b"} {
		dir := t.TempDir()
		dirs[name] = dir
		var ag *agent.Agent
		ag, stops[name] = runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dir, Name: name, NewDriver: newDriver(dir)})
		agents[name] = ag
	}
	hubtest.WaitFor(t, 20*time.Second, "two ready hosts with their inventory", func() bool {
		hs, _, err := admin.Hosts().List(ctx, nil)
		return err == nil && len(hs) == 2 && hs[0].State == "ready" && hs[1].State == "ready" && hs[0].MemoryBytes > 0 && hs[1].MemoryBytes > 0
	})
	w := &client.WriteOptions{Tenant: "acme"}
	q := &client.QueryOptions{Tenant: "acme"}
	spec.Instances = intp(2)
	spec.Env = map[string]string{"VERSION": "1"}
	spec.Ports = []apitypes.Port{{ContainerPort: 8080}}
	spec.Health = &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)}
	hubtest.WaitFor(t, 15*time.Second, "the app created (hosts enrolled)", func() bool {
		_, err := admin.Apps().Create(ctx, spec, w)
		return err == nil
	})
	get := func(addr, path string) string {
		hc := &http.Client{Timeout: 2 * time.Second}
		resp, err := hc.Get("http://" + addr + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// serving returns the ready instances that answer with version v.
	serving := func(v int) []apitypes.Instance {
		is, _, err := admin.Apps().Instances(ctx, "hello", q)
		if err != nil {
			return nil
		}
		var out []apitypes.Instance
		for _, i := range is {
			if i.Desired == "run" && i.Ready && i.Version == v && strings.Contains(get(i.Address, "/"), "version="+string(rune('0'+v))) {
				out = append(out, i)
			}
		}
		return out
	}
	hubtest.WaitFor(t, 60*time.Second, "2 instances of version 1 serving, one per host", func() bool {
		s := serving(1)
		return len(s) == 2 && s[0].Host != s[1].Host
	})

	// The process exits: the agent restarts it in place.
	victim := serving(1)[0]
	get(victim.Address, "/exit?code=3")
	hubtest.WaitFor(t, 30*time.Second, "the instance restarted and serving again", func() bool {
		for _, i := range serving(1) {
			if i.ID == victim.ID && i.Restarts >= 1 {
				return true
			}
		}
		return false
	})

	// The agent restarts (within --suspect-after's reach or not): its
	// running instances are adopted, not restarted (same process: the test
	// app's boot token does not change).
	bootOf := func(i apitypes.Instance) string {
		body := get(i.Address, "/")
		if k := strings.Index(body, "boot="); k >= 0 {
			return strings.Fields(body[k:])[0]
		}
		return ""
	}
	before := map[string]string{}
	for _, i := range serving(1) {
		before[i.ID] = bootOf(i)
	}
	stops["a"]()
	again, _ := runAgent(t, agent.Config{Hubs: hubs(c), DataDir: dirs["a"], Name: "a", NewDriver: newDriver(dirs["a"])})
	hubtest.WaitFor(t, 30*time.Second, "agent a back", func() bool { return again.Acked() > 2 })
	// The restarted agent reports its adopted instance ready again after
	// its first health check; until then the hub may show it not ready.
	var after []apitypes.Instance
	hubtest.WaitFor(t, 30*time.Second, "both instances serving after the agent restart", func() bool {
		after = serving(1)
		return len(after) == 2
	})
	for _, i := range after {
		if b := bootOf(i); b == "" || b != before[i.ID] {
			t.Fatalf("instance %s was restarted by the agent restart (boot %q, before %q)", i.ID, b, before[i.ID])
		}
	}

	// Rolling update: version 2 everywhere, version 1 gone.
	spec.Env = map[string]string{"VERSION": "2"}
	spec.Instances = nil
	if _, _, _, err := admin.Apps().Put(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	var last []apitypes.Instance
	defer func() {
		if t.Failed() {
			for _, i := range last {
				t.Logf("instance %+v", i)
			}
		}
	}()
	hubtest.WaitFor(t, 60*time.Second, "2 instances of version 2 serving and none of version 1", func() bool {
		is, _, err := admin.Apps().Instances(ctx, "hello", q)
		last = is
		return err == nil && len(is) == 2 && len(serving(2)) == 2
	})

	// Version 3 fails its health check: the rollout stops (version 2 keeps
	// serving) and, with auto_revert, goes back to version 2.
	spec.Env = map[string]string{"VERSION": "3", "FAIL_HEALTH": "1"}
	spec.Strategy = &apitypes.Strategy{AutoRevert: true, HealthDeadline: apitypes.Duration(3 * time.Second)}
	if _, _, _, err := admin.Apps().Put(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 60*time.Second, "the failed version 3 reverted to version 2", func() bool {
		a, _, err := admin.Apps().Get(ctx, "hello", q)
		if err != nil || a.Version != 2 {
			if len(serving(2)) < 1 { // never below N-1 ready while v3 is tried
				t.Errorf("version 2 stopped serving during the failed rollout")
			}
			return false
		}
		is, _, err := admin.Apps().Instances(ctx, "hello", q)
		return err == nil && len(is) == 2 && len(serving(2)) == 2
	})
	evs, _, _ := admin.Events(ctx, 0, nil)
	reverted := false
	for _, e := range evs {
		reverted = reverted || e.Type == "app.reverted"
	}
	if !reverted {
		t.Fatal("no app.reverted event")
	}

	if err := admin.Apps().Delete(ctx, "hello", w); err != nil {
		t.Fatal(err)
	}
	// Gone from the hosts themselves, as the drivers see them (the app's
	// record goes at once; its instances drain, then stop).
	hubtest.WaitFor(t, 30*time.Second, "every instance stopped on both hosts", func() bool {
		for name, ag := range agents {
			d, err := newDriver(dirs[name])(ag.HostID())
			if err != nil {
				t.Fatal(err)
			}
			l, err := d.List(ctx)
			if c, ok := d.(interface{ Close() error }); ok {
				c.Close()
			}
			if err != nil || len(l) > 0 {
				return false
			}
		}
		return true
	})
}

// dockerDaemon returns a driver on the local Docker daemon (closed at the
// end of the test), or skips the test when none answers; with
// WHARF_REQUIRE_DOCKER=1 (CI) it fails instead.
func dockerDaemon(tb testing.TB) *docker.Driver {
	tb.Helper()
	probe, err := docker.New(docker.Config{HostID: "probe"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { probe.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := probe.Ping(ctx); err != nil {
		if os.Getenv("WHARF_REQUIRE_DOCKER") == "1" {
			tb.Fatalf("WHARF_REQUIRE_DOCKER=1 and no Docker daemon: %v", err)
		}
		tb.Skipf("no Docker daemon: %v", err)
	}
	return probe
}
