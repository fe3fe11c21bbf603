package apitypes

import "time"

// Billing: money is never a float. Prices, quantities and amounts are
// decimal strings; amounts have exactly the currency's decimals ("12.34"
// USD, "1234" JPY).

// PlanRequest is the body of POST /v1/plans. Prices are per unit of each
// key (instance_hour, cpu_core_hour, memory_gb_hour, requests_million,
// egress_gb, log_gb); Included are quantities per month that are free; a
// key left out is zero.
type PlanRequest struct {
	Name       string            `json:"name"`
	Currency   string            `json:"currency"`
	Prices     map[string]string `json:"prices,omitempty"`
	Included   map[string]string `json:"included,omitempty"`
	MonthlyFee string            `json:"monthly_fee,omitempty"`
}

// Plan is a price plan.
type Plan struct {
	Name        string            `json:"name"`
	Currency    string            `json:"currency"`
	Prices      map[string]string `json:"prices"`
	Included    map[string]string `json:"included"`
	MonthlyFee  string            `json:"monthly_fee"`
	CreatedAt   time.Time         `json:"created_at"`
	CreateIndex uint64            `json:"create_index"`
	ModifyIndex uint64            `json:"modify_index"`
}

// TenantUpdate is the body of PUT /v1/tenants/{name}: only the fields
// given change. Plan needs an admin; the budget fields an admin or the
// tenant's tenant-admin. Budget "" removes the budget.
type TenantUpdate struct {
	Plan           *string `json:"plan,omitempty"`
	Budget         *string `json:"budget,omitempty"`
	BudgetHardStop *bool   `json:"budget_hard_stop,omitempty"`
	BudgetWebhook  *string `json:"budget_webhook,omitempty"`
}

// PlanPeriod is one entry of a tenant's plan history.
type PlanPeriod struct {
	Plan string    `json:"plan"`
	From time.Time `json:"from"`
}

// BudgetStatus is the month's budget check as last committed.
type BudgetStatus struct {
	Month  string        `json:"month"`
	Spent  string        `json:"spent,omitempty"`
	Over   bool          `json:"over"`
	Alerts []BudgetAlert `json:"alerts,omitempty"`
}

// BudgetAlert is a threshold crossed in the month.
type BudgetAlert struct {
	Percent  int       `json:"percent"`
	At       time.Time `json:"at"`
	Spent    string    `json:"spent"`
	Notified bool      `json:"notified"`
}

// Bill is a tenant's daily bill: one per UTC day and plan (a day whose
// plan changes at an hour has one bill per plan, each for its hours From
// to To).
type Bill struct {
	Tenant   string     `json:"tenant"`
	Day      string     `json:"day"` // YYYY-MM-DD
	Plan     string     `json:"plan"`
	From     time.Time  `json:"from"`
	To       time.Time  `json:"to"`
	Lines    []BillLine `json:"lines"`
	Total    string     `json:"total"`
	Currency string     `json:"currency"`
	Final    bool       `json:"final"`
}

// BillLine is one item of a bill or invoice: amount = quantity ×
// unit_price, rounded once to the currency's minor unit; quantity = used
// - included (the part of the plan's monthly allowance it consumed).
type BillLine struct {
	Item      string `json:"item"`
	Plan      string `json:"plan,omitempty"` // invoices
	Quantity  string `json:"quantity"`
	Unit      string `json:"unit"`
	UnitPrice string `json:"unit_price"`
	Amount    string `json:"amount"`
	Used      string `json:"used"`
	Included  string `json:"included"`
}

// Invoice is a tenant's monthly invoice: the month's bills summed per plan
// and item, and the monthly fee as its own line.
type Invoice struct {
	Tenant   string     `json:"tenant"`
	Month    string     `json:"month"` // YYYY-MM
	Currency string     `json:"currency"`
	Lines    []BillLine `json:"lines"`
	Total    string     `json:"total"`
	Final    bool       `json:"final"`
}
