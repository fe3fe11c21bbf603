package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/e2e/cloudsim/netboot"
	"github.com/wharf-platform/wharf/e2e/netlab"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
	"github.com/wharf-platform/wharf/providers/openstack"
)

// TestOpenStackPoolEnrolls: a provisioned pool on the OpenStack
// simulator, driven through gophercloud: the server boots for real as a
// netlab host, its cloud-init installs the agent from the hub, the agent
// enrolls with its machine's token, and shrinking the pool deletes the
// server.
func TestOpenStackPoolEnrolls(t *testing.T) {
	netlab.Require(t)
	lab := netlab.New(t, netlab.Options{})
	dc := lab.AddDC("openstack")
	booter, err := netboot.New(dc, netboot.Options{Dir: t.TempDir(), Env: []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := cloudsim.NewOpenStack(cloudsim.OpenStackOptions{Boot: booter.Boot, BootDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	c := hubtest.New(t, 1, hubtest.Options{BindIP: dc.Gateway().String(), AgentBinary: wharfBin, OpenProvider: openstack.Open})
	ctx := context.Background()
	anon, _ := client.New(client.Config{Address: c.Nodes[0].URL()})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := client.New(client.Config{Address: c.Nodes[0].URL(), Token: boot.Token})
	u := sim.User()
	creds, _ := json.Marshal(map[string]string{"username": u.Name, "password": u.Password, "project": u.Project, "domain": u.Domain})
	if _, err := admin.Providers().Create(ctx, apitypes.ProviderRequest{Name: "os", Type: "openstack", Region: sim.Region(), Endpoint: sim.URL(), Credentials: creds}); err != nil {
		t.Fatalf("the openstack account: %v", err)
	}
	pool := func(min int) apitypes.PoolRequest {
		tmpl, _ := json.Marshal(map[string]string{"flavor": "m1.small", "image": "ubuntu-24.04", "network": "private"})
		return apitypes.PoolRequest{Name: "os", Datacenter: "dc1", Drivers: []string{"exec"}, Provision: &apitypes.Provision{
			Provider: "os", Template: tmpl, MinHosts: min, MaxHosts: 1,
			ScaleDownAfter: apitypes.Duration(time.Second), BootTimeout: apitypes.Duration(2 * time.Minute),
		}}
	}
	if _, err := admin.Pools().Create(ctx, pool(1)); err != nil {
		t.Fatal(err)
	}
	var machine apitypes.Machine
	hubtest.WaitUntil(t, 90*time.Second, "the server booted for real and its agent enrolled", func() error {
		ms, _, err := admin.Machines().List(ctx, "os", nil)
		if err != nil {
			return err
		}
		hs, _, err := admin.Hosts().List(ctx, nil)
		if err != nil {
			return err
		}
		if len(ms) != 1 || ms[0].State != "ready" {
			return fmt.Errorf("machines %+v", ms)
		}
		for _, h := range hs {
			if h.ID == ms[0].Host && h.State == "ready" && h.Machine == ms[0].ID && h.ProviderID == ms[0].ProviderID {
				machine = ms[0]
				return nil
			}
		}
		return fmt.Errorf("no ready host of machine %+v in %+v", ms[0], hs)
	})
	sv, ok := sim.Server(machine.ProviderID)
	if !ok || sv.Metadata["wharf-machine"] != machine.ID || sv.Name != "wharf-"+machine.ID || lab.Host(netboot.HostName(sv.ID)) == nil {
		t.Fatalf("server %+v of machine %+v", sv, machine)
	}
	if n := len(sim.Servers()); n != 1 {
		t.Fatalf("%d servers, want 1", n)
	}
	if _, err := admin.Pools().Update(ctx, pool(0)); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitUntil(t, 60*time.Second, "the idle machine deleted with its server", func() error {
		if _, ok := sim.Server(machine.ProviderID); ok {
			return fmt.Errorf("server %s stays", machine.ProviderID)
		}
		if lab.Host(netboot.HostName(machine.ProviderID)) != nil {
			return fmt.Errorf("its lab host stays")
		}
		return nil
	})
}
