package exec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/exec"
)

// shimEnv spares a race-enabled supervisor the race detector's one second
// sleep at exit.
var shimEnv = []string{"GORACE=atexit_sleep_ms=0"}

func TestMain(m *testing.M) {
	exec.Reexec() // this binary is also the supervisor of the instances it starts
	code := m.Run()
	drivertest.Cleanup()
	os.Exit(code)
}

// hosts hands out one data dir per host id, so that a second driver for a
// host id is that host's agent after a restart.
type hosts struct {
	iso  exec.Isolation
	mu   sync.Mutex
	dirs map[string]string
}

func (h *hosts) newDriver(t *testing.T, hostID string) driver.Driver {
	t.Helper()
	return h.newExec(t, hostID)
}

func (h *hosts) newExec(t *testing.T, hostID string) *exec.Driver {
	t.Helper()
	h.mu.Lock()
	if h.dirs == nil {
		h.dirs = map[string]string{}
	}
	dir, ok := h.dirs[hostID]
	if !ok {
		dir = t.TempDir()
		h.dirs[hostID] = dir
		t.Cleanup(func() { removeHostCgroups(hostID) })
	}
	h.mu.Unlock()
	d, err := exec.New(exec.Config{HostID: hostID, DataDir: dir, Isolation: h.iso, ShimEnv: shimEnv})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// removeHostCgroups removes the (empty) per-host cgroups a test host left.
func removeHostCgroups(hostID string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/wharf/" + hostID)
	dirs = append(dirs, "/sys/fs/cgroup/wharf/"+hostID)
	for _, d := range dirs {
		_ = os.Remove(d)
	}
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("namespaces and cgroups need root")
	}
}

func TestConformance(t *testing.T) {
	bin := drivertest.BuildTestApp(t)
	t.Run("plain", func(t *testing.T) {
		h := &hosts{iso: exec.IsolationNone}
		drivertest.Run(t, h.newDriver, drivertest.AppUnderTest{Command: []string{bin}, PortEnv: drivertest.PortEnvHostPort})
	})
	t.Run("isolated", func(t *testing.T) {
		needRoot(t)
		h := &hosts{iso: exec.IsolationNamespaces}
		drivertest.Run(t, h.newDriver, drivertest.AppUnderTest{Command: []string{bin}, PortEnv: drivertest.PortEnvHostPort, Hostname: true})
	})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func get(t *testing.T, addr, path string) string {
	t.Helper()
	var body string
	drivertest.WaitFor(t, 10*time.Second, func() (bool, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("%d %s", resp.StatusCode, b)
	})
	return body
}

func spec(t *testing.T, env map[string]string) driver.Spec {
	return driver.Spec{
		InstanceID: drivertest.NewID("i-"),
		Tenant:     "acme",
		App:        "web",
		Version:    1,
		Command:    []string{drivertest.BuildTestApp(t)},
		Env:        env,
		Ports:      []driver.Port{{Name: "http"}},
	}
}

// rawState reads an instance's state.json as the supervisor wrote it.
func rawState(t *testing.T, dataDir, id string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "exec", id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func pidOf(t *testing.T, m map[string]any, key string) int {
	t.Helper()
	f, ok := m[key].(float64)
	if !ok || f <= 0 {
		t.Fatalf("state has no %s: %v", key, m)
	}
	return int(f)
}

// marked lists the processes whose environment holds mark.
func marked(mark string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte("\x00"+mark+"\x00")) || bytes.HasPrefix(b, []byte(mark+"\x00")) {
			if st, _ := os.ReadFile("/proc/" + e.Name() + "/stat"); bytes.Contains(st, []byte(") Z ")) {
				continue // a zombie holds nothing but its pid
			}
			out = append(out, pid)
		}
	}
	return out
}

func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || bytes.Contains(b, []byte(") Z "))
}

