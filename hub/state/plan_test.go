package state

import (
	"errors"
	"testing"
	"time"
)

func boolp(b bool) *bool { return &b }

func fillPlans(h *harness) {
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "acme"}, Time: t0})
	h.must(PlanCreateType, &PlanCreateRequest{Plan: Plan{Name: "std", PlanTerms: PlanTerms{Currency: "USD", Prices: map[string]string{"instance_hour": "0.01"}, MonthlyFee: "5.00"}}, Time: t0})
	h.must(PlanCreateType, &PlanCreateRequest{Plan: Plan{Name: "pro", PlanTerms: PlanTerms{Currency: "USD", Prices: map[string]string{"instance_hour": "0.02"}}}, Time: t0})
	h.must(PlanCreateType, &PlanCreateRequest{Plan: Plan{Name: "yen", PlanTerms: PlanTerms{Currency: "JPY"}}, Time: t0})
}

// TestPlanHistory: a tenant's first plan applies from the start of the
// current hour, a change from the next hour; a second change in the same
// hour replaces the first; going back to the plan in force cancels it.
func TestPlanHistory(t *testing.T) {
	h := newHarness(t)
	fillPlans(h)
	set := func(plan string, at time.Time) error {
		return h.apply(TenantUpdateType, &TenantUpdateRequest{Name: "acme", Plan: &plan, Time: at})
	}
	history := func() []PlanPeriod {
		ten, _ := h.snap().Tenant(nil, "acme")
		return ten.Plans
	}
	want := func(what string, periods ...any) {
		t.Helper()
		got := history()
		if len(got) != len(periods)/2 {
			t.Fatalf("%s: history %+v", what, got)
		}
		for i := range got {
			if got[i].Plan != periods[2*i].(string) || !got[i].From.Equal(periods[2*i+1].(time.Time)) {
				t.Fatalf("%s: period %d is %s from %s, want %v from %v", what, i, got[i].Plan, got[i].From, periods[2*i], periods[2*i+1])
			}
		}
	}
	at := func(h, m int) time.Time { return time.Date(2026, 12, 4, h, m, 0, 0, time.UTC) }
	if err := set("std", at(10, 20)); err != nil {
		t.Fatal(err)
	}
	want("first plan", "std", at(10, 0))
	if p := history()[0]; p.Currency != "USD" || p.Prices["instance_hour"] != "0.01" || p.MonthlyFee != "5.00" {
		t.Fatalf("the period does not carry the plan's terms: %+v", p)
	}
	if err := set("pro", at(10, 30)); err != nil {
		t.Fatal(err)
	}
	want("a change", "std", at(10, 0), "pro", at(11, 0))
	if err := set("std", at(10, 45)); err != nil {
		t.Fatal(err)
	}
	want("back before the change took effect", "std", at(10, 0))
	if err := set("pro", at(12, 59)); err != nil {
		t.Fatal(err)
	}
	if err := set("pro", at(13, 10)); err != nil {
		t.Fatal(err)
	}
	want("the same plan again", "std", at(10, 0), "pro", at(13, 0))

	// Refused, nothing changes.
	before := h.snap().LatestIndex()
	for _, tt := range []struct {
		name string
		req  *TenantUpdateRequest
		kind error
	}{
		{"unknown plan", &TenantUpdateRequest{Name: "acme", Plan: strp("gold"), Time: at(14, 0)}, ErrInvalid},
		{"other currency", &TenantUpdateRequest{Name: "acme", Plan: strp("yen"), Time: at(14, 0)}, ErrInvalid},
		{"no plan", &TenantUpdateRequest{Name: "acme", Plan: strp(""), Time: at(14, 0)}, ErrInvalid},
		{"unknown tenant", &TenantUpdateRequest{Name: "nope", Plan: strp("std"), Time: at(14, 0)}, ErrNotFound},
		{"plan in use", nil, ErrConflict},
	} {
		var err error
		if tt.req == nil {
			err = h.apply(PlanDeleteType, &PlanDeleteRequest{Name: "pro"})
		} else {
			err = h.apply(TenantUpdateType, tt.req)
		}
		if !errors.Is(err, tt.kind) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if h.snap().LatestIndex() != before {
		t.Fatal("a refused command changed the store")
	}
	// A plan only in the history may go; its terms stay in the history.
	h.must(PlanDeleteType, &PlanDeleteRequest{Name: "std"})
	if p := history()[0]; p.Plan != "std" || p.Prices["instance_hour"] != "0.01" {
		t.Fatalf("history after deleting std: %+v", p)
	}
	if err := h.apply(PlanCreateType, &PlanCreateRequest{Plan: Plan{Name: "pro", PlanTerms: PlanTerms{Currency: "USD"}}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate plan: %v", err)
	}
}

func TestBudgetStateAndHardStop(t *testing.T) {
	h := newHarness(t)
	fillPlans(h)
	// A budget needs a plan.
	if err := h.apply(TenantUpdateType, &TenantUpdateRequest{Name: "acme", Budget: strp("10.00")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("budget without a plan: %v", err)
	}
	stop := true
	h.must(TenantUpdateType, &TenantUpdateRequest{Name: "acme", Plan: strp("std"), Budget: strp("10.00"), BudgetHardStop: &stop, Time: t0})
	web := spec("web", "web:1")
	web.Instances = intp(2)
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: web, Create: true, Time: t0})
	h.must(BudgetCheckType, &BudgetCheckRequest{Tenant: "acme", Month: "2026-11", Spent: "8.00", Percents: []int{80}, Time: t0})
	h.must(BudgetCheckType, &BudgetCheckRequest{Tenant: "acme", Month: "2026-11", Spent: "10.00", Over: true, Percents: []int{80, 100}, Time: t0.Add(time.Hour)})
	ten, _ := h.snap().Tenant(nil, "acme")
	if bs := ten.BudgetState; !bs.Over || len(bs.Alerts) != 2 || bs.Alerts[0].Percent != 80 || !bs.Alerts[0].At.Equal(t0) || bs.Alerts[1].Percent != 100 {
		t.Fatalf("budget state: %+v", bs)
	}
	events, _ := h.snap().Events(nil, 0)
	n := 0
	for _, e := range events {
		if e.Type == "budget.warning" || e.Type == "budget.exceeded" {
			n++
			if e.Subject != "acme/" {
				t.Errorf("event subject %q", e.Subject)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d budget events, want one per threshold", n)
	}
	// Over with a hard stop: no new app, no scale-up; scale-down is fine.
	before := h.snap().LatestIndex()
	if err := h.apply(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: spec("db", "db:1"), Create: true, Time: t0}); !errors.Is(err, ErrRefused) {
		t.Fatalf("new app: %v", err)
	}
	if err := h.apply(AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 3, Time: t0}); !errors.Is(err, ErrRefused) {
		t.Fatalf("scale up: %v", err)
	}
	up := web
	up.Instances = intp(5)
	if err := h.apply(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: up, Time: t0}); !errors.Is(err, ErrRefused) {
		t.Fatalf("update to more instances: %v", err)
	}
	if h.snap().LatestIndex() != before {
		t.Fatal("a refused command changed the store")
	}
	h.must(AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 1, Time: t0})
	web.Image = "web:2"
	web.Instances = nil
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: web, Time: t0}) // a new version, same count
	// Notified marks one alert; an unknown one is not found.
	h.must(BudgetNotifiedType, &BudgetNotifiedRequest{Tenant: "acme", Month: "2026-11", Percent: 80})
	if err := h.apply(BudgetNotifiedType, &BudgetNotifiedRequest{Tenant: "acme", Month: "2026-11", Percent: 50}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown alert: %v", err)
	}
	// Without the hard stop, being over refuses nothing.
	stop = false
	h.must(TenantUpdateType, &TenantUpdateRequest{Name: "acme", BudgetHardStop: &stop, Time: t0})
	h.must(BudgetCheckType, &BudgetCheckRequest{Tenant: "acme", Month: "2026-11", Spent: "11.00", Over: true, Percents: []int{80, 100}, Time: t0})
	h.must(AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 4, Time: t0})
	ten, _ = h.snap().Tenant(nil, "acme")
	if len(ten.BudgetState.Alerts) != 2 || !ten.BudgetState.Alerts[0].Notified {
		t.Fatalf("a repeated check recorded alerts again: %+v", ten.BudgetState)
	}
}
