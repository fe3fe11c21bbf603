package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	osexec "os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/exec"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// chromiumPath returns the Chromium binary, or skips the test without
// one; with WHARF_REQUIRE_CHROMIUM=1 a missing Chromium fails it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := osexec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("WHARF_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium is not installed and WHARF_REQUIRE_CHROMIUM=1")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// TestConsoleInBrowser drives the web console in a real headless Chromium
// against a 3-node hub cluster with one exec-driver agent: an admin signs
// in through the form, deploys an app through the deploy form, sees its
// instance become ready on the app page without a reload (the live
// table), scales it, and signs out; a viewer then finds no action on the
// same pages. Every page visited is saved as a screenshot.
func TestConsoleInBrowser(t *testing.T) {
	chromiumPath(t) // before the cluster: skips or fails at once without a browser
	bin := drivertest.BuildTestApp(t)
	// Raft's production timeouts: the browser and the agent load this
	// machine, and an election mid-form would only test the retry advice.
	c, admin, adminToken := newCluster(t, hubtest.Options{ProductionRaft: true}, "p", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})

	procDir := t.TempDir()
	newDriver := func(hostID string) (driver.Driver, error) {
		return exec.New(exec.Config{HostID: hostID, DataDir: procDir, ShimEnv: []string{"GORACE=atexit_sleep_ms=0"}})
	}
	var ag *agent.Agent
	stopStrays(t, func() []string { return []string{procDir} })
	stopLeftovers(t, func() []driver.Driver {
		if ag == nil || ag.HostID() == "" {
			return nil
		}
		d, err := newDriver(ag.HostID())
		if err != nil {
			return nil
		}
		return []driver.Driver{d}
	})
	ag, _ = runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: procDir, Name: "exec", Drivers: []string{"exec"}, NewDriver: func(hostID string) (driver.Driver, error) { return newDriver(hostID) }})
	hubtest.WaitFor(t, 60*time.Second, "the exec host ready", func() bool {
		hs, _, err := admin.Hosts().List(ctx, nil)
		return err == nil && len(hs) == 1 && hs[0].State == "ready"
	})
	viewer, err := admin.Tokens().Create(ctx, apitypes.TokenRequest{Name: "watcher", Role: apitypes.RoleViewer, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}

	// The console of a node other than the first: a session is the node's,
	// and writes go through that node's API (forwarded to the leader).
	base := c.Nodes[1].URL()
	r := newConsoleRig(t, base, "main")
	run, eval, shot := r.run, r.eval, r.shot
	waitJS := func(what, expr string) {
		t.Helper()
		r.waitJS(what, 60*time.Second, expr)
	}
	count := func(sel string) int {
		t.Helper()
		k, _ := eval("count "+sel, fmt.Sprintf("document.querySelectorAll(%q).length", sel)).(float64)
		return int(k)
	}
	login := func(token string) {
		t.Helper()
		run("sign in",
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), token),
			chromedp.Click(chromedp.CSS("#login")),
			chromedp.WaitVisible(chromedp.CSS("#count-apps")))
	}

	// The admin signs in through the form.
	run("open the console", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	shot("login")
	login(adminToken)
	shot("overview")

	// Deploys an app through the deploy form.
	run("fill in the deploy form",
		chromedp.Navigate(base+"/ui/apps"),
		chromedp.WaitVisible(chromedp.CSS("#deploy")),
		chromedp.SetValue(chromedp.CSS("#tenant"), "acme"),
		chromedp.SendKeys(chromedp.CSS("#name"), "hello"),
		chromedp.SendKeys(chromedp.CSS("#command"), bin),
		chromedp.SetValue(chromedp.CSS("#instances"), "1"),
		chromedp.SendKeys(chromedp.CSS("#ports"), "http:8080"),
		chromedp.SendKeys(chromedp.CSS("#env"), "GREETING=hi"))
	shot("deploy-form")
	run("deploy", chromedp.Click(chromedp.CSS("#deploy-submit")), chromedp.WaitVisible(chromedp.CSS("#instances-table")))
	loc, err := chromedp.Run(r.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if loc != base+"/ui/apps/acme/hello" {
		t.Fatalf("after deploy the browser is at %s", loc)
	}
	app, _, err := admin.Apps().Get(ctx, "hello", &client.QueryOptions{Tenant: "acme"})
	if err != nil || len(app.Command) != 1 || app.Command[0] != bin || app.Env["GREETING"] != "hi" || len(app.Ports) != 1 || app.Ports[0].ContainerPort != 8080 {
		t.Fatalf("the deployed app: %+v %v", app, err)
	}
	shot("app-deployed")

	// The instance becomes ready on the page without a reload: marks on the
	// window and on the first table survive only if the page is not
	// reloaded, and the table that shows ready is a newer one.
	eval("mark the page", `window.wharfMark = 1; document.getElementById("instances-table").wharfFirst = 1; true`)
	waitJS("the live table to show one ready instance",
		`window.wharfMark === 1 && !document.getElementById("instances-table").wharfFirst && document.querySelectorAll('#instances-table tr.instance[data-ready="true"]').length === 1`)
	waitJS("the live log to show the app's first line",
		`window.wharfMark === 1 && document.getElementById("logs-lines").textContent.includes("testapp listening on")`)
	shot("app-ready")

	// Scales it to two.
	run("scale",
		chromedp.SetValue(chromedp.CSS("#scale-instances"), "2"),
		chromedp.Click(chromedp.CSS("#scale-submit")))
	// The answer is the app page again, now wanting two (the old page
	// still has an instance table, so wait for the new page's count).
	waitJS("the app page after scale", `document.getElementById("app-instances") !== null && document.getElementById("app-instances").textContent === "2"`)
	eval("mark the page", `window.wharfMark = 2; true`)
	waitJS("the live table to show two ready instances",
		`window.wharfMark === 2 && document.querySelectorAll('#instances-table tr.instance[data-ready="true"]').length === 2`)
	if app, _, err = admin.Apps().Get(ctx, "hello", &client.QueryOptions{Tenant: "acme"}); err != nil || *app.Instances != 2 {
		t.Fatalf("after scale: %+v %v", app, err)
	}
	shot("app-scaled")

	// The other pages render.
	for _, p := range []struct{ path, sel string }{
		{"/ui/hosts", "#hosts-table"}, {"/ui/pools", "#pools-table"}, {"/ui/events", "#events-table"},
		{"/ui/drills", "#drills-table"}, {"/ui/billing?tenant=acme", "#bills-table"},
	} {
		run("open "+p.path, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS(p.sel)))
		if p.path == "/ui/hosts" {
			waitJS("the hosts table to show the ready host with the app's two instances", `document.querySelectorAll('#hosts-table tr.host[data-state="ready"][data-instances="2"]').length === 1`)
		}
		shot(p.sel[1:])
	}

	// Signs out: the console is behind the login form again.
	run("sign out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#token")))
	run("signed out", chromedp.Navigate(base+"/ui/apps/acme/hello"), chromedp.WaitVisible(chromedp.CSS("#token")))
	shot("signed-out")

	// A viewer sees the app but no action: no deploy, scale or rollback
	// form, no button but "Sign out".
	login(viewer.Secret)
	run("viewer's apps", chromedp.Navigate(base+"/ui/apps"), chromedp.WaitVisible(chromedp.CSS("#apps-table")))
	shot("viewer-apps")
	if k := count("main form, main button"); k != 0 {
		t.Fatalf("the viewer's apps page has %d forms or buttons", k)
	}
	run("viewer's app page", chromedp.Navigate(base+"/ui/apps/acme/hello"), chromedp.WaitVisible(chromedp.CSS("#instances-table")))
	shot("viewer-app")
	// The log filter (a GET form that only narrows the view) is no action.
	if k := count(`main form:not(#log-filter), main button:not(#log-filter-submit), #scale`); k != 0 {
		t.Fatalf("the viewer's app page has %d forms or buttons", k)
	}
	if k := count("#instances-table tr.instance"); k != 2 {
		t.Fatalf("the viewer sees %d instances, want 2", k)
	}

	hubtest.WaitUntil(t, 60*time.Second, "the app deleted", func() error {
		err := admin.Apps().Delete(ctx, "hello", &client.WriteOptions{Tenant: "acme"})
		if apitypes.StatusOf(err) == http.StatusNotFound {
			return nil
		}
		return err
	})
	// The agent stops and removes the app's instances.
	d, err := newDriver(ag.HostID())
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := d.(interface{ Close() error }); ok {
		defer c.Close()
	}
	hubtest.WaitUntil(t, 60*time.Second, "the app's instances removed from the host", func() error {
		l, err := d.List(ctx)
		if err != nil {
			return err
		}
		if len(l) > 0 {
			return fmt.Errorf("%d instances left", len(l))
		}
		return nil
	})
}
