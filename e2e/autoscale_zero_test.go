package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// scaleToZeroAndBack deploys an app with min 0 and waits until, idle, it
// runs no instance (its route stays); then one request through a router
// is held until an instance is ready and answers 200. It returns how long
// that first request took.
func scaleToZeroAndBack(t *testing.T, r *routerRig, app string) time.Duration {
	t.Helper()
	ctx := context.Background()
	host := app + ".acme.localhost"
	zero := 0
	r.deploy(apitypes.AppSpec{Name: app, Autoscale: &apitypes.Autoscale{Min: &zero, Max: 2, QPS: 10,
		Window: apitypes.Duration(2 * time.Second), ScaleDownDelay: apitypes.Duration(3 * time.Second)}})
	hubtest.WaitFor(t, 60*time.Second, app+" idle at zero instances", func() bool {
		a, _, err := r.admin.Apps().Get(ctx, app, r.q)
		if err != nil || *a.Instances != 0 {
			return false
		}
		is, _, err := r.admin.Apps().Instances(ctx, app, r.q)
		if err != nil {
			return false
		}
		for _, i := range is {
			if i.State != "stopped" {
				return false
			}
		}
		return true
	})
	a, _, _ := r.admin.Apps().Get(ctx, app, r.q)
	if !strings.Contains(a.AutoscaleReason, "idle") {
		t.Fatalf("reason at zero: %q, want idle", a.AutoscaleReason)
	}
	// Every router has the table without an instance by now? Give the
	// push a moment: a router that still had the old instance would send
	// the request to a stopped process.
	time.Sleep(time.Second)
	start := time.Now()
	code, body, err := r.requestViaTimeout(0, "GET", host, "/", 40*time.Second)
	took := time.Since(start)
	if err != nil || code != 200 {
		t.Fatalf("first request after zero: %d %v %q (after %s)\n%s", code, err, body, took, r.appReport(app))
	}
	a, _, _ = r.admin.Apps().Get(ctx, app, r.q)
	if *a.Instances < 1 || !strings.Contains(a.AutoscaleReason, "woken") && !strings.Contains(a.AutoscaleReason, "qps") {
		t.Fatalf("after the wake: %d instances, reason %q", *a.Instances, a.AutoscaleReason)
	}
	return took
}

// appReport tells what the hub knows of app, for a failure's message:
// its count and autoscale reason, its instances and the tenant's latest
// events.
func (r *routerRig) appReport(app string) string {
	ctx := context.Background()
	var b strings.Builder
	if a, _, err := r.admin.Apps().Get(ctx, app, r.q); err != nil {
		fmt.Fprintf(&b, "app: %v\n", err)
	} else {
		fmt.Fprintf(&b, "app: %d instances, autoscale reason %q, pending %q\n", *a.Instances, a.AutoscaleReason, a.Pending)
	}
	is, _, err := r.admin.Apps().Instances(ctx, app, r.q)
	if err != nil {
		fmt.Fprintf(&b, "instances: %v\n", err)
	}
	for _, i := range is {
		fmt.Fprintf(&b, "instance %s on %s v%d %s/%s ready=%v %s %s\n", i.ID, i.HostName, i.Version, i.Desired, i.State, i.Ready, i.Reason, i.Message)
	}
	evs, _, err := r.admin.Events(ctx, 0, r.q)
	if err != nil {
		fmt.Fprintf(&b, "events: %v\n", err)
	}
	for _, e := range evs[max(0, len(evs)-20):] {
		fmt.Fprintf(&b, "event %+v\n", e)
	}
	return b.String()
}

// requestViaTimeout is requestVia with its own client timeout (a held
// request outlasts routerClient's 5 s).
func (r *routerRig) requestViaTimeout(i int, method, host, path string, timeout time.Duration) (int, string, error) {
	addr, _ := r.agents[i].RouterAddrs()
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	c := &http.Client{Timeout: timeout}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestAutoscaleToZeroAndBack: an idle app with min 0 goes to zero
// instances; the first request afterwards is held by the router while
// the app wakes (an exec-driver process, a Docker container), and
// answers 200.
func TestAutoscaleToZeroAndBack(t *testing.T) {
	for _, kind := range []string{"exec", "docker"} {
		t.Run(kind, func(t *testing.T) {
			r := newRouterRig(t, kind)
			took := scaleToZeroAndBack(t, r, "sleepy")
			t.Logf("first request after zero answered in %s", took.Round(time.Millisecond))
		})
	}
}
