package autoscale

import (
	"fmt"
	"math"
	"time"
)

// Policy is an app's policy as Decide uses it: Min and Max after the
// schedules.
type Policy struct {
	Min, Max int
	// Targets; zero: none.
	CPU, Memory, QPS int
	Window           time.Duration
	ScaleDownDelay   time.Duration
	// Bounds says where Min and Max come from ("policy", or a schedule).
	Bounds string
}

// Hold keeps Decide from changing a count that something else is
// changing.
type Hold int

// Holds.
const (
	HoldNone Hold = iota
	HoldDown      // a rollout: no scale down (its surge is on top of the count)
	HoldAll       // a drill: the count stays as it is
)

// Observed is what an app runs and what its instances saw.
type Observed struct {
	// Current is the committed count; Ready the ready instances of any
	// version (the ones that carry the load).
	Current, Ready int
	// QPS is the routed requests per second over the window, summed over
	// every router; PanicQPS over the last few seconds.
	QPS, PanicQPS float64
	// CPU and Memory are the ready instances' mean use in percent of the
	// app's limits over the window; PanicCPU over the last few seconds.
	// Negative: unknown.
	CPU, PanicCPU, Memory float64
	// SignalQPS is the requests per second routers signalled within the
	// seconds the counts do not show yet (a burst seen as it starts),
	// summed over the routers; 0: none.
	SignalQPS float64
	// LastRequest is the latest second with a routed request (zero: none
	// seen).
	LastRequest time.Time
	Hold        Hold
	HoldReason  string
}

// State is the decider's memory between rounds.
type State struct {
	// Since is when this decider began watching: an app is idle no
	// earlier than ScaleDownDelay after it.
	Since time.Time
	// Wanted are the counts wanted within the last ScaleDownDelay, oldest
	// first.
	Wanted []Want
	// PanicUntil: panicking until then.
	PanicUntil time.Time
	// Woken is when the app was last woken from zero (zero: never by
	// this decider).
	Woken time.Time
	// Asleep is when the app went to zero (or, for a decider that took
	// over an app at zero, when it did).
	Asleep time.Time
}

// Want is one round's wanted count.
type Want struct {
	At time.Time
	N  int
}

// NewState is the memory of a decider that takes over an app running
// current instances at now: as if it had wanted current all along, so it
// scales down no earlier than ScaleDownDelay from now. An app at zero
// stays asleep until a request comes (a new leader wakes nothing).
func NewState(now time.Time, current int) State {
	st := State{Since: now, Wanted: []Want{{At: now, N: current}}}
	if current == 0 {
		st.Since, st.Asleep = time.Time{}, now
	}
	return st
}

// Decision is Decide's answer.
type Decision struct {
	Instances int
	Reason    string
	Panic     bool
}

// startGrace is how long a woken app may wait for its first ready
// instance and still not count as idle: the requests that woke it are
// held until an instance is ready, and the counts that show them may
// reach the leader late. An app that never starts is idle again after it.
const startGrace = 5 * time.Minute

// panicFactor: load above this many times what the current count serves
// makes the decider panic.
const panicFactor = 2

// tolerance: a CPU or memory use within this fraction of its target
// changes nothing (the use jitters; a count does not have to).
const tolerance = 0.1

// PanicWindow is the stretch of the last seconds a panic reacts on.
func PanicWindow(window time.Duration) time.Duration {
	return max(2*time.Second, window/5)
}