// TestNoOrphans: what an instance spawns dies when it exits and on Stop,
// and the supervisor leaves with it.
func TestNoOrphans(t *testing.T) {
	for _, iso := range []exec.Isolation{exec.IsolationNone, exec.IsolationNamespaces} {
		t.Run(string(iso), func(t *testing.T) {
			if iso == exec.IsolationNamespaces {
				needRoot(t)
			}
			h := &hosts{iso: iso}
			host := drivertest.NewID("host-")
			d := h.newExec(t, host)
			mark := "WHARF_TEST_MARK=" + drivertest.NewID("m")
			k, v, _ := strings.Cut(mark, "=")
			sp := spec(t, map[string]string{k: v})
			t.Cleanup(func() { _ = d.Stop(context.Background(), sp.InstanceID, time.Second) })

			// Exit: the sleeper it spawned goes too.
			st, err := d.Start(ctx(t), sp)
			if err != nil {
				t.Fatal(err)
			}
			get(t, st.Address, "/spawn")
			if n := len(marked(mark)); n != 2 {
				t.Fatalf("%d marked processes, want the app and its sleeper", n)
			}
			_, _ = http.Get("http://" + st.Address + "/exit?code=0")
			drivertest.WaitFor(t, 10*time.Second, func() (bool, string) {
				ps := marked(mark)
				return len(ps) == 0, fmt.Sprintf("left after exit: %v", ps)
			})

			// Stop: the same, and the supervisor is gone.
			st, err = d.Start(ctx(t), sp)
			if err != nil {
				t.Fatal(err)
			}
			get(t, st.Address, "/spawn")
			if n := len(marked(mark)); n != 2 {
				t.Fatalf("%d marked processes, want 2", n)
			}
			shim := pidOf(t, rawState(t, h.dirs[host], sp.InstanceID), "shim_pid")
			if err := d.Stop(ctx(t), sp.InstanceID, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if ps := marked(mark); len(ps) != 0 {
				t.Errorf("left after stop: %v", ps)
			}
			if !processGone(shim) {
				t.Errorf("supervisor %d outlived stop", shim)
			}
			if _, err := os.Stat(filepath.Join(h.dirs[host], "exec", sp.InstanceID)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("instance dir left: %v", err)
			}
		})
	}
}

// TestIsolation: as root an instance has its own mount, PID, UTS and IPC
// namespaces, the agent's network namespace, and a cgroup with its limits.
func TestIsolation(t *testing.T) {
	needRoot(t)
	h := &hosts{iso: exec.IsolationNamespaces}
	host := drivertest.NewID("host-")
	d := h.newExec(t, host)
	sp := spec(t, nil)
	sp.CPU, sp.Memory = 250, 64
	t.Cleanup(func() { _ = d.Stop(context.Background(), sp.InstanceID, time.Second) })
	st, err := d.Start(ctx(t), sp)
	if err != nil {
		t.Fatal(err)
	}
	body := get(t, st.Address, "/")
	if !strings.Contains(body, " pid=1 ") || !strings.Contains(body, " hostname="+sp.InstanceID+" ") {
		t.Errorf("body %q: want pid=1 and hostname=%s", body, sp.InstanceID)
	}
	pid := pidOf(t, rawState(t, h.dirs[host], sp.InstanceID), "pid")
	for _, ns := range []string{"mnt", "pid", "uts", "ipc", "net"} {
		self, err1 := os.Readlink("/proc/self/ns/" + ns)
		inst, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if err1 != nil || err2 != nil {
			t.Fatalf("ns %s: %v %v", ns, err1, err2)
		}
		if same := self == inst; same != (ns == "net") {
			t.Errorf("namespace %s: agent %s, instance %s", ns, self, inst)
		}
	}

	// cgroup v1: one directory per controller; v2: one for all. It boots
	// with a whole core (driver.BootCPU), and has its own 250m once
	// settled.
	dir := func(c string) string { return filepath.Join("/sys/fs/cgroup", c, "wharf", host, sp.InstanceID) }
	controllers := []string{"cpu", "memory", "pids"}
	limits := func(quota string) map[string]string {
		return map[string]string{
			dir("cpu") + "/cpu.cfs_quota_us":         quota,
			dir("cpu") + "/cpu.cfs_period_us":        "100000",
			dir("cpu") + "/cpu.shares":               "256",
			dir("memory") + "/memory.limit_in_bytes": strconv.Itoa(64 << 20),
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		controllers = []string{""}
		limits = func(quota string) map[string]string {
			return map[string]string{
				dir("") + "/cpu.max":    quota + " 100000",
				dir("") + "/cpu.weight": "10",
				dir("") + "/memory.max": strconv.Itoa(64 << 20),
			}
		}
	}
	checkLimits := func(when, quota string) {
		t.Helper()
		for file, want := range limits(quota) {
			b, err := os.ReadFile(file)
			if err != nil || strings.TrimSpace(string(b)) != want {
				t.Errorf("%s: %s = %q (%v), want %s", when, file, b, err, want)
			}
		}
	}
	checkLimits("booting", "100000")
	if err := d.Settle(ctx(t), sp.InstanceID, sp.CPU); err != nil {
		t.Fatal(err)
	}
	checkLimits("settled", "25000")
	if err := d.Settle(ctx(t), "no-such-instance", 250); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("settle of an unknown instance: %v", err)
	}
	for _, c := range controllers {
		b, _ := os.ReadFile(dir(c) + "/cgroup.procs")
		if !strings.Contains(" "+strings.Join(strings.Fields(string(b)), " ")+" ", " "+strconv.Itoa(pid)+" ") {
			t.Errorf("%s cgroup.procs %q lacks the instance's pid %d", c, b, pid)
		}
	}
	if err := d.Stop(ctx(t), sp.InstanceID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, c := range controllers {
		if _, err := os.Stat(dir(c)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left after stop: %v", dir(c), err)
		}
	}
}

func TestStartFailure(t *testing.T) {
	h := &hosts{iso: exec.IsolationAuto}
	d := h.newExec(t, drivertest.NewID("host-"))
	sp := spec(t, nil)
	sp.Command = []string{"/nonexistent/wharf-app"}
	t.Cleanup(func() { _ = d.Stop(context.Background(), sp.InstanceID, time.Second) })
	if _, err := d.Start(ctx(t), sp); err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Fatalf("start of a missing command: %v", err)
	}
	st, err := d.Inspect(ctx(t), sp.InstanceID)
	if err != nil || st.State != driver.StateCreated {
		t.Errorf("inspect after a failed start: %+v, %v; want created", st, err)
	}
	if err := d.Stop(ctx(t), sp.InstanceID, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Inspect(ctx(t), sp.InstanceID); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("inspect after stop: %v", err)
	}
}

// Helper-agent protocol for TestAdoptAfterAgentKilled: the helper is this
// test binary, running TestHelperAgent with envHelper set.
const envHelper = "WHARF_EXEC_TEST_AGENT"

// TestHelperAgent is not a test: it is the agent that
// TestAdoptAfterAgentKilled starts and kills.
func TestHelperAgent(t *testing.T) {
	args := os.Getenv(envHelper)
	if args == "" {
		t.Skip("helper process only")
	}
	var in struct {
		DataDir, HostID string
		Spec            driver.Spec
	}
	if err := json.Unmarshal([]byte(args), &in); err != nil {
		t.Fatal(err)
	}
	d, err := exec.New(exec.Config{HostID: in.HostID, DataDir: in.DataDir, ShimEnv: shimEnv})
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.Start(context.Background(), in.Spec)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(st)
	fmt.Printf("STATUS %s\n", b)
	select {} // until killed
}

// TestAdoptAfterAgentKilled: instances outlive their agent's process (here
// killed with SIGKILL), and the next agent adopts them without a restart.
func TestAdoptAfterAgentKilled(t *testing.T) {
	h := &hosts{iso: exec.IsolationAuto}
	host := drivertest.NewID("host-")
	d := h.newExec(t, host) // registers the data dir and cleanup
	sp := spec(t, nil)
	t.Cleanup(func() { _ = d.Stop(context.Background(), sp.InstanceID, time.Second) })
	in, _ := json.Marshal(map[string]any{"DataDir": h.dirs[host], "HostID": host, "Spec": sp})

	agent := osexec.Command(os.Args[0], "-test.run=^TestHelperAgent$", "-test.v")
	agent.Env = append(os.Environ(), envHelper+"="+string(in))
	out, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	var first driver.Status
	line := make(chan string, 1)
	go func() {
		b := make([]byte, 0, 4096)
		buf := make([]byte, 4096)
		for {
			n, err := out.Read(buf)
			b = append(b, buf[:n]...)
			if i := bytes.Index(b, []byte("STATUS ")); i >= 0 {
				if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
					line <- string(b[i+7 : i+j])
					return
				}
			}
			if err != nil {
				line <- ""
				return
			}
		}
	}()
	select {
	case l := <-line:
		if err := json.Unmarshal([]byte(l), &first); err != nil {
			t.Fatalf("helper agent said %q: %v", l, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("helper agent did not start the instance")
	}
	boot := field(get(t, first.Address, "/"), "boot")

	if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = agent.Wait()

	// The instance still serves: the same process.
	if got := field(get(t, first.Address, "/"), "boot"); got != boot {
		t.Fatalf("boot %s after the agent died, was %s", got, boot)
	}
	// The next agent adopts it.
	ls, err := d.List(ctx(t))
	if err != nil || len(ls) != 1 || ls[0].State != driver.StateRunning || !ls[0].StartedAt.Equal(first.StartedAt) {
		t.Fatalf("new agent lists %+v (%v), want %+v", ls, err, first)
	}
	st, err := d.Start(ctx(t), sp)
	if err != nil || !st.StartedAt.Equal(first.StartedAt) {
		t.Fatalf("start on the new agent: %+v, %v", st, err)
	}
	if got := field(get(t, st.Address, "/"), "boot"); got != boot {
		t.Fatalf("boot %s after adoption, was %s", got, boot)
	}
	// Exit and Stop still work for an adopted instance, whose supervisor is
	// no child of this process.
	_, _ = http.Get("http://" + st.Address + "/exit?code=4")
	drivertest.WaitFor(t, 10*time.Second, func() (bool, string) {
		st, err := d.Inspect(ctx(t), sp.InstanceID)
		return err == nil && st.State == driver.StateExited && st.ExitCode == 4, fmt.Sprintf("%+v %v", st, err)
	})
	if err := d.Stop(ctx(t), sp.InstanceID, time.Second); err != nil {
		t.Fatal(err)
	}
}

func field(body, key string) string {
	for _, f := range strings.Fields(body) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// Without cgroup hierarchies (a process started by `ip netns exec` sees a
// fresh /sys), auto isolation falls back to plain processes; asking for
// namespaces is refused.
func TestIsolationNeedsCgroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("isolation needs root")
	}
	empty := t.TempDir()
	d, err := exec.New(exec.Config{HostID: "h", DataDir: t.TempDir(), CgroupRoot: empty})
	if err != nil {
		t.Fatal(err)
	}
	if d.Isolated() {
		t.Fatal("isolated without cgroup hierarchies")
	}
	if _, err := exec.New(exec.Config{HostID: "h", DataDir: t.TempDir(), CgroupRoot: empty, Isolation: exec.IsolationNamespaces}); err == nil {
		t.Fatal("namespaces granted without cgroup hierarchies")
	}
}

// TestRelativeDataDir: a data dir given relative to the agent's working
// directory still works (the supervisor runs elsewhere).
func TestRelativeDataDir(t *testing.T) {
	sp := spec(t, nil) // builds the test app from the module's directory
	t.Chdir(t.TempDir())
	hostID := drivertest.NewID("host-")
	t.Cleanup(func() { removeHostCgroups(hostID) })
	d, err := exec.New(exec.Config{HostID: hostID, DataDir: "agentdata", Isolation: exec.IsolationNone, ShimEnv: shimEnv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background(), sp.InstanceID, time.Second) })
	st, err := d.Start(ctx(t), sp)
	if err != nil {
		t.Fatalf("start with a relative data dir: %v", err)
	}
	get(t, st.Address, "/")
	if err := d.Stop(ctx(t), sp.InstanceID, time.Second); err != nil {
		t.Fatal(err)
	}
}
