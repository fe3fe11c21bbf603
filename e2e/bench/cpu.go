package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// userHz is the unit of the CPU times in /proc/PID/stat: Linux reports
// them in USER_HZ, 100 a second on every architecture it runs on.
const userHz = 100

// procCPU returns the user plus system CPU seconds process pid has used.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a
// /proc/PID/stat line. The command name (field 2) is in parentheses and
// may hold spaces and parentheses itself: the fields are counted from
// the last ')'.
func parseStatCPU(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat line without a command name: %.40q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so utime (14) and stime (15) are f[11], f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat line of %d fields after the name, want 13 or more", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat CPU time %q: %w", s, err)
		}
		ticks += n
	}
	return float64(ticks) / userHz, nil
}

// serversCPU sums procCPU over pids.
func serversCPU(pids []int) (float64, error) {
	var sum float64
	for _, p := range pids {
		s, err := procCPU(p)
		if err != nil {
			return 0, err
		}
		sum += s
	}
	return sum, nil
}

// selfCPU returns this process's user plus system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// parsePids reads a comma-separated list of process ids ("" is none).
func parsePids(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p <= 0 {
			return nil, fmt.Errorf("-pids: %q is not a process id", f)
		}
		out = append(out, p)
	}
	return out, nil
}
