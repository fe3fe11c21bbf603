package main

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wharf-platform/wharf/e2e/logbench"
)

// serversCPU sums the CPU seconds the processes pids have used.
func serversCPU(pids []int) (float64, error) {
	var sum time.Duration
	for _, p := range pids {
		d, err := logbench.ProcCPU(p)
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum.Seconds(), nil
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
