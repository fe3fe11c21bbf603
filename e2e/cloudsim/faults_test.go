package cloudsim

import (
	"context"
	"testing"
	"time"
)

// TestFaultsInjection: faults match in order, by action or for any, count down
// their Times, lost answers are apart from errors, the rate limit comes
// first, and Clear ends them all.
func TestFaultsInjection(t *testing.T) {
	f := NewFaults()
	now := time.Now()
	f.Fail("RunInstances", FaultQuota, 2)
	f.Inject(Fault{Code: "Whatever", Times: 1})
	f.Lose("RunInstances", 1)
	kinds := func(action string) []FaultKind {
		var out []FaultKind
		for range 4 {
			if x := f.next(action, now); x != nil {
				out = append(out, x.Kind)
			} else {
				out = append(out, -1)
			}
		}
		return out
	}
	if got := kinds("RunInstances"); got[0] != FaultQuota || got[1] != FaultQuota || got[2] != FaultError || got[3] != -1 {
		t.Fatalf("faults of RunInstances: %v", got)
	}
	if !f.lost("RunInstances") || f.lost("RunInstances") {
		t.Fatal("one lost answer, lost once")
	}
	f.Fail("", FaultHang, 0)
	for range 3 {
		if x := f.next("Any", now); x == nil || x.Kind != FaultHang {
			t.Fatalf("every call hangs until Clear: %+v", x)
		}
	}
	f.Clear()
	if x := f.next("Any", now); x != nil {
		t.Fatalf("after Clear: %+v", x)
	}
	f.SetRate(1, 1)
	if f.next("A", now) != nil {
		t.Fatal("the burst was throttled")
	}
	if x := f.next("A", now); x == nil || x.Kind != FaultThrottle || !x.rate {
		t.Fatalf("beyond the rate: %+v", x)
	}
	f.Clear()
	f.count("A")
	f.count("A")
	f.count("B")
	if c := f.Calls(); c["A"] != 2 || c["B"] != 1 {
		t.Fatalf("calls %v", c)
	}
	f.ResetCalls()
	if len(f.Calls()) != 0 {
		t.Fatal("ResetCalls kept counts")
	}
	f.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if f.delay(ctx, nil) {
		t.Fatal("a call outlived its client's context in the latency")
	}
}
