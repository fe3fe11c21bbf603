// Package gcfloor keeps a floor under the garbage collector's headroom.
//
// Go's collector starts a cycle when the heap has grown by GOGC percent
// of what the last cycle left live, so a small heap is collected often: a
// hub node with 45 MB live that takes thousands of API writes a second
// (~100 MB/s of garbage) runs two cycles a second, and the collector takes
// a quarter of its CPU. Run raises the GC percent so that the heap may
// grow by at least a fixed headroom before a cycle, and gives it back as
// the live heap grows past the headroom: a node holding thousands of
// agents, whose memory per agent matters, keeps Go's default.
//
// An operator's GOGC is left alone; GOMEMLIMIT still bounds the heap (the
// runtime collects at the limit whatever the percent).
package gcfloor

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// DefaultHeadroom is the heap growth allowed between cycles at least.
const DefaultHeadroom = 128 << 20

const liveMetric = "/gc/heap/live:bytes"

// CurrentPercent returns the GC percent in force (-1: off or unknown).
func CurrentPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return -1
	}
	return int(s[0].Value.Uint64())
}

// Percent is the GC percent that lets a heap with live bytes grow by at
// least headroom before the next cycle, and never less than base.
func Percent(base int, live, headroom uint64) int {
	live = max(live, 1<<20)
	p := int((headroom*100 + live - 1) / live)
	return max(base, p)
}

// Run adjusts the GC percent every period until ctx ends: to Percent of
// the live heap, when that differs from the current one by more than a
// tenth. It does nothing when GOGC is set or the collector is off.
func Run(ctx context.Context, headroom uint64, every time.Duration) {
	if os.Getenv("GOGC") != "" {
		return
	}
	base := CurrentPercent()
	if base < 0 {
		return
	}
	sample := []metrics.Sample{{Name: liveMetric}}
	cur := base
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			debug.SetGCPercent(base)
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return // not this runtime's
		}
		p := Percent(base, sample[0].Value.Uint64(), headroom)
		if p*10 > cur*11 || p*11 < cur*10 {
			debug.SetGCPercent(p)
			cur = p
		}
	}
}
