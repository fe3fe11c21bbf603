package exec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
)

// cpuPeriod is the CFS period limits are expressed in (100 ms, the kernel's
// and Docker's default), in microseconds.
const cpuPeriod = 100_000

// v1Controllers are the cgroup v1 hierarchies an isolated instance joins:
// cpu and memory carry its limits; cpuacct and pids account for it and let
// Stop find every process it left behind.
var v1Controllers = []string{"cpu", "cpuacct", "memory", "pids"}

// cgroupLimits are the files and values that give an instance its CPU and
// memory, per controller ("" for the single cgroup v2 hierarchy): a CPU
// weight from its reservation cpuMillis, a CPU quota of quotaMillis (the
// reservation, or more while it boots) and a memory limit of memoryMB.
// Zero means no limit (the default weight), written explicitly so that a
// reused directory never keeps an old value.
func cgroupLimits(cpuMillis, quotaMillis, memoryMB int, v2 bool) map[string]map[string]string {
	cpu := cpuQuota(quotaMillis, v2)
	shares := driver.CPUShares(cpuMillis)
	mem := int64(-1)
	if memoryMB > 0 {
		mem = int64(memoryMB) << 20
	}
	if v2 {
		cpu["cpu.weight"] = strconv.FormatInt(1+(shares-2)*9999/262142, 10) // shares to weight, as runc converts them
		memMax := "max"
		if mem > 0 {
			memMax = strconv.FormatInt(mem, 10)
		}
		cpu["memory.max"] = memMax
		return map[string]map[string]string{"": cpu}
	}
	cpu["cpu.shares"] = strconv.FormatInt(shares, 10)
	return map[string]map[string]string{
		"cpu":    cpu,
		"memory": {"memory.limit_in_bytes": strconv.FormatInt(mem, 10)},
	}
}

// cpuQuota is the CFS quota that caps an instance at cpuMillis (0: no
// cap), as cgroup files.
func cpuQuota(cpuMillis int, v2 bool) map[string]string {
	quota := int64(-1)
	if cpuMillis > 0 {
		quota = max(int64(cpuMillis)*cpuPeriod/1000, 1000) // the kernel's minimum quota is 1 ms
	}
	if v2 {
		v := "max " + strconv.Itoa(cpuPeriod)
		if quota > 0 {
			v = fmt.Sprintf("%d %d", quota, cpuPeriod)
		}
		return map[string]string{"cpu.max": v}
	}
	return map[string]string{"cpu.cfs_period_us": strconv.Itoa(cpuPeriod), "cpu.cfs_quota_us": strconv.FormatInt(quota, 10)}
}

// cgroupV2 reports whether root is a unified (v2) hierarchy.
func cgroupV2(root string) bool {
	_, err := os.Stat(filepath.Join(root, "cgroup.controllers"))
	return err == nil
}

// cgroupPaths returns the directories of one instance's cgroup: with v1 one
// per mounted controller, <root>/<controller>/<parent>/<host>/<instance>;
// with v2 the one <root>/<parent>/<host>/<instance>. A v1 controller whose
// hierarchy is not mounted is left out (cpuacct shares cpu's on many
// systems, where both names lead to one directory).
func cgroupPaths(root, parent, hostID, instanceID string, v2 bool) []string {
	rel := filepath.Join(parent, hostID, instanceID)
	if v2 {
		return []string{filepath.Join(root, rel)}
	}
	var out []string
	for _, c := range v1Controllers {
		if _, err := os.Stat(filepath.Join(root, c)); err == nil {
			out = append(out, filepath.Join(root, c, rel))
		}
	}
	return out
}

// controllerOf names the v1 controller of a cgroup directory made by
// cgroupPaths ("" for v2).
func controllerOf(root, path string, v2 bool) string {
	if v2 {
		return ""
	}
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return ""
	}
	c, _, _ := strings.Cut(rel, string(filepath.Separator))
	return c
}

