package billing

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Invoices are monthly. The rules:
//
//   - An invoice sums the month's daily bills: one line per plan and item
//     (used, included, quantity and amount each summed over the days), so
//     its total equals the sum of the daily bills' totals plus the fees.
//     (A line's amount is the sum of daily amounts, each rounded once; it
//     may differ from the summed quantity × unit price by less than half a
//     minor unit per day.)
//   - The monthly fee is a line of its own per plan ("monthly_fee", unit
//     "month"): the plan's fee × the share of the month's hours billed at
//     that plan, rounded once. A tenant on one plan all month pays the
//     whole fee; the current month's invoice counts its remaining hours at
//     the current plan (the fee is charged in advance).
//   - The current month's invoice is not final; a month is final once its
//     last hour is closed.

// Invoice is a tenant's invoice for one month.
type Invoice struct {
	Tenant   string
	Month    time.Time // the month's first instant, UTC
	Currency Currency
	Lines    []Line
	Total    *big.Int // minor units
	Final    bool
}

// ErrNoPlan is returned for an invoice of a month in which the tenant had
// no plan.
var ErrNoPlan = errors.New("no plan in that month")

// FeeItem is the item name of the monthly fee's line.
const FeeItem = "monthly_fee"

// Invoice returns the tenant's invoice of the month that holds month.
func (b *Biller) Invoice(ctx context.Context, tenant string, month time.Time) (*Invoice, error) {
	t, err := b.tenant(tenant)
	if err != nil {
		return nil, err
	}
	periods, err := Periods(t)
	if err != nil {
		return nil, err
	}
	start := MonthOf(month)
	end := start.AddDate(0, 1, 0)
	if len(periods) == 0 || !periods[0].From.Before(end) {
		return nil, fmt.Errorf("tenant %s has no plan in %s: %w", tenant, start.Format("2006-01"), ErrNoPlan)
	}
	last := end.AddDate(0, 0, -1)
	if today := Day(b.cfg.Now()); last.After(today) {
		last = today
	}
	var rows *hourly
	closed := time.Time{}
	if !last.Before(start) {
		if rows, closed, err = b.usage(ctx, tenant, start, last.AddDate(0, 0, 1)); err != nil {
			return nil, err
		}
	} else {
		rows = newHourly(nil)
	}
	var bills []Bill
	if !last.Before(start) {
		bills = computeBills(tenant, periods, rows, start, last, closed)
	}
	return makeInvoice(tenant, start, periods, bills, !end.After(closed)), nil
}

// makeInvoice sums bills into the invoice of the month from start.
func makeInvoice(tenant string, start time.Time, periods []Period, bills []Bill, final bool) *Invoice {
	end := start.AddDate(0, 1, 0)
	inv := &Invoice{Tenant: tenant, Month: start, Total: new(big.Int), Final: final}
	type key struct{ plan, item, price string }
	at := map[key]int{}
	add := func(plan string, l Line) {
		k := key{plan, l.Item, l.UnitPrice}
		i, ok := at[k]
		if !ok {
			l.Plan = plan
			l.Used, l.Included, l.Quantity, l.Amount = new(big.Rat).Set(l.Used), new(big.Rat).Set(l.Included), new(big.Rat).Set(l.Quantity), new(big.Int).Set(l.Amount)
			at[k] = len(inv.Lines)
			inv.Lines = append(inv.Lines, l)
			return
		}
		dst := &inv.Lines[i]
		dst.Used.Add(dst.Used, l.Used)
		dst.Included.Add(dst.Included, l.Included)
		dst.Quantity.Add(dst.Quantity, l.Quantity)
		dst.Amount.Add(dst.Amount, l.Amount)
	}
	// Hours of the month at each plan (the last plan runs to the end).
	hours := map[*Plan]int64{}
	var order []*Plan
	for hr := start; hr.Before(end); hr = hr.Add(time.Hour) {
		if p := planAt(periods, hr); p != nil {
			if _, ok := hours[p]; !ok {
				order = append(order, p)
			}
			hours[p]++
		}
	}
	byPlan := map[*Plan][]Bill{}
	for _, b := range bills {
		p := planAt(periods, b.From)
		byPlan[p] = append(byPlan[p], b)
	}
	monthHours := int64(end.Sub(start) / time.Hour)
	for _, p := range order {
		inv.Currency = p.Currency
		if len(byPlan[p]) == 0 {
			// No day billed yet (a change from the next hour): zero lines.
			var zero [numItems]*big.Rat
			for i := range zero {
				zero[i] = new(big.Rat)
			}
			for _, l := range price(p, [numItems]int64{}, &zero).Lines {
				add(p.Name, l)
			}
		}
		for _, b := range byPlan[p] {
			for _, l := range b.Lines {
				add(p.Name, l)
			}
		}
		share := new(big.Rat).SetFrac(big.NewInt(hours[p]), big.NewInt(monthHours))
		fee := new(big.Rat).SetFrac(p.Fee, pow10(p.Currency.Digits))
		add(p.Name, Line{Item: FeeItem, Unit: "month", Used: share, Included: new(big.Rat), Quantity: share,
			UnitPrice: p.Currency.Format(p.Fee), Amount: p.Currency.Minor(new(big.Rat).Mul(share, fee))})
	}
	for _, l := range inv.Lines {
		inv.Total.Add(inv.Total, l.Amount)
	}
	return inv
}

// Invoices returns every tenant's invoice of the month that has one (the
// tenants with a plan in it), by tenant name.
func (b *Biller) Invoices(ctx context.Context, month time.Time) ([]*Invoice, error) {
	ts, err := b.cfg.State.Snapshot().Tenants(nil)
	if err != nil {
		return nil, err
	}
	out := []*Invoice{}
	for _, t := range ts {
		inv, err := b.Invoice(ctx, t.Name, month)
		if errors.Is(err, ErrNoPlan) || errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	return out, nil
}
