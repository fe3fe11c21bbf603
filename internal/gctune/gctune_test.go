package gctune

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

const mb = 1 << 20

// feed gives t one sample a second for n seconds, allocating rate bytes a
// second and completing a cycle every cycleEvery seconds at cost CPU
// seconds each, with live bytes live; it returns the last percent.
func feed(t *Tuner, start time.Time, n int, live uint64, rate float64, cycleEvery int, cost float64) int {
	var s Sample
	if t.prev != nil {
		s = *t.prev
	} else {
		s.At = start
	}
	p := 0
	for i := 1; i <= n; i++ {
		s.At = s.At.Add(time.Second)
		s.Live = live
		s.Allocs += uint64(rate)
		if cycleEvery > 0 && i%cycleEvery == 0 {
			s.Cycles++
			s.GCCPU += cost
		}
		p = t.Next(s)
	}
	return p
}

func TestTunerChoosesTheLeastHeadroomWithinBudget(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		live       uint64
		rate, cost float64
		want       int
	}{
		// 2,000 agents: 100 MB live, 3 MB/s of garbage, 146 ms a cycle.
		// The budget allows ~9 MB of headroom: the least (25%) it is.
		{"many agents", 100 * mb, 3 * mb, 0.146, 25},
		// The same at 10,000: 500 MB live, 15 MB/s, 0.75 s a cycle:
		// 225 MB of headroom.
		{"more agents", 500 * mb, 15 * mb, 0.75, 45},
		// API writes: 45 MB live, 100 MB/s, 60 ms a cycle: the budget
		// wants 120 MB, under the 128 MB floor.
		{"busy writes", 45 * mb, 100 * mb, 0.06, 266},
		// Busier still: capped by the floor.
		{"capped", 45 * mb, 200 * mb, 0.06, 285},
		// A large busy heap is capped at Go's default.
		{"large", 1024 * mb, 500 * mb, 1, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tu := NewTuner(Default, 100)
			if got := feed(tu, t0, 10, tc.live, tc.rate, 1, tc.cost); got < tc.want-2 || got > tc.want+2 {
				t.Fatalf("percent %d, want ~%d", got, tc.want)
			}
		})
	}
}

func TestTunerWaitsForACycle(t *testing.T) {
	tu := NewTuner(Default, 100)
	t0 := time.Now()
	// No cycle measured: the upper bound (the 128 MB floor over 45 MB).
	if got := feed(tu, t0, 5, 45*mb, 1*mb, 0, 0); got != 285 {
		t.Fatalf("percent %d before any cycle, want the floor's 285", got)
	}
	// One cycle of a quiet heap: down to the least.
	if got := feed(tu, t0, 1, 45*mb, 1*mb, 1, 0.02); got != Default.MinPercent {
		t.Fatalf("percent %d for a quiet heap, want %d", got, Default.MinPercent)
	}
}

func TestTunerRisesAtOnceAndDecaysSlowly(t *testing.T) {
	tu := NewTuner(Default, 100)
	t0 := time.Now()
	quiet := feed(tu, t0, 10, 100*mb, 1*mb, 1, 0.1)
	// A burst of 200 MB/s: the very next sample gives it headroom.
	busy := feed(tu, t0, 1, 100*mb, 200*mb, 1, 0.1)
	if quiet != Default.MinPercent || busy != 128 {
		t.Fatalf("quiet %d, then a burst %d: want %d, then 128 (the floor)", quiet, busy, Default.MinPercent)
	}
	// Quiet again: a few seconds later the headroom is still up, and it
	// comes down within a minute.
	if p := feed(tu, t0, 3, 100*mb, 0, 1, 0.1); p <= Default.MinPercent {
		t.Fatalf("percent %d three seconds after the burst, want it still raised", p)
	}
	if p := feed(tu, t0, 60, 100*mb, 0, 1, 0.1); p != Default.MinPercent {
		t.Fatalf("percent %d a minute after the burst, want %d", p, Default.MinPercent)
	}
}

