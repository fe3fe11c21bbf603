package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestAutoscaleOnCPU: an agent with the default 10 s metrics interval
// runs an app that scales on CPU; its instances are then sampled every
// second (the app's series has points a second or two apart), and an
// instance that burns a core makes the count grow, with cpu as the
// reason.
func TestAutoscaleOnCPU(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("exec instances get a cgroup (which cAdvisor reads) only as root")
	}
	c, admin, _ := newCluster(t, hubtest.Options{}, "p", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})
	dir := t.TempDir()
	runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dir, Name: "m", Metrics: true, NewDriver: execDriver(t, dir)})
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	bin := drivertest.BuildTestApp(t)
	lo := 1
	// 200 millicores: a burning instance reaches its limit (100%, a fifth
	// of a core) even on a loaded machine.
	spec := apitypes.AppSpec{Name: "hot", Command: []string{bin}, CPU: 200, Ports: []apitypes.Port{{ContainerPort: 8080}},
		Health:    &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)},
		Autoscale: &apitypes.Autoscale{Min: &lo, Max: 3, CPU: 50, Window: apitypes.Duration(5 * time.Second), ScaleDownDelay: apitypes.Duration(time.Minute)}}
	hubtest.WaitFor(t, 20*time.Second, "app hot created", func() bool {
		_, err := admin.Apps().Create(ctx, spec, w)
		return err == nil
	})
	t.Cleanup(func() {
		if err := admin.Apps().Delete(context.Background(), "hot", w); err != nil {
			t.Logf("delete hot: %v", err)
		}
		hubtest.WaitFor(t, 30*time.Second, "hot's instances stopped", func() bool {
			is, _, err := admin.Apps().Instances(context.Background(), "hot", q)
			return err != nil || len(is) == 0
		})
	})
	var addr string
	hubtest.WaitFor(t, 30*time.Second, "hot ready", func() bool {
		is, _, err := admin.Apps().Instances(ctx, "hot", q)
		if err == nil && len(is) == 1 && is[0].Ready {
			addr = is[0].Address
			return true
		}
		return false
	})
	// Samples a second or two apart, though the agent's interval is 10 s.
	hubtest.WaitFor(t, 30*time.Second, "hot's CPU sampled every second or two", func() bool {
		series, _, err := admin.Apps().Metrics(ctx, "hot", q)
		if err != nil || len(series) != 1 {
			return false
		}
		pts := series[0].Metrics["container_cpu_usage_seconds_total"]
		if len(pts) < 6 {
			return false
		}
		last := pts[len(pts)-5:]
		return last[4].T-last[0].T <= 10
	})
	start := time.Now()
	if resp, err := http.Get("http://" + addr + "/burn?s=40"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("start burning: %v %v", resp, err)
	}
	polls := 0
	hubtest.WaitFor(t, 40*time.Second, "hot scaled up on cpu", func() bool {
		a, _, err := admin.Apps().Get(ctx, "hot", q)
		if polls++; polls%250 == 0 { // what the autoscaler sees, now and then
			if st, _, err := admin.Apps().AutoscaleStatus(ctx, "hot", q); err == nil {
				b, _ := json.Marshal(st)
				t.Logf("autoscale status: %s", b)
			}
		}
		return err == nil && *a.Instances >= 2 && strings.Contains(a.AutoscaleReason, "cpu")
	})
	a, _, _ := admin.Apps().Get(ctx, "hot", q)
	t.Logf("scaled to %d %.1f s after the burn began: %s", *a.Instances, time.Since(start).Seconds(), a.AutoscaleReason)
}
