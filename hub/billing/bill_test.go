package billing

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// fakeUsage is a usage source with fixed rows and a closed horizon.
type fakeUsage struct {
	rows   []Usage
	closed time.Time
}

func (f *fakeUsage) Usage(_ context.Context, tenant string, from, to time.Time) ([]Usage, error) {
	var out []Usage
	for _, u := range f.rows {
		if u.Tenant == tenant && !u.From.Before(from) && u.From.Before(to) {
			u.Final = u.To.Compare(f.closed) <= 0
			out = append(out, u)
		}
	}
	return out, nil
}

func (f *fakeUsage) ClosedThrough() (time.Time, error) { return f.closed, nil }

func at(day, hour int) time.Time { return time.Date(2026, 12, day, hour, 0, 0, 0, time.UTC) }

func hourRow(app string, day, hour int, u Usage) Usage {
	u.Tenant, u.App, u.From, u.To = "acme", app, at(day, hour), at(day, hour).Add(time.Hour)
	return u
}

var std = state.Plan{Name: "std", PlanTerms: state.PlanTerms{Currency: "USD",
	Prices:   map[string]string{"instance_hour": "0.01", "cpu_core_hour": "0.02", "memory_gb_hour": "0.005", "requests_million": "0.40", "egress_gb": "0.09", "log_gb": "0.5"},
	Included: map[string]string{"requests_million": "1", "egress_gb": "10"}, MonthlyFee: "5.00"}}

var pro = state.Plan{Name: "pro", PlanTerms: state.PlanTerms{Currency: "USD",
	Prices: map[string]string{"instance_hour": "0.02"}, MonthlyFee: "10.00"}}

// billingState is tenant acme on plan std from Dec 1 00:00.
func billingState(t *testing.T) *statetest.State {
	t.Helper()
	st := statetest.New(t)
	st.Must(state.PlanCreateType, &state.PlanCreateRequest{Plan: std, Time: at(1, 0)})
	st.Must(state.PlanCreateType, &state.PlanCreateRequest{Plan: pro, Time: at(1, 0)})
	name := "std"
	st.Must(state.TenantUpdateType, &state.TenantUpdateRequest{Name: "acme", Plan: &name, Time: at(1, 0).Add(20 * time.Minute)})
	return st
}

// usage: day 1 at 10:00 and day 2 at 00:00 (hand-priced below).
func usage() []Usage {
	return []Usage{
		hourRow("web", 1, 10, Usage{InstanceSeconds: 3600, CPUMilliSeconds: 1_800_000, MemoryMBSeconds: 1024 * 3600, Requests: 400_000, EgressBytes: 4e9, LogBytes: 1e9}),
		hourRow("api", 1, 10, Usage{InstanceSeconds: 3600, CPUMilliSeconds: 1_800_000, MemoryMBSeconds: 1024 * 3600, Requests: 200_000, EgressBytes: 2e9, LogBytes: 5e8}),
		hourRow("web", 2, 0, Usage{InstanceSeconds: 1800, Requests: 900_000, EgressBytes: 5e9}),
	}
}

func lineMap(ls []apitypes.BillLine) map[string]apitypes.BillLine {
	m := map[string]apitypes.BillLine{}
	for _, l := range ls {
		m[l.Plan+"/"+l.Item] = l
	}
	return m
}