// TestRunTunesThenRestores: in a process allocating little, the percent
// leaves the default once a cycle is measured; when Run ends the starting
// percent comes back.
func TestRunTunesThenRestores(t *testing.T) {
	t.Setenv("GOGC", "")
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Run(ctx, Config{Budget: 0.05, MinPercent: 25, Headroom: 1 << 20, Every: time.Millisecond})
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	p := 100
	for p == 100 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
		p = CurrentPercent()
	}
	cancel()
	<-done
	if p == 100 {
		t.Fatal("GC percent stayed 100 in a process allocating little, want it tuned down")
	}
	if got := CurrentPercent(); got != 100 {
		t.Fatalf("GC percent %d after Run ended, want the base 100 back", got)
	}
}

// TestRunLeavesGOGCAlone: an operator's GOGC wins.
func TestRunLeavesGOGCAlone(t *testing.T) {
	t.Setenv("GOGC", "100")
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	Run(ctx, Config{Budget: 0.05, MinPercent: 25, Headroom: 1 << 20, Every: time.Millisecond})
	if got := CurrentPercent(); got != 100 {
		t.Fatalf("GC percent %d with GOGC set, want 100", got)
	}
}

// TestTunerGoesPastTheDefaultWithinMemory: a large heap that changes fast
// gets more headroom than Go's default when the budget asks for it, up to
// MaxPercent and as far as the memory allowed holds it; the agents' cases
// and a tuner that has measured no cycle keep their bounds.
func TestTunerGoesPastTheDefaultWithinMemory(t *testing.T) {
	t0 := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	with := func(capacity uint64) Config {
		c := Default
		c.MemoryCap = capacity
		return c
	}
	for _, tc := range []struct {
		name       string
		cfg        Config
		live       uint64
		rate, cost float64
		cycles     bool
		want       int
	}{
		// Three nodes' state under churn: 350 MB live, 300 MB/s, 0.3 s a
		// cycle. The budget wants 1.8 GB; MaxPercent gives 1.4 GB.
		{"churn", with(6 << 30), 350 * mb, 300 * mb, 0.3, true, 400},
		// The same with 1 GB allowed: 674 MB of headroom.
		{"churn, little memory", with(1 << 30), 350 * mb, 300 * mb, 0.3, true, 192},
		// Less memory allowed than the live heap: Go's default.
		{"churn, no memory", with(300 * mb), 350 * mb, 300 * mb, 0.3, true, 100},
		// No memory cap known: Go's default, as before.
		{"churn, cap unknown", with(0), 350 * mb, 300 * mb, 0.3, true, 100},
		// The budget asks for a little more than the default: that much.
		{"a little more", with(6 << 30), 350 * mb, 100 * mb, 0.2, true, 114},
		// No cycle measured yet: the bound without the memory's help.
		{"no cycle yet", with(6 << 30), 350 * mb, 300 * mb, 0, false, 100},
		// 10,000 agents: as little as before.
		{"more agents", with(6 << 30), 500 * mb, 15 * mb, 0.75, true, 45},
		// Busy writes on a small heap, past the 128 MB floor.
		{"busy writes", with(6 << 30), 45 * mb, 200 * mb, 0.06, true, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tu := NewTuner(tc.cfg, 100)
			every := 0
			if tc.cycles {
				every = 1
			}
			if got := feed(tu, t0, 10, tc.live, tc.rate, every, tc.cost); got < tc.want-2 || got > tc.want+2 {
				t.Fatalf("percent %d, want ~%d", got, tc.want)
			}
		})
	}
}

func TestMachineMemory(t *testing.T) {
	meminfo := "MemTotal:       24582744 kB\nMemFree:         1000000 kB\n"
	if got, want := machineMemory([]byte(meminfo)), uint64(24582744)<<10; got != want {
		t.Fatalf("MemTotal %d, want %d", got, want)
	}
	for _, bad := range []string{"", "MemFree: 5 kB\n", "MemTotal: lots kB\n", "MemTotal: 5 MB\n"} {
		if got := machineMemory([]byte(bad)); got != 0 {
			t.Fatalf("MemTotal %d from %q, want 0", got, bad)
		}
	}
}

