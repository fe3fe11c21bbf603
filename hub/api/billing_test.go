package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/billing"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// billUsage is a usage source with fixed hourly rows; hours before closed
// are final.
type billUsage struct {
	rows   []billing.Usage
	closed time.Time
}

func (u *billUsage) Usage(_ context.Context, tenant string, from, to time.Time) ([]billing.Usage, error) {
	var out []billing.Usage
	for _, r := range u.rows {
		if r.Tenant == tenant && !r.From.Before(from) && r.From.Before(to) {
			r.Final = !r.To.After(u.closed)
			out = append(out, r)
		}
	}
	return out, nil
}

func (u *billUsage) ClosedThrough() (time.Time, error) { return u.closed, nil }

var billNow = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// newBillingFixture is newFixture with a clock at billNow and a biller
// over usage; tenants acme and beta, plans std (USD) and flat (a fee of
// 100.00), acme on std since Dec 1.
func newBillingFixture(t *testing.T, usage billing.UsageSource) *fixture {
	t.Helper()
	store, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeCluster{fsm: state.NewFSM(store, nil)}
	now := func() time.Time { return billNow }
	s, err := New(Config{Store: store, Cluster: fc, Now: now, Billing: billing.NewBiller(billing.BillerConfig{State: store, Usage: usage, Now: now})})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	f := &fixture{t: t, srv: srv, cluster: fc, api: s, tokens: map[string]string{}}
	var b apitypes.BootstrapResponse
	f.ok("", "POST", "/v1/bootstrap", nil, &b)
	f.tokens["admin"] = b.Token
	for _, tenant := range []string{"acme", "beta"} {
		f.ok("admin", "POST", "/v1/tenants", apitypes.TenantRequest{Name: tenant}, nil)
		for _, role := range []apitypes.Role{apitypes.RoleTenantAdmin, apitypes.RoleDeveloper, apitypes.RoleViewer} {
			var tok apitypes.Token
			f.ok("admin", "POST", "/v1/tokens", apitypes.TokenRequest{Name: string(role), Role: role, Tenant: tenant}, &tok)
			f.tokens[tenant+"/"+string(role)] = tok.Secret
		}
	}
	f.ok("admin", "POST", "/v1/plans", `{"name":"std","currency":"USD","prices":{"instance_hour":"0.01","requests_million":"0.40"},"included":{"requests_million":"1"},"monthly_fee":"5.00"}`, nil)
	f.ok("admin", "POST", "/v1/plans", `{"name":"flat","currency":"USD","monthly_fee":"100"}`, nil)
	// acme's first plan, from Dec 1 00:00 (written with that time).
	plan := "std"
	f.applyState(state.TenantUpdateType, &state.TenantUpdateRequest{Name: "acme", Plan: &plan, Time: time.Date(2026, 12, 1, 0, 10, 0, 0, time.UTC)})
	return f
}

func (f *fixture) index() uint64 { return f.api.cfg.Store.Snapshot().LatestIndex() }

