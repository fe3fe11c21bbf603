package hub

import (
	"log/slog"

	"github.com/wharf-platform/wharf/hub/billing"
	"github.com/wharf-platform/wharf/hub/state"
)

// newBilling wires hub/billing's pricing: the biller the API prices bills
// and invoices with, and the budget runner that runs while this node
// leads. usage is what metering measured (nil: none); when it also tells
// its closed hours, a closed hour triggers a budget check.
func newBilling(store *state.Store, commit applier, usage billing.UsageSource, logger *slog.Logger) (*billing.Biller, *billing.Budgets) {
	biller := billing.NewBiller(billing.BillerConfig{State: store, Usage: usage})
	cfg := billing.BudgetConfig{State: store, Invoices: biller, Commit: commit, Logger: logger}
	if hz, ok := usage.(billing.Horizon); ok {
		cfg.Closed = hz
	}
	return biller, billing.NewBudgets(cfg)
}
