// Package deadline stretches test deadlines to the machine the tests run
// on. It imports only the standard library so that every test package,
// hub/cluster's included, can use it.
package deadline

import (
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Scale stretches a test deadline to the machine the test runs on. A
// deadline bounds a wait for a condition that the code must reach; on a
// busy 2-core machine, or under the race detector, the same work takes
// several times longer, and a deadline tuned on an idle laptop turns into a
// false failure. A longer deadline only delays the report of a real
// failure, so deadlines are generous and scaled:
//
//   - ×3 under the race detector, which slows Go code 2–10×;
//   - × the run-queue load per CPU (the 1-minute load average over
//     GOMAXPROCS) when it exceeds 1, at most ×4;
//   - × WHARF_TEST_SLOWDOWN when set (a number ≥ 1, e.g. under stress-ng).
//
// Scale never shortens d. Tests must not use a scaled deadline as the
// property they check ("down within 2 s"): measure such times and compare
// them explicitly.
func Scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * Slowdown())
}

// Slowdown is the factor Scale applies.
func Slowdown() float64 {
	f := 1.0
	if raceEnabled {
		f *= 3
	}
	f *= loadFactor()
	if v, err := strconv.ParseFloat(os.Getenv("WHARF_TEST_SLOWDOWN"), 64); err == nil && v > 1 && !math.IsInf(v, 1) {
		f *= v
	}
	return f
}

// loadFactor reads the 1-minute load average (Linux); 1 where there is none.
func loadFactor() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 1
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 1
	}
	load, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return 1
	}
	return min(max(load/float64(runtime.GOMAXPROCS(0)), 1), 4)
}