// get sends a GET with an Accept header.
func (f *fixture) get(who, path, accept string) (int, string, http.Header) {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+f.tokens[who])
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestPlansAPI(t *testing.T) {
	f := newBillingFixture(t, nil)
	var p apitypes.Plan
	f.ok("admin", "POST", "/v1/plans", `{"name":"eu","currency":"EUR","prices":{"egress_gb":"0.0900","log_gb":"1"},"included":{"egress_gb":"5.0"},"monthly_fee":"7.5"}`, &p)
	if p.Prices["egress_gb"] != "0.09" || p.Included["egress_gb"] != "5" || p.MonthlyFee != "7.50" || p.Currency != "EUR" {
		t.Fatalf("created plan (canonical numbers): %+v", p)
	}
	bad := []struct {
		name, body, field string
		code              int
	}{
		{"not a decimal", `{"name":"x","currency":"USD","prices":{"instance_hour":"ten"}}`, "prices.instance_hour", 400},
		{"a JSON number", `{"name":"x","currency":"USD","prices":{"instance_hour":0.01}}`, "prices", 400},
		{"negative", `{"name":"x","currency":"USD","prices":{"egress_gb":"-1"}}`, "prices.egress_gb", 400},
		{"unknown key", `{"name":"x","currency":"USD","prices":{"gpu_hour":"1"}}`, "prices.gpu_hour", 400},
		{"unknown included key", `{"name":"x","currency":"USD","included":{"disk_gb":"1"}}`, "included.disk_gb", 400},
		{"unknown currency", `{"name":"x","currency":"DOGE"}`, "currency", 400},
		{"fee below the minor unit", `{"name":"x","currency":"JPY","monthly_fee":"1.5"}`, "monthly_fee", 400},
		{"unknown field", `{"name":"x","currency":"USD","discount":"5"}`, "discount", 400},
		{"bad name", `{"name":"No Way","currency":"USD"}`, "name", 400},
		{"duplicate", `{"name":"std","currency":"USD"}`, "name", 409},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := f.index()
			code, body, _ := f.do("admin", "POST", "/v1/plans", tt.body)
			var e apitypes.Error
			_ = json.Unmarshal(body, &e)
			if code != tt.code || e.Field != tt.field || e.Message == "" {
				t.Fatalf("%d %s, want %d on field %s", code, body, tt.code, tt.field)
			}
			if f.index() != before {
				t.Fatal("bad input changed the state")
			}
		})
	}
	if code, _, _ := f.do("acme/tenant-admin", "POST", "/v1/plans", `{"name":"mine","currency":"USD"}`); code != 403 {
		t.Fatalf("tenant creates a plan: %d", code)
	}
	var ps []apitypes.Plan
	f.ok("acme/viewer", "GET", "/v1/plans", nil, &ps)
	if len(ps) != 3 {
		t.Fatalf("plans: %+v", ps)
	}
	if code, _, _ := f.do("admin", "DELETE", "/v1/plans/std", nil); code != 409 {
		t.Fatalf("deleting acme's plan: %d", code)
	}
	f.ok("admin", "DELETE", "/v1/plans/eu", nil, nil)
	if code, _, _ := f.do("admin", "GET", "/v1/plans/eu", nil); code != 404 {
		t.Fatalf("deleted plan: %d", code)
	}
}

func TestTenantPlanAndBudgetAPI(t *testing.T) {
	f := newBillingFixture(t, nil)
	bad := []struct {
		name, who, path, body, field string
		code                         int
	}{
		{"unknown plan", "admin", "/v1/tenants/beta", `{"plan":"gold"}`, "plan", 400},
		{"no plan", "admin", "/v1/tenants/beta", `{"plan":""}`, "plan", 400},
		{"budget without a plan", "admin", "/v1/tenants/beta", `{"budget":"10.00"}`, "budget", 400},
		{"budget not a decimal", "admin", "/v1/tenants/acme", `{"budget":"lots"}`, "budget", 400},
		{"budget finer than cents", "admin", "/v1/tenants/acme", `{"budget":"10.001"}`, "budget", 400},
		{"budget zero", "admin", "/v1/tenants/acme", `{"budget":"0"}`, "budget", 400},
		{"budget as a number", "admin", "/v1/tenants/acme", `{"budget":10}`, "budget", 400},
		{"bad webhook", "admin", "/v1/tenants/acme", `{"budget_webhook":"ftp://x"}`, "budget_webhook", 400},
		{"unknown field", "admin", "/v1/tenants/acme", `{"pools":["x"]}`, "pools", 400},
		{"nothing", "admin", "/v1/tenants/acme", `{}`, "", 400},
		{"unknown tenant", "admin", "/v1/tenants/nope", `{"plan":"std"}`, "", 404},
		{"tenant-admin sets a plan", "acme/tenant-admin", "/v1/tenants/acme", `{"plan":"flat"}`, "", 403},
		{"developer sets a budget", "acme/developer", "/v1/tenants/acme", `{"budget":"10.00"}`, "", 403},
		{"another tenant", "beta/tenant-admin", "/v1/tenants/acme", `{"budget":"10.00"}`, "", 404},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := f.index()
			code, body, _ := f.do(tt.who, "PUT", tt.path, tt.body)
			var e apitypes.Error
			_ = json.Unmarshal(body, &e)
			if code != tt.code || e.Field != tt.field {
				t.Fatalf("%d %s, want %d on field %q", code, body, tt.code, tt.field)
			}
			if f.index() != before {
				t.Fatal("bad input changed the state")
			}
		})
	}
	var ten apitypes.Tenant
	f.ok("admin", "PUT", "/v1/tenants/beta", `{"plan":"flat","budget":"150.00"}`, &ten)
	from := billNow.Truncate(time.Hour)
	if ten.Plan != "flat" || ten.Budget != "150.00" || len(ten.PlanHistory) != 1 || !ten.PlanHistory[0].From.Equal(from) {
		t.Fatalf("beta's first plan (from this hour): %+v", ten)
	}
	f.ok("admin", "PUT", "/v1/tenants/beta", `{"plan":"std"}`, &ten)
	if ten.Plan != "std" || ten.Budget != "150.00" || len(ten.PlanHistory) != 2 || !ten.PlanHistory[1].From.Equal(from.Add(time.Hour)) {
		t.Fatalf("beta's change (from the next hour; the budget unchanged): %+v", ten)
	}
	f.ok("beta/tenant-admin", "PUT", "/v1/tenants/beta", `{"budget":"200","budget_hard_stop":true,"budget_webhook":"https://hooks.example.com/b"}`, &ten)
	f.ok("beta/viewer", "GET", "/v1/tenants/beta", nil, &ten)
	if ten.Budget != "200.00" || !ten.BudgetHardStop || ten.BudgetWebhook != "https://hooks.example.com/b" || ten.Plan != "std" {
		t.Fatalf("beta after the tenant-admin's budget: %+v", ten)
	}
}

