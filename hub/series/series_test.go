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
	fine := pts[len(pts)-Capacity:]
	if fine[0].Value != 100 || fine[len(fine)-1].Value != Capacity+99 {
		t.Fatalf("ring: %d points, first %v last %v", len(pts), fine[0], fine[len(fine)-1])
	}
	// The 100 points pushed out (1,000 s) are kept at 5-minute steps.
	if coarse := pts[:len(pts)-Capacity]; len(coarse) < 4 || len(coarse) > 5 || coarse[len(coarse)-1].Value != 99 {
		t.Fatalf("downsampled: %v", coarse)
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

// TestStoreDownsamplesOlderThanADay: two days of 10 s points: the last day
// at 10 s, the day before at one point per 5 minutes (each the last of
// its 5 minutes, so counters stay exact at those points).
func TestStoreDownsamplesOlderThanADay(t *testing.T) {
	s := NewStore(0)
	o := Owner{Kind: "instance", ID: "i1"}
	t0 := time.Unix(1_000_000_200, 0) // a 5-minute boundary
	n := 2 * Capacity
	for i := 0; i < n; i++ {
		s.Add(o, t0.Add(time.Duration(i)*10*time.Second), map[string]float64{CPUSeconds: float64(i)})
	}
	pts := s.Query(func(Owner) bool { return true }, time.Time{}, t0.Add(1000*time.Hour), 0)[0].Metrics[CPUSeconds]
	coarse := pts[:len(pts)-Capacity]
	if len(coarse) != Capacity/30 {
		t.Fatalf("%d downsampled points for a day, want %d", len(coarse), Capacity/30)
	}
	for i, p := range coarse {
		if p.Unix-t0.Unix() != int64(i*300+290) || p.Value != float64(i*30+29) {
			t.Fatalf("downsampled point %d: %+v", i, p)
		}
	}
	if pts[len(pts)-Capacity].Value != float64(Capacity) {
		t.Fatalf("first 10 s point: %+v", pts[len(pts)-Capacity])
	}
}
