package cli

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestBillingCommands(t *testing.T) {
	std := apitypes.Plan{Name: "std", Currency: "USD", Prices: map[string]string{"instance_hour": "0.01", "egress_gb": "0.09"}, Included: map[string]string{"egress_gb": "10"}, MonthlyFee: "5.00"}
	inv := apitypes.Invoice{Tenant: "acme", Month: "2026-12", Currency: "USD", Total: "5.23", Lines: []apitypes.BillLine{
		{Item: "instance_hour", Plan: "std", Quantity: "2.5", Unit: "instance-hour", UnitPrice: "0.01", Amount: "0.03"},
		{Item: "monthly_fee", Plan: "std", Quantity: "1", Unit: "month", UnitPrice: "5.00", Amount: "5.00"}}}
	from := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	f, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"POST /v1/plans":       jsonAnswer(201, std),
		"GET /v1/plans":        jsonAnswer(200, []apitypes.Plan{std}),
		"GET /v1/plans/std":    jsonAnswer(200, std),
		"PUT /v1/tenants/acme": jsonAnswer(200, apitypes.Tenant{Name: "acme", Plan: "std", PlanHistory: []apitypes.PlanPeriod{{Plan: "std", From: from}}, Budget: "100.00", BudgetHardStop: true}),
		"GET /v1/bills": jsonAnswer(200, []apitypes.Bill{{Tenant: "acme", Day: "2026-12-01", Plan: "std", From: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
			To: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), Total: "0.02", Currency: "USD", Final: true}}),
		"GET /v1/invoices": func(w http.ResponseWriter) { jsonAnswer(200, inv)(w) },
		"GET /v1/tenants/acme": jsonAnswer(200, apitypes.Tenant{Name: "acme", Plan: "std", Budget: "100.00", BudgetHardStop: true,
			BudgetStatus: &apitypes.BudgetStatus{Month: "2026-12", Spent: "101.00", Over: true}}),
	})
	if out, _, code := run(t, "", "--addr", addr, "tenant", "show", "acme"); code != 0 || !strings.Contains(out, "PLAN") || !strings.Contains(out, "100.00 (hard stop), over") {
		t.Fatalf("tenant show: %d %q", code, out)
	}

	out, stderr, code := run(t, "", "--addr", addr, "plan", "create", "std", "--currency", "USD", "--price", "instance_hour=0.01,egress_gb=0.09",
		"--included", "egress_gb=10", "--monthly-fee", "5.00")
	if code != 0 || !strings.Contains(out, "0.09") {
		t.Fatalf("plan create: %d %q %q", code, out, stderr)
	}
	var req apitypes.PlanRequest
	if err := json.Unmarshal(f.last().body, &req); err != nil || req.Name != "std" || req.Currency != "USD" || req.Prices["instance_hour"] != "0.01" ||
		req.Prices["egress_gb"] != "0.09" || req.Included["egress_gb"] != "10" || req.MonthlyFee != "5.00" {
		t.Fatalf("plan create sent %s", f.last().body)
	}
	if _, _, code := run(t, "", "--addr", addr, "plan", "create", "x"); code != 2 {
		t.Fatalf("plan create without --currency: exit %d", code)
	}
	if out, _, code := run(t, "", "--addr", addr, "plan", "ls"); code != 0 || !strings.Contains(out, "std") || !strings.Contains(out, "egress_gb=0.09") {
		t.Fatalf("plan ls: %d %q", code, out)
	}

	out, stderr, code = run(t, "", "--addr", addr, "tenant", "set-plan", "acme", "std")
	if code != 0 || !strings.Contains(out, "plan std from 2026-12-04T10:00Z") || string(f.last().body) != `{"plan":"std"}` {
		t.Fatalf("set-plan: %d %q %q sent %s", code, out, stderr, f.last().body)
	}
	out, _, code = run(t, "", "--addr", addr, "tenant", "set-budget", "acme", "100.00", "--hard-stop")
	var upd apitypes.TenantUpdate
	if code != 0 || !strings.Contains(out, "budget 100.00 per month (hard stop)") || json.Unmarshal(f.last().body, &upd) != nil ||
		*upd.Budget != "100.00" || !*upd.BudgetHardStop || upd.BudgetWebhook != nil || upd.Plan != nil {
		t.Fatalf("set-budget: %d %q sent %s", code, out, f.last().body)
	}

	out, _, code = run(t, "", "--addr", addr, "--tenant", "acme", "bill", "ls", "--from", "2026-12-01", "--to", "2026-12-03")
	q, _ := url.ParseQuery(f.last().query)
	if code != 0 || !strings.Contains(out, "2026-12-01") || !strings.Contains(out, "all day") || q.Get("from") != "2026-12-01" || q.Get("to") != "2026-12-03" || q.Get("tenant") != "acme" {
		t.Fatalf("bill ls: %d %q query %s", code, out, f.last().query)
	}

	out, _, code = run(t, "", "--addr", addr, "--tenant", "acme", "invoice", "show", "--month", "2026-12")
	q, _ = url.ParseQuery(f.last().query)
	if code != 0 || !strings.Contains(out, "monthly_fee") || !strings.Contains(out, "5.23 USD") || q.Get("month") != "2026-12" {
		t.Fatalf("invoice show: %d %q", code, out)
	}
	// csv and html come from the hub as they are.
	_, _, code = run(t, "", "--addr", addr, "--tenant", "acme", "invoice", "show", "-o", "csv")
	if q, _ = url.ParseQuery(f.last().query); code != 0 || q.Get("format") != "csv" {
		t.Fatalf("invoice show -o csv: %d query %s", code, f.last().query)
	}
	if _, _, code := run(t, "", "--addr", addr, "invoice", "show", "-o", "pdf"); code != 2 {
		t.Fatalf("-o pdf: exit %d", code)
	}
	if _, _, code := run(t, "", "--addr", addr, "app", "ls", "-o", "csv"); code != 2 {
		t.Fatalf("-o csv outside invoices: exit %d", code)
	}
}
