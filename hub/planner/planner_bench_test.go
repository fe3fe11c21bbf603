package planner

import (
	"fmt"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// BenchmarkPlacements: 5,000 hosts (4 CPUs, 16 GB each, half of them
// labelled disk=ssd) in 5 pools, then 1,000 apps of 100 instances (100m,
// 64 MB; every fifth with the constraint label.disk=ssd) created one at a
// time, each planned and its plan applied by the FSM (no Raft: this is the
// planner and the state store; BenchmarkPlacementsRaft in hub/bench_test.go
// goes through a 3-node cluster). It reports placements per second over
// the whole run and over its first and last 10% of apps, to show whether
// planning slows down as the cluster fills.
//
//	go test -run '^$' -bench Placements -benchtime 1x ./hub/planner
func BenchmarkPlacements(b *testing.B) {
	const hosts, apps, per = 5000, 1000, 100
	for i := 0; i < b.N; i++ {
		h := benchHosts(b, hosts)
		var first, last time.Duration
		start := time.Now()
		for a := 0; a < apps; a++ {
			t0 := time.Now()
			h.app(benchApp(a, per))
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

// benchHosts returns a harness of 5 pools and n hosts of 4 CPUs and 16 GB
// spread over them (benchLabels), whose rounds are not checked against
// full ones.
func benchHosts(b *testing.B, n int) *planHarness {
	h := newPlanHarness(b)
	h.checkFull = false
	for p := 0; p < 5; p++ {
		h.pool(fmt.Sprintf("pool%d", p), "dc1")
	}
	for j := 0; j < n; j++ {
		h.hostLabels(fmt.Sprintf("h%05d", j), fmt.Sprintf("pool%d", j%5), 4, 16384, benchLabels(j))
	}
	return h
}

// benchLabels labels every other bench host disk=ssd.
func benchLabels(j int) map[string]string {
	if j%2 == 0 {
		return map[string]string{"disk": "ssd"}
	}
	return map[string]string{"disk": "hdd"}
}

// benchApp is the a-th bench app: per instances of 100m/64 MB in one of 5
// pools, one app in five constrained to ssd hosts.
func benchApp(a, per int) apitypes.AppSpec {
	spec := apitypes.AppSpec{Name: fmt.Sprintf("app%04d", a), Image: "x", Instances: n(per), CPU: 100, Memory: 64,
		Pools: []string{fmt.Sprintf("pool%d", a%5)}}
	if a%5 == 0 {
		spec.Constraints = []string{"label.disk=ssd"}
	}
	return spec
}

// BenchmarkRoundAtScale measures one planner round in a large cluster
// when little changed: 5,000 hosts and 1,000 apps of 50 instances (all
// placed), then each op scales one app by one instance (up, then back
// down), plans and commits that plan, as a busy hub's planner does many
// times a second. What a round costs beyond its app's own work is what
// it pays per host.
//
//	go test -run '^$' -bench RoundAtScale -benchmem ./hub/planner
func BenchmarkRoundAtScale(b *testing.B) {
	const hosts, apps, per = 5000, 1000, 50
	h := benchHosts(b, hosts)
	for a := 0; a < apps; a++ {
		h.app(benchApp(a, per))
		if req := h.plan(); req == nil || len(req.Place) != per {
			b.Fatalf("app %d: plan %v", a, req)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		spec := benchApp(i%apps, per+1-(i/apps)%2)
		h.app(spec)
		req := h.plan()
		if req == nil || len(req.Place)+len(req.Stop) != 1 {
			b.Fatalf("op %d: plan %v", i, req)
		}
	}
}
