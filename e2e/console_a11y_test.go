package e2e

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wharf-platform/wharf/hub"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// axeSource is axe-core, vendored by `make vendor-axe` (a test asset:
// the hub never serves it).
const axeSource = "axe/axe.min.js"

// axeViolation is what the test reports of one failed axe rule.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// axeCheck runs axe-core (injected into the page as it is) over the page
// and returns its violations of impact serious or critical.
const axeCheck = `axe.run(document).then(function (r) {
  return JSON.stringify({passed: r.passes.length, violations: r.violations.filter(function (v) { return v.impact === "serious" || v.impact === "critical"; }).map(function (v) {
    return {id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(function (n) { return n.target.join(" ") + ": " + n.failureSummary; })};
  })});
})`

// axeResult is axeCheck's answer: how many rules passed (a run that
// checked nothing proves nothing) and the violations.
type axeResult struct {
	Passed     int            `json:"passed"`
	Violations []axeViolation `json:"violations"`
}

// TestConsoleAccessibility signs in to the web console of a one-node hub
// in headless Chromium as the admin (who sees every form), visits every
// page, and checks each with axe-core: any violation of impact "serious"
// or "critical" fails the test, listed by rule and element. The login
// page is checked signed out. Every page is saved as a screenshot.
func TestConsoleAccessibility(t *testing.T) {
	chromiumPath(t)
	axe, err := os.ReadFile(axeSource)
	if err != nil {
		t.Fatalf("the vendored axe-core (make vendor-axe): %v", err)
	}
	c := hubtest.New(t, 1, hubtest.Options{})
	ctx := context.Background()
	anon, _ := client.New(client.Config{Address: c.Nodes[0].URL()})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := client.New(client.Config{Address: c.Nodes[0].URL(), Token: boot.Token})
	if _, err := admin.Pools().Create(ctx, apitypes.PoolRequest{Name: "p", Datacenter: "dc1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Tenants().Create(ctx, apitypes.TenantRequest{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	o := &client.WriteOptions{Tenant: "acme"}
	for _, img := range []string{"web:1", "web:2"} {
		if _, _, _, err := admin.Apps().Put(ctx, apitypes.AppSpec{Name: "web", Image: img}, o); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.Routes().Add(ctx, "web", apitypes.RouteRequest{Host: "www.example.com", Path: "/"}, o); err != nil {
		t.Fatal(err)
	}
	joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})
	// A host, written through Raft as its enrolment would be (no agent
	// needed to render its row and its page).
	leader := c.WaitLeader(10 * time.Second).Hub()
	now := time.Now().UTC()
	applyRaft(t, leader, state.JoinTokenCreateType, &state.JoinTokenCreateRequest{Token: state.JoinToken{ID: "jt-a11y", Pool: "p", SecretHash: "s"}, Time: now})
	applyRaft(t, leader, state.HostEnrollType, &state.HostEnrollRequest{TokenID: "jt-a11y", SecretHash: "s", Time: now,
		Host: state.Host{ID: "h-a11y", Name: "node-1", Inventory: state.Inventory{CPUs: 4, MemoryBytes: 8 << 30, Drivers: []string{"docker"}, AgentVersion: "v1.0.0"}}})

	r := newConsoleRig(t, c.Nodes[0].URL(), "a11y")
	check := func(name string) {
		t.Helper()
		r.shot(name)
		if ok := r.evalString("inject axe into "+name, string(axe)+"\n;typeof axe.run"); ok != "function" {
			t.Fatalf("axe did not load on %s: typeof axe.run is %q", name, ok)
		}
		got := r.evalString("axe on "+name, axeCheck)
		var res axeResult
		if err := json.Unmarshal([]byte(got), &res); err != nil {
			t.Fatalf("axe's answer on %s: %v: %s", name, err, got)
		}
		if res.Passed < 10 {
			t.Fatalf("axe passed only %d rules on %s: it checked nothing", res.Passed, name)
		}
		t.Logf("%s: axe passed %d rules, %d serious or critical violations", name, res.Passed, len(res.Violations))
		for _, v := range res.Violations {
			t.Errorf("%s: %s (%s): %s\n  %s", name, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n  "))
		}
	}

	r.open("/ui/login", "#token")
	check("login")
	r.login(boot.Token)
	for _, p := range []struct{ path, sel string }{
		{"/ui/", "#count-apps"},
		{"/ui/apps", "#apps-table"},
		{"/ui/apps/acme/web", "#instances-table"},
		{"/ui/apps/acme/web/diff?from=1&to=2", "#diff-table"},
		{"/ui/hosts", "#hosts-table"},
		{"/ui/hosts/h-a11y", "#host-facts"},
		{"/ui/pools", "#pools-table"},
		{"/ui/events", "#events-table"},
		{"/ui/drills", "#drills-table"},
		{"/ui/billing?tenant=acme", "#bills-table"},
		{"/ui/providers", "#providers-table"},
		{"/ui/tokens", "#tokens-table"},
		{"/ui/tenants", "#tenants-table"},
		{"/ui/cluster", "#peers-table"},
	} {
		r.open(p.path, p.sel)
		check(p.path)
	}
	// A refused form, with its errors next to the fields.
	r.open("/ui/tenants", "#tenant-submit")
	r.run("submit a bad tenant",
		chromedp.SendKeys(chromedp.CSS("#name"), "Not_A_Name"),
		chromedp.Click(chromedp.CSS("#tenant-submit")),
		chromedp.WaitVisible(chromedp.CSS(`.field-error[data-field="name"]`)))
	check("tenants-refused")
}

// applyRaft commits one state command through the leader's Raft.
func applyRaft(t *testing.T, leader *hub.Hub, mt state.MessageType, req any) {
	t.Helper()
	msg, err := state.Encode(mt, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Cluster().Apply(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}
