package alert

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// at is t0 plus n seconds.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

type step struct {
	sec   int
	value float64
	ok    bool
	want  string // "", Firing or Resolved
}

// run feeds steps to e for r and checks each transition.
func run(t *testing.T, e *Evaluator, r Rule, steps []step) []*Transition {
	t.Helper()
	var out []*Transition
	for i, s := range steps {
		tr := e.Observe(r, at(s.sec), s.value, s.ok)
		got := ""
		if tr != nil {
			got = tr.State
			if tr.At != at(s.sec) || tr.Rule.ID != r.ID {
				t.Fatalf("step %d (t=%ds): transition %+v has wrong At or rule", i, s.sec, tr)
			}
			out = append(out, tr)
		}
		if got != s.want {
			t.Fatalf("step %d (t=%ds, value %v, ok %v): transition %q, want %q", i, s.sec, s.value, s.ok, got, s.want)
		}
	}
	return out
}

func cpuRule(t *testing.T, cond string, forSec int) Rule {
	r := Rule{ID: "r1", App: "web", Metric: MetricCPU, Above: th(t, cond), For: Duration(time.Duration(forSec) * time.Second)}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEvaluatorFiresAfterForAndResolvesOnce(t *testing.T) {
	e := NewEvaluator()
	r := cpuRule(t, "80%", 60)
	trs := run(t, e, r, []step{
		{0, 50, true, ""},
		{10, 90, true, ""}, // pending since 10
		{40, 95, true, ""},
		{69, 85, true, ""},       // 59 s: not yet
		{70, 80.5, true, Firing}, // 60 s
		{80, 99, true, ""},       // fires once
		{90, 80, true, Resolved}, // 80 is not above 80
		{100, 10, true, ""},      // resolves once
		{110, 90, true, ""},      // pending again from scratch
		{170, 90, true, Firing},
	})
	if f := trs[0]; f.Since != at(10) || f.Value != 80.5 {
		t.Fatalf("firing: %+v, want since t=10 and value 80.5", f)
	}
	if r := trs[1]; r.Since != at(10) || r.Value != 80 {
		t.Fatalf("resolved: %+v, want since t=10 and value 80", r)
	}
	if f := trs[2]; f.Since != at(110) {
		t.Fatalf("second firing since %v, want t=110", f.Since)
	}
}

func TestEvaluatorDipResetsPending(t *testing.T) {
	e := NewEvaluator()
	run(t, e, cpuRule(t, "80%", 60), []step{
		{0, 90, true, ""},
		{50, 90, true, ""},
		{55, 70, true, ""}, // dip
		{60, 90, true, ""}, // pending restarts here
		{100, 90, true, ""},
		{119, 90, true, ""},
		{120, 90, true, Firing},
	})
}

func TestEvaluatorForZeroFiresOnFirstSample(t *testing.T) {
	e := NewEvaluator()
	trs := run(t, e, cpuRule(t, "80%", 0), []step{
		{0, 81, true, Firing},
		{1, 81, true, ""},
		{2, 1, true, Resolved},
		{3, 81, true, Firing},
	})
	if trs[0].Since != at(0) {
		t.Fatalf("since %v", trs[0].Since)
	}
}

func TestEvaluatorBelow(t *testing.T) {
	e := NewEvaluator()
	r := Rule{ID: "q", App: "web", Metric: MetricQPS, Below: th(t, "0.5"), For: Duration(30 * time.Second)}
	run(t, e, r, []step{
		{0, 0.5, true, ""}, // not below
		{10, 0.4, true, ""},
		{40, 0, true, Firing},
		{50, 0.5, true, Resolved},
	})
}

func TestEvaluatorNoData(t *testing.T) {
	r := cpuRule(t, "80%", 60)
	t.Run("resets pending", func(t *testing.T) {
		run(t, NewEvaluator(), r, []step{
			{0, 90, true, ""},
			{30, 0, false, ""},
			{60, 90, true, ""}, // would fire had the gap counted
			{90, math.NaN(), true, ""},
			{100, 90, true, ""},
			{150, math.Inf(1), true, ""},
			{160, 90, true, ""},
			{219, 90, true, ""},
			{220, 90, true, Firing},
		})
	})
	t.Run("keeps firing", func(t *testing.T) {
		e := NewEvaluator()
		trs := run(t, e, r, []step{
			{0, 90, true, ""},
			{60, 91, true, Firing},
			{70, 0, false, ""},
			{600, 0, false, ""},
			{610, 92, true, ""}, // still the same alert
			{620, 10, true, Resolved},
		})
		if trs[1].Since != at(0) {
			t.Fatalf("resolved alert since %v, want t=0", trs[1].Since)
		}
		if trs[1].Value != 10 {
			t.Fatalf("resolved value %v", trs[1].Value)
		}
	})
	t.Run("first sample missing", func(t *testing.T) {
		run(t, NewEvaluator(), cpuRule(t, "80%", 0), []step{{0, 0, false, ""}, {1, 99, true, Firing}})
	})
}

func TestEvaluatorDefinitionChange(t *testing.T) {
	r := cpuRule(t, "80%", 60)
	t.Run("pending restarts", func(t *testing.T) {
		e := NewEvaluator()
		run(t, e, r, []step{{0, 90, true, ""}, {50, 90, true, ""}})
		r2 := r
		r2.Above = th(t, "85%")
		run(t, e, r2, []step{{60, 90, true, ""}, {119, 90, true, ""}, {120, 90, true, Firing}})
	})
	t.Run("webhook change keeps state", func(t *testing.T) {
		e := NewEvaluator()
		run(t, e, r, []step{{0, 90, true, ""}})
		r2 := r
		r2.Webhook, r2.Secret = "https://example.com/new", "k"
		trs := run(t, e, r2, []step{{60, 90, true, Firing}})
		if trs[0].Rule.Webhook != r2.Webhook || trs[0].Rule.Secret != "k" {
			t.Fatalf("transition carries the old rule: %+v", trs[0].Rule)
		}
	})
	for name, change := range map[string]func(r *Rule){
		"for":       func(r *Rule) { r.For = Duration(2 * time.Minute) },
		"threshold": func(r *Rule) { r.Above = th(t, "90%") },
		"direction": func(r *Rule) { r.Above, r.Below = nil, th(t, "80%") },
		"metric":    func(r *Rule) { r.Metric = MetricMemory },
		"scope":     func(r *Rule) { r.App = "api" },
	} {
		t.Run("firing resolves on "+name, func(t *testing.T) {
			e := NewEvaluator()
			run(t, e, r, []step{{0, 90, true, ""}, {60, 90, true, Firing}})
			r2 := r
			change(&r2)
			tr := e.Observe(r2, at(70), 95, true)
			if tr == nil || tr.State != Resolved || tr.Rule.Condition() != "above 80%" || tr.Rule.For != r.For || tr.Rule.Metric != r.Metric || tr.Value != 90 || tr.Since != at(0) {
				t.Fatalf("definition change while firing: %+v, want the old rule's resolution", tr)
			}
			if len(e.Active()) != 0 {
				t.Fatalf("still active: %+v", e.Active())
			}
		})
	}
}

func TestEvaluatorRestartsFireAtOnce(t *testing.T) {
	e := NewEvaluator()
	r := Rule{ID: "rs", App: "web", Metric: MetricRestarts, Above: th(t, "3"), For: Duration(10 * time.Minute)}
	run(t, e, r, []step{
		{0, 3, true, ""},
		{10, 4, true, Firing}, // the count is over the window already
		{20, 5, true, ""},
		{700, 2, true, Resolved},
	})
}

func TestEvaluatorActiveAndForget(t *testing.T) {
	e := NewEvaluator()
	a := cpuRule(t, "80%", 0)
	a.ID, a.Webhook, a.Secret = "b", "https://example.com", "k"
	b := cpuRule(t, "50%", 0)
	b.ID = "a"
	c := cpuRule(t, "50%", 0)
	c.ID = "c"
	e.Observe(a, at(0), 90, true)
	e.Observe(a, at(5), 95, true)
	e.Observe(b, at(1), 60, true)
	e.Observe(c, at(1), 10, true)
	act := e.Active()
	if len(act) != 2 || act[0].Rule.ID != "a" || act[1].Rule.ID != "b" {
		t.Fatalf("Active = %+v, want a and b", act)
	}
	if x := act[1]; x.State != Firing || x.Value != 95 || x.Since != at(0) || x.At != at(0) || x.Rule.Secret != "" || x.Rule.Webhook == "" {
		t.Fatalf("Active[1] = %+v", x)
	}
	if tr := e.Forget("c", at(9)); tr != nil {
		t.Fatalf("Forget of an inactive rule: %+v", tr)
	}
	tr := e.Forget("b", at(10))
	if tr == nil || tr.State != Resolved || tr.At != at(10) || tr.Rule.Secret != "k" {
		t.Fatalf("Forget of a firing rule: %+v", tr)
	}
	if act := e.Active(); len(act) != 1 || act[0].Rule.ID != "a" {
		t.Fatalf("Active after Forget = %+v", act)
	}
	// A forgotten rule starts over.
	a.For = Duration(time.Minute)
	if tr := e.Observe(a, at(20), 99, true); tr != nil {
		t.Fatalf("forgotten rule: %+v", tr)
	}
}
