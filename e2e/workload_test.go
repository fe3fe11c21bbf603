package e2e

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/exec"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// runAgent starts an agent and returns a stop function (idempotent).
func runAgent(t *testing.T, cfg agent.Config) (*agent.Agent, func()) {
	t.Helper()
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return a, stop
}

// TestWorkloadsWithFakeDriver drives the whole scheduling loop over real
// Raft and real QUIC, with in-memory drivers: deploy, spread, scale up and
// down, a crash restarted locally, a dead host's instances replaced and
// stopped on its return, a rolling update, and deletion.
func TestWorkloadsWithFakeDriver(t *testing.T) {
	c, admin, _ := newCluster(t, hubtest.Options{SuspectAfter: time.Second, DownAfter: 3 * time.Second}, "p", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})
	hostA, hostB := fake.NewHost(), fake.NewHost()
	dirA, dirB := t.TempDir(), t.TempDir()
	a, stopA := runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dirA, Name: "a", DrainDelay: -1, NewDriver: fakeDriver(hostA)})
	b, stopB := runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dirB, Name: "b", DrainDelay: -1, NewDriver: fakeDriver(hostB)})
	hubtest.WaitFor(t, 15*time.Second, "two ready hosts with their inventory", func() bool {
		hs, _, err := admin.Hosts().List(ctx, nil)
		if err != nil || len(hs) != 2 {
			return false
		}
		for _, h := range hs {
			if h.State != "ready" || h.MemoryBytes == 0 {
				return false
			}
		}
		return true
	})
	w := &client.WriteOptions{Tenant: "acme"}
	q := &client.QueryOptions{Tenant: "acme"}
	spec := apitypes.AppSpec{Name: "web", Image: "web:1", Instances: intp(3), Ports: []apitypes.Port{{ContainerPort: 8080}},
		Health: &apitypes.Health{TCP: 8080, Interval: apitypes.Duration(200 * time.Millisecond)}}
	if _, err := admin.Apps().Create(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	// live returns the instances desired to run, by host name, and whether
	// all are running, ready and at version v.
	live := func(v int) (map[string][]apitypes.Instance, int, bool) {
		is, _, err := admin.Apps().Instances(ctx, "web", q)
		if err != nil {
			return nil, 0, false
		}
		by := map[string][]apitypes.Instance{}
		n, ok := 0, true
		for _, i := range is {
			if i.Desired != "run" {
				continue // stopping (or on a host that is away)
			}
			n++
			by[i.HostName] = append(by[i.HostName], i)
			ok = ok && i.State == "running" && i.Ready && i.Version == v && i.Address != ""
		}
		return by, n, ok
	}
	waitLive := func(what string, n, v int, also func(map[string][]apitypes.Instance) bool) {
		t.Helper()
		hubtest.WaitFor(t, 20*time.Second, what, func() bool {
			by, got, ok := live(v)
			return ok && got == n && (also == nil || also(by))
		})
	}
	waitLive("3 instances running and ready, spread 2+1", 3, 1, func(by map[string][]apitypes.Instance) bool {
		return len(by["a"])+len(by["b"]) == 3 && len(by["a"]) >= 1 && len(by["b"]) >= 1 && len(hostA.Running())+len(hostB.Running()) == 3
	})

	if _, err := admin.Apps().Scale(ctx, "web", 5, w); err != nil {
		t.Fatal(err)
	}
	waitLive("5 instances", 5, 1, nil)
	if _, err := admin.Apps().Scale(ctx, "web", 2, w); err != nil {
		t.Fatal(err)
	}
	waitLive("2 instances, one per host, the others stopped on the hosts", 2, 1, func(by map[string][]apitypes.Instance) bool {
		return len(by["a"]) == 1 && len(by["b"]) == 1 && len(hostA.Running()) == 1 && len(hostB.Running()) == 1
	})

	// A crash is restarted by the agent itself; the hub sees the restart.
	id := hostA.Running()[0]
	if err := hostA.Crash(id, 137); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 10*time.Second, "the crashed instance restarted", func() bool {
		by, _, ok := live(1)
		return ok && hostA.Started(id) == 2 && len(by["a"]) == 1 && by["a"][0].ID == id && by["a"][0].Restarts >= 1
	})

	// Host b dies: its instance is replaced on a; when b comes back, it
	// stops the copy the hub replaced.
	old := hostB.Running()[0]
	stopB()
	hubtest.WaitFor(t, 20*time.Second, "b's instance replaced on a", func() bool {
		by, n, ok := live(1)
		return ok && n == 2 && len(by["a"]) == 2
	})
	if got := hostB.Running(); len(got) != 1 || got[0] != old {
		t.Fatalf("b's old copy should still run while b is away: %v", got)
	}
	var stopOldB func()
	b, stopOldB = runAgent(t, agent.Config{Hubs: hubs(c), DataDir: dirB, Name: "b", DrainDelay: -1, NewDriver: fakeDriver(hostB)})
	hubtest.WaitFor(t, 15*time.Second, "b back and its replaced copy stopped", func() bool { return b.Acked() > 0 && len(hostB.Running()) == 0 })

	// Rolling update to version 2: ends with 2 ready instances of v2 and
	// none of v1.
	spec.Image = "web:2"
	spec.Instances = nil
	if _, _, _, err := admin.Apps().Put(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	waitLive("2 instances of version 2", 2, 2, nil)
	st, _, _ := admin.Apps().Get(ctx, "web", q)
	if st.Version != 2 || st.Pending != "" {
		t.Fatalf("app after the update: version %d, pending %q", st.Version, st.Pending)
	}

	// Rollback: version 1 is current again (no new version number), and
	// rolls out the same way.
	if _, err := admin.Apps().Rollback(ctx, "web", 1, w); err != nil {
		t.Fatal(err)
	}
	waitLive("2 instances of version 1 after the rollback", 2, 1, nil)

	// A canary: one instance of version 3 beside the two of version 1,
	// until promoted through the API.
	spec.Image = "web:3"
	spec.Strategy = &apitypes.Strategy{Type: "canary", Canary: 1}
	if _, _, _, err := admin.Apps().Put(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 20*time.Second, "a canary of version 3 beside 2 of version 1", func() bool {
		is, _, err := admin.Apps().Instances(ctx, "web", q)
		if err != nil {
			return false
		}
		v := map[int]int{}
		for _, i := range is {
			if i.Desired == "run" && i.Ready {
				v[i.Version]++
			}
		}
		return v[1] == 2 && v[3] == 1
	})
	if got, err := admin.Apps().Promote(ctx, "web", w); err != nil || got.CanaryFrom != 0 {
		t.Fatalf("promote: %+v %v", got, err)
	}
	waitLive("2 instances of version 3 after the promotion", 2, 3, nil)
	spec.Strategy = nil

	// Offline autonomy: an agent restarts while cut off from every hub
	// node; it runs its assignments from disk, restarting a crashed
	// instance itself.
	// The agent is one whose host runs exactly what it is assigned, and
	// something: the promotion settled there (an instance being replaced
	// would not come back from disk). Which host that is, is the
	// scheduler's choice.
	x, hostX, dirX, stopX, name := a, hostA, dirA, stopA, "a"
	var onX []string
	settled := func(name string, host *fake.Host) bool {
		is, _, err := admin.Apps().Instances(ctx, "web", q)
		if err != nil {
			return false
		}
		var want []string
		for _, i := range is {
			if i.HostName == name {
				if i.Desired != "run" {
					return false // still stopping
				}
				want = append(want, i.ID)
			}
		}
		sort.Strings(want)
		onX = host.Running()
		return len(want) > 0 && strings.Join(want, ",") == strings.Join(onX, ",")
	}
	hubtest.WaitFor(t, 20*time.Second, "a host running exactly its assigned instances", func() bool {
		if settled("a", hostA) {
			return true
		}
		if settled("b", hostB) {
			x, hostX, dirX, stopX, name = b, hostB, dirB, stopOldB, "b"
			return true
		}
		return false
	})
	x.CutHub(true)
	hostX.Crash(onX[0], 1)
	b2, err := agent.New(agent.Config{Hubs: hubs(c), DataDir: dirX, Name: name, DrainDelay: -1, NewDriver: fakeDriver(hostX)})
	if err != nil {
		t.Fatal(err)
	}
	b2.CutHub(true)
	stopB2 := func() {}
	{
		ctx2, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- b2.Run(ctx2) }()
		stopB2 = sync.OnceFunc(func() { cancel(); <-done })
		t.Cleanup(stopB2)
	}
	stopX()
	hubtest.WaitFor(t, 10*time.Second, "the agent restarted its instance without a hub", func() bool {
		got := hostX.Running()
		t.Logf("%s running %v (was %v), started %d", name, got, onX, hostX.Started(onX[0]))
		return len(got) == len(onX) && got[0] == onX[0] && hostX.Started(onX[0]) >= 2
	})
	if b2.Acked() != 0 {
		t.Fatal("the cut-off agent reached a hub")
	}
	b2.CutHub(false)
	hubtest.WaitFor(t, 15*time.Second, "the agent reconnected", func() bool { return b2.Acked() > 0 })

	// More than fits: pending, with the reason.
	if _, err := admin.Apps().Scale(ctx, "web", 500, w); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 10*time.Second, "an explanation for the instances that do not fit", func() bool {
		got, _, err := admin.Apps().Get(ctx, "web", q)
		return err == nil && got.Pending != "" && strings.Contains(got.Pending, "cannot be placed") && strings.Contains(got.Pending, `no capacity in pool "p"`)
	})
	if _, err := admin.Apps().Scale(ctx, "web", 1, w); err != nil {
		t.Fatal(err)
	}

	// Deleting the app stops everything.
	if err := admin.Apps().Delete(ctx, "web", w); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 15*time.Second, "every instance stopped", func() bool {
		return len(hostA.Running()) == 0 && len(hostB.Running()) == 0
	})
}

