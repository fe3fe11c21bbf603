package hub_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/alert"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestBudgetAlertsOnceThroughLeaderChange: on a 3-node cluster, a tenant
// whose month reaches its budget gets the 80% and 100% alerts once each
// (events and webhooks) even though the leader that sent them dies and
// another one goes on checking; the hard stop answers 422.
func TestBudgetAlertsOnceThroughLeaderChange(t *testing.T) {
	var mu sync.Mutex
	var deliveries []string
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		deliveries = append(deliveries, r.Header.Get(alert.HeaderDelivery))
		mu.Unlock()
	}))
	defer hooks.Close()
	sent := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), deliveries...)
	}

	c := hubtest.New(t, 3, hubtest.Options{})
	admin := bootstrap(t, c)
	url := c.Nodes[0].URL()
	admin.must(t, "POST", url+"/v1/tenants", apitypes.TenantRequest{Name: "acme"}, nil)
	admin.must(t, "POST", url+"/v1/plans", apitypes.PlanRequest{Name: "flat", Currency: "USD", MonthlyFee: "100.00"}, nil)
	// The fee alone (its share of the month from this hour: at least 0.13)
	// is over a budget of one cent.
	plan, budget, stop, hook := "flat", "0.01", true, hooks.URL+"/budget"
	admin.must(t, "PUT", url+"/v1/tenants/acme", apitypes.TenantUpdate{Plan: &plan, Budget: &budget, BudgetHardStop: &stop, BudgetWebhook: &hook}, nil)

	// Reads retry while the cluster has no leader (an election on a loaded
	// machine answers 503).
	read := func(path string, out any) {
		t.Helper()
		hubtest.WaitUntil(t, 30*time.Second, "GET "+path, func() error {
			_, _, err := admin.call(t.Context(), "GET", url+path, nil, out)
			return err
		})
	}
	over := func() bool {
		var ten apitypes.Tenant
		read("/v1/tenants/acme", &ten)
		return ten.BudgetStatus != nil && ten.BudgetStatus.Over && len(ten.BudgetStatus.Alerts) == 2 &&
			ten.BudgetStatus.Alerts[0].Notified && ten.BudgetStatus.Alerts[1].Notified
	}
	hubtest.WaitFor(t, 30*time.Second, "both budget alerts sent and the tenant over budget", over)
	if d := sent(); len(d) != 2 || d[0] == d[1] {
		t.Fatalf("webhooks: %v", d)
	}
	budgetEvents := func() int {
		var evs []apitypes.Event
		read("/v1/events", &evs)
		n := 0
		for _, e := range evs {
			if strings.HasPrefix(e.Type, "budget.") {
				n++
			}
		}
		return n
	}
	if n := budgetEvents(); n != 2 {
		t.Fatalf("%d budget events, want 2", n)
	}

	// The leader dies; the next one must go on checking without telling
	// anything twice. A new budget lifts the stop until a check by the
	// new leader puts it back: that check has run when it is over again.
	old := c.Leader()
	c.Kill(old.Index)
	leader := c.WaitLeader(20 * time.Second)
	url = leader.URL()
	budget = "0.02"
	admin.must(t, "PUT", leader.URL()+"/v1/tenants/acme", apitypes.TenantUpdate{Budget: &budget}, nil)
	hubtest.WaitFor(t, 30*time.Second, "the new leader's budget check", over)
	if d := sent(); len(d) != 2 {
		t.Fatalf("after the leader change: %d webhooks %v, want the same 2", len(d), d)
	}
	if n := budgetEvents(); n != 2 {
		t.Fatalf("after the leader change: %d budget events, want 2", n)
	}

	// The hard stop: no new instances.
	var code int
	var err error
	hubtest.WaitFor(t, 30*time.Second, "an answer from a leader", func() bool {
		code, _, err = admin.call(t.Context(), "POST", url+"/v1/apps?tenant=acme", apitypes.AppSpec{Name: "web", Image: "web:1"}, nil)
		return code != http.StatusServiceUnavailable
	})
	if code != http.StatusUnprocessableEntity || err == nil || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("new app over budget: %d %v", code, err)
	}
}