func TestBillsAndInvoicesAPI(t *testing.T) {
	hour := func(d, h int) time.Time { return time.Date(2026, 12, d, h, 0, 0, 0, time.UTC) }
	u := &billUsage{closed: hour(3, 0), rows: []billing.Usage{
		{Tenant: "acme", App: "web", From: hour(1, 9), To: hour(1, 10), InstanceSeconds: 2 * 3600, Requests: 700_000},
		{Tenant: "acme", App: "web", From: hour(2, 9), To: hour(2, 10), InstanceSeconds: 1800, Requests: 800_000},
		{Tenant: "beta", App: "web", From: hour(2, 9), To: hour(2, 10), InstanceSeconds: 99 * 3600},
	}}
	f := newBillingFixture(t, u)
	var bills []apitypes.Bill
	f.ok("acme/viewer", "GET", "/v1/bills", nil, &bills)
	if len(bills) != 3 || bills[0].Day != "2026-12-01" || bills[2].Day != "2026-12-03" {
		t.Fatalf("this month's bills: %+v", bills)
	}
	// Dec 1: 2 × 0.01; Dec 2: 0.5 × 0.01 = 0.005 → 0.01, and 0.5M of 0.8M
	// requests over the 1M included × 0.40 = 0.20.
	if bills[0].Total != "0.02" || bills[1].Total != "0.21" || bills[2].Total != "0.00" || !bills[0].Final || !bills[1].Final || bills[2].Final {
		t.Fatalf("totals: %s %s %s, final %v %v %v", bills[0].Total, bills[1].Total, bills[2].Total, bills[0].Final, bills[1].Final, bills[2].Final)
	}
	f.ok("admin", "GET", "/v1/bills?tenant=acme&from=2026-12-02&to=2026-12-02", nil, &bills)
	if len(bills) != 1 || bills[0].Total != "0.21" || bills[0].Tenant != "acme" {
		t.Fatalf("one day: %+v", bills)
	}
	for _, tt := range []struct {
		who, path, field string
		code             int
	}{
		{"admin", "/v1/bills", "tenant", 400},
		{"admin", "/v1/bills?tenant=acme&from=2026-12-05&to=2026-12-01", "from", 400},
		{"admin", "/v1/bills?tenant=acme&from=yesterday", "from", 400},
		{"admin", "/v1/bills?tenant=acme&to=2026-13-01", "to", 400},
		{"admin", "/v1/bills?tenant=acme&from=2020-01-01&to=2026-12-01", "from", 400},
		{"admin", "/v1/bills?tenant=nope", "", 404},
		{"beta/viewer", "/v1/bills?tenant=acme", "", 404},
	} {
		code, body, _ := f.do(tt.who, "GET", tt.path, nil)
		var e apitypes.Error
		_ = json.Unmarshal(body, &e)
		if code != tt.code || e.Field != tt.field {
			t.Errorf("GET %s as %s: %d %s, want %d on %q", tt.path, tt.who, code, body, tt.code, tt.field)
		}
	}

	// The invoice: the bills summed, and the fee.
	var inv apitypes.Invoice
	f.ok("acme/viewer", "GET", "/v1/invoices?month=2026-12", nil, &inv)
	if inv.Tenant != "acme" || inv.Month != "2026-12" || inv.Total != "5.23" || inv.Final || inv.Currency != "USD" || len(inv.Lines) != 7 {
		t.Fatalf("invoice: %+v", inv)
	}
	// The same as CSV (Accept or ?format), line for line.
	code, body, hdr := f.get("acme/viewer", "/v1/invoices?month=2026-12", "text/csv")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s %s", code, hdr.Get("Content-Type"), body)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(recs) != 1+len(inv.Lines) {
		t.Fatalf("csv: %v %q", err, body)
	}
	for i, l := range inv.Lines {
		r := recs[i+1]
		if r[0] != "acme" || r[2] != l.Plan || r[3] != l.Item || r[4] != l.Quantity || r[5] != l.Unit || r[6] != l.UnitPrice || r[7] != l.Amount || r[8] != "USD" {
			t.Errorf("csv row %d %v != json line %+v", i, r, l)
		}
	}
	if _, b2, _ := f.get("acme/viewer", "/v1/invoices?month=2026-12&format=csv", ""); b2 != body {
		t.Fatal("?format=csv differs from Accept: text/csv")
	}
	for _, q := range []struct{ path, accept string }{{"/v1/invoices?month=2026-12&format=html", ""}, {"/v1/invoices?month=2026-12", "text/html,application/xhtml+xml"}} {
		code, page, hdr := f.get("acme/viewer", q.path, q.accept)
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(page, "<table>") || !strings.Contains(page, "5.23") {
			t.Fatalf("html %s: %d %s", q.path, code, page)
		}
	}
	// An admin without a tenant exports every tenant with a plan (beta has
	// none: its usage is not billed).
	var all []apitypes.Invoice
	f.ok("admin", "GET", "/v1/invoices?month=2026-12", nil, &all)
	if len(all) != 1 || all[0].Tenant != "acme" || all[0].Total != "5.23" {
		t.Fatalf("every tenant's: %+v", all)
	}
	for _, tt := range []struct {
		who, path, field string
		code             int
	}{
		{"acme/viewer", "/v1/invoices?month=2026-13", "month", 400},
		{"acme/viewer", "/v1/invoices?month=2026-1", "month", 400},
		{"acme/viewer", "/v1/invoices?month=december", "month", 400},
		{"acme/viewer", "/v1/invoices?month=2026-12&format=pdf", "format", 400},
		{"beta/viewer", "/v1/invoices?tenant=acme&month=2026-12", "", 404}, // not 403: acme's existence is not told
		{"beta/viewer", "/v1/invoices?month=2026-12", "", 404},             // beta has no plan
		{"admin", "/v1/invoices?tenant=nope", "", 404},
	} {
		code, body, _ := f.do(tt.who, "GET", tt.path, nil)
		var e apitypes.Error
		_ = json.Unmarshal(body, &e)
		if code != tt.code || e.Field != tt.field {
			t.Errorf("GET %s as %s: %d %s, want %d on %q", tt.path, tt.who, code, body, tt.code, tt.field)
		}
	}
	if code, body, _ := f.do("beta/viewer", "GET", "/v1/invoices?tenant=acme&month=2026-12", nil); strings.Contains(string(body), "acme") && code != 404 {
		t.Fatalf("another tenant's invoice leaked: %s", body)
	}
}