// setupCgroup creates an instance's cgroup directories and writes its
// limits. With v2 it first enables the controllers on the way down.
func setupCgroup(root string, paths []string, cpuMillis, quotaMillis, memoryMB int) error {
	v2 := cgroupV2(root)
	if v2 && len(paths) == 1 {
		if err := enableV2Controllers(root, filepath.Dir(paths[0])); err != nil {
			return err
		}
	}
	limits := cgroupLimits(cpuMillis, quotaMillis, memoryMB, v2)
	for _, p := range paths {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		for file, v := range limits[controllerOf(root, p, v2)] {
			if err := os.WriteFile(filepath.Join(p, file), []byte(v), 0o644); err != nil {
				return fmt.Errorf("cgroup: %s=%s: %w", filepath.Join(p, file), v, err)
			}
		}
	}
	for c := range limits {
		if !v2 && !hasController(paths, root, c) {
			return fmt.Errorf("cgroup: controller %s not mounted under %s", c, root)
		}
	}
	return nil
}

// setCgroupCPU writes an instance's CPU quota alone, in the cgroup
// setupCgroup made (Settle, once it has booted). A cgroup that is gone is
// driver.ErrNotFound.
func setCgroupCPU(root string, paths []string, quotaMillis int) error {
	v2 := cgroupV2(root)
	for _, p := range paths {
		if c := controllerOf(root, p, v2); c != "" && c != "cpu" {
			continue
		}
		for file, v := range cpuQuota(quotaMillis, v2) {
			if err := os.WriteFile(filepath.Join(p, file), []byte(v), 0o644); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return driver.ErrNotFound
				}
				return fmt.Errorf("cgroup: %s=%s: %w", filepath.Join(p, file), v, err)
			}
		}
	}
	return nil
}

func hasController(paths []string, root, c string) bool {
	for _, p := range paths {
		if controllerOf(root, p, false) == c {
			return true
		}
	}
	return false
}

// enableV2Controllers turns on cpu, memory and pids for the children of
// every directory from root down to dir (inclusive).
func enableV2Controllers(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return err
	}
	cur := root
	parts := []string{""}
	if rel != "." {
		parts = append(parts, strings.Split(rel, string(filepath.Separator))...)
	}
	for _, part := range parts {
		cur = filepath.Join(cur, part)
		if err := os.MkdirAll(cur, 0o755); err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		avail, _ := os.ReadFile(filepath.Join(cur, "cgroup.controllers"))
		for _, c := range []string{"cpu", "memory", "pids"} {
			if !slices.Contains(strings.Fields(string(avail)), c) {
				continue
			}
			if err := os.WriteFile(filepath.Join(cur, "cgroup.subtree_control"), []byte("+"+c), 0o644); err != nil {
				return fmt.Errorf("cgroup: enable %s in %s: %w", c, cur, err)
			}
		}
	}
	return nil
}

// joinCgroup moves pid into every directory of an instance's cgroup.
func joinCgroup(paths []string, pid int) error {
	for _, p := range paths {
		if err := os.WriteFile(filepath.Join(p, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("cgroup: join %s: %w", p, err)
		}
	}
	return nil
}

// cgroupPIDs lists the processes in a cgroup directory.
func cgroupPIDs(path string) []int {
	b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// removeCgroup kills whatever still runs in an instance's cgroup and removes
// its directories, waiting up to timeout for the kernel to let them go.
func removeCgroup(paths []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var busy error
		for _, p := range paths {
			for _, pid := range cgroupPIDs(p) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				busy = err
			}
		}
		if busy == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup: %w", busy)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cgroupsUsable reports whether root holds the cgroup hierarchies an
// isolated instance needs: the unified one, or every v1 controller. A
// process started by `ip netns exec` sees a fresh /sys without them.
func cgroupsUsable(root string) bool {
	if cgroupV2(root) {
		return true
	}
	for _, c := range v1Controllers {
		if _, err := os.Stat(filepath.Join(root, c, "cgroup.procs")); err != nil {
			return false
		}
	}
	return true
}
