package billing

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

// Bills are daily, per UTC day. The rules:
//
//   - Each hour is billed at the plan in force at its start (a tenant's
//     plan history). Hours before the tenant's first plan are not billed.
//   - A day on one plan has one bill. A day whose plan changes at an hour
//     has one bill per plan: each covers its hours (From, To) and bears
//     the plan's name, so "an hour is billed at one plan" holds on paper.
//   - Each bill has a line per item (all six, in Items order): used is the
//     quantity used, included the part of it that the plan's monthly
//     allowance covered, quantity the rest, and amount = quantity ×
//     unit_price rounded once to the currency's minor unit. Quantities are
//     exact and printed with up to 9 decimals; the amount comes from the
//     exact quantity. total = the sum of the amounts.
//   - Included quantities are per calendar month and consumed in day
//     (and hour) order: a day's usage is free until the month's usage so
//     far reaches the included quantity. After a plan change the new
//     plan's included quantity counts the month's usage so far (under any
//     plan), so a change never grants a second allowance.
//   - A bill is final once every hour it covers is closed by metering.

// UsageSource gives a tenant's usage in [from, to) as rows that each lie
// within one hour (per app and hour); closed hours' rows are Final.
type UsageSource interface {
	Usage(ctx context.Context, tenant string, from, to time.Time) ([]Usage, error)
}

// Horizon is what a UsageSource may also tell (metering's Meter does):
// the end of the last closed hour, every hour before it final (zero: none
// yet). Without it, an hour counts as closed when all its rows are final
// and an hour has passed since it ended.
type Horizon interface {
	ClosedThrough() (time.Time, error)
}

// Snapshotter hands out read-only views of the state store.
type Snapshotter interface {
	Snapshot() *state.Snapshot
}

// BillerConfig is what a Biller needs. State is required; Usage nil means no
// usage at all; Now nil means time.Now.
type BillerConfig struct {
	State Snapshotter
	Usage UsageSource
	Now   func() time.Time
}

// Biller prices tenants' usage: daily bills and monthly invoices.
type Biller struct {
	cfg BillerConfig
}

// NewBiller returns a Biller.
func NewBiller(cfg BillerConfig) *Biller {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Biller{cfg: cfg}
}

// Line is one item of a bill or an invoice.
type Line struct {
	Item      string
	Plan      string // on invoices: the plan the line is billed at
	Unit      string
	Used      *big.Rat
	Included  *big.Rat
	Quantity  *big.Rat // Used - Included: what is charged
	UnitPrice string   // canonical decimal text
	Amount    *big.Int // minor units
}

// Bill is a tenant's bill for the hours [From, To) of one day at one plan.
type Bill struct {
	Tenant   string
	Day      time.Time // 00:00 UTC
	Plan     string
	From, To time.Time
	Currency Currency
	Lines    []Line
	Total    *big.Int // minor units
	Final    bool
}

// ErrNotFound is returned for a tenant that does not exist.
var ErrNotFound = errors.New("not found")

// Day returns the UTC day (00:00) of t.
func Day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// MonthOf returns the first instant of t's UTC month.
func MonthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// Periods parses a tenant's plan history.
func Periods(t *state.Tenant) ([]Period, error) {
	out := make([]Period, 0, len(t.Plans))
	for _, pp := range t.Plans {
		p, err := ParsePlan(PlanSpec{Name: pp.Plan, Currency: pp.Currency, Prices: pp.Prices, Included: pp.Included, MonthlyFee: pp.MonthlyFee})
		if err != nil {
			return nil, fmt.Errorf("tenant %s plan %s: %w", t.Name, pp.Plan, err)
		}
		out = append(out, Period{From: pp.From.UTC(), Plan: p})
	}
	return out, nil
}

// Bills returns the tenant's daily bills of the days first to last (UTC
// days, both included; days after today are left out).
func (b *Biller) Bills(ctx context.Context, tenant string, first, last time.Time) ([]Bill, error) {
	t, err := b.tenant(tenant)
	if err != nil {
		return nil, err
	}
	periods, err := Periods(t)
	if err != nil {
		return nil, err
	}
	first, last = Day(first), Day(last)
	if today := Day(b.cfg.Now()); last.After(today) {
		last = today
	}
	if len(periods) == 0 || last.Before(first) {
		return []Bill{}, nil
	}
	end := last.AddDate(0, 0, 1)
	rows, closed, err := b.usage(ctx, tenant, MonthOf(first), end)
	if err != nil {
		return nil, err
	}
	return computeBills(tenant, periods, rows, first, last, closed), nil
}

func (b *Biller) tenant(name string) (*state.Tenant, error) {
	t, err := b.cfg.State.Snapshot().Tenant(nil, name)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("tenant %s: %w", name, ErrNotFound)
	}
	return t, nil
}