// TestHardStopAPI: over budget with a hard stop, a new app and a scale-up
// are answered 422 with a clear message and change nothing; scaling down
// still works.
func TestHardStopAPI(t *testing.T) {
	f := newBillingFixture(t, nil)
	f.ok("admin", "PUT", "/v1/apps/web?tenant=beta", apitypes.AppSpec{Name: "web", Image: "web:1"}, nil)
	f.ok("admin", "PUT", "/v1/tenants/beta", `{"plan":"flat","budget":"50.00","budget_hard_stop":true}`, nil)
	budgets := billing.NewBudgets(billing.BudgetConfig{State: f.api.cfg.Store, Invoices: f.api.cfg.Billing.(*billing.Biller), Commit: f.cluster,
		Now: func() time.Time { return billNow }})
	if err := budgets.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	budgets.Wait()
	var ten apitypes.Tenant
	f.ok("beta/viewer", "GET", "/v1/tenants/beta", nil, &ten)
	if ten.BudgetStatus == nil || !ten.BudgetStatus.Over || ten.BudgetStatus.Spent != "91.94" || len(ten.BudgetStatus.Alerts) != 2 {
		t.Fatalf("budget status: %+v", ten.BudgetStatus)
	}
	before := f.index()
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/v1/apps", `{"name":"new","image":"i"}`},
		{"POST", "/v1/apps/web/scale", `{"instances":3}`},
		{"PUT", "/v1/apps/web", `{"image":"web:1","instances":2}`},
	} {
		code, body, _ := f.do("beta/developer", tt.method, tt.path, tt.body)
		if code != 422 || !strings.Contains(string(body), "over its monthly budget") {
			t.Errorf("%s %s: %d %s, want 422", tt.method, tt.path, code, body)
		}
	}
	if f.index() != before {
		t.Fatal("a refused request changed the state")
	}
	var app apitypes.App
	f.ok("beta/viewer", "GET", "/v1/apps/web", nil, &app)
	if app.Instances == nil || *app.Instances != 1 {
		t.Fatalf("the app changed: %+v", app)
	}
	f.ok("beta/developer", "POST", "/v1/apps/web/scale", `{"instances":0}`, nil)
	// Another tenant is not affected.
	f.ok("acme/developer", "POST", "/v1/apps", `{"name":"new","image":"i"}`, nil)
}

