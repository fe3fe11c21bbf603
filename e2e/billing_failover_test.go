package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestUsageExactlyOnceThroughNodeDeath: an agent reports the requests its
// router served to the hub node it is connected to; that node is cut off
// from the others (so its batch cannot commit) and killed while it holds
// the agent's report. The agent sends the report again to another node:
// the committed requests equal exactly the requests load.sent, and stay so
// (the report is counted once, not once per node it reached).
func TestUsageExactlyOnceThroughNodeDeath(t *testing.T) {
	c, _, token := newCluster(t, hubtest.Options{SuspectAfter: time.Second, DownAfter: 3 * time.Second}, "p", "acme")
	ctx := context.Background()
	// A client of the leader: the node the agent reports to is killed.
	api := func() *client.Client {
		n := c.WaitLeader(15 * time.Second)
		cl, _ := client.New(client.Config{Address: n.URL(), Token: token})
		return cl
	}
	jt := joinToken(t, api(), apitypes.JoinTokenRequest{Pool: "p"})
	a, _ := runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: t.TempDir(), Name: "a", DrainDelay: -1,
		NewDriver: fakeDriver(fake.NewHost()), RouterHTTPAddr: "127.0.0.1:0"})
	hubtest.WaitFor(t, 20*time.Second, "a ready host", func() bool {
		hs, _, err := api().Hosts().List(ctx, nil)
		return err == nil && len(hs) == 1 && hs[0].State == "ready"
	})
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	spec := apitypes.AppSpec{Name: "web", Image: "web:1", Instances: intp(1), Ports: []apitypes.Port{{ContainerPort: 8080}}}
	if _, err := api().Apps().Create(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	routerAddr, _ := a.RouterAddrs()
	load := &routedLoad{t: t, addr: routerAddr, host: "web.acme.localhost"}
	hubtest.WaitFor(t, 30*time.Second, "the router to route web", load.get)
	committed := func() (int64, error) {
		us, err := api().Usage(ctx, client.UsageQuery{App: "web", From: time.Now().Add(-2 * time.Hour), To: time.Now().Add(time.Hour), Group: apitypes.UsageByApp}, q)
		if err != nil {
			return 0, err
		}
		var n int64
		for _, u := range us {
			n += u.Requests
		}
		return n, nil
	}
	waitCommitted := func(what string) {
		t.Helper()
		hubtest.WaitUntil(t, 30*time.Second, what, func() error {
			n, err := committed()
			if err != nil {
				return err
			}
			if n != load.sent {
				return fmt.Errorf("%d requests committed, %d sent", n, load.sent)
			}
			return nil
		})
	}
	load.send(5)
	waitCommitted("the first requests committed")
	hubtest.WaitFor(t, 10*time.Second, "the agent's counts acknowledged", func() bool { return a.UsageUnacked() == 0 })

	// The node the agent reports to, as the agent itself tells.
	nodeOf := func() int {
		for _, n := range c.Nodes {
			if addr := n.QUICAddr(); addr != "" && addr == a.Hub() {
				return n.Index
			}
		}
		return -1
	}
	via := -1
	hubtest.WaitFor(t, 10*time.Second, "agent a's hub node", func() bool { via = nodeOf(); return via >= 0 })
	c.Partition(via)
	load.send(40)
	hubtest.WaitUntil(t, 15*time.Second, fmt.Sprintf("hub%d to hold the agent's report", via), func() error {
		if now := nodeOf(); now != via {
			return fmt.Errorf("the agent left hub%d for hub%d", via, now)
		}
		if c.Nodes[via].Hub().UsageReportsPending() == 0 {
			return fmt.Errorf("hub%d holds no report (the agent holds %d requests)", via, a.UsageUnacked())
		}
		return nil
	})
	if a.UsageUnacked() == 0 {
		t.Fatal("the agent forgot counts its hub node could not commit")
	}
	c.Kill(via)
	c.Heal()
	waitCommitted(fmt.Sprintf("the requests reported to the killed hub%d committed through another node", via))
	hubtest.WaitFor(t, 20*time.Second, "the agent's counts acknowledged", func() bool { return a.UsageUnacked() == 0 })
	// Counted once: a few batch periods later, still exactly what was load.sent.
	time.Sleep(4 * time.Second)
	if n, err := committed(); err != nil || n != load.sent {
		t.Fatalf("later: %d requests committed (%v), %d sent", n, err, load.sent)
	}
}
