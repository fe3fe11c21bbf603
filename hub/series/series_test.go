package series

import (
	"testing"
	"time"
)

func TestStoreKeepsADayAndSteps(t *testing.T) {
	s := NewStore(time.Hour)
	o := Owner{Kind: "instance", ID: "i1", App: "acme/web", Tenant: "acme", Host: "h1"}
	t0 := time.Unix(1_000_000, 0)
	for i := 0; i < Capacity+100; i++ {
		s.Add(o, t0.Add(time.Duration(i)*10*time.Second), map[string]float64{CPUSeconds: float64(i)})
	}
	all := s.Query(func(x Owner) bool { return x.ID == "i1" }, time.Time{}, t0.Add(1000*time.Hour), 0)
	pts := all[0].Metrics[CPUSeconds]
	if len(pts) != Capacity || pts[0].Value != 100 || pts[len(pts)-1].Value != Capacity+99 {
		t.Fatalf("ring: %d points, first %v last %v", len(pts), pts[0], pts[len(pts)-1])
	}
	// A minute step keeps the last point of each minute.
	last := t0.Add(time.Duration(Capacity+99) * 10 * time.Second)
	min := s.Query(func(Owner) bool { return true }, last.Add(-5*time.Minute), last, time.Minute)[0].Metrics[CPUSeconds]
	if len(min) < 5 || len(min) > 6 || min[len(min)-1].Value != Capacity+99 {
		t.Fatalf("minute steps over 5 minutes: %v", min)
	}
	// Out of order points are ignored; silent owners are forgotten.
	s.Add(o, t0, map[string]float64{CPUSeconds: -1})
	s.Add(Owner{Kind: "host", ID: "h2"}, last.Add(2*time.Hour), map[string]float64{"x": 1})
	if got := s.Query(func(x Owner) bool { return x.ID == "i1" }, time.Time{}, last.Add(3*time.Hour), 0); len(got) != 0 {
		t.Fatalf("a silent owner kept: %d", len(got))
	}
}
