package e2e

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestInstanceMetrics: an agent samples its instances with the embedded
// cAdvisor and sends the samples; the hub leader's Prometheus output
// carries per-instance series labelled tenant/app/instance/host, scraped
// and parsed here: a CPU-burning instance's counter rises between two
// scrapes while an idle one's barely moves; the API serves the series.
func TestInstanceMetrics(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("exec instances get a cgroup (which cAdvisor reads) only as root")
	}
	c, admin, _ := newCluster(t, hubtest.Options{}, "p", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})
	dir := t.TempDir()
	runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dir, Name: "m", Metrics: true, MetricsInterval: time.Second,
		NewDriver: execDriver(t, dir)})
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	bin := drivertest.BuildTestApp(t)
	for _, name := range []string{"burn", "idle"} {
		// A whole core each: the default 100m would cap the burner at 10%.
		spec := apitypes.AppSpec{Name: name, Command: []string{bin}, Instances: intp(1), CPU: 1000, Ports: []apitypes.Port{{ContainerPort: 8080}},
			Health: &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)}}
		hubtest.WaitFor(t, 20*time.Second, "app "+name+" created", func() bool {
			_, err := admin.Apps().Create(ctx, spec, w)
			return err == nil
		})
	}
	t.Cleanup(func() { scaleToZero(t, admin, "burn", "idle") })
	var burnAddr string
	ids := map[string]string{} // app -> its one instance's id
	hubtest.WaitFor(t, 30*time.Second, "both ready", func() bool {
		n := 0
		for _, name := range []string{"burn", "idle"} {
			is, _, err := admin.Apps().Instances(ctx, name, q)
			if err == nil && len(is) == 1 && is[0].Ready {
				n++
				ids[name] = is[0].ID
				if name == "burn" {
					burnAddr = is[0].Address
				}
			}
		}
		return n == 2
	})
	// cpu scrapes every hub node's /metrics and returns the CPU counter of
	// each instance that was ready above, by app, from the node that has
	// them (the leader). A series of any other instance (one that replaced
	// them) is left out: comparing two instances' counters means nothing.
	cpu := func() map[string]float64 {
		out := map[string]float64{}
		for _, n := range c.Nodes {
			resp, err := http.Get(n.URL() + "/metrics")
			if err != nil {
				continue
			}
			parser := expfmt.NewTextParser(model.UTF8Validation)
			fams, err := parser.TextToMetricFamilies(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("parse %s/metrics: %v", n.URL(), err)
			}
			f := fams["container_cpu_usage_seconds_total"]
			if f == nil {
				continue
			}
			for _, m := range f.Metric {
				labels := map[string]string{}
				for _, l := range m.Label {
					labels[l.GetName()] = l.GetValue()
				}
				if app := labels["app"]; labels["tenant"] == "acme" && labels["instance"] == ids[app] && labels["host"] != "" {
					out[app] = m.GetCounter().GetValue()
				}
			}
		}
		return out
	}
	hubtest.WaitFor(t, 30*time.Second, "both instances' CPU series on /metrics", func() bool {
		got := cpu()
		_, b := got["burn"]
		_, i := got["idle"]
		return b && i
	})
	if resp, err := http.Get("http://" + burnAddr + "/burn?s=20"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("start burning: %v %v", resp, err)
	}
	before, start := cpu(), time.Now()
	var after map[string]float64
	// A loaded machine (CI runs every package at once, with the race
	// detector) gives the burner less than a core: wait for a second of it.
	hubtest.WaitFor(t, 20*time.Second, "the burning instance's CPU counter up by 1 s", func() bool {
		after = cpu()
		return after["burn"]-before["burn"] >= 1
	})
	if _, ok := after["idle"]; !ok {
		t.Fatalf("the idle instance %s has no CPU series any more (replaced?): %v", ids["idle"], after)
	}
	dBurn, dIdle := after["burn"]-before["burn"], after["idle"]-before["idle"]
	t.Logf("over %s: burning instance +%.2f s CPU, idle +%.3f s", time.Since(start).Round(time.Millisecond), dBurn, dIdle)
	// The series are per instance: the burner's counter rises several
	// times faster than the idle one's. (An idle instance here answers a
	// health check every 200 ms; a loaded machine makes each cost more.)
	if dIdle < 0 || dIdle > dBurn/4 {
		t.Fatalf("the idle instance's CPU counter moved by %.3f s while the burner's rose by %.2f s", dIdle, dBurn)
	}
	// The app's series through the API: samples arrive every few seconds,
	// and on a quick machine the burn above may have taken two, so wait
	// for a third.
	var series []apitypes.MetricSeries
	var err error
	ok := false
	for deadline := time.Now().Add(20 * time.Second); !ok && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		series, _, err = admin.Apps().Metrics(ctx, "burn", q)
		ok = err == nil && len(series) == 1 && len(series[0].Metrics["container_cpu_usage_seconds_total"]) >= 3 &&
			len(series[0].Metrics["container_memory_working_set_bytes"]) > 0 && strings.HasPrefix(series[0].ID, "burn-")
	}
	if !ok {
		t.Fatalf("app metrics API: %+v %v", series, err)
	}
}
