package state

import (
	"reflect"
	"testing"
	"time"
)

// TestTenantDeleteKeepsBillingHistory: deleting a tenant keeps its plan
// history, ended at the first hour after the deletion (a change that was
// to apply later is dropped); a tenant deleted without a plan leaves
// nothing; a new tenant of the same name is billed after the old history,
// and its own reads show only its own plans.
func TestTenantDeleteKeepsBillingHistory(t *testing.T) {
	h := newHarness(t)
	h.must(PlanCreateType, &PlanCreateRequest{Plan: Plan{Name: "std", PlanTerms: PlanTerms{Currency: "USD", MonthlyFee: "5.00"}}, Time: t0})
	h.must(PlanCreateType, &PlanCreateRequest{Plan: Plan{Name: "pro", PlanTerms: PlanTerms{Currency: "USD", MonthlyFee: "9.00"}}, Time: t0})
	for _, name := range []string{"acme", "free"} {
		h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: name}, Time: t0})
	}
	h.must(TenantUpdateType, &TenantUpdateRequest{Name: "acme", Plan: strp("std"), Time: t0.Add(5 * time.Minute)})
	h.must(TenantUpdateType, &TenantUpdateRequest{Name: "acme", Plan: strp("pro"), Time: t0.Add(2*time.Hour + 30*time.Minute)}) // from t0+3h
	deleted := t0.Add(2*time.Hour + 40*time.Minute)
	h.must(TenantDeleteType, &TenantDeleteRequest{Name: "acme", Time: deleted})
	h.must(TenantDeleteType, &TenantDeleteRequest{Name: "free", Time: deleted})

	snap := h.fsm.Store().Snapshot()
	got, err := snap.BillingTenant(nil, "acme")
	if err != nil || got == nil {
		t.Fatalf("acme's billing after the delete: %v %v", got, err)
	}
	want := []string{"std@" + t0.Format(time.RFC3339), "@" + t0.Add(3*time.Hour).Format(time.RFC3339)}
	if p := periods(got.Plans); !reflect.DeepEqual(p, want) {
		t.Fatalf("acme's kept history %v, want %v", p, want)
	}
	if got.Plans[0].MonthlyFee != "5.00" {
		t.Fatalf("the kept plan lost its terms: %+v", got.Plans[0])
	}
	if live, _ := snap.Tenant(nil, "acme"); live != nil {
		t.Fatal("acme is still a tenant")
	}
	if free, _ := snap.BillingTenant(nil, "free"); free != nil {
		t.Fatalf("a tenant never billed left %+v", free)
	}
	if names, _ := snap.BillingTenantNames(nil); !reflect.DeepEqual(names, []string{"acme"}) {
		t.Fatalf("billing tenants %v", names)
	}

	// Back, in the hour of the deletion: its first plan from this hour.
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "acme"}, Time: deleted})
	h.must(TenantUpdateType, &TenantUpdateRequest{Name: "acme", Plan: strp("pro"), Time: deleted.Add(5 * time.Minute)})
	snap = h.fsm.Store().Snapshot()
	got, _ = snap.BillingTenant(nil, "acme")
	want = []string{"std@" + t0.Format(time.RFC3339), "pro@" + t0.Add(2*time.Hour).Format(time.RFC3339)}
	if p := periods(got.Plans); !reflect.DeepEqual(p, want) {
		t.Fatalf("the new acme's billing history %v, want %v", p, want)
	}
	live, _ := snap.Tenant(nil, "acme")
	if p := periods(live.Plans); !reflect.DeepEqual(p, want[1:]) {
		t.Fatalf("the new acme's own history %v, want %v", p, want[1:])
	}
}

func periods(ps []PlanPeriod) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Plan+"@"+p.From.UTC().Format(time.RFC3339))
	}
	return out
}
