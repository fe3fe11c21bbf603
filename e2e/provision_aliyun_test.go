package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/e2e/cloudsim/netboot"
	"github.com/wharf-platform/wharf/e2e/netlab"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
	"github.com/wharf-platform/wharf/providers/aliyun"
)

// aliPool is the request of a pool provisioned on account "ali", its
// template given by names as an admin writes it.
func aliPool(name string, minHosts, maxHosts int) apitypes.PoolRequest {
	tmpl, _ := json.Marshal(map[string]string{
		"instance_type": "ecs.g6.large", "image": "Ubuntu 22.04 64 bit", "vswitch": "wharf-agents", "security_group": "wharf-agents",
	})
	return apitypes.PoolRequest{Name: name, Datacenter: "dc1", Drivers: []string{"exec"}, Provision: &apitypes.Provision{
		Provider: "ali", Template: tmpl, MinHosts: minHosts, MaxHosts: maxHosts,
		ScaleDownAfter: apitypes.Duration(3 * time.Second), BootTimeout: apitypes.Duration(2 * time.Minute),
	}}
}

// TestProvisionedAliyunPoolBootsRealMachines: a pool provisioned on the
// ECS simulator through the Alibaba Cloud SDK, whose instances boot for
// real as netlab hosts: their cloud-init fetches install.sh and the wharf
// binary from a hub node, and the agents enroll with their machines'
// tokens. One create's answer is lost (the retry finds the instance by its
// ClientToken); the pool shrinking to nothing deletes every instance.
func TestProvisionedAliyunPoolBootsRealMachines(t *testing.T) {
	netlab.Require(t)
	lab := netlab.New(t, netlab.Options{})
	dc := lab.AddDC("aliyun")
	// No Docker in the machines: their agents pick the exec driver.
	booter, err := netboot.New(dc, netboot.Options{Dir: t.TempDir(), Env: []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := cloudsim.NewECS(cloudsim.ECSOptions{Boot: booter.Boot, BootDelay: time.Second, StopDelay: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	c := hubtest.New(t, 3, hubtest.Options{BindIP: dc.Gateway().String(), AgentBinary: wharfBin, OpenProvider: aliyun.Open})
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
	id, secret := sim.Key()
	account := func(name, secret string) apitypes.ProviderRequest {
		creds, _ := json.Marshal(map[string]string{"access_key_id": id, "access_key_secret": secret})
		return apitypes.ProviderRequest{Name: name, Type: "aliyun", Region: sim.Region(), Endpoint: sim.URL(), Credentials: creds}
	}
	_, err = admin().Providers().Create(ctx, account("bad", "not-the-secret"))
	var apiErr *apitypes.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity || !strings.Contains(apiErr.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("an account with a wrong secret: %v, want 422 with ECS's SignatureDoesNotMatch", err)
	}
	if _, err := admin().Providers().Create(ctx, account("ali", secret)); err != nil {
		t.Fatalf("the account with the right keys: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, in := range sim.Instances() {
				if m, ok := booter.Machine(in.ID); ok {
					agentLog, _ := os.ReadFile(m.Path("/var/log/wharf-agent.log"))
					if len(agentLog) > 3000 {
						agentLog = agentLog[len(agentLog)-3000:]
					}
					t.Logf("--- %s (%s) console:\n%s\n--- its agent's log (tail):\n%s", in.ID, in.Status, m.Console(), agentLog)
				}
			}
		}
	})

	sim.LoseAnswers("RunInstances", 1)
	if _, err := admin().Pools().Create(ctx, aliPool("ali", 2, 2)); err != nil {
		t.Fatal(err)
	}
	ready := func() error {
		ms, _, err := admin().Machines().List(ctx, "ali", nil)
		if err != nil {
			return err
		}
		hs, _, err := admin().Hosts().List(ctx, nil)
		if err != nil {
			return err
		}
		hosts := map[string]apitypes.Host{}
		for _, h := range hs {
			hosts[h.ID] = h
		}
		if len(ms) != 2 {
			return fmt.Errorf("%d machines [%s], want 2", len(ms), states(ms))
		}
		for _, m := range ms {
			h, ok := hosts[m.Host]
			if m.State != "ready" || !ok || h.State != "ready" {
				return fmt.Errorf("machine %s is %s with host %q (%+v)", m.ID, m.State, m.Host, h)
			}
			if h.Machine != m.ID || h.ProviderID != m.ProviderID || h.Name != m.ProviderID || m.Provider != "ali" {
				return fmt.Errorf("host %s shows machine %q %q, name %q; want %s %s", h.ID, h.Machine, h.ProviderID, h.Name, m.ID, m.ProviderID)
			}
			in, ok := sim.Instance(m.ProviderID)
			if !ok || in.Status != cloudsim.ECSRunning || lab.Host(m.ProviderID) == nil {
				return fmt.Errorf("machine %s's instance %s: %+v (lab host %v)", m.ID, m.ProviderID, in, lab.Host(m.ProviderID) != nil)
			}
			if in.Tags["wharf-machine"] != m.ID || in.Tags["wharf-pool"] != "ali" || in.Tags["wharf-cluster"] == "" ||
				in.ClientToken != m.ID || in.VSwitchID != "vsw-bp1wharf0000000000001" || in.SecurityGroupID != "sg-bp1wharf0000000000001" ||
				in.ImageID != "ubuntu_22_04_x64_20G_alibase_20240130.vhd" || !strings.HasPrefix(string(in.UserData), "#cloud-config") {
				return fmt.Errorf("machine %s's instance %+v", m.ID, in)
			}
		}
		if n := len(sim.Instances()); n != 2 {
			return fmt.Errorf("%d instances for 2 machines", n)
		}
		return nil
	}
	start := time.Now()
	hubtest.WaitUntil(t, 120*time.Second, "2 ECS machines booted for real and enrolled", ready)
	t.Logf("2 machines ready and enrolled after %s", time.Since(start).Round(time.Millisecond))
	perMachine := map[string]int{}
	for _, in := range sim.Instances() {
		perMachine[in.Tags["wharf-machine"]]++
	}
	for m, n := range perMachine {
		if n > 1 {
			t.Fatalf("machine %s was launched %d times", m, n)
		}
	}

	// Down to nothing: both machines drained and deleted, their instances
	// and hosts gone.
	var instances []string
	for _, in := range sim.Instances() {
		instances = append(instances, in.ID)
	}
	if _, err := admin().Pools().Update(ctx, aliPool("ali", 0, 2)); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitUntil(t, 60*time.Second, "the idle machines deleted with their instances", func() error {
		ms, _, err := admin().Machines().List(ctx, "ali", nil)
		if err != nil {
			return err
		}
		if len(ms) != 0 || len(sim.Instances()) != 0 {
			return fmt.Errorf("machines [%s], %d instances", states(ms), len(sim.Instances()))
		}
		for _, id := range instances {
			if lab.Host(id) != nil {
				return fmt.Errorf("the lab host of deleted instance %s stays", id)
			}
		}
		return nil
	})
	if calls := sim.Calls(); calls["DescribeVSwitches"] > 3 || calls["DescribeImages"] > 6 {
		t.Fatalf("the template's names were looked up again and again: %v", calls)
	}
}
