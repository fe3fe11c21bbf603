package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// readyCount is how many instances of app are desired to run and ready.
func (r *routerRig) readyCount(app string) (int, error) {
	is, _, err := r.admin.Apps().Instances(context.Background(), app, r.q)
	n := 0
	for _, i := range is {
		if i.Desired == "run" && i.Ready {
			n++
		}
	}
	return n, err
}

// TestAutoscaleBurstAndLeaderLoss: a 3-node hub, two agents and their
// routers, with the exec driver and with Docker (a locally built
// scratch image). An app with qps 20, min 1, max 6 gets a burst of 100
// requests/s through the routers: within a minute at least 5 of its
// instances are ready. When the load stops the app goes back to 1
// instance, and its history holds the autoscaler's decisions with their
// reasons. With the exec driver also: a manual scale is refused with 409
// (the CLI says why), and the leader is killed during the burst: the new
// leader continues from the committed count without scaling down while
// the load lasts (that part is the same whatever the driver, and costs
// half a minute: it runs once).
func TestAutoscaleBurstAndLeaderLoss(t *testing.T) {
	for _, kind := range []string{"exec", "docker"} {
		t.Run(kind, func(t *testing.T) {
			burstUpAndDown(t, newRouterRig(t, kind), kind == "exec")
		})
	}
}

// burstUpAndDown runs the burst on r's routers, with the leader loss
// when killLeader is set.
func burstUpAndDown(t *testing.T, r *routerRig, killLeader bool) {
	ctx := context.Background()
	const app, host = "burst", "burst.acme.localhost"
	lo := 1
	r.deploy(apitypes.AppSpec{Name: app, Autoscale: &apitypes.Autoscale{Min: &lo, Max: 6, QPS: 20,
		Window: apitypes.Duration(5 * time.Second), ScaleDownDelay: apitypes.Duration(15 * time.Second)}})
	r.ready(app, 0, 1)
	hubtest.WaitFor(t, 15*time.Second, app+" routed", func() bool {
		code, _, err := r.httpVia(0, host, "/")
		return err == nil && code == 200
	})

	start := time.Now()
	stop := r.load(host, 100)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	hubtest.WaitFor(t, 60*time.Second, "at least 5 ready instances under 100 req/s", func() bool {
		n, err := r.readyCount(app)
		return err == nil && n >= 5
	})
	t.Logf("burst: 5 ready instances %.1f s after the load started", time.Since(start).Seconds())
	a, _, err := r.admin.Apps().Get(ctx, app, r.q)
	if err != nil || !strings.Contains(a.AutoscaleReason, "qps") && !strings.Contains(a.AutoscaleReason, "panic") {
		t.Fatalf("app after the burst: %+v %v; want an autoscale_reason naming qps (or the panic)", a, err)
	}
	t.Logf("autoscale_reason: %s", a.AutoscaleReason)
	if killLeader {
		leaderLossDuringBurst(t, r, app, *a.Instances)
	}

	sent, failures := stop()
	stopped = true
	t.Logf("load: %d requests, %d failed", sent, len(failures))
	hubtest.WaitFor(t, 90*time.Second, "back to 1 instance after the load", func() bool {
		a, _, err := r.admin.Apps().Get(ctx, app, r.q)
		return err == nil && *a.Instances == 1
	})
	hist, _, err := r.admin.Apps().History(ctx, app, r.q)
	if err != nil {
		t.Fatal(err)
	}
	var ups, downs int
	for _, d := range hist {
		if d.Kind != "autoscale" {
			continue
		}
		t.Logf("decision: %d: %s", d.Instances, d.Message)
		if strings.Contains(d.Message, "from 1 to") {
			ups++
		}
		if strings.Contains(d.Message, "to 1 instances") {
			downs++
		}
	}
	if ups == 0 || downs == 0 {
		t.Fatalf("history lacks the autoscaler's way up or down: %+v", hist)
	}
	if err := r.admin.Apps().Delete(ctx, app, r.w); err != nil {
		t.Logf("delete %s: %v", app, err)
	}
}

// leaderLossDuringBurst checks, while the burst goes on, that a manual
// scale is refused (409, and the CLI says why), then kills the hub
// leader: for longer than the scale-down delay the new leader keeps at
// least the count the load needs (before: the count before the kill).
// r's client talks to a survivor afterwards.
func leaderLossDuringBurst(t *testing.T, r *routerRig, app string, before int) {
	ctx := context.Background()
	// An admin token for a client of whichever node survives.
	tok, err := r.admin.Tokens().Create(ctx, apitypes.TokenRequest{Name: "autoscale-test", Role: apitypes.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.admin.Apps().Scale(ctx, app, 2, r.w); err == nil || !strings.Contains(err.Error(), "autoscaled") {
		t.Fatalf("manual scale of an autoscaled app: %v, want 409 saying it is autoscaled", err)
	}
	env := []string{"WHARF_ADDR=" + r.c.Nodes[0].URL(), "WHARF_TOKEN=" + tok.Secret}
	if leader := r.c.Leader(); leader != nil {
		env[0] = "WHARF_ADDR=" + leader.URL()
	}
	_, stderr, code := cli(t, env, "app", "scale", app, "2", "--tenant", "acme")
	if code != 1 || !strings.Contains(stderr, "autoscaled") || !strings.Contains(stderr, "--off") {
		t.Fatalf("wharf app scale: exit %d, stderr %q; want 1 and why", code, stderr)
	}
	out, stderr, code := cli(t, env, "app", "autoscale", "show", app, "--tenant", "acme")
	if code != 0 || !strings.Contains(out, "QPS:") || !strings.Contains(out, "Last decisions:") {
		t.Fatalf("wharf app autoscale show: exit %d\n%s%s", code, out, stderr)
	}
	t.Logf("wharf app autoscale show:\n%s", out)

	// Kill the leader during the burst; talk to a survivor.
	leader := r.c.WaitLeader(10 * time.Second)
	r.c.Kill(leader.Index)
	for _, n := range r.c.Nodes {
		if n.Running() {
			r.admin, _ = client.New(client.Config{Address: n.URL(), Token: tok.Secret})
			break
		}
	}
	r.c.WaitLeader(20 * time.Second)
	// For longer than the scale-down delay the count never falls below
	// what the load needs (a new leader that trusted its empty telemetry
	// would scale down at once).
	floor := min(before, 5)
	until := time.Now().Add(20 * time.Second)
	for time.Now().Before(until) {
		a, _, err := r.admin.Apps().Get(ctx, app, r.q)
		if err == nil && *a.Instances < floor {
			t.Fatalf("the new leader scaled %s down from %d to %d during the burst (%s)", app, before, *a.Instances, a.AutoscaleReason)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
