package scheduler

import (
	"fmt"
	"testing"
)

// benchCluster is the benchmark of the brief: 5,000 hosts in 10 pools over
// 3 datacenters and 3 zones, 1,000 apps of 100 instances each, 20% of them
// with constraints, 15% spreading over zones or datacenters.
func benchCluster(tb testing.TB) (*harness, []App) {
	tb.Helper()
	const pools, perPool = 10, 500
	var hosts []Host
	for p := range pools {
		for i := range perPool {
			h := mkHost(fmt.Sprintf("h%02d-%04d", p, i), fmt.Sprintf("p%d", p), fmt.Sprintf("dc%d", p%3), string(rune('a'+i%3)), 8000, 16384)
			h.Labels = map[string]string{"disk": "hdd"}
			if i%2 == 0 {
				h.Labels["disk"] = "ssd"
			}
			if i%10 == 0 {
				h.Labels["gpu"] = "true"
			}
			hosts = append(hosts, h)
		}
	}
	constraints := [][]Constraint{
		{{Attr: "label.disk", Op: OpEqual, Values: []string{"ssd"}}},
		{{Attr: "zone", Op: OpNotEqual, Values: []string{"c"}}},
		{{Attr: "datacenter", Op: OpIn, Values: []string{"dc0", "dc1"}}, {Attr: "label.disk", Op: OpExists}},
		{{Attr: "label.gpu", Op: OpEqual, Values: []string{"true"}}},
	}
	apps := make([]App, 1000)
	for i := range apps {
		a := App{
			Key:     AppKey{fmt.Sprintf("t%d", i%50), fmt.Sprintf("app%d", i)},
			Version: 1, Count: 100,
			CPU:    []int{100, 250, 500}[i%3],
			Memory: []int{256, 512, 1024}[i%3],
			Pools:  []string{fmt.Sprintf("p%d", i%pools), fmt.Sprintf("p%d", (i+1)%pools)},
		}
		switch {
		case i%20 == 7:
			a.Spread = SpreadDatacenter
			a.Pools = append(a.Pools, fmt.Sprintf("p%d", (i+2)%pools))
		case i%10 == 3:
			a.Spread = SpreadZone
		}
		if i%5 == 1 {
			if i%40 == 1 {
				// GPU hosts are few: such apps may use any pool.
				a.Constraints, a.Pools = constraints[3], nil
			} else {
				a.Constraints = constraints[(i/5)%3]
			}
		}
		apps[i] = a
	}
	return newHarness(tb, hosts...), apps
}

// idSource hands out precomputed ids, so that the benchmarks measure the
// scheduler and not id generation.
type idSource struct {
	ids []string
	n   int
}

func newIDSource(n int) *idSource {
	s := &idSource{ids: make([]string, n)}
	for i := range s.ids {
		s.ids[i] = fmt.Sprintf("inst-%06d", i)
	}
	return s
}

func (s *idSource) next() string {
	id := s.ids[s.n%len(s.ids)]
	s.n++
	return id
}

func requireFullPlan(tb testing.TB, p Plan) {
	tb.Helper()
	if len(p.Place) != 100_000 || len(p.Pending) != 0 {
		tb.Fatalf("placed %d, pending %v", len(p.Place), p.Pending)
	}
}

func reportPlacements(b *testing.B, n int) {
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(n)
	b.ReportMetric(per, "ns/placement")
	b.ReportMetric(1e9/per, "placements/s")
}

// BenchmarkPlan plans 100,000 placements onto an empty cluster.
func BenchmarkPlan(b *testing.B) {
	h, apps := benchCluster(b)
	ids := newIDSource(100_000)
	s := New()
	requireFullPlan(b, s.Plan(h, apps, ids.next))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Plan(h, apps, ids.next)
	}
	reportPlacements(b, 100_000)
}

// BenchmarkCheck checks a plan of 100,000 placements, as the FSM does.
func BenchmarkCheck(b *testing.B) {
	h, apps := benchCluster(b)
	plan := New().Plan(h, apps, newIDSource(100_000).next)
	requireFullPlan(b, plan)
	if err := Check(h, plan); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := Check(h, plan); err != nil {
			b.Fatal(err)
		}
	}
	reportPlacements(b, 100_000)
}

// BenchmarkPlanCheck is the sustained rate: plan, then check at apply.
func BenchmarkPlanCheck(b *testing.B) {
	h, apps := benchCluster(b)
	ids := newIDSource(100_000)
	s := New()
	b.ReportAllocs()
	for b.Loop() {
		p := s.Plan(h, apps, ids.next)
		if err := Check(h, p); err != nil {
			b.Fatal(err)
		}
	}
	reportPlacements(b, 100_000)
}

// BenchmarkPlanSteady is the common case on a leader: the cluster already
// runs its 100,000 instances and one app scales up by one.
func BenchmarkPlanSteady(b *testing.B) {
	h, apps := benchCluster(b)
	ids := newIDSource(200_000)
	plan := New().Plan(h, apps, ids.next)
	requireFullPlan(b, plan)
	if err := h.apply(plan); err != nil {
		b.Fatal(err)
	}
	apps[42].Count++
	s := New()
	b.ReportAllocs()
	for b.Loop() {
		if p := s.Plan(h, apps, ids.next); len(p.Place) != 1 || len(p.Stop)+len(p.Pending) != 0 {
			b.Fatalf("plan %d/%d/%d", len(p.Place), len(p.Stop), len(p.Pending))
		}
	}
}
