package autoscale

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/traffic"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// autoscaleHistory returns the app's autoscale decisions, oldest first.
func (x *rig) autoscaleHistory() []string {
	x.t.Helper()
	hist, err := x.st.Store().Snapshot().History(nil, "acme", "web")
	if err != nil {
		x.t.Fatal(err)
	}
	var out []string
	for _, h := range hist {
		if h.Kind == state.DeployAutoscale {
			out = append(out, h.Message)
		}
	}
	return out
}

// TestSignalPanicsOnce: routers' burst signals, taken before the counts
// show a single request, make the runner panic up to what the signalled
// rate needs, in one decision that says why; more signals of the same
// burst (each router every second, until the new count reaches their
// tables) change nothing, and neither do the counts that follow.
func TestSignalPanicsOnce(t *testing.T) {
	x := newRig(t, time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), apitypes.Autoscale{Min: intp(1), Max: 6, QPS: 20,
		Window: apitypes.Duration(10 * time.Second), ScaleDownDelay: apitypes.Duration(20 * time.Second)})
	if n := x.round(0); n != 1 {
		t.Fatalf("start: %d", n)
	}
	// The burst starts at 12:00:05; two routers each see half of 100/s
	// and signal a quarter second in.
	x.now = x.now.Add(5*time.Second + 250*time.Millisecond)
	sec := x.now.Unix()
	for _, h := range []string{"h1", "h2"} {
		take(x.mem, traffic.Burst{App: "acme/web", Host: h, Unix: sec, Requests: 14, ElapsedMs: 250, SignalRps: 40})
	}
	take(x.mem, traffic.Burst{App: "acme/other", Host: "h1", Unix: sec, Requests: 1000, ElapsedMs: 250, SignalRps: 1})
	if n := x.round(0); n != 6 && n != 5 {
		t.Fatalf("after the signals: %d instances, want 5 or 6 (~104/s for 20/s each)", n)
	}
	hist := x.autoscaleHistory()
	if len(hist) != 1 || !strings.Contains(hist[0], "signalled by the routers") || !strings.Contains(hist[0], "panic") {
		t.Fatalf("autoscale history after the signals: %q", hist)
	}
	first := *x.app().Spec.Instances
	// The same burst goes on: signals every second, then the counts.
	for i := 0; i < 12; i++ {
		x.now = x.now.Add(time.Second)
		for _, h := range []string{"h1", "h2"} {
			take(x.mem, traffic.Burst{App: "acme/web", Host: h, Unix: x.now.Unix(), Requests: 14, ElapsedMs: 250, SignalRps: 40})
		}
		x.requests(time.Second, 100)
		if n := x.round(0); n != first {
			t.Fatalf("%d s into the burst: %d instances, want %d (%s)", i+1, n, first, x.app().AutoscaleReason)
		}
	}
	if hist := x.autoscaleHistory(); len(hist) != 1 {
		t.Fatalf("decisions during one burst: %q, want one", hist)
	}
}

// TestSignalWakesFromZero: an app at zero wakes on a router's signal of
// a held request, before its count reaches the leader.
func TestSignalWakesFromZero(t *testing.T) {
	x := newRig(t, time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), apitypes.Autoscale{Min: intp(0), Max: 3, QPS: 20,
		Window: apitypes.Duration(10 * time.Second), ScaleDownDelay: apitypes.Duration(5 * time.Second)})
	n := x.round(0)
	for i := 0; i < 10 && n != 0; i++ {
		n = x.round(time.Second)
	}
	if n != 0 {
		t.Fatalf("idle: %d instances, want 0", n)
	}
	x.now = x.now.Add(3 * time.Second)
	take(x.mem, traffic.Burst{App: "acme/web", Host: "h1", Unix: x.now.Unix(), Requests: 1, ElapsedMs: 100, SignalRps: 1})
	if n := x.round(0); n != 1 || !strings.Contains(x.app().AutoscaleReason, "woken") {
		t.Fatalf("after a held request's signal: %d instances (%s), want 1, woken", n, x.app().AutoscaleReason)
	}
}

// signalChan is a router feed for Run.
type signalChan chan traffic.Burst

func (c signalChan) Bursts() <-chan traffic.Burst { return c }

// TestRunDecidesOnASignalAtOnce: a signal makes Run decide at once, not
// at its next tick.
func TestRunDecidesOnASignalAtOnce(t *testing.T) {
	x := newRig(t, time.Now(), apitypes.Autoscale{Min: intp(1), Max: 6, QPS: 20, Window: apitypes.Duration(10 * time.Second)})
	sig := make(signalChan)
	r := New(Config{State: x.st.Store(), Commit: x.st, Traffic: x.traffic, Series: x.series, Signals: sig, Tick: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// The first round (at once) gives the app its memory; wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for st, _ := r.Status(ctx, "acme/web"); st.Wanted == 0; st, _ = r.Status(ctx, "acme/web") {
		if time.Now().After(deadline) {
			t.Fatal("no first round")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sig <- traffic.Burst{App: "acme/web", Host: "h1", Unix: time.Now().Unix(), Requests: 26, ElapsedMs: 250, SignalRps: 40}
	for *x.app().Spec.Instances != 5 {
		if time.Now().After(deadline) {
			t.Fatalf("a signal of 100/s left %d instances (%s); want 5 without waiting an hour's tick", *x.app().Spec.Instances, x.app().AutoscaleReason)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
