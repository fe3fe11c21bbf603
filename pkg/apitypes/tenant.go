package apitypes

import "time"

// Tenant is an isolated owner of apps and tokens.
type Tenant struct {
	Name string `json:"name"`
	// Pools limits the pools the tenant may deploy to; empty means every pool.
	Pools []string `json:"pools,omitempty"`
	Quota Quota    `json:"quota"`

	CreatedAt   time.Time `json:"created_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`

	// Billing: the current plan (in force now or from the next hour), the
	// plan history, and the monthly budget in the plan's currency.
	Plan           string        `json:"plan,omitempty"`
	PlanHistory    []PlanPeriod  `json:"plan_history,omitempty"`
	Budget         string        `json:"budget,omitempty"`
	BudgetHardStop bool          `json:"budget_hard_stop,omitempty"`
	BudgetWebhook  string        `json:"budget_webhook,omitempty"`
	BudgetStatus   *BudgetStatus `json:"budget_status,omitempty"`
}

// Quota bounds what a tenant's apps may ask for in total. A zero field means
// no limit.
type Quota struct {
	Instances int `json:"instances,omitempty"`
	CPU       int `json:"cpu,omitempty"`    // millicores
	Memory    int `json:"memory,omitempty"` // MB
	// LogBytes and LogAge bound the tenant's logs each hub node keeps
	// (oldest first); zero: the hub's --log-retention-bytes and -age.
	LogBytes int64    `json:"log_bytes,omitempty"`
	LogAge   Duration `json:"log_age,omitempty"`
}

// MaxLogAge bounds Quota.LogAge.
const MaxLogAge = 366 * 24 * time.Hour

// TenantRequest is the body of POST /v1/tenants.
type TenantRequest struct {
	Name  string   `json:"name"`
	Pools []string `json:"pools,omitempty"`
	Quota Quota    `json:"quota"`
}

// Validate checks the request without looking at cluster state.
func (r *TenantRequest) Validate() error {
	if err := CheckName("name", r.Name); err != nil {
		return err
	}
	for _, p := range r.Pools {
		if err := CheckName("pools", p); err != nil {
			return err
		}
	}
	if r.Quota.Instances < 0 || r.Quota.CPU < 0 || r.Quota.Memory < 0 || r.Quota.LogBytes < 0 || r.Quota.LogAge < 0 {
		return FieldError("quota", "quota values must not be negative")
	}
	if r.Quota.LogBytes != 0 && r.Quota.LogBytes < 1<<20 {
		return FieldError("quota", "log_bytes must be at least 1 MiB (1048576)")
	}
	if time.Duration(r.Quota.LogAge) > MaxLogAge {
		return FieldError("quota", "log_age must be at most 366 days")
	}
	return nil
}
