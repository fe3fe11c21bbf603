package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/billing"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestDeletedTenantKeepsBilling: after a tenant is deleted, an admin still
// reads its bills and its invoice (JSON and CSV) of a month it existed in,
// and the month's export of every tenant includes it; the usage lines are
// as before, the monthly fee is charged for the hours it existed. A month
// after its deletion has no invoice. A new tenant of the same name is
// billed on its own plan from its first hour, after the old history.
func TestDeletedTenantKeepsBilling(t *testing.T) {
	hour := func(d, h int) time.Time { return time.Date(2026, 12, d, h, 0, 0, 0, time.UTC) }
	u := &billUsage{closed: hour(3, 0), rows: []billing.Usage{
		{Tenant: "acme", App: "web", From: hour(1, 9), To: hour(1, 10), InstanceSeconds: 2 * 3600, Requests: 700_000},
		{Tenant: "acme", App: "web", From: hour(2, 9), To: hour(2, 10), InstanceSeconds: 1800, Requests: 800_000},
	}}
	f := newBillingFixture(t, u)
	var before apitypes.Invoice
	f.ok("admin", "GET", "/v1/invoices?tenant=acme&month=2026-12", nil, &before)
	if before.Total != "5.23" {
		t.Fatalf("before the delete: %+v", before)
	}
	f.ok("admin", "DELETE", "/v1/tenants/acme", nil, nil)
	if code, _, _ := f.do("admin", "GET", "/v1/tenants/acme", nil); code != 404 {
		t.Fatalf("the tenant is still there: %d", code)
	}

	var bills []apitypes.Bill
	f.ok("admin", "GET", "/v1/bills?tenant=acme&from=2026-12-01&to=2026-12-03", nil, &bills)
	if len(bills) != 3 || bills[0].Total != "0.02" || bills[1].Total != "0.21" || bills[2].Total != "0.00" || bills[0].Plan != "std" {
		t.Fatalf("the deleted tenant's bills: %+v", bills)
	}
	var after apitypes.Invoice
	f.ok("admin", "GET", "/v1/invoices?tenant=acme&month=2026-12", nil, &after)
	// Deleted Dec 3 at 12:00: billed at std for Dec 1 00:00 to Dec 3 13:00,
	// 61 of the month's 744 hours: the fee 5.00 × 61/744 = 0.41, plus
	// the usage's 0.23.
	if after.Tenant != "acme" || after.Total != "0.64" || len(after.Lines) != len(before.Lines) {
		t.Fatalf("the deleted tenant's invoice: %+v", after)
	}
	for i, l := range after.Lines {
		b := before.Lines[i]
		if l.Item == billing.FeeItem {
			if l.Amount != "0.41" {
				t.Fatalf("fee line %+v, want 0.41", l)
			}
			continue
		}
		if l != b {
			t.Fatalf("line %d after the delete %+v, before %+v", i, l, b)
		}
	}
	code, csvBody, _ := f.get("admin", "/v1/invoices?tenant=acme&month=2026-12", "text/csv")
	if code != 200 || !strings.Contains(csvBody, "acme,") || !strings.Contains(csvBody, "0.41") {
		t.Fatalf("the deleted tenant's CSV: %d %s", code, csvBody)
	}
	var all []apitypes.Invoice
	f.ok("admin", "GET", "/v1/invoices?month=2026-12", nil, &all)
	if len(all) != 1 || all[0].Tenant != "acme" || all[0].Total != "0.64" {
		t.Fatalf("the month's export: %+v", all)
	}
	if code, body, _ := f.get("admin", "/v1/invoices?month=2026-12", "text/csv"); code != 200 || !strings.Contains(body, "acme,") {
		t.Fatalf("the month's CSV export: %d %s", code, body)
	}
	if code, body, _ := f.do("admin", "GET", "/v1/invoices?tenant=acme&month=2027-01", nil); code != 404 {
		t.Fatalf("a month after the delete: %d %s", code, body)
	}
	if code, body, _ := f.do("admin", "GET", "/v1/invoices?tenant=never&month=2026-12", nil); code != 404 {
		t.Fatalf("a tenant that never existed: %d %s", code, body)
	}

	// A new acme, on flat from this hour (Dec 3 12:00): the old history
	// up to then, the new plan after.
	f.ok("admin", "POST", "/v1/tenants", apitypes.TenantRequest{Name: "acme"}, nil)
	f.ok("admin", "PUT", "/v1/tenants/acme", `{"plan":"flat"}`, nil)
	var again apitypes.Invoice
	f.ok("admin", "GET", "/v1/invoices?tenant=acme&month=2026-12", nil, &again)
	plans := map[string]bool{}
	for _, l := range again.Lines {
		plans[l.Plan] = true
	}
	if !plans["std"] || !plans["flat"] || len(plans) != 2 {
		t.Fatalf("the new acme's invoice: %+v", again)
	}
	var ten apitypes.Tenant
	f.ok("admin", "GET", "/v1/tenants/acme", nil, &ten)
	if len(ten.PlanHistory) != 1 || ten.Plan != "flat" {
		t.Fatalf("the new tenant shows its own history only: %+v", ten)
	}
}

// TestBudgetWebhookSecretAPI: a budget webhook's secret is sealed before
// it is committed (the state holds no plain text of it), no read returns
// it (reads say "set"), and "" removes it.
func TestBudgetWebhookSecretAPI(t *testing.T) {
	f := newBillingFixture(t, nil)
	const secret = "whsec-4b1d9e7c"
	var ten apitypes.Tenant
	f.ok("acme/tenant-admin", "PUT", "/v1/tenants/acme", `{"budget":"50","budget_webhook":"https://hooks.example.com/b","budget_webhook_secret":"`+secret+`"}`, &ten)
	if ten.BudgetWebhookSecret != "set" {
		t.Fatalf("after setting it: %+v", ten)
	}
	for _, who := range []string{"admin", "acme/viewer"} {
		code, body, _ := f.do(who, "GET", "/v1/tenants/acme", nil)
		if code != 200 || strings.Contains(string(body), secret) || !strings.Contains(string(body), `"budget_webhook_secret":"set"`) {
			t.Fatalf("read as %s: %d %s", who, code, body)
		}
	}
	st, err := f.api.cfg.Store.Snapshot().Tenant(nil, "acme")
	if err != nil || st == nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(st)
	if len(st.SealedBudgetSecret) == 0 || strings.Contains(string(raw), secret) || strings.Contains(string(st.SealedBudgetSecret), secret) {
		t.Fatalf("the stored tenant: %s", raw)
	}
	if got, err := billing.OpenWebhookSecret(f.api.cfg.Keys, "acme", st.SealedBudgetSecret); err != nil || got != secret {
		t.Fatalf("opened: %q %v", got, err)
	}
	if _, err := billing.OpenWebhookSecret(f.api.cfg.Keys, "beta", st.SealedBudgetSecret); err == nil {
		t.Fatal("acme's sealed secret opened as beta's")
	}
	var removed apitypes.Tenant
	f.ok("admin", "PUT", "/v1/tenants/acme", `{"budget_webhook_secret":""}`, &removed)
	if removed.BudgetWebhookSecret != "" || removed.BudgetWebhook == "" {
		t.Fatalf("after removing it: %+v", removed)
	}
}
