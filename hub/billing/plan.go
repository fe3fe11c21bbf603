package billing

import (
	"fmt"
	"math/big"
	"sort"
	"time"
)

// Item is one thing a plan prices, named after its price key.
type Item int

// The items, in the order bills list them.
const (
	InstanceHour Item = iota
	CPUCoreHour
	MemoryGBHour
	RequestsMillion
	EgressGB
	LogGB
	numItems
)

// itemInfo says how an item's quantity comes from the usage's integer
// units: quantity = units / per. Memory GB are 1024 MB (the unit apps
// reserve memory in); egress and log GB are 10^9 bytes, as clouds bill
// traffic.
var itemInfo = [numItems]struct {
	key, unit string
	per       int64
}{
	InstanceHour:    {"instance_hour", "instance-hour", 3600},
	CPUCoreHour:     {"cpu_core_hour", "core-hour", 3_600_000},
	MemoryGBHour:    {"memory_gb_hour", "GB-hour", 1024 * 3600},
	RequestsMillion: {"requests_million", "million requests", 1_000_000},
	EgressGB:        {"egress_gb", "GB", 1_000_000_000},
	LogGB:           {"log_gb", "GB", 1_000_000_000},
}

// Key is the item's price key ("instance_hour").
func (i Item) Key() string { return itemInfo[i].key }

// Unit names what one of the item is.
func (i Item) Unit() string { return itemInfo[i].unit }

// Items returns every item in bill order.
func Items() []Item {
	out := make([]Item, numItems)
	for i := range out {
		out[i] = Item(i)
	}
	return out
}

// ItemKeys returns the price keys in bill order.
func ItemKeys() []string {
	out := make([]string, numItems)
	for i := range out {
		out[i] = itemInfo[i].key
	}
	return out
}

func itemOf(key string) (Item, bool) {
	for i, inf := range itemInfo {
		if inf.key == key {
			return Item(i), true
		}
	}
	return 0, false
}

// units returns the usage's integer units of each item.
func units(u *Usage) [numItems]int64 {
	return [numItems]int64{u.InstanceSeconds, u.CPUMilliSeconds, u.MemoryMBSeconds, u.Requests, u.EgressBytes, u.LogBytes}
}

// PlanSpec is a plan as text, as the API takes it and the state stores it.
// A price or included amount not given is zero.
type PlanSpec struct {
	Name       string
	Currency   string
	Prices     map[string]string
	Included   map[string]string
	MonthlyFee string
}

// Plan is a parsed plan: exact prices per unit of each item, included
// quantities per month, and a monthly fee in minor units.
type Plan struct {
	Name     string
	Currency Currency
	Price    [numItems]*big.Rat
	Included [numItems]*big.Rat
	Fee      *big.Int
	// PriceText is each price as canonical text ("0.0125").
	PriceText [numItems]string
}

// FieldError is a plan or budget that does not parse: Field names the
// offending field as the API spells it ("prices.egress_gb").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Msg }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ParsePlan checks a plan and parses its numbers. Prices and included
// amounts are non-negative decimals (at most MaxDecimals decimals); the
// monthly fee has at most the currency's decimals; keys are the items'
// price keys.
func ParsePlan(s PlanSpec) (*Plan, error) {
	cur, err := LookupCurrency(s.Currency)
	if err != nil {
		return nil, fieldErr("currency", "%v", err)
	}
	p := &Plan{Name: s.Name, Currency: cur, Fee: new(big.Int)}
	for i := range p.Price {
		p.Price[i], p.Included[i], p.PriceText[i] = new(big.Rat), new(big.Rat), "0"
	}
	for _, part := range []struct {
		name string
		m    map[string]string
		dst  *[numItems]*big.Rat
	}{{"prices", s.Prices, &p.Price}, {"included", s.Included, &p.Included}} {
		for _, k := range sortedKeys(part.m) {
			it, ok := itemOf(k)
			if !ok {
				return nil, fieldErr(part.name+"."+k, "unknown %s key %q: want one of %v", part.name, k, ItemKeys())
			}
			r, err := ParseDecimal(part.m[k])
			if err != nil {
				return nil, fieldErr(part.name+"."+k, "%s.%s: %v", part.name, k, err)
			}
			part.dst[it] = r
			if part.name == "prices" {
				p.PriceText[it] = FormatDecimal(r, MaxDecimals)
			}
		}
	}
	if s.MonthlyFee != "" {
		fee, err := cur.ParseAmount(s.MonthlyFee)
		if err != nil {
			return nil, fieldErr("monthly_fee", "monthly_fee: %v", err)
		}
		p.Fee = fee
	}
	return p, nil
}

// Canonical returns the spec with every number in canonical form
// ("0.01250" is "0.0125", a fee "5" in USD is "5.00") and zero entries
// dropped; the spec must parse.
func (p *Plan) Canonical() PlanSpec {
	s := PlanSpec{Name: p.Name, Currency: p.Currency.Code, Prices: map[string]string{}, Included: map[string]string{}, MonthlyFee: p.Currency.Format(p.Fee)}
	for i := Item(0); i < numItems; i++ {
		if p.Price[i].Sign() != 0 {
			s.Prices[i.Key()] = p.PriceText[i]
		}
		if p.Included[i].Sign() != 0 {
			s.Included[i.Key()] = FormatDecimal(p.Included[i], MaxDecimals)
		}
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Period is one entry of a tenant's plan history: Plan applies from From
// (an hour boundary) until the next period's From.
type Period struct {
	From time.Time
	Plan *Plan
}
