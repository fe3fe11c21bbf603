package autoscale

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func qpsPolicy() Policy {
	return Policy{Min: 1, Max: 6, QPS: 20, Window: 10 * time.Second, ScaleDownDelay: time.Minute, Bounds: "policy"}
}

func unknown(o Observed) Observed {
	o.CPU, o.PanicCPU, o.Memory = -1, -1, -1
	return o
}

func TestDecide(t *testing.T) {
	old := t0.Add(-time.Hour) // a decider that has watched for long
	calm := State{Since: old}
	for _, tc := range []struct {
		name   string
		p      Policy
		o      Observed
		st     State
		want   int
		reason string
		panic  bool
	}{
		{"qps: proportional", qpsPolicy(), unknown(Observed{Current: 3, Ready: 3, QPS: 95, PanicQPS: 95}), calm, 5, "qps 95.0/s", false},
		{"qps: exactly the target", qpsPolicy(), unknown(Observed{Current: 2, Ready: 2, QPS: 40, PanicQPS: 40}), calm, 2, "qps", false},
		{"qps: up to max", qpsPolicy(), unknown(Observed{Current: 2, Ready: 2, QPS: 1000, PanicQPS: 30}), calm, 6, "max 6", false},
		{"qps: min", qpsPolicy(), unknown(Observed{Current: 1, Ready: 1, QPS: 0}), calm, 1, "min 1", false},
		{"qps: down at once when nothing higher was wanted", qpsPolicy(), unknown(Observed{Current: 5, Ready: 5, QPS: 20, PanicQPS: 20}), calm, 1, "qps 20.0/s", false},
		{"qps: down only to the highest wanted over the delay", qpsPolicy(), unknown(Observed{Current: 5, Ready: 5, QPS: 20, PanicQPS: 20}),
			State{Since: old, Wanted: []Want{{t0.Add(-30 * time.Second), 4}}}, 4, "highest wanted over 1m0s", false},
		{"qps: a want older than the delay is forgotten", qpsPolicy(), unknown(Observed{Current: 5, Ready: 5, QPS: 20, PanicQPS: 20}),
			State{Since: old, Wanted: []Want{{t0.Add(-61 * time.Second), 4}}}, 1, "qps", false},
		{"panic: twice the capacity in the last seconds", qpsPolicy(), unknown(Observed{Current: 1, Ready: 1, QPS: 10, PanicQPS: 80}), calm, 4, "panic", true},
		{"signal: a router's burst panics before the counts show it", qpsPolicy(), unknown(Observed{Current: 1, Ready: 1, SignalQPS: 100}), calm, 5,
			"panic: qps 100.0/s signalled by the routers within the current second needs 5", true},
		{"signal: at the signal rate (twice the capacity) is a panic", qpsPolicy(), unknown(Observed{Current: 2, Ready: 2, QPS: 40, PanicQPS: 40, SignalQPS: 80}), calm, 4, "signalled", true},
		{"signal: under twice the capacity is no panic", qpsPolicy(), unknown(Observed{Current: 3, Ready: 3, QPS: 60, PanicQPS: 60, SignalQPS: 100}), calm, 3, "qps 60.0/s", false},
		{"signal: the counts' larger panic wins", qpsPolicy(), unknown(Observed{Current: 1, Ready: 1, QPS: 30, PanicQPS: 110, SignalQPS: 50}), calm, 6, "over the last 2s", true},
		{"panic: no scale down while panicking", qpsPolicy(), unknown(Observed{Current: 5, Ready: 5, QPS: 10, PanicQPS: 10}),
			State{Since: old, PanicUntil: t0.Add(5 * time.Second)}, 5, "panic: no scale down", true},
		{"cpu: proportional to the ready", Policy{Min: 1, Max: 10, CPU: 50, Window: 10 * time.Second, ScaleDownDelay: time.Minute, Bounds: "policy"},
			Observed{Current: 2, Ready: 2, CPU: 90, PanicCPU: 90, Memory: -1}, calm, 4, "cpu 90%", false},
		{"cpu: within tolerance", Policy{Min: 1, Max: 10, CPU: 50, Window: 10 * time.Second, ScaleDownDelay: time.Minute, Bounds: "policy"},
			Observed{Current: 3, Ready: 3, CPU: 54, PanicCPU: 54, Memory: -1}, calm, 3, "cpu", false},
		{"cpu: not every instance ready yet: no scale down", Policy{Min: 1, Max: 10, CPU: 50, Window: 10 * time.Second, Bounds: "policy"},
			Observed{Current: 4, Ready: 1, CPU: 80, PanicCPU: 80, Memory: -1}, calm, 4, "cpu", false},
		{"memory and qps: the larger wins", Policy{Min: 1, Max: 10, Memory: 50, QPS: 20, Window: 10 * time.Second, Bounds: "policy"},
			Observed{Current: 2, Ready: 2, QPS: 30, PanicQPS: 30, CPU: -1, PanicCPU: -1, Memory: 150}, calm, 6, "memory 150%", false},
		{"no data: hold", Policy{Min: 1, Max: 10, CPU: 50, Window: 10 * time.Second, Bounds: "policy"},
			unknown(Observed{Current: 3, Ready: 3}), calm, 3, "no load data", false},
		{"rollout: no scale down", qpsPolicy(), unknown(Observed{Current: 5, Ready: 6, QPS: 0, Hold: HoldDown, HoldReason: "a rollout"}), calm, 5, "held: a rollout", false},
		{"rollout: up is fine", qpsPolicy(), unknown(Observed{Current: 2, Ready: 3, QPS: 70, PanicQPS: 70, Hold: HoldDown, HoldReason: "a rollout"}), calm, 4, "qps", false},
		{"drill: nothing changes", qpsPolicy(), unknown(Observed{Current: 2, Ready: 1, QPS: 200, PanicQPS: 200, Hold: HoldAll, HoldReason: "drill d1"}), calm, 2, "held: drill d1", false},
		{"schedule bounds", Policy{Min: 4, Max: 8, QPS: 20, Window: 10 * time.Second, Bounds: "schedule"}, unknown(Observed{Current: 1, Ready: 1, QPS: 0}), calm, 4, "min 4 (schedule)", false},
		{"zero: idle for the delay", Policy{Min: 0, Max: 6, QPS: 20, Window: 10 * time.Second, ScaleDownDelay: time.Minute, Bounds: "policy"},
			unknown(Observed{Current: 1, Ready: 1, LastRequest: t0.Add(-61 * time.Second)}), State{Since: old, Wanted: []Want{{t0.Add(-5 * time.Second), 1}}}, 0, "idle", false},
		{"zero: a request within the delay keeps one", Policy{Min: 0, Max: 6, QPS: 20, Window: 10 * time.Second, ScaleDownDelay: time.Minute, Bounds: "policy"},
			unknown(Observed{Current: 1, Ready: 1, LastRequest: t0.Add(-59 * time.Second)}), calm, 1, "not idle", false},
		{"zero: a new leader waits the delay first", Policy{Min: 0, Max: 6, QPS: 20, Window: 10 * time.Second, ScaleDownDelay: time.Minute, Bounds: "policy"},
			unknown(Observed{Current: 1, Ready: 1}), NewState(t0.Add(-10*time.Second), 1), 1, "not idle", false},
		{"zero: a new leader leaves an app at zero asleep", Policy{Min: 0, Max: 6, QPS: 20, Window: 10 * time.Second, ScaleDownDelay: time.Minute, Bounds: "policy"},
			unknown(Observed{Current: 0}), NewState(t0, 0), 0, "idle", false},
		{"zero: woken by a request", Policy{Min: 0, Max: 6, CPU: 50, Window: 10 * time.Second, ScaleDownDelay: time.Minute, Bounds: "policy"},
			unknown(Observed{Current: 0, QPS: 0.1, PanicQPS: 0.5, LastRequest: t0.Add(-time.Second)}), calm, 1, "woken", false},
		{"zero: not idle again within the delay after a wake", Policy{Min: 0, Max: 6, QPS: 20, Window: 10 * time.Second, ScaleDownDelay: time.Minute, Bounds: "policy"},
			unknown(Observed{Current: 1, LastRequest: t0.Add(-2 * time.Minute)}), State{Since: t0.Add(-30 * time.Second)}, 1, "not idle", false},
		{"zero: woken and still starting is not idle", Policy{Min: 0, Max: 6, QPS: 20, Window: 10 * time.Second, ScaleDownDelay: 3 * time.Second, Bounds: "policy"},
			unknown(Observed{Current: 1, LastRequest: t0.Add(-time.Minute)}), State{Since: t0.Add(-time.Minute), Woken: t0.Add(-time.Minute)}, 1, "waiting for the first instance", false},
		{"zero: woken but never started is idle after the grace", Policy{Min: 0, Max: 6, QPS: 20, Window: 10 * time.Second, ScaleDownDelay: 3 * time.Second, Bounds: "policy"},
			unknown(Observed{Current: 1, LastRequest: t0.Add(-10 * time.Minute)}), State{Since: t0.Add(-10 * time.Minute), Woken: t0.Add(-10 * time.Minute)}, 0, "idle", false},
		{"zero: a request counted late after it went to zero wakes it", Policy{Min: 0, Max: 6, QPS: 20, Window: 10 * time.Second, ScaleDownDelay: 3 * time.Second, Bounds: "policy"},
			unknown(Observed{Current: 0, LastRequest: t0.Add(-5 * time.Second)}), State{Asleep: t0.Add(-10 * time.Second)}, 1, "woken", false},
		{"zero: a request from before it went to zero does not wake it", Policy{Min: 0, Max: 6, QPS: 20, Window: 10 * time.Second, ScaleDownDelay: 3 * time.Second, Bounds: "policy"},
			unknown(Observed{Current: 0, LastRequest: t0.Add(-14 * time.Second)}), State{Asleep: t0.Add(-10 * time.Second)}, 0, "idle", false},
		{"zero: woken with a qps target", Policy{Min: 0, Max: 6, QPS: 20, Window: 10 * time.Second, ScaleDownDelay: time.Minute, Bounds: "policy"},
			unknown(Observed{Current: 0, QPS: 45, PanicQPS: 45, LastRequest: t0.Add(-time.Second)}), calm, 3, "qps", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := Decide(t0, tc.p, tc.o, tc.st)
			if d.Instances != tc.want || !strings.Contains(d.Reason, tc.reason) || d.Panic != tc.panic {
				t.Fatalf("Decide = %d %q panic=%v, want %d with %q panic=%v", d.Instances, d.Reason, d.Panic, tc.want, tc.reason, tc.panic)
			}
		})
	}
}

