package state

import (
	"fmt"
	"slices"
	"time"
)

func (w *writer) planCreate(r *PlanCreateRequest) *Error {
	if r.Plan.Name == "" || r.Plan.Currency == "" {
		return Errorf(KindInvalid, "a plan needs a name and a currency")
	}
	old, err := w.snap().Plan(nil, r.Plan.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if old != nil {
		return &Error{Kind: KindConflict, Msg: "plan " + r.Plan.Name + " already exists", Field: "name"}
	}
	p := r.Plan.Copy()
	p.CreatedAt = r.Time
	w.meta(&p.Meta, nil)
	return w.insert(TablePlans, p)
}

func (w *writer) planDelete(r *PlanDeleteRequest) *Error {
	s := w.snap()
	p, err := s.Plan(nil, r.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if p == nil {
		return Errorf(KindNotFound, "plan %s not found", r.Name)
	}
	ts, err := s.Tenants(nil)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, t := range ts {
		if t.CurrentPlan() == r.Name {
			return Errorf(KindConflict, "plan %s is tenant %s's plan; move the tenant to another plan first", r.Name, t.Name)
		}
	}
	return w.delete(TablePlans, p)
}

func (w *writer) tenantUpdate(r *TenantUpdateRequest) *Error {
	old, err := w.snap().Tenant(nil, r.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if old == nil {
		return Errorf(KindNotFound, "tenant %s not found", r.Name)
	}
	t := old.Copy()
	if r.Plan != nil {
		if e := w.setPlan(t, *r.Plan, r.Time); e != nil {
			return e
		}
	}
	budgetChanged := false
	if r.Budget != nil && *r.Budget != t.Budget {
		t.Budget, budgetChanged = *r.Budget, true
	}
	if r.BudgetHardStop != nil && *r.BudgetHardStop != t.BudgetHardStop {
		t.BudgetHardStop, budgetChanged = *r.BudgetHardStop, true
	}
	if r.BudgetWebhook != nil {
		t.BudgetWebhook = *r.BudgetWebhook
	}
	if t.Budget != "" && len(t.Plans) == 0 {
		return &Error{Kind: KindInvalid, Field: "budget", Msg: fmt.Sprintf("tenant %s has no plan: a budget is in its plan's currency, so give it a plan first", t.Name)}
	}
	if budgetChanged && t.BudgetState != nil {
		// The next check decides again against the new terms.
		t.BudgetState.Over = false
	}
	w.meta(&t.Meta, &old.Meta)
	return w.insert(TableTenants, t)
}

// setPlan adds a plan period to t: the first from the start of the hour of
// now, later ones from the next hour.
func (w *writer) setPlan(t *Tenant, name string, now time.Time) *Error {
	if name == "" {
		return &Error{Kind: KindInvalid, Field: "plan", Msg: "a tenant's plan can be changed, not removed"}
	}
	p, err := w.snap().Plan(nil, name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if p == nil {
		return &Error{Kind: KindInvalid, Field: "plan", Msg: fmt.Sprintf("plan %s does not exist", name)}
	}
	hour := now.UTC().Truncate(time.Hour)
	from := hour
	if len(t.Plans) > 0 {
		if cur := t.Plans[len(t.Plans)-1]; cur.Currency != p.Currency {
			return &Error{Kind: KindInvalid, Field: "plan", Msg: fmt.Sprintf("plan %s is in %s but tenant %s is billed in %s: a tenant's plans share one currency", name, p.Currency, t.Name, cur.Currency)}
		}
		from = hour.Add(time.Hour)
	}
	// A change not yet in force is replaced by this one.
	t.Plans = slices.DeleteFunc(t.Plans, func(pp PlanPeriod) bool { return !pp.From.Before(from) })
	if len(t.Plans) > 0 && t.Plans[len(t.Plans)-1].Plan == name {
		return nil // already on it
	}
	t.Plans = append(t.Plans, PlanPeriod{From: from, Plan: name, PlanTerms: p.PlanTerms.copy()})
	return nil
}

func (w *writer) budgetCheck(r *BudgetCheckRequest) *Error {
	old, err := w.snap().Tenant(nil, r.Tenant)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if old == nil {
		return Errorf(KindNotFound, "tenant %s not found", r.Tenant)
	}
	if r.Month == "" {
		return Errorf(KindInvalid, "a budget check needs its month")
	}
	t := old.Copy()
	if t.BudgetState == nil || t.BudgetState.Month != r.Month {
		t.BudgetState = &BudgetState{Month: r.Month}
	}
	bs := t.BudgetState
	bs.Spent, bs.Over = r.Spent, r.Over
	for _, pc := range r.Percents {
		if pc <= 0 || slices.ContainsFunc(bs.Alerts, func(a BudgetAlert) bool { return a.Percent == pc }) {
			continue
		}
		bs.Alerts = append(bs.Alerts, BudgetAlert{Percent: pc, At: r.Time, Spent: r.Spent})
		typ, what := "budget.warning", fmt.Sprintf("has used %d%% of", pc)
		if pc >= 100 {
			typ, what = "budget.exceeded", "has reached"
		}
		msg := fmt.Sprintf("tenant %s %s its monthly budget: %s of %s in %s", t.Name, what, r.Spent, t.Budget, r.Month)
		if pc >= 100 && t.BudgetHardStop {
			msg += "; new instances are refused until the budget is raised or the month ends"
		}
		if e := w.event(Event{Time: r.Time, Type: typ, Subject: t.Name + "/", Message: msg}); e != nil {
			return e
		}
	}
	w.meta(&t.Meta, &old.Meta)
	return w.insert(TableTenants, t)
}

func (w *writer) budgetNotified(r *BudgetNotifiedRequest) *Error {
	old, err := w.snap().Tenant(nil, r.Tenant)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if old == nil || old.BudgetState == nil || old.BudgetState.Month != r.Month {
		return Errorf(KindNotFound, "tenant %s has no budget alerts in %s", r.Tenant, r.Month)
	}
	t := old.Copy()
	i := slices.IndexFunc(t.BudgetState.Alerts, func(a BudgetAlert) bool { return a.Percent == r.Percent })
	if i < 0 {
		return Errorf(KindNotFound, "tenant %s has no %d%% budget alert in %s", r.Tenant, r.Percent, r.Month)
	}
	t.BudgetState.Alerts[i].Notified = true
	w.meta(&t.Meta, &old.Meta)
	return w.insert(TableTenants, t)
}

// checkBudget refuses an app write that would add instances while its
// tenant is over a budget with a hard stop. Running instances are never
// touched: only a new app or a higher count is refused.
func (w *writer) checkBudget(t *Tenant, app *App) *Error {
	if !t.BudgetHardStop || t.BudgetState == nil || !t.BudgetState.Over || app.Spec.Instances == nil {
		return nil
	}
	old, e := w.app(app.Tenant, app.Name)
	if e != nil {
		return e
	}
	before := 0
	if old != nil && old.Spec.Instances != nil {
		before = *old.Spec.Instances
	}
	if *app.Spec.Instances <= before {
		return nil
	}
	return &Error{Kind: KindRefused, Field: "instances", Msg: fmt.Sprintf(
		"tenant %s is over its monthly budget (%s of %s in %s) and has a hard stop: no instances can be added until the budget is raised or the month ends (running instances keep running)",
		t.Name, t.BudgetState.Spent, t.Budget, t.BudgetState.Month)}
}
