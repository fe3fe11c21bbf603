package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim/netboot"
	"github.com/wharf-platform/wharf/e2e/netlab"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestMultiCloudFailover: one app over two clouds' pools with a third
// cloud's pool to fail over to, each pool in a datacenter of its own
// (a netlab datacenter whose hosts boot that cloud's machines for real).
// The app runs spread over the AWS and Alibaba Cloud datacenters; both
// are cut off (their hosts lose the hub and everyone else); the app moves
// to the vSphere pool, which had no machine and grows its own to take it,
// the lost pools grow none, and the app serves through a vSphere host's
// router.
func TestMultiCloudFailover(t *testing.T) {
	t.Parallel() // everything of its own: see doc.go
	netlab.Require(t)
	lab := netlab.New(t, netlab.Options{})
	type site struct {
		cloud, pool, account string
		dc                   *netlab.DC
		booter               *netboot.Booter
		sim                  *provSim
	}
	sites := []*site{
		{cloud: "aws", pool: "aws-pool", account: "aws"},
		{cloud: "aliyun", pool: "aliyun-pool", account: "ali"},
		{cloud: "vsphere", pool: "vsphere-pool", account: "vc"},
	}
	starts := map[string]func(testing.TB, simOptions) *provSim{}
	for _, c := range provClouds {
		starts[c.name] = c.start
	}
	for _, s := range sites {
		s.dc, s.booter = bootLab(t, lab, s.cloud)
		s.sim = starts[s.cloud](t, simOptions{Boot: s.booter.Boot, BootDelay: time.Second})
	}
	aws, ali, vs := sites[0], sites[1], sites[2]
	// The hub nodes listen on the vSphere datacenter's gateway, which the
	// other datacenters reach through this machine until they are cut
	// off. Hosts go down 4 s after their last heartbeat.
	c := hubtest.New(t, 3, hubtest.Options{BindIP: vs.dc.Gateway().String(), AgentBinary: wharfBin,
		SuspectAfter: 2 * time.Second, DownAfter: 4 * time.Second})
	ctx := context.Background()
	anon, _ := client.New(client.Config{Address: c.Nodes[0].URL()})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin := func() *client.Client {
		for _, n := range c.Nodes {
			if n.Running() {
				cl, _ := client.New(client.Config{Address: n.URL(), Token: boot.Token})
				return cl
			}
		}
		t.Fatal("no hub node runs")
		return nil
	}
	if _, err := admin().Tenants().Create(ctx, apitypes.TenantRequest{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range sites {
		if _, err := admin().Providers().Create(ctx, s.sim.account(s.account, true)); err != nil {
			t.Fatalf("the %s account: %v", s.cloud, err)
		}
		minHosts := 1
		if s == vs {
			minHosts = 0 // machines only for what fails over
		}
		if _, err := admin().Pools().Create(ctx, apitypes.PoolRequest{Name: s.pool, Datacenter: "dc-" + s.cloud, Drivers: []string{"exec"},
			Provision: &apitypes.Provision{Provider: s.account, Template: s.sim.template(false), MinHosts: minHosts, MaxHosts: 2,
				ScaleDownAfter: apitypes.Duration(10 * time.Minute), BootTimeout: apitypes.Duration(2 * time.Minute)}}); err != nil {
			t.Fatal(err)
		}
	}
	acme := &client.WriteOptions{Tenant: "acme"}
	t.Cleanup(func() {
		_ = admin().Apps().Delete(ctx, "shop", acme)
		for _, s := range sites {
			logMachines(t, s.sim, s.booter)
		}
	})

	poolOf := func() (map[string]apitypes.Host, error) { // host id -> host
		hs, _, err := admin().Hosts().List(ctx, nil)
		if err != nil {
			return nil, err
		}
		out := map[string]apitypes.Host{}
		for _, h := range hs {
			out[h.ID] = h
		}
		return out, nil
	}
	hubtest.WaitUntil(t, 120*time.Second, "a ready machine in the aws and aliyun pools", func() error {
		hosts, err := poolOf()
		if err != nil {
			return err
		}
		for _, s := range []*site{aws, ali} {
			ms, _, err := admin().Machines().List(ctx, s.pool, nil)
			if err != nil {
				return err
			}
			if len(ms) != 1 || ms[0].State != "ready" || hosts[ms[0].Host].State != "ready" {
				return fmt.Errorf("pool %s: machines [%s]", s.pool, states(ms))
			}
		}
		return nil
	})

	// Two instances of 1.2 CPU each, one per datacenter.
	two := 2
	shop := apitypes.AppSpec{Name: "shop", Command: []string{"/usr/local/bin/wharf", "demo"}, Instances: &two, CPU: 1200,
		Pools: []string{"aws-pool", "aliyun-pool"}, FailoverPools: []string{"vsphere-pool"}, Spread: "datacenter",
		Ports: []apitypes.Port{{Name: "http", ContainerPort: 8080}}}
	if _, err := admin().Apps().Create(ctx, shop, acme); err != nil {
		t.Fatal(err)
	}
	// readyIn is the app's ready instances by pool, and the hosts they
	// are on.
	readyIn := func() (map[string]int, map[string]apitypes.Host, error) {
		hosts, err := poolOf()
		if err != nil {
			return nil, nil, err
		}
		ins, _, err := admin().Apps().Instances(ctx, "shop", &client.QueryOptions{Tenant: "acme"})
		if err != nil {
			return nil, nil, err
		}
		n, on := map[string]int{}, map[string]apitypes.Host{}
		for _, in := range ins {
			if in.State == "running" && in.Ready {
				n[hosts[in.Host].Pool]++
				on[in.ID] = hosts[in.Host]
			}
		}
		return n, on, nil
	}
	// get asks a host's router for the app and returns the answer.
	get := func(h apitypes.Host) (string, error) {
		lh := lab.Host(netboot.HostName(h.ProviderID))
		if lh == nil {
			return "", fmt.Errorf("host %s (%s) has no lab host", h.ID, h.ProviderID)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+lh.AddrPort(7080)+"/", nil)
		req.Host = "shop.acme.localhost"
		cl := &http.Client{Timeout: 3 * time.Second}
		resp, err := cl.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s: %s", resp.Status, body)
		}
		return string(body), nil
	}
	hubtest.WaitUntil(t, 60*time.Second, "one ready instance in each of the aws and aliyun pools, served", func() error {
		n, on, err := readyIn()
		if err != nil {
			return err
		}
		if n[aws.pool] != 1 || n[ali.pool] != 1 || len(on) != 2 {
			return fmt.Errorf("ready by pool %v", n)
		}
		for _, h := range on {
			if _, err := get(h); err != nil {
				return fmt.Errorf("through host %s's router: %w", h.Name, err)
			}
		}
		return nil
	})
	if ms, _, err := admin().Machines().List(ctx, vs.pool, nil); err != nil || len(ms) != 0 {
		t.Fatalf("the vSphere pool has machines [%s] (%v) before anything failed over", states(ms), err)
	}

	// Both datacenters vanish: their hosts reach no hub node, and nobody
	// reaches them.
	cut := time.Now()
	lab.Isolate(aws.dc)
	lab.Isolate(ali.dc)
	var served string
	hubtest.WaitUntil(t, 180*time.Second, "the app on vSphere machines of its own, served by their routers", func() error {
		n, on, err := readyIn()
		if err != nil {
			return err
		}
		if n[vs.pool] != 2 {
			return fmt.Errorf("ready by pool %v", n)
		}
		ms, _, err := admin().Machines().List(ctx, vs.pool, nil)
		if err != nil {
			return err
		}
		machines := map[string]apitypes.Machine{}
		for _, m := range ms {
			machines[m.ID] = m
		}
		for id, h := range on {
			m, ok := machines[h.Machine]
			if !ok || m.State != "ready" || m.Host != h.ID {
				return fmt.Errorf("instance %s is on host %s (machine %q), not a ready machine of the vSphere pool: [%s]", id, h.ID, h.Machine, states(ms))
			}
			body, err := get(h)
			if err != nil {
				return fmt.Errorf("through host %s's router: %w", h.Name, err)
			}
			if !strings.Contains(body, "app shop") {
				return fmt.Errorf("host %s's router answered %q", h.Name, body)
			}
			served = body
		}
		return poolMatchesCloud(vs.sim, ms)
	})
	t.Logf("failed over to vSphere in %s; a router answered %q", time.Since(cut).Round(time.Millisecond), strings.TrimSpace(served))
	// The lost pools did not grow machines their datacenters cannot
	// enroll: the demand went to the failover pool.
	for _, s := range []*site{aws, ali} {
		// The read is retried only while it fails (a leader election on
		// a loaded machine); what it answers is judged once.
		var ms []apitypes.Machine
		hubtest.WaitUntil(t, 60*time.Second, "pool "+s.pool+"'s machines read", func() (err error) {
			ms, _, err = admin().Machines().List(ctx, s.pool, nil)
			return err
		})
		if len(ms) != 1 || len(s.sim.live()) != 1 {
			t.Fatalf("pool %s: machines [%s], %d live in the cloud; want its one machine", s.pool, states(ms), len(s.sim.live()))
		}
	}
}

// poolMatchesCloud checks that the cloud's live machines are exactly the
// pool's machines.
func poolMatchesCloud(sim *provSim, ms []apitypes.Machine) error {
	live := sim.live()
	if len(live) != len(ms) {
		return fmt.Errorf("%d live in the cloud, %d machines [%s]", len(live), len(ms), states(ms))
	}
	for _, m := range ms {
		if _, ok := live[m.ProviderID]; !ok {
			return fmt.Errorf("machine %s's %s is not live in the cloud", m.ID, m.ProviderID)
		}
	}
	return nil
}
