package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/hub/alert"
	"github.com/wharf-platform/wharf/hub/state"
)

// Budgets: a tenant may have a monthly budget (in its plan's currency).
// The leader checks every tenant's month-to-date total (the current
// month's invoice total: the bills so far plus the monthly fee) every few
// seconds, and at once when metering closes an hour. Crossing 80%
// and 100% of the budget is committed through Raft with an event
// (budget.warning, budget.exceeded), once per month and threshold: a new
// leader reads what was committed and never repeats one. The threshold's
// webhook (the tenant's budget_webhook, posted by hub/alert's notifier, so
// signed and retried like alert webhooks) is sent after the commit and
// marked sent after it succeeded: a leader that dies in between makes the
// next one send it again with the same delivery id (at least once; a
// receiver drops duplicates by X-Wharf-Delivery).
//
// A hard stop: while the total is at or over the budget the committed
// state says so, and the state store refuses anything that would add
// instances (a new app, a higher count) with 422; running instances are
// never stopped. The flag follows the total within a check's period, and a
// new month (or a raised budget) lifts it.

// budgetPercents are the thresholds that alert, in percent of the budget.
func budgetPercents() []int { return []int{80, 100} }

// Applier commits a state command through Raft.
type Applier interface {
	Apply(ctx context.Context, msg []byte) (uint64, error)
}

// Invoicer gives a tenant's invoice of a month.
type Invoicer interface {
	Invoice(ctx context.Context, tenant string, month time.Time) (*Invoice, error)
}

// Notifier posts a webhook; *alert.Notifier is one.
type Notifier interface {
	Notify(ctx context.Context, webhook, secret string, t alert.Transition) error
}

// BudgetConfig is what the budget runner needs. State, Invoices and Commit
// are required; Notifier nil means an alert.Notifier with its defaults;
// Every zero means 5 s; Now nil means time.Now; Logger nil discards.
type BudgetConfig struct {
	State    Snapshotter
	Invoices Invoicer
	Commit   Applier
	Notifier Notifier
	Every    time.Duration
	// Closed, when set, tells when metering closes an hour (its closed
	// horizon, looked at every second): a check follows at once.
	Closed Horizon
	Now    func() time.Time
	Logger *slog.Logger
}

// Budgets is the leader's budget check.
type Budgets struct {
	cfg  BudgetConfig
	log  *slog.Logger
	kick chan struct{}

	mu      sync.Mutex
	sending map[string]bool // webhooks in flight, by tenant/month/percent
	wg      sync.WaitGroup
}

// NewBudgets returns the budget runner; Run it while this node leads.
func NewBudgets(cfg BudgetConfig) *Budgets {
	if cfg.Every <= 0 {
		cfg.Every = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Notifier == nil {
		cfg.Notifier = &alert.Notifier{}
	}
	return &Budgets{cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1), sending: map[string]bool{}}
}

// Kick asks for a check now (say, because an hour was closed).
func (b *Budgets) Kick() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Wait waits for the webhooks Check started.
func (b *Budgets) Wait() { b.wg.Wait() }

// Run checks every tenant's budget every period, and when kicked, until
// ctx ends; it waits for the webhooks it started.
func (b *Budgets) Run(ctx context.Context) error {
	defer b.wg.Wait()
	t := time.NewTicker(b.cfg.Every)
	defer t.Stop()
	watch := time.NewTicker(time.Second)
	defer watch.Stop()
	var horizon time.Time
	for {
		if b.cfg.Closed != nil {
			horizon, _ = b.cfg.Closed.ClosedThrough()
		}
		if err := b.Check(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("budget check", "err", err)
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				break wait
			case <-b.kick:
				break wait
			case <-watch.C:
				if b.cfg.Closed == nil {
					continue
				}
				if h, err := b.cfg.Closed.ClosedThrough(); err == nil && h.After(horizon) {
					break wait
				}
			}
		}
	}
}

// Check checks every tenant with a budget once: it commits what changed
// and starts the webhooks not yet sent.
func (b *Budgets) Check(ctx context.Context) error {
	ts, err := b.cfg.State.Snapshot().Tenants(nil)
	if err != nil {
		return err
	}
	now := b.cfg.Now().UTC()
	var errs []error
	for _, t := range ts {
		if t.Budget == "" && (t.BudgetState == nil || !t.BudgetState.Over) {
			continue
		}
		if err := b.checkTenant(ctx, t, now); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t.Name, err))
		}
	}
	return errors.Join(errs...)
}

// BudgetVerdict is what a month-to-date total means against a budget.
type BudgetVerdict struct {
	Over     bool
	Percents []int // the thresholds reached
}