// usage fetches rows and the closed horizon.
func (b *Biller) usage(ctx context.Context, tenant string, from, to time.Time) (*hourly, time.Time, error) {
	h := &hourly{sums: map[int64]*[numItems]int64{}, open: map[int64]bool{}}
	if b.cfg.Usage == nil {
		return h, b.cfg.Now().UTC().Truncate(time.Hour), nil
	}
	rows, err := b.cfg.Usage.Usage(ctx, tenant, from, to)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("usage of %s: %w", tenant, err)
	}
	for i := range rows {
		h.add(&rows[i])
	}
	var closed time.Time
	if hz, ok := b.cfg.Usage.(Horizon); ok {
		if closed, err = hz.ClosedThrough(); err != nil {
			return nil, time.Time{}, fmt.Errorf("closed hours: %w", err)
		}
	} else {
		closed = b.cfg.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
		for hr := range h.open {
			if t := time.Unix(hr, 0).UTC(); t.Before(closed) {
				closed = t
			}
		}
	}
	return h, closed, nil
}

// hourly is usage summed per hour (unix seconds of the hour's start).
type hourly struct {
	sums map[int64]*[numItems]int64
	open map[int64]bool // hours with a row that is not final
}

func (h *hourly) add(u *Usage) {
	hr := u.From.UTC().Truncate(time.Hour).Unix()
	s := h.sums[hr]
	if s == nil {
		s = new([numItems]int64)
		h.sums[hr] = s
	}
	for i, v := range units(u) {
		s[i] += v
	}
	if !u.Final {
		h.open[hr] = true
	}
}

// computeBills is the pricing itself, pure: the bills of days first..last
// from the usage summed per hour, the plan history and the closed
// horizon. Usage from the first day's month start is needed (included
// quantities are consumed from it).
func computeBills(tenant string, periods []Period, h *hourly, first, last time.Time, closed time.Time) []Bill {
	out := []Bill{}
	var cum [numItems]*big.Rat // the month's usage so far
	for d := MonthOf(first); !d.After(last); d = d.AddDate(0, 0, 1) {
		if d.Day() == 1 || cum[0] == nil {
			for i := range cum {
				cum[i] = new(big.Rat)
			}
		}
		for _, seg := range segments(periods, d) {
			var sum [numItems]int64
			for hr := seg.from; hr.Before(seg.to); hr = hr.Add(time.Hour) {
				if s := h.sums[hr.Unix()]; s != nil {
					for i, v := range s {
						sum[i] += v
					}
				}
			}
			bill := price(seg.plan, sum, &cum)
			if d.Before(first) {
				continue
			}
			bill.Tenant, bill.Day, bill.From, bill.To = tenant, d, seg.from, seg.to
			bill.Final = !seg.to.After(closed)
			out = append(out, bill)
		}
	}
	return out
}

// newHourly sums usage rows per hour, for computeBills.
func newHourly(rows []Usage) *hourly {
	h := &hourly{sums: map[int64]*[numItems]int64{}, open: map[int64]bool{}}
	for i := range rows {
		h.add(&rows[i])
	}
	return h
}

type segment struct {
	from, to time.Time
	plan     *Plan
}

// segments splits day d into runs of hours at one plan (hours with no
// plan are left out).
func segments(periods []Period, d time.Time) []segment {
	var out []segment
	end := d.AddDate(0, 0, 1)
	for hr := d; hr.Before(end); hr = hr.Add(time.Hour) {
		p := planAt(periods, hr)
		if p == nil {
			continue
		}
		if n := len(out); n > 0 && out[n-1].plan == p && out[n-1].to.Equal(hr) {
			out[n-1].to = hr.Add(time.Hour)
			continue
		}
		out = append(out, segment{from: hr, to: hr.Add(time.Hour), plan: p})
	}
	return out
}

// planAt returns the plan in force at t, or nil.
func planAt(periods []Period, t time.Time) *Plan {
	i := sort.Search(len(periods), func(i int) bool { return periods[i].From.After(t) })
	if i == 0 {
		return nil
	}
	return periods[i-1].Plan
}

// price makes the lines of usage sum at plan p, consuming the month's
// included quantities (cum is the month's usage before it, and is
// advanced).
func price(p *Plan, sum [numItems]int64, cum *[numItems]*big.Rat) Bill {
	b := Bill{Plan: p.Name, Currency: p.Currency, Total: new(big.Int), Lines: make([]Line, 0, numItems)}
	zero := new(big.Rat)
	for i := Item(0); i < numItems; i++ {
		used := new(big.Rat).SetFrac(big.NewInt(sum[i]), big.NewInt(itemInfo[i].per))
		before := new(big.Rat).Sub(cum[i], p.Included[i])
		after := new(big.Rat).Add(before, used)
		if before.Cmp(zero) < 0 {
			before.SetInt64(0)
		}
		if after.Cmp(zero) < 0 {
			after.SetInt64(0)
		}
		qty := after.Sub(after, before)
		amount := p.Currency.Minor(new(big.Rat).Mul(qty, p.Price[i]))
		b.Lines = append(b.Lines, Line{Item: i.Key(), Unit: i.Unit(), Used: used, Included: new(big.Rat).Sub(used, qty),
			Quantity: qty, UnitPrice: p.PriceText[i], Amount: amount})
		b.Total.Add(b.Total, amount)
		cum[i].Add(cum[i], used)
	}
	return b
}
