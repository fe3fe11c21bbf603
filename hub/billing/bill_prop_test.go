package billing

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
)

// TestBillsAgreeAcrossRanges prices random months two ways and fails on
// any difference: each day asked for alone gives the bills the whole
// month's request gives for it (the included quantities consumed from the
// month's start either way), and the invoice's total is the sum of the
// bills' totals and its fee lines.
func TestBillsAgreeAcrossRanges(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			st := statetest.New(t)
			price := func() string { return fmt.Sprintf("%d.%04d", rng.IntN(3), rng.IntN(10000)) }
			for _, name := range []string{"a", "b", "c"} {
				terms := state.PlanTerms{Currency: "USD", Prices: map[string]string{}, Included: map[string]string{}, MonthlyFee: fmt.Sprintf("%d.%02d", rng.IntN(50), rng.IntN(100))}
				for _, k := range ItemKeys() {
					terms.Prices[k] = price()
					if rng.IntN(2) == 0 {
						terms.Included[k] = fmt.Sprint(rng.IntN(20))
					}
				}
				st.Must(state.PlanCreateType, &state.PlanCreateRequest{Plan: state.Plan{Name: name, PlanTerms: terms}, Time: at(1, 0)})
			}
			// A first plan on a random day, then a few changes.
			when := at(1, 0).Add(time.Duration(rng.IntN(5*24*60)) * time.Minute)
			for i := 0; i < 1+rng.IntN(4); i++ {
				name := []string{"a", "b", "c"}[rng.IntN(3)]
				st.Must(state.TenantUpdateType, &state.TenantUpdateRequest{Name: "acme", Plan: &name, Time: when})
				when = when.Add(time.Duration(1+rng.IntN(6*24*60)) * time.Minute)
			}
			var rows []Usage
			for h := at(1, 0); h.Before(at(1, 0).AddDate(0, 1, 0)); h = h.Add(time.Hour) {
				for _, app := range []string{"web", "api"} {
					if rng.IntN(3) == 0 {
						continue
					}
					rows = append(rows, Usage{Tenant: "acme", App: app, From: h, To: h.Add(time.Hour),
						InstanceSeconds: rng.Int64N(4 * 3600), CPUMilliSeconds: rng.Int64N(4_000_000), MemoryMBSeconds: rng.Int64N(8 << 20),
						Requests: rng.Int64N(300_000), EgressBytes: rng.Int64N(2e9), LogBytes: rng.Int64N(3e8)})
				}
			}
			end := at(1, 0).AddDate(0, 1, 0)
			b := NewBiller(BillerConfig{State: st.Store(), Usage: &fakeUsage{rows: rows, closed: end}, Now: func() time.Time { return end.Add(time.Hour) }})
			ctx := context.Background()
			month, err := b.Bills(ctx, "acme", at(1, 0), end.AddDate(0, 0, -1))
			if err != nil {
				t.Fatal(err)
			}
			byDay := map[string][]any{}
			sum := new(big.Int)
			for _, bill := range month {
				o := bill.Out()
				byDay[o.Day] = append(byDay[o.Day], o)
				sum.Add(sum, bill.Total)
			}
			for d := at(1, 0); d.Before(end); d = d.AddDate(0, 0, 1) {
				alone, err := b.Bills(ctx, "acme", d, d)
				if err != nil {
					t.Fatal(err)
				}
				var got []any
				for _, bill := range alone {
					got = append(got, bill.Out())
				}
				if want := byDay[d.Format("2006-01-02")]; !reflect.DeepEqual(got, want) {
					t.Fatalf("%s alone:\n%+v\nin the month's request:\n%+v", d.Format("2006-01-02"), got, want)
				}
			}
			inv, err := b.Invoice(ctx, "acme", at(1, 0))
			if err != nil {
				t.Fatal(err)
			}
			fees := new(big.Int)
			for _, l := range inv.Lines {
				if l.Item == FeeItem {
					fees.Add(fees, l.Amount)
				}
			}
			if want := new(big.Int).Add(sum, fees); inv.Total.Cmp(want) != 0 || !inv.Final {
				t.Fatalf("invoice total %s (final %v), bills %s + fees %s", inv.Total, inv.Final, sum, fees)
			}
		})
	}
}