func intp(n int) *int { return &n }

// onlyInstance waits until tenant acme's app has one instance, ready,
// and returns it.
func onlyInstance(tb testing.TB, c *client.Client, app string) apitypes.Instance {
	tb.Helper()
	var inst apitypes.Instance
	hubtest.WaitFor(tb, 30*time.Second, app+"'s instance ready", func() bool {
		is, _, err := c.Apps().Instances(context.Background(), app, &client.QueryOptions{Tenant: "acme"})
		if err == nil && len(is) == 1 && is[0].Ready {
			inst = is[0]
			return true
		}
		return false
	})
	return inst
}

// scaleToZero scales tenant acme's apps to 0 through c and waits until
// their instances are gone (exec instances outlive their agent by
// design: tests stop them before the agent goes, also after a failure,
// so register it after the agent).
func scaleToZero(tb testing.TB, c *client.Client, apps ...string) {
	tb.Helper()
	ctx, w, q := context.Background(), &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	hubtest.WaitFor(tb, 30*time.Second, "instances stopped", func() bool {
		for _, app := range apps {
			c.Apps().Scale(ctx, app, 0, w) // again each time: a leader may have been lost
			if is, _, err := c.Apps().Instances(ctx, app, q); err != nil || len(is) > 0 {
				return false
			}
		}
		return true
	})
}

