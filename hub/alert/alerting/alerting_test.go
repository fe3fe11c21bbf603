package alerting

import (
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/alert"
	"github.com/wharf-platform/wharf/hub/series"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/hub/traffic"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestAlertValues: what each metric of a rule evaluates to, from the
// state (hosts down, restarts), the routers' counts (qps) and the series
// (cpu and memory against the app's limits).
func TestAlertValues(t *testing.T) {
	ph := statetest.New(t)
	ph.Pool("p", "dc1")
	ph.Host("h1", "p", 4, 8192, nil)
	ph.Host("h2", "p", 4, 8192, nil)
	ph.Host("h3", "p", 4, 8192, nil)
	ph.Must(state.HostStateType, &state.HostStateRequest{ID: "h2", State: state.HostDown, Reason: "test", Time: statetest.T0})
	ph.App(apitypes.AppSpec{Name: "web", Image: "i", Instances: intp(2), CPU: 500, Memory: 256})
	var sums traffic.Store
	ser := series.NewStore(0)
	h := New(Config{State: ph.Store(), Traffic: &sums, Series: ser})
	now := time.Now()
	th := func(s string) *alert.Threshold {
		v, err := alert.ParseThreshold(s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	check := func(r alert.Rule, want float64, wantOK bool) {
		t.Helper()
		got, ok := h.value(r, now)
		if ok != wantOK || (ok && (got < want*0.99 || got > want*1.01)) {
			t.Errorf("%s %s: %v %v, want %v %v", r.Metric, r.Condition(), got, ok, want, wantOK)
		}
	}
	check(alert.Rule{Pool: "p", Metric: alert.MetricHostDown, Above: th("0")}, 1, true)

	// qps: 50 requests a second over the last 10 s.
	var secs []traffic.Second
	for i := 1; i <= 10; i++ {
		secs = append(secs, traffic.Second{App: "acme/web", Unix: now.Unix() - int64(i), Requests: 50})
	}
	sums.Add(now, secs)
	check(alert.Rule{Tenant: "acme", App: "web", Metric: alert.MetricQPS, Above: th("10")}, 50, true)

	// cpu: one instance burns 0.25 core, the other 0.5, against a limit
	// of 0.5 core: 75% on average. memory: 64 and 192 MiB of 256: 50%.
	if got, ok := h.value(alert.Rule{Tenant: "acme", App: "web", Metric: alert.MetricCPU, Above: th("80%")}, now); ok {
		t.Fatalf("cpu with no samples: %v", got)
	}
	for i, rate := range []float64{0.25, 0.5} {
		o := series.Owner{Kind: "instance", ID: []string{"a", "b"}[i], App: "acme/web", Tenant: "acme"}
		for s := 0; s <= 4; s++ {
			at := now.Add(time.Duration(s-4) * 10 * time.Second)
			ser.Add(o, at, map[string]float64{series.CPUSeconds: 100 + rate*float64(s*10), series.MemoryWorkingSet: float64(64<<20) * float64(1+2*i)})
		}
	}
	check(alert.Rule{Tenant: "acme", App: "web", Metric: alert.MetricCPU, Above: th("80%")}, 75, true)
	check(alert.Rule{Tenant: "acme", App: "web", Metric: alert.MetricMemory, Above: th("90%")}, 50, true)
	check(alert.Rule{Tenant: "acme", App: "web", Metric: alert.MetricMemory, Above: th("100MiB")}, 128<<20, true)

	// restarts within the window, from the instances' reports.
	check(alert.Rule{Tenant: "acme", App: "web", Metric: alert.MetricRestarts, Above: th("0"), For: alert.Duration(time.Minute)}, 0, true)
}

func intp(n int) *int { return &n }

// TestRuleOf: a stored rule reads back into the evaluator's terms; one the
// evaluator cannot use is an error, not a rule.
func TestRuleOf(t *testing.T) {
	r, err := ruleOf(state.AlertRule{ID: "a1", Tenant: "acme", App: "web", Metric: "memory", Above: "512MiB", For: state.Duration(time.Minute)})
	if err != nil || r.Above == nil || r.Above.Value != 512<<20 || r.Above.Unit != alert.UnitBytes || r.Below != nil || r.For != alert.Duration(time.Minute) {
		t.Fatalf("ruleOf: %+v, %v", r, err)
	}
	for _, bad := range []state.AlertRule{
		{ID: "a2", App: "web", Metric: "cpu", Above: "eighty"},
		{ID: "a3", App: "web", Metric: "cpu", Above: "80%", Below: "10%"},
		{ID: "a4", App: "web", Metric: "bogus", Above: "80%"},
	} {
		if _, err := ruleOf(bad); err == nil {
			t.Errorf("ruleOf(%+v) accepted", bad)
		}
	}
}
