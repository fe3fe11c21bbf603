package hub_test

import (
	"math"
	"testing"
	"time"
)

// TestLatencyHistQuantile checks how the churn benchmark reads a
// runtime/metrics histogram: the difference of two readings, and the
// upper bound of the bucket holding a quantile (the lower bound for the
// open last bucket).
func TestLatencyHistQuantile(t *testing.T) {
	buckets := []float64{0, 0.001, 0.01, 0.1, math.Inf(1)}
	before := latencyHist{counts: []uint64{5, 0, 0, 0}, buckets: buckets}
	after := latencyHist{counts: []uint64{95, 8, 1, 1}, buckets: buckets}
	d := after.since(before)
	if n := d.count(); n != 100 {
		t.Fatalf("count %d, want 100", n)
	}
	for q, want := range map[float64]time.Duration{
		0.5:  time.Millisecond,      // in the first bucket: [0, 1 ms)
		0.95: 10 * time.Millisecond, // the 95th wait is in [1, 10 ms)
		0.99: 100 * time.Millisecond,
		1:    100 * time.Millisecond, // the open bucket reports its lower bound
	} {
		if got := d.quantile(q); got != want {
			t.Errorf("quantile(%v) = %s, want %s", q, got, want)
		}
	}
	if got := (latencyHist{buckets: buckets, counts: make([]uint64, 4)}).quantile(0.5); got != 0 {
		t.Errorf("quantile of an empty histogram = %s, want 0", got)
	}
}
