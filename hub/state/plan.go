package state

import (
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Plans, tenants' plan history and budgets: what billing keeps in Raft.
// Usage itself is metering's; prices are decimal strings, never floats,
// and hub/billing parses them (the API checked them before they got here).

// TablePlans holds the price plans.
const TablePlans = "plans"

// PlanTerms are what a plan charges, as decimal strings: per unit of each
// price key, the quantity per month included for free, and a monthly fee.
type PlanTerms struct {
	Currency   string
	Prices     map[string]string `json:",omitempty"`
	Included   map[string]string `json:",omitempty"`
	MonthlyFee string            `json:",omitempty"`
}

func (t PlanTerms) copy() PlanTerms {
	t.Prices, t.Included = maps.Clone(t.Prices), maps.Clone(t.Included)
	return t
}

// Plan is a named price plan. Plans are immutable: to change prices,
// create another plan and move tenants to it.
type Plan struct {
	Name string
	PlanTerms
	CreatedAt time.Time
	Meta
}

// Copy returns a deep copy.
func (p *Plan) Copy() *Plan {
	c := *p
	c.PlanTerms = p.PlanTerms.copy()
	return &c
}

// PlanPeriod is one entry of a tenant's plan history: from From (an hour
// boundary) until the next entry's From, the tenant is billed at Plan,
// whose terms are copied in (so that deleting a plan later never changes
// an old bill).
type PlanPeriod struct {
	From time.Time
	Plan string
	PlanTerms
}

// BudgetState is what the leader's budget check last committed for a
// tenant's current month.
type BudgetState struct {
	Month  string // "2026-12"
	Spent  string `json:",omitempty"` // the month-to-date total at the last change
	Over   bool   `json:",omitempty"` // spent reached the budget: a hard stop refuses new instances
	Alerts []BudgetAlert
}

// BudgetAlert is a threshold (a percent of the budget) crossed in Month:
// each is recorded once, with an event, and its webhook is sent once
// Notified is false.
type BudgetAlert struct {
	Percent  int
	At       time.Time
	Spent    string
	Notified bool `json:",omitempty"`
}

func (b *BudgetState) copy() *BudgetState {
	if b == nil {
		return nil
	}
	c := *b
	c.Alerts = slices.Clone(b.Alerts)
	return &c
}

// CurrentPlan returns the plan of the last period (the one in force now or
// from the next hour), or "".
func (t *Tenant) CurrentPlan() string {
	if len(t.Plans) == 0 {
		return ""
	}
	return t.Plans[len(t.Plans)-1].Plan
}

func planSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: TablePlans, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
	}}
}

// Plan returns the named plan.
func (s *Snapshot) Plan(ws memdb.WatchSet, name string) (*Plan, error) {
	return first[Plan](s, ws, TablePlans, "id", name)
}

// Plans returns every plan, sorted by name.
func (s *Snapshot) Plans(ws memdb.WatchSet) ([]*Plan, error) {
	return list[Plan](s, ws, TablePlans, "id")
}

// PlanCreateRequest creates a plan; conflict if the name is taken.
type PlanCreateRequest struct {
	Plan Plan
	Time time.Time
}

// PlanDeleteRequest deletes a plan; not found if absent, conflict while a
// tenant is (or is about to be) on it.
type PlanDeleteRequest struct {
	Name string
}

// TenantUpdateRequest changes the fields of a tenant that are not nil.
//
// Plan moves the tenant to a plan: a tenant's first plan applies from the
// start of the hour of Time, a later one from the next hour (an hour is
// billed at one plan only); a second change within the hour replaces the
// first. The plan must exist and be in the currency of the tenant's
// current plan (invalid otherwise). Budget "" removes the budget; a budget
// needs a plan. Changing the budget or the hard stop lifts a hard stop
// until the next budget check.
type TenantUpdateRequest struct {
	Name           string
	Plan           *string
	Budget         *string
	BudgetHardStop *bool
	BudgetWebhook  *string
	Time           time.Time
}

// BudgetCheckRequest is the leader's budget check of a tenant's month:
// Spent is the month-to-date total, Over whether it reached the budget,
// Percents the thresholds it has crossed. Thresholds recorded before in
// the same month are not recorded (nor told) again; a new month starts
// afresh.
type BudgetCheckRequest struct {
	Tenant   string
	Month    string
	Spent    string
	Over     bool
	Percents []int
	Time     time.Time
}

// BudgetNotifiedRequest records that the webhook of a threshold was sent.
type BudgetNotifiedRequest struct {
	Tenant  string
	Month   string
	Percent int
}
