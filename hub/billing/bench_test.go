package billing

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
)

// byTenant is a usage source with each tenant's rows ready, in time
// order: it hands out a part of them without copying, so the benchmark
// measures the pricing, not the fake.
type byTenant map[string][]Usage

func (b byTenant) Usage(_ context.Context, tenant string, from, to time.Time) ([]Usage, error) {
	rows := b[tenant]
	lo := sort.Search(len(rows), func(i int) bool { return !rows[i].From.Before(from) })
	hi := sort.Search(len(rows), func(i int) bool { return !rows[i].From.Before(to) })
	return rows[lo:hi], nil
}

// BenchmarkInvoices100Tenants prices a whole month for 100 tenants with
// 10 apps each, one usage row per app and hour (744,000 rows): what an
// admin's export of every invoice costs (goal: at most 2 s).
func BenchmarkInvoices100Tenants(b *testing.B) {
	st := statetest.New(b)
	st.Must(state.PlanCreateType, &state.PlanCreateRequest{Plan: std, Time: at(1, 0)})
	month := at(1, 0)
	end := month.AddDate(0, 1, 0)
	src := byTenant{}
	name := "std"
	for i := 0; i < 100; i++ {
		ten := fmt.Sprintf("t%03d", i)
		st.Must(state.TenantCreateType, &state.TenantCreateRequest{Tenant: state.Tenant{Name: ten}, Time: month})
		st.Must(state.TenantUpdateType, &state.TenantUpdateRequest{Name: ten, Plan: &name, Time: month})
		for h := month; h.Before(end); h = h.Add(time.Hour) {
			for a := 0; a < 10; a++ {
				src[ten] = append(src[ten], Usage{Tenant: ten, App: fmt.Sprintf("app%d", a), From: h, To: h.Add(time.Hour), Final: true,
					InstanceSeconds: 3 * 3600, CPUMilliSeconds: 3 * 250 * 3600, MemoryMBSeconds: 3 * 512 * 3600, Requests: 12345 + int64(a),
					EgressBytes: 7_654_321, LogBytes: 123_456})
			}
		}
	}
	biller := NewBiller(BillerConfig{State: st.Store(), Usage: src, Now: func() time.Time { return end.Add(time.Hour) }})
	b.ResetTimer()
	for b.Loop() {
		invs, err := biller.Invoices(context.Background(), month)
		if err != nil || len(invs) != 100 {
			b.Fatalf("%d invoices, %v", len(invs), err)
		}
	}
}
