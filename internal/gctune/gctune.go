// Package gctune sets the garbage collector's percent for the work a
// process does: as little heap headroom as a budget of collector CPU
// allows.
//
// Go's collector starts a cycle when the heap has grown by GOGC percent of
// what the last cycle left live. One fixed percent is wrong for a hub node
// at both ends of its work:
//
//   - a node with 45 MB live taking thousands of API writes a second
//     (~100 MB/s of garbage) runs two cycles a second at the default 100,
//     and the collector takes a quarter of its CPU;
//   - a node holding thousands of agents has a large live heap and little
//     garbage (~3 MB/s at 2,000 agents), so the default doubles its memory
//     to save a collection every minute or so, and its memory per agent is
//     what limits how many agents it holds.
//
// Each period Run measures the allocation rate (rising at once, decaying
// slowly) and what a cycle costs in CPU (from the cycles so far), and sets
// the percent to the headroom that keeps the collector within Budget: the
// headroom is rate × cost / budget, bounded below by MinPercent of the live
// heap and above by Go's default or a fixed floor (Headroom), whichever is
// larger. Until a cycle has been measured, that upper bound is used.
//
// A large heap that changes fast (a node holding 50,000 instances under
// churn) needs more than Go's default to stay within the budget: each
// cycle marks the whole live heap, and on a node with few cores a mark
// phase takes a core from the requests it serves for a fifth of a second.
// There the upper bound rises to MaxPercent, as far as the heap then stays
// within MemoryCap: the process's memory limit (GOMEMLIMIT) when one is
// set, else MemoryShare of its cgroup's or the machine's memory.
//
// An operator's GOGC is left alone; GOMEMLIMIT still bounds the heap (the
// runtime collects at the limit whatever the percent).
package gctune

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"os"
	"path"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is how the percent is chosen.
type Config struct {
	// Budget is the collector CPU allowed, in seconds per second.
	Budget float64
	// MinPercent is the least headroom, as a percent of the live heap.
	MinPercent int
	// Headroom is the heap growth allowed between cycles even past Go's
	// default percent, when the budget needs it (a small, busy heap).
	Headroom uint64
	// MaxPercent is the most headroom, as a percent of the live heap, that
	// the budget may ask for past Go's default and Headroom (a large, busy
	// heap); only as far as the heap then stays within MemoryCap.
	MaxPercent int
	// MemoryCap is the most heap (live and headroom) that a percent past
	// Go's default and Headroom may lead to; zero: none past them. Run
	// sets it when zero: GOMEMLIMIT when set, else MemoryShare of the
	// memory of the process's cgroup or, without a limit there, of the
	// machine.
	MemoryCap uint64
	// MemoryShare is the part of the memory Run gives MemoryCap.
	MemoryShare float64
	// Every is how often the percent is reconsidered.
	Every time.Duration
}

// Default is the hub's tuning: 5% of a core for the collector, between 25%
// of the live heap and the larger of Go's default and 128 MB, and up to
// 400% when that is not enough and a quarter of the memory holds it.
var Default = Config{Budget: 0.05, MinPercent: 25, Headroom: 128 << 20, MaxPercent: 400, MemoryShare: 0.25, Every: time.Second}

// rateDecay is how much of the allocation rate remembered survives a
// second when allocation slows: a burst keeps the headroom up for a while
// after it (a half-life of ~7 s).
const rateDecay = 0.9

// Sample is what the runtime reports at one moment.
type Sample struct {
	At     time.Time
	Live   uint64  // bytes live after the last cycle
	Allocs uint64  // bytes allocated since the start
	Cycles uint64  // cycles completed since the start
	GCCPU  float64 // collector CPU seconds since the start
}

// Tuner chooses the percent from successive samples.
type Tuner struct {
	cfg  Config
	base int // the percent the process started with
	prev *Sample
	rate float64 // bytes allocated per second
	cost float64 // collector CPU seconds per cycle (0: none measured yet)
}

// NewTuner returns a tuner whose upper bound is base (Go's default percent,
// or the one the process started with).
func NewTuner(cfg Config, base int) *Tuner {
	return &Tuner{cfg: cfg, base: base}
}

// Next takes the runtime's sample and returns the percent to use.
func (t *Tuner) Next(s Sample) int {
	if p := t.prev; p != nil && s.At.After(p.At) {
		dt := s.At.Sub(p.At).Seconds()
		if s.Allocs >= p.Allocs {
			now := float64(s.Allocs-p.Allocs) / dt
			t.rate = max(now, t.rate*math.Pow(rateDecay, dt))
		}
		if s.Cycles > p.Cycles && s.GCCPU >= p.GCCPU {
			c := (s.GCCPU - p.GCCPU) / float64(s.Cycles-p.Cycles)
			if t.cost == 0 {
				t.cost = c
			} else {
				t.cost = (t.cost + c) / 2
			}
		}
	}
	t.prev = &s
	return t.percent(s.Live)
}

