package billing

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

// TestBillsFromTheMeter prices what the real Meter measured from committed
// instance reports: one instance (500 millicores, 256 MB) running from Dec
// 1 00:00, five hours closed, the sixth open at 05:30.
func TestBillsFromTheMeter(t *testing.T) {
	c := newFSMCommit(t)
	c.running(t0)
	c.must(state.PlanCreateType, &state.PlanCreateRequest{Plan: std, Time: t0})
	plan := "std"
	c.must(state.TenantUpdateType, &state.TenantUpdateRequest{Name: "acme", Plan: &plan, Time: t0})
	clk := &clock{t: t0.Add(5*time.Hour + 30*time.Minute)}
	meter, err := NewMeter(MeterConfig{State: c, Commit: c, Now: clk.Now, Grace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); meter.Run(ctx) }()
	waitFor(t, "five closed hours", func() bool { ct, _ := meter.ClosedThrough(); return ct.Equal(t0.Add(5 * time.Hour)) })
	cancel()
	wg.Wait()

	b := NewBiller(BillerConfig{State: c, Usage: meter, Now: clk.Now})
	bills, err := b.Bills(context.Background(), "acme", t0, t0)
	if err != nil || len(bills) != 1 {
		t.Fatalf("%+v %v", bills, err)
	}
	// 5.5 instance-hours × 0.01 = 0.055 → 0.06; 2.75 core-hours × 0.02 =
	// 0.055 → 0.06; 1.375 GB-hours × 0.005 = 0.006875 → 0.01.
	got := bills[0].Out()
	lm := lineMap(got.Lines)
	if lm["/instance_hour"].Quantity != "5.5" || lm["/cpu_core_hour"].Quantity != "2.75" || lm["/memory_gb_hour"].Quantity != "1.375" ||
		got.Total != "0.13" || got.Final {
		t.Fatalf("Dec 1 so far: %+v", got)
	}
	inv, err := b.Invoice(context.Background(), "acme", t0)
	if err != nil || inv.Out().Total != "5.13" || inv.Final {
		t.Fatalf("December so far: %+v %v", inv, err)
	}
}