func fakeDriver(h *fake.Host) func(string) (driver.Driver, error) {
	return func(string) (driver.Driver, error) { return fake.New(h), nil }
}

// stopLeftovers registers a cleanup that stops every instance that the
// drivers returned by open (called at cleanup time) still list. Register
// it before the test's agents: cleanups run last in, first out, so it runs
// once they have stopped and cannot start anything again. Exec instances
// outlive their agent by design and containers outlive the test process,
// so without it a failed test leaves them running and listening.
func stopLeftovers(t testing.TB, open func() []driver.Driver) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for _, d := range open() {
			l, err := d.List(ctx)
			if err != nil {
				t.Errorf("list leftover instances: %v", err)
			}
			for _, st := range l {
				if err := d.Stop(ctx, st.InstanceID, time.Second); err != nil {
					t.Errorf("stop leftover instance %s: %v", st.InstanceID, err)
				}
			}
			if len(l) > 0 {
				t.Logf("stopped %d instances left behind", len(l))
			}
			if c, ok := d.(interface{ Close() error }); ok {
				c.Close()
			}
		}
	})
}

// execDriver returns the exec driver factory for an agent whose data dir is
// dir, and has every instance it started stopped at the end of the test
// (stopLeftovers): call it before starting the agent.
func execDriver(t *testing.T, dir string) func(string) (driver.Driver, error) {
	t.Helper()
	var mu sync.Mutex
	hosts := map[string]bool{}
	open := func(hostID string) (driver.Driver, error) {
		return exec.New(exec.Config{HostID: hostID, DataDir: dir, ShimEnv: []string{"GORACE=atexit_sleep_ms=0"}})
	}
	stopStrays(t, func() []string { return []string{dir} })
	stopLeftovers(t, func() []driver.Driver {
		mu.Lock()
		defer mu.Unlock()
		var ds []driver.Driver
		for id := range hosts {
			if d, err := open(id); err == nil {
				ds = append(ds, d)
			}
		}
		return ds
	})
	return func(hostID string) (driver.Driver, error) {
		mu.Lock()
		hosts[hostID] = true
		mu.Unlock()
		return open(hostID)
	}
}

