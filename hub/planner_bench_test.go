package hub

import (
	"fmt"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// BenchmarkPlacements: 5,000 hosts (4 CPUs, 16 GB each) in 5 pools, then
// 1,000 apps of 100 instances (100m, 64 MB) created one at a time, each
// planned and its plan applied by the FSM (no Raft: this is the planner
// and the state store). It reports placements per second over the whole
// run and over its first and last 10% of apps, since each plan reads the
// whole state and gets slower as the cluster fills.
//
//	go test -run '^$' -bench Placements -benchtime 1x ./hub
func BenchmarkPlacements(b *testing.B) {
	const hosts, apps, per = 5000, 1000, 100
	for i := 0; i < b.N; i++ {
		h := newPlanHarness(b)
		for p := 0; p < 5; p++ {
			h.pool(fmt.Sprintf("pool%d", p), "dc1")
		}
		for j := 0; j < hosts; j++ {
			h.host(fmt.Sprintf("h%05d", j), fmt.Sprintf("pool%d", j%5), 4, 16384)
		}
		var first, last time.Duration
		start := time.Now()
		for a := 0; a < apps; a++ {
			t0 := time.Now()
			h.app(apitypes.AppSpec{Name: fmt.Sprintf("app%04d", a), Image: "x", Instances: n(per), CPU: 100, Memory: 64,
				Pools: []string{fmt.Sprintf("pool%d", a%5)}})
			if req := h.plan(); req == nil || len(req.Place) != per {
				b.Fatalf("app %d: plan %v", a, req)
			}
			d := time.Since(t0)
			switch {
			case a < apps/10:
				first += d
			case a >= apps-apps/10:
				last += d
			}
		}
		total := time.Since(start)
		b.ReportMetric(float64(apps*per)/total.Seconds(), "placements/s")
		b.ReportMetric(float64(apps/10*per)/first.Seconds(), "first10%-placements/s")
		b.ReportMetric(float64(apps/10*per)/last.Seconds(), "last10%-placements/s")
	}
}