func TestBillsHandComputed(t *testing.T) {
	st := billingState(t)
	src := &fakeUsage{rows: usage(), closed: at(3, 0)}
	b := NewBiller(BillerConfig{State: st.Store(), Usage: src, Now: func() time.Time { return at(3, 12) }})
	bills, err := b.Bills(context.Background(), "acme", MonthOf(at(3, 0)), at(3, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(bills) != 3 {
		t.Fatalf("%d bills, want 3 (Dec 1 to today)", len(bills))
	}
	// Day 1: 2 instance-hours × 0.01, 1 core-hour × 0.02, 2 GB-hours ×
	// 0.005, 1.5 GB of logs × 0.5; 0.6M requests and 6 GB egress are
	// within the included 1M and 10 GB.
	// Day 2: 0.5 instance-hour × 0.01 = 0.005 → 0.01 (half away from
	// zero); requests: 0.4M left free of 0.9M → 0.5M × 0.40 = 0.20;
	// egress: 4 GB left free of 5 → 1 GB × 0.09.
	want := []struct {
		day   string
		lines map[string][4]string // item: used, included, quantity, amount
		total string
		final bool
	}{
		{"2026-12-01", map[string][4]string{
			"instance_hour": {"2", "0", "2", "0.02"}, "cpu_core_hour": {"1", "0", "1", "0.02"}, "memory_gb_hour": {"2", "0", "2", "0.01"},
			"requests_million": {"0.6", "0.6", "0", "0.00"}, "egress_gb": {"6", "6", "0", "0.00"}, "log_gb": {"1.5", "0", "1.5", "0.75"}}, "0.80", true},
		{"2026-12-02", map[string][4]string{
			"instance_hour": {"0.5", "0", "0.5", "0.01"}, "cpu_core_hour": {"0", "0", "0", "0.00"}, "memory_gb_hour": {"0", "0", "0", "0.00"},
			"requests_million": {"0.9", "0.4", "0.5", "0.20"}, "egress_gb": {"5", "4", "1", "0.09"}, "log_gb": {"0", "0", "0", "0.00"}}, "0.30", true},
		{"2026-12-03", map[string][4]string{"instance_hour": {"0", "0", "0", "0.00"}}, "0.00", false},
	}
	for i, w := range want {
		got := bills[i].Out()
		if got.Day != w.day || got.Plan != "std" || got.Currency != "USD" || got.Total != w.total || got.Final != w.final || len(got.Lines) != 6 {
			t.Fatalf("bill %d: %+v, want day %s total %s final %v", i, got, w.day, w.total, w.final)
		}
		lm := lineMap(got.Lines)
		for item, v := range w.lines {
			l := lm["/"+item]
			if [4]string{l.Used, l.Included, l.Quantity, l.Amount} != v {
				t.Errorf("%s %s: used %s included %s quantity %s amount %s, want %v", w.day, item, l.Used, l.Included, l.Quantity, l.Amount, v)
			}
		}
		if lm["/instance_hour"].UnitPrice != "0.01" || lm["/instance_hour"].Unit != "instance-hour" {
			t.Errorf("%s: %+v", w.day, lm["/instance_hour"])
		}
	}

	// A range in the middle of the month still consumes the included
	// quantities from the month's start.
	mid, err := b.Bills(context.Background(), "acme", at(2, 0), at(2, 0))
	if err != nil || len(mid) != 1 || mid[0].Out().Total != "0.30" {
		t.Fatalf("Dec 2 alone: %+v %v", mid, err)
	}
	// Unknown tenant.
	if _, err := b.Bills(context.Background(), "nope", at(1, 0), at(2, 0)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown tenant: %v", err)
	}
}

func TestInvoiceSumsBillsAndCSVEqualsJSON(t *testing.T) {
	st := billingState(t)
	src := &fakeUsage{rows: usage(), closed: at(3, 0)}
	b := NewBiller(BillerConfig{State: st.Store(), Usage: src, Now: func() time.Time { return at(3, 12) }})
	inv, err := b.Invoice(context.Background(), "acme", at(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	out := inv.Out()
	// 0.80 + 0.30 of usage, and the whole monthly fee (one plan all month).
	if out.Total != "6.10" || out.Final || out.Month != "2026-12" || out.Currency != "USD" || len(out.Lines) != 7 {
		t.Fatalf("invoice: %+v", out)
	}
	lm := lineMap(out.Lines)
	for item, v := range map[string][4]string{
		"instance_hour":    {"2.5", "0", "2.5", "0.03"},
		"requests_million": {"1.5", "1", "0.5", "0.20"},
		"egress_gb":        {"11", "10", "1", "0.09"},
		"log_gb":           {"1.5", "0", "1.5", "0.75"},
		"monthly_fee":      {"1", "0", "1", "5.00"},
	} {
		l := lm["std/"+item]
		if [4]string{l.Used, l.Included, l.Quantity, l.Amount} != v {
			t.Errorf("invoice %s: %+v, want %v", item, l, v)
		}
	}

	// CSV: the same lines, amounts as decimal strings.
	var buf bytes.Buffer
	if err := WriteCSV(&buf, []apitypes.Invoice{out}); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(recs[0], CSVHeader()) || len(recs) != 1+len(out.Lines) {
		t.Fatalf("csv: %v", recs)
	}
	for i, l := range out.Lines {
		r := recs[i+1]
		want := []string{"acme", "2026-12", l.Plan, l.Item, l.Quantity, l.Unit, l.UnitPrice, l.Amount, "USD", l.Used, l.Included, "false"}
		if !reflect.DeepEqual(r, want) {
			t.Errorf("csv row %d: %v, want %v", i, r, want)
		}
	}
	// JSON round trip keeps strings: no number ever becomes a float.
	j, _ := json.Marshal(out)
	if strings.Contains(string(j), `"total":6.1`) || !strings.Contains(string(j), `"total":"6.10"`) {
		t.Fatalf("json: %s", j)
	}
	// HTML: escaped, printable.
	buf.Reset()
	evil := out
	evil.Tenant = "<script>x</script>"
	if err := WriteHTML(&buf, []apitypes.Invoice{evil}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<script>x") || !strings.Contains(buf.String(), "&lt;script&gt;") || !strings.Contains(buf.String(), "6.10") {
		t.Fatalf("html: %s", buf.String())
	}

	// A month the tenant had no plan in has no invoice.
	if _, err := b.Invoice(context.Background(), "acme", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrNoPlan) {
		t.Fatalf("October: %v", err)
	}
	// A closed month is final.
	src.closed = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	b.cfg.Now = func() time.Time { return time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC) }
	inv, err = b.Invoice(context.Background(), "acme", at(1, 0))
	if err != nil || !inv.Final || inv.Out().Total != "6.10" {
		t.Fatalf("closed December: %+v %v", inv, err)
	}
	all, err := b.Invoices(context.Background(), at(1, 0))
	if err != nil || len(all) != 1 || all[0].Tenant != "acme" {
		t.Fatalf("every tenant's: %+v %v", all, err)
	}
}

// TestPlanChangeSplitsTheDay: a change at 14:00 gives the day two bills,
// one per plan, and the fee is shared by hours.
func TestPlanChangeSplitsTheDay(t *testing.T) {
	st := billingState(t)
	name := "pro"
	st.Must(state.TenantUpdateType, &state.TenantUpdateRequest{Name: "acme", Plan: &name, Time: at(2, 13).Add(30 * time.Minute)})
	rows := append(usage(), hourRow("web", 2, 15, Usage{InstanceSeconds: 3600}))
	b := NewBiller(BillerConfig{State: st.Store(), Usage: &fakeUsage{rows: rows, closed: at(3, 0)}, Now: func() time.Time { return at(3, 12) }})
	bills, err := b.Bills(context.Background(), "acme", at(2, 0), at(2, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(bills) != 2 {
		t.Fatalf("%d bills on the day of the change, want 2", len(bills))
	}
	a, c := bills[0].Out(), bills[1].Out()
	if a.Plan != "std" || !a.From.Equal(at(2, 0)) || !a.To.Equal(at(2, 14)) || a.Total != "0.30" {
		t.Fatalf("before the change: %+v", a)
	}
	if c.Plan != "pro" || !c.From.Equal(at(2, 14)) || !c.To.Equal(at(3, 0)) || c.Total != "0.02" {
		t.Fatalf("after the change: %+v", c)
	}
	inv, err := b.Invoice(context.Background(), "acme", at(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	lm := lineMap(inv.Out().Lines)
	// std: 38 of December's 744 hours × 5.00 = 0.2553… → 0.26; pro: 706/744
	// × 10.00 = 9.4892… → 9.49.
	if f := lm["std/monthly_fee"]; f.Amount != "0.26" || f.Quantity != "0.051075269" {
		t.Errorf("std fee: %+v", f)
	}
	if f := lm["pro/monthly_fee"]; f.Amount != "9.49" || f.UnitPrice != "10.00" {
		t.Errorf("pro fee: %+v", f)
	}
	if got := inv.Out().Total; got != "10.87" { // 0.80 + 0.30 + 0.02 + 0.26 + 9.49
		t.Errorf("total %s, want 10.87", got)
	}
}

func TestIncludedIsPerMonth(t *testing.T) {
	st := billingState(t)
	// 0.8M requests on Dec 31 (free: within December's 1M), 1.5M on Jan 1:
	// January starts with its own allowance.
	rows := []Usage{
		hourRow("web", 31, 23, Usage{Requests: 800_000}),
		{Tenant: "acme", App: "web", From: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 1, 1, 0, 0, 0, time.UTC), Requests: 1_500_000},
	}
	b := NewBiller(BillerConfig{State: st.Store(), Usage: &fakeUsage{rows: rows, closed: at(1, 0).AddDate(1, 0, 0)}, Now: func() time.Time { return time.Date(2027, 1, 5, 0, 0, 0, 0, time.UTC) }})
	bills, err := b.Bills(context.Background(), "acme", at(31, 0), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || len(bills) != 2 {
		t.Fatalf("%+v %v", bills, err)
	}
	dec, jan := lineMap(bills[0].Out().Lines)["/requests_million"], lineMap(bills[1].Out().Lines)["/requests_million"]
	if dec.Quantity != "0" || dec.Included != "0.8" {
		t.Errorf("Dec 31: %+v", dec)
	}
	if jan.Quantity != "0.5" || jan.Included != "1" || jan.Amount != "0.20" {
		t.Errorf("Jan 1: %+v", jan)
	}
}

func TestHoursBeforeTheFirstPlanAreFree(t *testing.T) {
	st := statetest.New(t)
	st.Must(state.PlanCreateType, &state.PlanCreateRequest{Plan: std, Time: at(1, 0)})
	name := "std"
	st.Must(state.TenantUpdateType, &state.TenantUpdateRequest{Name: "acme", Plan: &name, Time: at(2, 10).Add(5 * time.Minute)})
	rows := []Usage{hourRow("web", 2, 9, Usage{InstanceSeconds: 3600}), hourRow("web", 2, 10, Usage{InstanceSeconds: 3600})}
	b := NewBiller(BillerConfig{State: st.Store(), Usage: &fakeUsage{rows: rows, closed: at(3, 0)}, Now: func() time.Time { return at(2, 12) }})
	bills, err := b.Bills(context.Background(), "acme", at(1, 0), at(2, 0))
	if err != nil || len(bills) != 1 {
		t.Fatalf("%+v %v", bills, err)
	}
	if got := bills[0].Out(); !got.From.Equal(at(2, 10)) || got.Total != "0.01" {
		t.Fatalf("first day: %+v (the 09:00 hour is before the plan)", got)
	}
}