// percent is the percent for a live heap of live bytes.
func (t *Tuner) percent(live uint64) int {
	live = max(live, 1<<20)
	upper := max(t.base, int((t.cfg.Headroom*100+live-1)/live))
	if t.cost == 0 {
		return upper
	}
	room := t.rate * t.cost / t.cfg.Budget
	p := int(room * 100 / float64(live))
	if p > upper && t.cfg.MaxPercent > upper && t.cfg.MemoryCap > live {
		// Past Go's default only when the budget asks for it, and within
		// the memory allowed.
		byMemory := float64(t.cfg.MemoryCap-live) * 100 / float64(live)
		upper = max(upper, int(min(float64(t.cfg.MaxPercent), byMemory)))
	}
	return min(max(p, t.cfg.MinPercent), upper)
}

// CurrentPercent returns the GC percent in force (-1: off or unknown).
func CurrentPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return -1
	}
	return int(s[0].Value.Uint64())
}

var sampleNames = []string{"/gc/heap/live:bytes", "/gc/heap/allocs:bytes", "/gc/cycles/total:gc-cycles", "/cpu/classes/gc/total:cpu-seconds"}

// read takes a sample from the runtime; false when it lacks a metric.
func read(buf []metrics.Sample) (Sample, bool) {
	metrics.Read(buf)
	for _, m := range buf[:3] {
		if m.Value.Kind() != metrics.KindUint64 {
			return Sample{}, false
		}
	}
	if buf[3].Value.Kind() != metrics.KindFloat64 {
		return Sample{}, false
	}
	return Sample{At: time.Now(), Live: buf[0].Value.Uint64(), Allocs: buf[1].Value.Uint64(),
		Cycles: buf[2].Value.Uint64(), GCCPU: buf[3].Value.Float64()}, true
}

// Run tunes the GC percent every cfg.Every until ctx ends, changing it
// when the new one differs by more than a tenth, and restores the
// starting percent at the end. It does nothing when GOGC is set or the
// collector is off.
func Run(ctx context.Context, cfg Config) {
	if os.Getenv("GOGC") != "" {
		return
	}
	base := CurrentPercent()
	if base < 0 {
		return
	}
	cfg = cfg.withMemoryCap()
	buf := make([]metrics.Sample, len(sampleNames))
	for i, n := range sampleNames {
		buf[i].Name = n
	}
	tu := NewTuner(cfg, base)
	cur := base
	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			debug.SetGCPercent(base)
			return
		case <-t.C:
		}
		s, ok := read(buf)
		if !ok {
			return // not this runtime's metrics
		}
		p := tu.Next(s)
		if p*10 > cur*11 || p*11 < cur*10 {
			debug.SetGCPercent(p)
			cur = p
		}
	}
}

// withMemoryCap returns c with MemoryCap set from the process's memory
// when it is zero and MemoryShare asks for one.
func (c Config) withMemoryCap() Config {
	if c.MemoryCap == 0 && c.MemoryShare > 0 {
		c.MemoryCap = memoryCap(c.MemoryShare)
	}
	return c
}

// memoryCap is the process's memory limit when GOMEMLIMIT sets one, else
// share of the memory its cgroup may use or, without a limit there, of
// the machine's; zero when none of them can be read.
func memoryCap(share float64) uint64 {
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
		return uint64(l)
	}
	total := machineMemory(readFile("/proc/meminfo"))
	if c := cgroupLimit(readFile("/proc/self/cgroup"), readFile); c > 0 && (total == 0 || c < total) {
		total = c
	}
	return uint64(float64(total) * share)
}

// readFile returns a file's content, or nil.
func readFile(name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil
	}
	return b
}

// machineMemory reads MemTotal from /proc/meminfo's content, in bytes;
// zero when it is missing.
func machineMemory(meminfo []byte) uint64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			if kb, err := strconv.ParseUint(f[1], 10, 64); err == nil && kb < math.MaxUint64>>10 {
				return kb << 10
			}
		}
	}
	return 0
}

// cgroupLimit is the least memory limit of the process's cgroups, from
// /proc/self/cgroup's content, and of their ancestors, read with read:
// memory.max under cgroup v2, memory.limit_in_bytes under v1's memory
// controller (whose "no limit" is a huge number, larger than any
// machine's memory). Zero when none sets one.
func cgroupLimit(self []byte, read func(string) []byte) uint64 {
	var least uint64
	for _, line := range strings.Split(string(self), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var root, file string
		switch {
		case f[0] == "0" && f[1] == "":
			root, file = "/sys/fs/cgroup", "memory.max"
		case slices.Contains(strings.Split(f[1], ","), "memory"):
			root, file = "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for dir := path.Clean("/" + f[2]); ; dir = path.Dir(dir) {
			v := strings.TrimSpace(string(read(path.Join(root, dir, file))))
			if n, err := strconv.ParseUint(v, 10, 64); err == nil && n > 0 && (least == 0 || n < least) {
				least = n
			}
			if dir == "/" {
				break
			}
		}
	}
	return least
}