func TestCgroupLimitTakesTheLeastOfItsAncestors(t *testing.T) {
	files := map[string]string{
		"/sys/fs/cgroup/memory.max":                    "max\n",
		"/sys/fs/cgroup/system.slice/memory.max":       "8589934592\n",
		"/sys/fs/cgroup/system.slice/hub/memory.max":   "max\n",
		"/sys/fs/cgroup/user.slice/memory.max":         "max\n",
		"/sys/fs/cgroup/tight/memory.max":              "1073741824\n",
		"/sys/fs/cgroup/tight/inner/memory.max":        "2147483648\n",
		"/sys/fs/cgroup/broken/memory.max":             "lots\n",
		"/sys/fs/cgroup/broken/still/memory.max":       "0\n",
		"/sys/fs/cgroup/system.slice/other/memory.max": "",
		// cgroup v1's memory controller; "no limit" is a huge number.
		"/sys/fs/cgroup/memory/memory.limit_in_bytes":            "9223372036854771712\n",
		"/sys/fs/cgroup/memory/docker/memory.limit_in_bytes":     "4294967296\n",
		"/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "9223372036854771712\n",
	}
	read := func(name string) []byte {
		if v, ok := files[name]; ok {
			return []byte(v)
		}
		return nil
	}
	for _, tc := range []struct {
		self string
		want uint64
	}{
		{"0::/system.slice/hub\n", 8 << 30},
		{"0::/tight/inner\n", 1 << 30},
		{"0::/user.slice\n", 0},
		{"0::/\n", 0},
		{"0::/broken/still\n", 0},
		{"0::/no/such/group\n", 0},
		// cgroup v1: the least of the memory controller's limits.
		{"12:memory:/docker/abc\n", 4 << 30},
		{"5:cpu,memory:/docker/abc\n", 4 << 30},
		{"4:memory:/\n", 9223372036854771712},
		{"3:cpuset:/docker/abc\n", 0},
		// Hybrid: both, the least wins.
		{"4:memory:/docker/abc\n0::/tight/inner\n", 1 << 30},
		{"", 0},
		// A path that climbs out is cleaned to the root.
		{"0::/../../etc\n", 0},
	} {
		if got := cgroupLimit([]byte(tc.self), read); got != tc.want {
			t.Errorf("cgroup %q: limit %d, want %d", tc.self, got, tc.want)
		}
	}
}

// TestMemoryCapFollowsGOMEMLIMIT: an operator's memory limit is the cap;
// without one it is a share of what the process may use.
func TestMemoryCapFollowsGOMEMLIMIT(t *testing.T) {
	old := debug.SetMemoryLimit(3 << 30)
	defer debug.SetMemoryLimit(old)
	if got := memoryCap(0.25); got != 3<<30 {
		t.Fatalf("cap %d with a 3 GiB limit, want the limit", got)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	whole := memoryCap(1)
	if whole == 0 {
		t.Fatal("no memory size read from /proc/meminfo or the cgroup")
	}
	if got := memoryCap(0.25); got < whole/4-1 || got > whole/4+1 {
		t.Fatalf("cap %d for a quarter of %d", got, whole)
	}
	// What Run tunes with: the hub's config gets its cap from the
	// memory; a cap given, or no share, stays.
	if got := Default.withMemoryCap().MemoryCap; got < whole/4-1 || got > whole/4+1 {
		t.Fatalf("the default config's cap %d, want a quarter of %d", got, whole)
	}
	given := Default
	given.MemoryCap = 1 << 30
	if got := given.withMemoryCap().MemoryCap; got != 1<<30 {
		t.Fatalf("a given cap became %d", got)
	}
	none := Default
	none.MemoryShare = 0
	if got := none.withMemoryCap().MemoryCap; got != 0 {
		t.Fatalf("no share gave a cap of %d", got)
	}
}