// TestDecideProperties drives the decider with random loads, policies and
// holds, round after round as the runner does, and checks what must hold
// whatever the load: the count stays within the bounds (unless a drill
// holds it); it never falls while panicking or during a rollout; it falls
// only to the highest count wanted over the scale-down delay (or to zero
// after the delay without requests); it is monotonic in the load; and the
// decider's memory stays short.
func TestDecideProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := 0; run < 300; run++ {
		lo := rng.IntN(4)
		p := Policy{Min: lo, Max: lo + 1 + rng.IntN(10), QPS: 1 + rng.IntN(50), Window: time.Duration(1+rng.IntN(20)) * time.Second,
			ScaleDownDelay: time.Duration(rng.IntN(90)) * time.Second, Bounds: "policy"}
		if rng.IntN(2) == 0 {
			p.CPU = 10 + rng.IntN(90)
		}
		now := t0
		cur := p.Min
		st := NewState(now, cur)
		var history []Want // every round's wanted count, for the stabilisation check
		var lastReq time.Time
		for round := 0; round < 200; round++ {
			now = now.Add(time.Duration(1+rng.IntN(3)) * time.Second)
			o := Observed{Current: cur, Ready: rng.IntN(cur + 1), CPU: -1, PanicCPU: -1, Memory: -1}
			if rng.IntN(4) > 0 {
				o.QPS = rng.Float64() * float64(p.QPS*p.Max) * 1.5
				o.PanicQPS = o.QPS * rng.Float64() * 3
			}
			if o.QPS > 0 {
				lastReq = now.Add(-time.Second)
			}
			o.LastRequest = lastReq
			if p.CPU > 0 && o.Ready > 0 {
				o.CPU = rng.Float64() * 200
				o.PanicCPU = o.CPU * rng.Float64() * 3
			}
			switch rng.IntN(10) {
			case 0:
				o.Hold, o.HoldReason = HoldDown, "rollout"
			case 1:
				o.Hold, o.HoldReason = HoldAll, "drill"
			}
			d, next := Decide(now, p, o, st)

			// Monotonic: more requests never ask for fewer instances.
			more := o
			more.QPS, more.PanicQPS = o.QPS*2+1, o.PanicQPS*2+1
			more.LastRequest = now
			if d2, _ := Decide(now, p, more, st); d2.Instances < d.Instances {
				t.Fatalf("run %d round %d: more load (%.1f→%.1f qps) gave %d < %d", run, round, o.QPS, more.QPS, d2.Instances, d.Instances)
			}
			switch {
			case o.Hold == HoldAll:
				if d.Instances != cur {
					t.Fatalf("run %d round %d: a drill held %d but the decider chose %d", run, round, cur, d.Instances)
				}
			case d.Instances < p.Min || d.Instances > p.Max:
				t.Fatalf("run %d round %d: %d outside [%d, %d]: %s", run, round, d.Instances, p.Min, p.Max, d.Reason)
			}
			if d.Instances < cur {
				if d.Panic || o.Hold != HoldNone {
					t.Fatalf("run %d round %d: scaled down %d→%d while panicking=%v hold=%v", run, round, cur, d.Instances, d.Panic, o.Hold)
				}
				if d.Instances > 0 {
					for _, w := range history {
						if !w.At.Before(now.Add(-p.ScaleDownDelay)) && min(w.N, cur, p.Max) > d.Instances {
							t.Fatalf("run %d round %d: down to %d though %d was wanted at %v (delay %v): %s", run, round, d.Instances, w.N, w.At, p.ScaleDownDelay, d.Reason)
						}
					}
				} else if !lastReq.IsZero() && lastReq.After(now.Add(-p.ScaleDownDelay)) {
					t.Fatalf("run %d round %d: to zero with a request at %v (delay %v)", run, round, lastReq, p.ScaleDownDelay)
				}
			}
			if len(next.Wanted) > p.Max+2 {
				t.Fatalf("run %d round %d: the memory grew to %d wants", run, round, len(next.Wanted))
			}
			history = append(history, next.Wanted[len(next.Wanted)-1])
			st, cur = next, d.Instances
		}
	}
}