// JudgeBudget compares spent with budget (both in minor units).
func JudgeBudget(spent, budget *big.Int) BudgetVerdict {
	var v BudgetVerdict
	if budget.Sign() <= 0 {
		return v
	}
	s100 := new(big.Int).Mul(spent, big.NewInt(100))
	for _, pc := range budgetPercents() {
		if s100.Cmp(new(big.Int).Mul(budget, big.NewInt(int64(pc)))) >= 0 {
			v.Percents = append(v.Percents, pc)
		}
	}
	v.Over = spent.Cmp(budget) >= 0
	return v
}

func (b *Budgets) checkTenant(ctx context.Context, t *state.Tenant, now time.Time) error {
	month := now.Format("2006-01")
	var verdict BudgetVerdict
	spent := ""
	if t.Budget != "" {
		inv, err := b.cfg.Invoices.Invoice(ctx, t.Name, now)
		if errors.Is(err, ErrNoPlan) {
			return nil
		}
		if err != nil {
			return err
		}
		budget, err := inv.Currency.ParseAmount(t.Budget)
		if err != nil {
			return fmt.Errorf("budget %q: %w", t.Budget, err)
		}
		verdict = JudgeBudget(inv.Total, budget)
		spent = inv.Currency.Format(inv.Total)
	}
	st := t.BudgetState
	changed := false
	if st == nil || st.Month != month {
		changed = verdict.Over || len(verdict.Percents) > 0 || (st != nil && st.Over)
	} else {
		changed = st.Over != verdict.Over
		for _, pc := range verdict.Percents {
			if !slices.ContainsFunc(st.Alerts, func(a state.BudgetAlert) bool { return a.Percent == pc }) {
				changed = true
			}
		}
	}
	if changed {
		req := &state.BudgetCheckRequest{Tenant: t.Name, Month: month, Spent: spent, Over: verdict.Over, Percents: verdict.Percents, Time: now}
		if err := b.commit(ctx, state.BudgetCheckType, req); err != nil {
			return err
		}
		b.log.Info("budget", "tenant", t.Name, "month", month, "spent", spent, "budget", t.Budget, "over", verdict.Over, "percents", verdict.Percents)
		fresh, err := b.cfg.State.Snapshot().Tenant(nil, t.Name)
		if err != nil || fresh == nil {
			return err
		}
		t = fresh
	}
	b.notify(ctx, t, month)
	return nil
}

// notify starts the webhook of every threshold of the month not yet sent.
func (b *Budgets) notify(ctx context.Context, t *state.Tenant, month string) {
	st := t.BudgetState
	if st == nil || st.Month != month {
		return
	}
	for _, a := range st.Alerts {
		if a.Notified {
			continue
		}
		key := t.Name + "/" + month + "/" + strconv.Itoa(a.Percent)
		b.mu.Lock()
		busy := b.sending[key]
		b.sending[key] = true
		b.mu.Unlock()
		if busy {
			continue
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() {
				b.mu.Lock()
				delete(b.sending, key)
				b.mu.Unlock()
			}()
			if t.BudgetWebhook != "" {
				nctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				err := b.cfg.Notifier.Notify(nctx, t.BudgetWebhook, "", budgetTransition(t, month, a))
				cancel()
				if err != nil {
					b.log.Warn("budget webhook", "tenant", t.Name, "percent", a.Percent, "err", err)
					return // the next check tries again
				}
			}
			req := &state.BudgetNotifiedRequest{Tenant: t.Name, Month: month, Percent: a.Percent}
			if err := b.commit(ctx, state.BudgetNotifiedType, req); err != nil && ctx.Err() == nil {
				b.log.Warn("budget webhook sent, not recorded", "tenant", t.Name, "percent", a.Percent, "err", err)
			}
		}()
	}
}

// budgetTransition is a budget threshold as an alert notification: rule
// id "budget-<percent>", metric "budget", condition "above <percent>%",
// value the percent, since the month's start, at the commit's time (the
// same on every send, hence the same delivery id).
func budgetTransition(t *state.Tenant, month string, a state.BudgetAlert) alert.Transition {
	th, _ := alert.ParseThreshold(strconv.Itoa(a.Percent) + "%")
	since, _ := time.Parse("2006-01", month)
	return alert.Transition{
		Rule:  alert.Rule{ID: "budget-" + strconv.Itoa(a.Percent), Tenant: t.Name, Metric: "budget", Above: &th},
		State: "firing", Value: float64(a.Percent), Since: since.UTC(), At: a.At.UTC(),
	}
}

func (b *Budgets) commit(ctx context.Context, mt state.MessageType, req any) error {
	msg, err := state.Encode(mt, req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err = b.cfg.Commit.Apply(ctx, msg)
	return err
}
