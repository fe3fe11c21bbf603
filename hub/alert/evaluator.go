package alert

import (
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// Transition states.
const (
	Firing   = "firing"
	Resolved = "resolved"
)

// Transition is a rule starting to fire or resolving; Active lists the
// firing ones in the same form.
type Transition struct {
	Rule  Rule
	State string    // Firing or Resolved
	Value float64   // the value that caused the transition (the latest, in Active)
	Since time.Time // when the condition began to hold
	At    time.Time // when the rule fired or resolved
}

// Evaluator tracks each rule's state across evaluations: inactive, pending
// (the condition holds, not yet for the rule's For) or firing. It lives on
// the leader, in memory; a new leader starts from nothing. It is safe for
// concurrent use.
type Evaluator struct {
	mu    sync.Mutex
	rules map[string]*ruleState
}

type ruleState struct {
	rule    Rule
	def     string    // the definition the state belongs to
	pending time.Time // zero: the condition does not hold
	firing  bool
	firedAt time.Time
	value   float64
}

// NewEvaluator returns an evaluator with no state.
func NewEvaluator() *Evaluator {
	return &Evaluator{rules: map[string]*ruleState{}}
}

// definition is what restarts a rule's state when it changes: not the
// webhook nor the secret, which only say where to report.
func definition(r Rule) string {
	return strings.Join([]string{r.Tenant, r.App, r.Pool, string(r.Metric), r.Condition(), r.For.String()}, "\x00")
}

// hold is how long the condition must hold before the rule fires. A
// restarts rule's For is the counting window, so it fires at once.
func hold(r Rule) time.Duration {
	if r.Metric == MetricRestarts {
		return 0
	}
	return time.Duration(r.For)
}

// Observe feeds the value of rule r's metric at now (ok=false, NaN or
// ±Inf: no data) and returns the transition it causes, if any:
//
//   - the condition held at every sample over at least the rule's For
//     (restarts: at this sample) → firing, once;
//   - the condition no longer holds while firing → resolved, once;
//   - no data resets a pending condition (it must hold continuously, as
//     seen in the data) but leaves a firing rule firing: only a sample
//     that fails the condition resolves it;
//   - a changed definition (scope, metric, threshold or For) restarts the
//     rule: if it was firing, Observe returns the old definition's
//     resolution and the sample counts for nothing; otherwise the sample
//     is the new definition's first.
//
// Rules are told apart by ID; r is assumed valid. Samples are expected in
// time order; one earlier than a pending start only keeps it pending.
func (e *Evaluator) Observe(r Rule, now time.Time, value float64, ok bool) *Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	def := definition(r)
	st := e.rules[r.ID]
	if st != nil && st.def != def {
		old := *st
		st = &ruleState{rule: r, def: def}
		e.rules[r.ID] = st
		if old.firing {
			return &Transition{Rule: old.rule, State: Resolved, Value: old.value, Since: old.pending, At: now}
		}
	}
	if st == nil {
		st = &ruleState{rule: r, def: def}
		e.rules[r.ID] = st
	}
	st.rule = *r.Copy() // the latest webhook and secret
	if !ok || math.IsNaN(value) || math.IsInf(value, 0) {
		if !st.firing {
			st.pending = time.Time{}
		}
		return nil
	}
	st.value = value
	if !r.holds(value) {
		if !st.firing {
			st.pending = time.Time{}
			return nil
		}
		since := st.pending
		st.firing, st.pending = false, time.Time{}
		return &Transition{Rule: r, State: Resolved, Value: value, Since: since, At: now}
	}
	if st.pending.IsZero() {
		st.pending = now
	}
	if st.firing || now.Sub(st.pending) < hold(r) {
		return nil
	}
	st.firing, st.firedAt = true, now
	return &Transition{Rule: r, State: Firing, Value: value, Since: st.pending, At: now}
}

// Forget drops the state of a deleted rule. If the rule was firing it
// returns its resolution at now, for the caller to report or not.
func (e *Evaluator) Forget(ruleID string, now time.Time) *Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.rules[ruleID]
	delete(e.rules, ruleID)
	if st == nil || !st.firing {
		return nil
	}
	return &Transition{Rule: st.rule, State: Resolved, Value: st.value, Since: st.pending, At: now}
}

// Active returns the firing rules, by rule ID, with At the time each
// fired and Value the latest sample. The rules' secrets are blanked: the
// list is meant for the API.
func (e *Evaluator) Active() []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Transition
	for _, st := range e.rules {
		if !st.firing {
			continue
		}
		r := *st.rule.Copy()
		r.Secret = ""
		out = append(out, Transition{Rule: r, State: Firing, Value: st.value, Since: st.pending, At: st.firedAt})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rule.ID < out[j].Rule.ID })
	return out
}