// TestDecideWakeWaitsForReady: an app woken from zero whose first
// instance takes longer than the scale-down delay to be ready, and whose
// held requests show in the counts late, is not sent back to zero before
// that instance is ready; it is idle again the delay after it.
func TestDecideWakeWaitsForReady(t *testing.T) {
	p := Policy{Min: 0, Max: 2, QPS: 10, Window: 2 * time.Second, ScaleDownDelay: 3 * time.Second, Bounds: "policy"}
	st := NewState(t0, 0)
	wake := t0.Add(time.Second)
	d, st := Decide(wake, p, unknown(Observed{Current: 0, LastRequest: t0}), st)
	if d.Instances != 1 {
		t.Fatalf("wake: %d %q, want 1", d.Instances, d.Reason)
	}
	readyAt := wake.Add(10 * time.Second)
	var zeroAt time.Time
	for now := wake.Add(time.Second); now.Before(wake.Add(30 * time.Second)); now = now.Add(time.Second) {
		o := unknown(Observed{Current: d.Instances, LastRequest: t0}) // the held requests' counts never arrive
		if !now.Before(readyAt) {
			o.Ready = o.Current
		}
		d, st = Decide(now, p, o, st)
		if d.Instances == 0 {
			zeroAt = now
			break
		}
	}
	// The last round that saw no instance ready was a second before.
	if earliest := readyAt.Add(-time.Second + p.ScaleDownDelay); zeroAt.IsZero() || zeroAt.Before(earliest) {
		t.Fatalf("back to zero at %v, want no earlier than %v (ready at %v, delay %v)", zeroAt, earliest, readyAt, p.ScaleDownDelay)
	}
}