// Decide returns the count an app should run now and the decider's new
// memory. It is a pure function of its arguments.
func Decide(now time.Time, p Policy, o Observed, st State) (Decision, State) {
	cur := o.Current
	next := State{Since: st.Since, PanicUntil: st.PanicUntil, Woken: st.Woken, Asleep: st.Asleep}
	if o.Hold == HoldAll {
		next.Wanted = keepWanted(st.Wanted, now, p.ScaleDownDelay, Want{At: now, N: cur})
		return Decision{Instances: cur, Reason: "held: " + o.HoldReason}, next
	}
	base := o.Ready
	if base == 0 {
		base = cur
	}
	want, reason := -1, ""
	consider := func(n int, why string) {
		if n > want {
			want, reason = n, why
		}
	}
	if p.QPS > 0 {
		n := ceil(o.QPS / float64(p.QPS))
		consider(n, fmt.Sprintf("qps %.1f/s over %s for %d/s per instance: %d", o.QPS, p.Window, p.QPS, n))
	}
	if p.CPU > 0 && o.CPU >= 0 {
		n := proportional(cur, base, o.CPU, float64(p.CPU))
		consider(n, fmt.Sprintf("cpu %.0f%% of %d ready for %d%%: %d", o.CPU, base, p.CPU, n))
	}
	if p.Memory > 0 && o.Memory >= 0 {
		n := proportional(cur, base, o.Memory, float64(p.Memory))
		consider(n, fmt.Sprintf("memory %.0f%% of %d ready for %d%%: %d", o.Memory, base, p.Memory, n))
	}
	if want < 0 {
		want, reason = cur, "no load data yet: holding"
	}

	// Panic: the last seconds show more than twice the capacity of the
	// current count, or a router signalled at least that much within the
	// current second (its rate is where the routers were told to signal).
	var panicNeed float64 // instances the last seconds' load needs
	panicWhat := ""
	over := " over the last " + PanicWindow(p.Window).String()
	if p.QPS > 0 {
		panicNeed, panicWhat = o.PanicQPS/float64(p.QPS), fmt.Sprintf("qps %.1f/s", o.PanicQPS)+over
	}
	if p.CPU > 0 && o.PanicCPU >= 0 {
		if n := float64(base) * o.PanicCPU / float64(p.CPU); n > panicNeed {
			panicNeed, panicWhat = n, fmt.Sprintf("cpu %.0f%% of %d ready", o.PanicCPU, base)+over
		}
	}
	signalled := false
	if p.QPS > 0 && o.SignalQPS > 0 {
		n := o.SignalQPS / float64(p.QPS)
		if n > panicNeed {
			panicNeed, panicWhat = n, fmt.Sprintf("qps %.1f/s signalled by the routers within the current second", o.SignalQPS)
		}
		signalled = n >= panicFactor*float64(cur)
	}
	panicWant := ceil(panicNeed)
	if cur > 0 && (panicNeed > panicFactor*float64(cur) || signalled) {
		next.PanicUntil = now.Add(p.Window)
	}
	panicking := now.Before(next.PanicUntil)
	if panicking {
		if panicWant > want {
			want, reason = panicWant, fmt.Sprintf("panic: %s needs %d", panicWhat, panicWant)
		}
		if want < cur {
			want, reason = cur, "panic: no scale down until the load is calm for "+p.Window.String()
		}
	}

	// Scale to zero and back.
	idle := false
	if p.Min == 0 {
		since := now.Add(-p.ScaleDownDelay)
		// Woken and still starting: idle no earlier than the delay after
		// the first instance is ready.
		starting := cur > 0 && o.Ready == 0 && !st.Woken.IsZero() && now.Before(st.Woken.Add(startGrace))
		if starting {
			next.Since = now
		}
		if cur == 0 {
			// Asleep: a request counted since it went to zero wakes it,
			// however late its count reached the leader. A count names
			// the second its router saw the request, and the way to the
			// leader takes seconds under load: more than a short
			// scale-down delay, within which a count would be too old.
			idle = o.QPS == 0 && (o.LastRequest.IsZero() || o.LastRequest.Before(st.Asleep.Truncate(time.Second)))
		} else {
			idle = !starting && o.QPS == 0 && !o.LastRequest.After(since) && !st.Since.After(since) && !panicking
		}
		switch {
		case starting && want < 1:
			want, reason = 1, "woken by a request: waiting for the first instance to be ready"
		case idle:
			want, reason = 0, fmt.Sprintf("idle: no routed request for %s", p.ScaleDownDelay)
		case want < 1 && cur == 0:
			want, reason = 1, "woken by a request"
		case want < 1:
			want, reason = 1, fmt.Sprintf("%s (not idle for %s yet)", reason, p.ScaleDownDelay)
		}
	}

	// Bounds.
	if want < p.Min {
		want, reason = p.Min, fmt.Sprintf("%s; min %d (%s)", reason, p.Min, p.Bounds)
	}
	if want > p.Max {
		want, reason = p.Max, fmt.Sprintf("%s; max %d (%s)", reason, p.Max, p.Bounds)
	}
	if o.Hold == HoldDown && want < cur {
		want, reason = cur, "held: "+o.HoldReason
	}
	if cur == 0 && want > 0 {
		// Woken: idle again no earlier than ScaleDownDelay from now (the
		// first instance may take longer than that to start).
		next.Since, next.Woken = now, now
	}
	if cur > 0 && want == 0 {
		next.Asleep = now
	}

	// Down slowly: to the highest count wanted over ScaleDownDelay. The
	// bounds are hard, and idleness was already waited for.
	next.Wanted = keepWanted(st.Wanted, now, p.ScaleDownDelay, Want{At: now, N: want})
	if want < cur && !idle {
		high := want
		for _, w := range next.Wanted {
			high = max(high, w.N)
		}
		if high = min(high, cur, p.Max); high > want {
			want, reason = high, fmt.Sprintf("%s; down no lower than %d, the highest wanted over %s", reason, high, p.ScaleDownDelay)
		}
	}
	return Decision{Instances: want, Reason: reason, Panic: panicking}, next
}

// proportional is ceil(base × observed / target), or the current count
// when the use is within tolerance of its target or when not every
// instance is ready to share the load yet.
func proportional(cur, base int, observed, target float64) int {
	ratio := observed / target
	if math.Abs(ratio-1) <= tolerance {
		return cur
	}
	n := ceil(float64(base) * ratio)
	if n < cur && base < cur {
		return cur
	}
	return n
}

func ceil(x float64) int {
	if math.IsNaN(x) || x <= 0 {
		return 0
	}
	if x > 1e9 {
		return 1e9
	}
	// A hair under a whole number (float noise) is that number.
	return int(math.Ceil(x - 1e-9))
}

// keepWanted returns ws without what is older than delay, plus w (a new
// slice: the caller's stays as it was). Only what may still become the
// highest is kept: an older count no higher than a newer one never will,
// so the list stays short (it falls from oldest to newest).
func keepWanted(ws []Want, now time.Time, delay time.Duration, w Want) []Want {
	out := make([]Want, 0, len(ws)+1)
	for _, x := range ws {
		if !x.At.Before(now.Add(-delay)) {
			out = append(out, x)
		}
	}
	for len(out) > 0 && out[len(out)-1].N <= w.N {
		out = out[:len(out)-1]
	}
	return append(out, w)
}
