package e2e

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/hub"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestFencedSingletonNeverRunsTwice cuts the host of a fenced singleton
// off from the hub (its pool gossip goes on): its agent stops the instance
// once max_disconnect has passed without a renewed lease; the hub starts
// the replacement on the other host only after that (last renewal +
// max_disconnect + stop grace + quorum window + margin); at no moment do
// two copies run; after the heal the cut-off host does not start it again.
func TestFencedSingletonNeverRunsTwice(t *testing.T) {
	c, admin, _ := newCluster(t, hubtest.Options{SuspectAfter: time.Second, DownAfter: 3 * time.Second}, "p", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})
	hosts := map[string]*fake.Host{"a": fake.NewHost(), "b": fake.NewHost()}
	agents := map[string]*agent.Agent{}
	for _, name := range []string{"a", "b"} {
		agents[name], _ = runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: t.TempDir(), Name: name,
			GossipAddr: "127.0.0.1:0", NewDriver: fakeDriver(hosts[name])})
	}
	hubtest.WaitFor(t, 15*time.Second, "two ready hosts", func() bool {
		hs, _, err := admin.Hosts().List(ctx, nil)
		return err == nil && len(hs) == 2 && hs[0].State == "ready" && hs[1].State == "ready" && hs[0].MemoryBytes > 0 && hs[1].MemoryBytes > 0
	})
	w := &client.WriteOptions{Tenant: "acme"}
	const maxDisconnect = 3 * time.Second
	spec := apitypes.AppSpec{Name: "db", Image: "db:1", Instances: intp(1), Constraints: []string{"name=a"},
		Failover: &apitypes.Failover{Mode: apitypes.FailoverFenced, MaxDisconnect: apitypes.Duration(maxDisconnect)}}
	if _, err := admin.Apps().Create(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	running := func(name string) bool {
		return slices.ContainsFunc(hosts[name].Running(), func(string) bool { return true })
	}
	hubtest.WaitFor(t, 20*time.Second, "db running on a", func() bool { return running("a") })
	spec.Constraints = nil // free to move now
	if _, _, _, err := admin.Apps().Put(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	// Watch both hosts every 10 ms for two copies at once.
	var both atomic.Bool
	watch, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		for watch.Err() == nil {
			if running("a") && running("b") {
				both.Store(true)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	cut := time.Now()
	agents["a"].CutHub(true)
	hubtest.WaitFor(t, 3*maxDisconnect, "a fenced its copy", func() bool { return !running("a") })
	fenced := time.Since(cut)
	hubtest.WaitFor(t, 60*time.Second, "the replacement running on b", func() bool { return running("b") })
	replaced := time.Since(cut)
	// a is down: its old copy, stopped by its fence, is reported lost and
	// never ready while a cannot say otherwise.
	hubtest.WaitFor(t, 10*time.Second, "the fenced copy on a reported lost", func() bool {
		is, _, err := admin.Apps().Instances(ctx, "db", &client.QueryOptions{Tenant: "acme"})
		if err != nil {
			return false // a leader election under load: ask again
		}
		for _, i := range is {
			if i.Host == agents["a"].HostID() && (i.State != apitypes.InstanceLost || i.Ready) {
				t.Fatalf("the fenced copy %s on the lost host: state %s, ready %v (want lost, not ready)", i.ID, i.State, i.Ready)
			}
		}
		return true
	})
	t.Logf("cut: a stopped its copy after %s, b started the replacement after %s", fenced.Round(time.Millisecond), replaced.Round(time.Millisecond))
	if fenced < maxDisconnect-time.Second {
		t.Fatalf("a stopped its copy after %s, before max_disconnect %s", fenced, maxDisconnect)
	}
	if min := maxDisconnect + hub.FenceStopGrace; replaced < min {
		t.Fatalf("replacement after %s: earlier than max_disconnect + stop grace (%s)", replaced, min)
	}
	agents["a"].CutHub(false)
	hubtest.WaitFor(t, 20*time.Second, "a back", func() bool {
		h, _, err := admin.Hosts().Get(ctx, agents["a"].HostID(), nil)
		return err == nil && h.State == "ready"
	})
	time.Sleep(3 * time.Second) // a has its new assignments; nothing may start there
	stopWatch()
	if both.Load() {
		t.Fatal("two copies of the fenced singleton ran at once")
	}
	if running("a") || !running("b") {
		t.Fatalf("after the heal: a running %v, b running %v", running("a"), running("b"))
	}
}
