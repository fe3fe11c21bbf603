package state

import (
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/go-memdb"
)

// TableBillingTenants keeps what billing needs of deleted tenants: their
// plan history. A deleted tenant's usage stays in the usage tables; with
// its plans kept here its bills and invoices stay readable, and a month's
// export of every tenant still includes it.
const TableBillingTenants = "billing_tenants"

// BillingTenant is the billing history of a tenant name that was
// deleted. Plans is the plan history up to the deletion, ended by a
// period without a plan (Plan ""): the hours from the first hour that
// starts after the deletion are billed at no plan. A tenant deleted more
// than once keeps the history of each life.
type BillingTenant struct {
	Name  string
	Plans []PlanPeriod
	Meta
}

func billingTenantSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: TableBillingTenants, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
	}}
}

// archiveBilling keeps the plan history of tenant t, deleted at at (zero:
// a command written before deletions carried a time; its last plan is
// then left open).
func (w *writer) archiveBilling(t *Tenant, at time.Time) *Error {
	if len(t.Plans) == 0 {
		return nil // never billed: nothing to keep
	}
	old, err := first[BillingTenant](w.snap(), nil, TableBillingTenants, "id", t.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	n := &BillingTenant{Name: t.Name}
	var existing *Meta
	var kept []PlanPeriod
	if old != nil {
		existing, kept = &old.Meta, old.Plans
	}
	n.Plans = mergePlans(kept, t.Copy().Plans)
	if !at.IsZero() {
		end := at.UTC().Truncate(time.Hour).Add(time.Hour)
		// A change that was to apply from a later hour never does.
		n.Plans = slices.DeleteFunc(n.Plans, func(p PlanPeriod) bool { return !p.From.Before(end) })
		n.Plans = append(n.Plans, PlanPeriod{From: end})
	}
	w.meta(&n.Meta, existing)
	return w.insert(TableBillingTenants, n)
}

// mergePlans returns the history older followed by newer: the periods of
// older that start before newer's first, then newer (copies).
func mergePlans(older, newer []PlanPeriod) []PlanPeriod {
	out := make([]PlanPeriod, 0, len(older)+len(newer))
	for _, p := range older {
		if len(newer) == 0 || p.From.Before(newer[0].From) {
			p.PlanTerms = p.PlanTerms.copy()
			out = append(out, p)
		}
	}
	for _, p := range newer {
		p.PlanTerms = p.PlanTerms.copy()
		out = append(out, p)
	}
	return out
}

// BillingTenant returns a tenant as billing sees it: a tenant that exists,
// its plan history preceded by that of earlier tenants of that name that
// were deleted; or a deleted tenant's history alone (a Tenant with only
// Name and Plans); nil when the name never had a plan or a tenant.
func (s *Snapshot) BillingTenant(ws memdb.WatchSet, name string) (*Tenant, error) {
	live, err := s.Tenant(ws, name)
	if err != nil {
		return nil, err
	}
	gone, err := first[BillingTenant](s, ws, TableBillingTenants, "id", name)
	if err != nil || gone == nil {
		return live, err
	}
	if live == nil {
		return &Tenant{Name: name, Plans: mergePlans(gone.Plans, nil)}, nil
	}
	t := live.Copy()
	t.Plans = mergePlans(gone.Plans, t.Plans)
	return t, nil
}

// BillingTenantNames returns the names of the tenants that exist and of
// those deleted with a billing history, sorted.
func (s *Snapshot) BillingTenantNames(ws memdb.WatchSet) ([]string, error) {
	live, err := s.Tenants(ws)
	if err != nil {
		return nil, err
	}
	gone, err := list[BillingTenant](s, ws, TableBillingTenants, "id")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, t := range live {
		seen[t.Name] = true
		out = append(out, t.Name)
	}
	for _, t := range gone {
		if !seen[t.Name] {
			out = append(out, t.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}
