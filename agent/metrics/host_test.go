package metrics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/cadvisor/lib/manager"
)

// TestHostStats checks the host part of samples: machine memory, disk and
// a CPU counter that rises.
func TestHostStats(t *testing.T) {
	c := startCollector(t, Config{HostID: "h-host-test", Interval: time.Second})
	s1 := waitSample(t, c, "with host CPU time", func(s Sample) bool { return s.Host.CPUSeconds > 0 })
	if s1.Host.MemoryTotal == 0 || s1.Host.MemoryUsed == 0 || s1.Host.MemoryUsed > s1.Host.MemoryTotal {
		t.Errorf("host memory used %d of %d", s1.Host.MemoryUsed, s1.Host.MemoryTotal)
	}
	if s1.Host.DiskTotal == 0 || s1.Host.DiskUsed > s1.Host.DiskTotal {
		t.Errorf("host disk used %d of %d", s1.Host.DiskUsed, s1.Host.DiskTotal)
	}
	t.Logf("host: %+v", s1.Host)
	waitSample(t, c, "with host CPU time rising", func(s Sample) bool { return s.Host.CPUSeconds > s1.Host.CPUSeconds })

	t.Run("OneRunPerProcess", func(t *testing.T) {
		other, err := New(Config{HostID: "h-other", Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := other.Run(ctx); err == nil {
			t.Fatal("a second collector ran beside the first")
		}
	})
}

// TestDockerLateRestart: while cAdvisor has no Docker factory (the daemon
// was down when Run started), Run asks the daemon and restarts cAdvisor
// once it answers; sampling goes on with the new manager.
func TestDockerLateRestart(t *testing.T) {
	var asked atomic.Int32
	var first manager.Manager
	c := startCollector(t, Config{HostID: "h-restart-test", Interval: 100 * time.Millisecond}, func(c *Collector) {
		c.dockerRetry = 0
		c.dockerRegistered = func() bool { return asked.Load() > 0 }
		c.dockerUp = func(context.Context) bool {
			first = c.manager()
			asked.Add(1)
			return true
		}
	})
	s := waitSample(t, c, "after a restart", func(s Sample) bool {
		return asked.Load() > 0 && s.Host.CPUSeconds > 0 && c.manager() != nil && c.manager() != first
	})
	if n := asked.Load(); n != 1 {
		t.Errorf("docker asked %d times, want once (its factory counts as registered after)", n)
	}
	waitSample(t, c, "after the restart's first", func(s2 Sample) bool { return s2.Time.After(s.Time) })
}

// TestExecInstance puts a burning process into a cgroup of its own, as the
// exec driver does, and checks that the collector samples it through
// ExecCgroups. Needs root and cgroup v1 with cpuacct.
func TestExecInstance(t *testing.T) {
	const root = "/sys/fs/cgroup"
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		t.Skip("cgroup v2: this test covers the exec driver's v1 layout")
	}
	var dirs []string // one per mounted hierarchy, deduplicated
	for _, c := range []string{"cpu,cpuacct", "cpu", "cpuacct", "memory"} {
		real, err := filepath.EvalSymlinks(filepath.Join(root, c))
		if err != nil || slices.Contains(dirs, real) {
			continue
		}
		dirs = append(dirs, real)
	}
	if !slices.ContainsFunc(dirs, func(d string) bool { return filepath.Base(d) == "cpuacct" || filepath.Base(d) == "cpu,cpuacct" }) {
		t.Skipf("no cgroup v1 cpuacct hierarchy under %s", root)
	}
	rnd := make([]byte, 4)
	_, _ = rand.Read(rnd)
	cgroup := "/wharf-metrics-test-" + hex.EncodeToString(rnd)

	cmd := exec.Command(buildBurner(t), "burn")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var paths []string
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		deadline := time.Now().Add(10 * time.Second)
		for _, p := range paths {
			for {
				err := os.Remove(p)
				if err == nil || errors.Is(err, os.ErrNotExist) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("remove cgroup: %v", err)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	for _, d := range dirs {
		p := filepath.Join(d, cgroup)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatalf("create cgroup: %v", err)
		}
		paths = append(paths, p)
		// cgroup v1 leaves the memory a process charged before it moved
		// in its old cgroup unless the new one takes it along (the exec
		// driver starts instances inside their cgroup, so it need not).
		_ = os.WriteFile(filepath.Join(p, "memory.move_charge_at_immigrate"), []byte("1"), 0o644)
		if err := os.WriteFile(filepath.Join(p, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			t.Fatalf("join cgroup: %v", err)
		}
	}

	c := startCollector(t, Config{
		HostID:      "h-exec-test",
		Interval:    time.Second,
		ExecCgroups: func() map[string]string { return map[string]string{"i-exec": cgroup + "/"} },
		ExecLabels:  func(id string) (string, string) { return "app-" + id, "tenant-2" },
	})
	// The burner writes fresh pages every 100 ms, charged to its cgroup
	// from the first after it moved in.
	s1 := waitSample(t, c, "with i-exec, its memory charged", func(s Sample) bool { e, ok := instance(s, "i-exec"); return ok && e.MemoryUsage > 0 })
	e1, _ := instance(s1, "i-exec")
	if e1.App != "app-i-exec" || e1.Tenant != "tenant-2" {
		t.Errorf("i-exec app %q tenant %q", e1.App, e1.Tenant)
	}
	// The process burns a core: its CPU time rises by 0.5 s, within 1 s
	// on an idle machine, later on a loaded one. Waited for, not timed.
	s2 := waitSample(t, c, "at least 2 s later, with i-exec's CPU time up by 0.5 s", func(s Sample) bool {
		e, ok := instance(s, "i-exec")
		return ok && e.Timestamp.Sub(e1.Timestamp) >= 2*time.Second && e.CPUSeconds-e1.CPUSeconds >= 0.5
	})
	e2, _ := instance(s2, "i-exec")
	t.Logf("i-exec %.3f -> %.3f s CPU over %v", e1.CPUSeconds, e2.CPUSeconds, e2.Timestamp.Sub(e1.Timestamp))
	if len(s2.Instances) != 1 {
		t.Errorf("instances %+v, want only i-exec", s2.Instances)
	}
}
