package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/hubtest/deadline"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestDrills: an app in pool p1 with failover pool p2. A cutoff drill of
// p1 makes its agent lose the hub (it keeps running); the hub notices,
// places and readies the replacements in p2, and the report's numbers
// agree with what the test saw. Ending it brings the host back, and
// failback auto (a short hold) moves the app home. An evacuate drill of
// p1 then moves it off without loss of the ready count.
func TestDrills(t *testing.T) {
	// Suspect after 2 s: heartbeats come every second and are relayed to
	// the leader twice a second, so 1 s would flap.
	const suspectAfter, downAfter = 2 * time.Second, 4 * time.Second
	c, admin, _ := newCluster(t, hubtest.Options{SuspectAfter: suspectAfter, DownAfter: downAfter}, "p1", "acme")
	ctx := context.Background()
	if _, err := admin.Pools().Create(ctx, apitypes.PoolRequest{Name: "p2", Datacenter: "dc2"}); err != nil {
		t.Fatal(err)
	}
	hostOf := map[string]*agent.Agent{}
	for _, p := range []string{"p1", "p2"} {
		jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: p})
		// Both run a router: the cut-off one must not hold up routed_ms.
		hostOf[p], _ = runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: t.TempDir(), Name: "in-" + p, NewDriver: fakeDriver(fake.NewHost()),
			RouterHTTPAddr: "127.0.0.1:0"})
	}
	hubtest.WaitFor(t, 20*time.Second, "two ready hosts", func() bool {
		hs, _, err := admin.Hosts().List(ctx, nil)
		return err == nil && len(hs) == 2 && hs[0].State == "ready" && hs[1].State == "ready" && hs[0].MemoryBytes > 0 && hs[1].MemoryBytes > 0
	})
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	spec := apitypes.AppSpec{Name: "web", Image: "web:1", Instances: intp(2), Pools: []string{"p1"}, FailoverPools: []string{"p2"},
		Ports: []apitypes.Port{{ContainerPort: 8080}}, Health: &apitypes.Health{TCP: 8080, Interval: apitypes.Duration(200 * time.Millisecond)},
		Failover: &apitypes.Failover{Failback: "auto", FailbackHold: apitypes.Duration(2 * time.Second)}}
	if _, err := admin.Apps().Create(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	readyIn := func(pool string) int {
		is, _, err := admin.Apps().Instances(ctx, "web", q)
		if err != nil {
			return -1
		}
		n := 0
		for _, i := range is {
			if i.Desired == "run" && i.Ready && i.Host == hostOf[pool].HostID() {
				n++
			}
		}
		return n
	}
	hubtest.WaitFor(t, 30*time.Second, "2 ready in p1", func() bool { return readyIn("p1") == 2 })

	d, err := admin.Drills().Run(ctx, apitypes.DrillRequest{Pool: "p1", Mode: "cutoff"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	hubtest.WaitFor(t, 30*time.Second, "2 ready in p2", func() bool { return readyIn("p2") == 2 })
	sawReady := time.Since(start)
	var rep *apitypes.Drill
	hubtest.WaitFor(t, 10*time.Second, "the drill report complete", func() bool {
		rep, _, err = admin.Drills().Get(ctx, d.ID, nil)
		return err == nil && rep.RoutedMs >= 0
	})
	t.Logf("cutoff drill: detected %d ms, scheduled %d ms, ready %d ms, routed %d ms, failed %d; the test saw ready after %s",
		rep.DetectedMs, rep.ScheduledMs, rep.ReadyMs, rep.RoutedMs, rep.FailedRequests, sawReady.Round(time.Millisecond))
	// Detected once the host goes suspect (after 2 s of silence); replaced
	// once it is down. Silence is counted from the host's last heartbeat,
	// which came up to a heartbeat interval (1 s) before the cut.
	if rep.DetectedMs < (suspectAfter-time.Second).Milliseconds() || rep.ScheduledMs < (downAfter-time.Second).Milliseconds() {
		t.Fatalf("detected after %d ms, scheduled after %d ms: earlier than the host could be missed or lost", rep.DetectedMs, rep.ScheduledMs)
	}
	if !(rep.DetectedMs <= rep.ScheduledMs && rep.ScheduledMs <= rep.ReadyMs && rep.ReadyMs <= rep.RoutedMs) {
		t.Fatalf("milestones out of order: %+v", rep)
	}
	// The test sees readiness through polling the API, which lags more on
	// a loaded machine: the tolerance scales with the tests' deadlines.
	if diff, tol := time.Duration(rep.ReadyMs)*time.Millisecond-sawReady, deadline.Scale(1500*time.Millisecond); diff > tol || diff < -tol {
		t.Fatalf("the report says ready after %d ms, the test saw it after %s (tolerance %s)", rep.ReadyMs, sawReady, tol)
	}
	if h, _, _ := admin.Hosts().Get(ctx, hostOf["p1"].HostID(), nil); h.State == "ready" {
		t.Fatal("the cut-off host is still ready")
	}
	// What the cut-off host last reported no longer holds: its instances
	// are lost and not ready until it reports again.
	is, _, err := admin.Apps().Instances(ctx, "web", q)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range is {
		if i.Host == hostOf["p1"].HostID() && (i.State != apitypes.InstanceLost || i.Ready || i.Reason != apitypes.ReasonHostLost) {
			t.Fatalf("instance %s on the cut-off host: state %s, ready %v, reason %q (want lost, not ready, host_lost)", i.ID, i.State, i.Ready, i.Reason)
		}
	}
	if _, err := admin.Drills().End(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 60*time.Second, "failback: 2 ready in p1 again, none left in p2", func() bool {
		return readyIn("p1") == 2 && readyIn("p2") == 0
	})

	// Evacuate: the app moves off p1 gracefully (new copies first).
	d, err = admin.Drills().Run(ctx, apitypes.DrillRequest{Pool: "p1", Mode: "evacuate"})
	if err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 30*time.Second, "evacuated to p2", func() bool {
		if readyIn("p1")+readyIn("p2") < 2 {
			t.Fatal("fewer than 2 ready instances during the evacuation")
		}
		return readyIn("p2") == 2 && readyIn("p1") == 0
	})
	hubtest.WaitFor(t, 10*time.Second, "the evacuation report", func() bool {
		rep, _, err = admin.Drills().Get(ctx, d.ID, nil)
		return err == nil && rep.RoutedMs >= 0 && rep.DetectedMs == 0
	})
	if _, err := admin.Drills().End(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
}
