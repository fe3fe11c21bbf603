package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestConsoleLiveInBrowser drives the console's live parts in a real
// headless Chromium: on the app page a line the app prints after the page
// opened shows up without a reload (the followed log view), and its
// filter restarts the stream; the metrics chart has points; an admin runs
// a cutoff drill of a datacenter through the form and watches its
// timeline reach its end on the drill page without a reload, then ends
// it; a POST forged from the page without the CSRF field is refused with
// 403 and changes nothing.
//
// The hosts: one exec agent (pool p, dc1) runs the app whose logs and
// metrics the page shows; two fake-driver agents with routers (pools edge
// in dc2 and backup in dc3) run the app the drill moves, the cheapest
// hosts that give a drill a real timeline.
func TestConsoleLiveInBrowser(t *testing.T) {
	chromiumPath(t)
	bin := drivertest.BuildTestApp(t)
	// Production Raft timeouts (the browser and the agents load this
	// machine; an election mid-form would only test the retry advice);
	// quick liveness, so the drill's timeline is short.
	c, admin, adminToken := newCluster(t, hubtest.Options{ProductionRaft: true, SuspectAfter: 2 * time.Second, DownAfter: 4 * time.Second}, "p", "acme")
	ctx := context.Background()
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	for _, p := range []apitypes.PoolRequest{{Name: "edge", Datacenter: "dc2"}, {Name: "backup", Datacenter: "dc3"}} {
		if _, err := admin.Pools().Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	runAgent(t, agent.Config{Hubs: hubs(c), Token: joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"}).Token, DataDir: dir, Name: "exec",
		Drivers: []string{"exec"}, NewDriver: execDriver(t, dir), Metrics: true, MetricsInterval: time.Second})
	for _, p := range []string{"edge", "backup"} {
		runAgent(t, agent.Config{Hubs: hubs(c), Token: joinToken(t, admin, apitypes.JoinTokenRequest{Pool: p}).Token, DataDir: t.TempDir(),
			Name: "in-" + p, NewDriver: fakeDriver(fake.NewHost()), RouterHTTPAddr: "127.0.0.1:0"})
	}
	hubtest.WaitFor(t, 60*time.Second, "three ready hosts", func() bool {
		hs, _, err := admin.Hosts().List(ctx, nil)
		if err != nil || len(hs) != 3 {
			return false
		}
		for _, h := range hs {
			if h.State != "ready" || h.MemoryBytes == 0 {
				return false
			}
		}
		return true
	})
	hello := apitypes.AppSpec{Name: "hello", Command: []string{bin}, Instances: intp(1), Pools: []string{"p"}, Ports: []apitypes.Port{{ContainerPort: 8080}},
		Health: &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)}}
	web := apitypes.AppSpec{Name: "web", Image: "web:1", Instances: intp(2), Pools: []string{"edge"}, FailoverPools: []string{"backup"},
		Ports: []apitypes.Port{{ContainerPort: 8080}}, Health: &apitypes.Health{TCP: 8080, Interval: apitypes.Duration(200 * time.Millisecond)}}
	for _, spec := range []apitypes.AppSpec{hello, web} {
		if _, err := admin.Apps().Create(ctx, spec, w); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { scaleToZero(t, admin, "hello", "web") })
	var addr string
	hubtest.WaitFor(t, 60*time.Second, "hello and web ready", func() bool {
		ready := map[string]int{}
		for _, name := range []string{"hello", "web"} {
			is, _, err := admin.Apps().Instances(ctx, name, q)
			if err != nil {
				return false
			}
			for _, i := range is {
				if i.Ready {
					ready[name]++
					if name == "hello" {
						addr = i.Address
					}
				}
			}
		}
		return ready["hello"] == 1 && ready["web"] == 2
	})
	// printLine makes the app write a line to its stdout.
	printLine := func(line string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/log?line=" + line)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the app's /log answered %d", resp.StatusCode)
		}
	}

	r := newConsoleRig(t, c.Nodes[1].URL(), "live")
	r.run("sign in",
		chromedp.Navigate(r.base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), adminToken),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#count-apps")))

	// The followed log view: a line printed after the page opened shows
	// up without a reload (the mark on the window would not survive one).
	r.run("open the app page", chromedp.Navigate(r.base+"/ui/apps/acme/hello"), chromedp.WaitVisible(chromedp.CSS("#logs")))
	r.waitJS("the log view following", 60*time.Second, `document.querySelector('#logs-lines[data-following="true"]') !== null`)
	r.eval("mark the page", `window.wharfMark = 1; true`)
	stamp := fmt.Sprintf("after-open-%d", time.Now().UnixNano())
	printLine(stamp)
	r.waitJS("the new line on the page", 60*time.Second,
		`window.wharfMark === 1 && document.getElementById("logs-lines").textContent.includes(`+fmt.Sprintf("%q", stamp)+`)`)
	r.shot("app-logs-followed")

	// The filter restarts the stream with a grep, without a reload.
	r.run("filter the logs",
		chromedp.SendKeys(chromedp.CSS("#log-grep"), "needle"),
		chromedp.Click(chromedp.CSS("#log-filter-submit")))
	r.waitJS("the filtered view restarted", 60*time.Second,
		`window.wharfMark === 1 && document.querySelector('#logs-lines[data-following="true"]') !== null && !document.getElementById("logs-lines").textContent.includes(`+fmt.Sprintf("%q", stamp)+`)`)
	printLine("hay-" + stamp)
	printLine("needle-" + stamp)
	r.waitJS("the matching line on the page", 60*time.Second,
		`window.wharfMark === 1 && document.getElementById("logs-lines").textContent.includes(`+fmt.Sprintf("%q", "needle-"+stamp)+`)`)
	if txt, _ := r.eval("read the view", `document.getElementById("logs-lines").textContent`).(string); strings.Contains(txt, "hay-"+stamp) {
		t.Fatalf("the filtered view shows a line without the grep:\n%s", txt)
	}
	r.shot("app-logs-filtered")

	// The chart: points once the agent has sent samples.
	hubtest.WaitFor(t, 60*time.Second, "hello's metrics", func() bool {
		ms, _, err := admin.Apps().Metrics(ctx, "hello", q)
		return err == nil && len(ms) > 0 && len(ms[0].Metrics) > 0
	})
	r.run("open the app page at 15 min", chromedp.Navigate(r.base+"/ui/apps/acme/hello?range=15m"), chromedp.WaitVisible(chromedp.CSS("#charts")))
	if k, _ := r.eval("count the chart points", `Array.from(document.querySelectorAll("#charts polyline")).reduce(function (n, p) { return n + p.points.numberOfItems; }, 0)`).(float64); k < 1 {
		t.Fatal("the app page's charts have no data point")
	}
	r.shot("app-chart")

	// A POST forged from the page without the CSRF field: 403, and the
	// app keeps its one instance.
	r.eval("forge a scale", `window.forged = 0; fetch("/ui/apps/acme/hello/scale", {method: "POST", credentials: "same-origin",
		body: new URLSearchParams({instances: "5"})}).then(function (r) { window.forged = r.status; }); true`)
	r.waitJS("the forged POST answered", 60*time.Second, `window.forged !== 0`)
	if st, _ := r.eval("the forged POST's status", `window.forged`).(float64); st != http.StatusForbidden {
		t.Fatalf("the forged POST answered %v, want 403", st)
	}
	if a, _, err := admin.Apps().Get(ctx, "hello", q); err != nil || *a.Instances != 1 {
		t.Fatalf("after the forged POST: %+v %v", a, err)
	}

	// The drill: run through the form, watched on its page.
	r.run("fill in the drill form",
		chromedp.Navigate(r.base+"/ui/drills"),
		chromedp.WaitVisible(chromedp.CSS("#drill-run")),
		chromedp.SetValue(chromedp.CSS("#drill-target"), "datacenter:dc2"),
		chromedp.SetValue(chromedp.CSS("#drill-mode"), "cutoff"))
	r.shot("drill-form")
	r.run("run the drill", chromedp.Click(chromedp.CSS("#drill-run-submit")), chromedp.WaitVisible(chromedp.CSS("#drill-timeline")))
	ds, _, err := admin.Drills().List(ctx, nil)
	if err != nil || len(ds) != 1 || ds[0].Datacenter != "dc2" || ds[0].Mode != "cutoff" {
		t.Fatalf("drills after the form: %+v %v", ds, err)
	}
	loc, err := chromedp.Run(r.ctx, chromedp.Location())
	if err != nil || loc != r.base+"/ui/drills/"+ds[0].ID {
		t.Fatalf("after the drill form the browser is at %s (%v)", loc, err)
	}
	r.eval("mark the page", `window.wharfMark = 2; document.getElementById("drill-timeline").wharfFirst = 1; true`)
	r.shot("drill-started")
	r.waitJS("the timeline at its end, without a reload", 120*time.Second,
		`window.wharfMark === 2 && !document.getElementById("drill-timeline").wharfFirst &&
		 document.querySelector('#drill-timeline li[data-step="routed"][data-reached="true"]') !== null &&
		 document.getElementById("drill-report") !== null`)
	for _, step := range []string{"detected", "scheduled", "ready", "routed"} {
		if k, _ := r.eval("count "+step, `document.querySelectorAll('#drill-timeline li[data-step="`+step+`"][data-reached="true"]').length`).(float64); k != 1 {
			t.Fatalf("the timeline has not reached %s", step)
		}
	}
	r.shot("drill-report")
	rep, _, err := admin.Drills().Get(ctx, ds[0].ID, nil)
	if err != nil || rep.RoutedMs < 0 || !(rep.DetectedMs <= rep.ScheduledMs && rep.ScheduledMs <= rep.ReadyMs && rep.ReadyMs <= rep.RoutedMs) {
		t.Fatalf("the drill's report: %+v %v", rep, err)
	}
	// The end button posts a form: wait for the page it lands on, not for
	// the live timeline of the page it leaves, which may already show the
	// end while the browser is between documents (and has nothing to draw).
	r.eval("mark the page", `window.wharfMark = 3; true`)
	r.run("end the drill", chromedp.Click(chromedp.CSS("#drill-end-submit")))
	r.waitJS("the drill ended, on the page the form led to", 60*time.Second,
		`window.wharfMark === undefined && document.readyState === "complete" &&
		 document.querySelector('#drill-timeline[data-state="ended"] li[data-step="ended"][data-reached="true"]') !== null`)
	r.shot("drill-ended")
	if rep, _, err = admin.Drills().Get(ctx, ds[0].ID, nil); err != nil || rep.State != "ended" {
		t.Fatalf("after the end button: %+v %v", rep, err)
	}
}
