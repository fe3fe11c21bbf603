package console_test

import (
	"context"
	"html"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestOverviewShowsMonthAndRecentEvents: a tenant's overview shows this
// month's invoice so far and the tenant's newest events, as the API gives
// them; an admin's shows the admin's events and no invoice.
func TestOverviewShowsMonthAndRecentEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.api.Plans().Create(ctx, apitypes.PlanRequest{Name: "basic", Currency: "USD", MonthlyFee: "30.00",
		Prices: map[string]string{"instance_hour": "0.57"}}); err != nil {
		t.Fatal(err)
	}
	plan := "basic"
	if _, err := e.api.Tenants().Update(ctx, "alpha", apitypes.TenantUpdate{Plan: &plan}); err != nil {
		t.Fatal(err)
	}
	inv, err := e.api.Invoice(ctx, "", &client.QueryOptions{Tenant: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := e.api.Events(ctx, 0, &client.QueryOptions{Tenant: "alpha"})
	if err != nil {
		t.Fatal(err)
	}

	viewer := newBrowser(t, e.url)
	viewer.login(e.viewer)
	_, page := viewer.get("/ui/")
	if want := `id="month-total">` + html.EscapeString(inv.Total+" "+inv.Currency) + `<`; !strings.Contains(page, want) {
		t.Errorf("the tenant's overview lacks %s:\n%s", want, page)
	}
	// The recent events are the API's, newest first (none yet here).
	if !strings.Contains(page, "<h2>Recent events</h2>") {
		t.Fatalf("the tenant's overview has no recent events section:\n%s", page)
	}
	if len(evs) == 0 && !strings.Contains(page, "No events yet.") {
		t.Errorf("alpha has no events, the overview lists some:\n%s", page)
	}
	if len(evs) > 0 && !strings.Contains(page, html.EscapeString(evs[len(evs)-1].Message)) {
		t.Errorf("the overview lacks the newest event %q", evs[len(evs)-1].Message)
	}

	admin := newBrowser(t, e.url)
	admin.login(e.admin)
	_, page = admin.get("/ui/")
	if strings.Contains(page, `id="month-total"`) {
		t.Error("the admin's overview shows a tenant's invoice")
	}
}