// stopStrays registers a cleanup that kills, by PID, every exec supervisor
// of an instance directory under one of the dirs (read at cleanup time),
// with its instance's process group. Register it before stopLeftovers, so
// that it runs after: what it still finds is an instance the driver lost
// track of (its state names other processes, or is gone), which no Stop
// can end. The supervisor carries its instance directory in its
// environment (WHARF_EXEC_SHIM, set by the exec driver).
func stopStrays(t testing.TB, dirs func() []string) {
	t.Helper()
	t.Cleanup(func() {
		roots := dirs()
		procs, _ := filepath.Glob("/proc/[0-9]*")
		for _, p := range procs {
			env, err := os.ReadFile(p + "/environ")
			if err != nil {
				continue
			}
			var dir string
			for _, kv := range strings.Split(string(env), "\x00") {
				if v, ok := strings.CutPrefix(kv, "WHARF_EXEC_SHIM="); ok {
					dir = v
				}
			}
			if dir == "" || !slices.ContainsFunc(roots, func(r string) bool { return strings.HasPrefix(dir, r+string(filepath.Separator)) }) {
				continue
			}
			pid, err := strconv.Atoi(filepath.Base(p))
			if err != nil {
				continue
			}
			// The instance leads its own process group, a child of the
			// supervisor's.
			if kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
				for _, k := range strings.Fields(string(kids)) {
					if kid, err := strconv.Atoi(k); err == nil && kid > 1 {
						_ = syscall.Kill(-kid, syscall.SIGKILL)
						_ = syscall.Kill(kid, syscall.SIGKILL)
					}
				}
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Logf("killed the exec supervisor %d of %s and its instance: the driver had lost track of them", pid, dir)
		}
	})
}

// TestStopStrays: a supervisor whose instance directory lies under a
// test's agent data dir is killed with its child at the end of the test,
// even though no driver lists it.
func TestStopStrays(t *testing.T) {
	dir := t.TempDir()
	cmd := osexec.Command("sh", "-c", "sleep 60 & wait")
	cmd.Env = append(os.Environ(), "WHARF_EXEC_SHIM="+filepath.Join(dir, "exec", "web-1"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // if the helper failed
	var child int
	hubtest.WaitFor(t, 5*time.Second, "the stray's child", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return false
		}
		child, _ = strconv.Atoi(f[0])
		return child > 0
	})
	t.Run("with a stray", func(t *testing.T) {
		stopStrays(t, func() []string { return []string{dir} })
	})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stray supervisor still runs")
	}
	hubtest.WaitFor(t, 5*time.Second, "its child gone", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", child))
		return err != nil
	})
}