func FuzzDecodePlan(f *testing.F) {
	for _, s := range []string{
		`{"name":"std","currency":"USD","prices":{"instance_hour":"0.01","egress_gb":"0.09"},"included":{"egress_gb":"10"},"monthly_fee":"5.00"}`,
		`{"name":"y","currency":"JPY","prices":{"log_gb":"3"},"monthly_fee":"500"}`,
		`{"name":"x","currency":"USD","prices":{"instance_hour":"-1"}}`,
		`{"name":"x","currency":"USD","prices":{"instance_hour":"1e5"}}`,
		`{}`, `[]`, `{"prices":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req apitypes.PlanRequest
		if decodeJSON(b, &req) != nil {
			return
		}
		p, err := billing.ParsePlan(billing.PlanSpec{Name: req.Name, Currency: req.Currency, Prices: req.Prices, Included: req.Included, MonthlyFee: req.MonthlyFee})
		if err != nil {
			return
		}
		// What is accepted is canonical after one round and prices the
		// same: parsing the canonical form changes nothing.
		c := p.Canonical()
		p2, err := billing.ParsePlan(c)
		if err != nil {
			t.Fatalf("canonical plan %+v does not parse: %v", c, err)
		}
		if c2 := p2.Canonical(); !equalSpec(c, c2) {
			t.Fatalf("canonical form moved: %+v -> %+v", c, c2)
		}
		for i := range p.Price {
			if p.Price[i].Cmp(p2.Price[i]) != 0 || p.Included[i].Cmp(p2.Included[i]) != 0 {
				t.Fatalf("item %d changed value", i)
			}
		}
		if p.Fee.Cmp(p2.Fee) != 0 {
			t.Fatal("fee changed")
		}
	})
}

func equalSpec(a, b billing.PlanSpec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
