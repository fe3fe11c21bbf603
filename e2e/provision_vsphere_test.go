package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/e2e/cloudsim/netboot"
	"github.com/wharf-platform/wharf/e2e/netlab"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
	"github.com/wharf-platform/wharf/providers/vsphere"
)

// TestVSpherePoolEnrolls: a provisioned pool on govmomi's in-process
// vCenter simulator, driven through govmomi: the clone powers on, the
// booter runs its guestinfo.userdata for real as a netlab host, the agent
// enrolls with its machine's token, and shrinking the pool destroys the
// VM.
func TestVSpherePoolEnrolls(t *testing.T) {
	netlab.Require(t)
	lab := netlab.New(t, netlab.Options{})
	dc := lab.AddDC("vsphere")
	booter, err := netboot.New(dc, netboot.Options{Dir: t.TempDir(), Env: []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}})
	if err != nil {
		t.Fatal(err)
	}
	m := simulator.VPX()
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	m.Service.TLS = new(tls.Config)
	m.Service.Listen = &url.URL{User: url.UserPassword("wharf@vsphere.local", "vc-secret")}
	s := m.Service.NewServer()
	t.Cleanup(func() {
		s.Close()
		m.Remove()
	})
	ctx := context.Background()
	vc, err := govmomi.NewClient(ctx, s.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	list := func(ctx context.Context) ([]cloudsim.VSphereVM, error) {
		cv, err := view.NewManager(vc.Client).CreateContainerView(ctx, vc.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
		if err != nil {
			return nil, err
		}
		defer cv.Destroy(context.WithoutCancel(ctx)) //nolint:errcheck
		var vms []mo.VirtualMachine
		if err := cv.Retrieve(ctx, []string{"VirtualMachine"}, []string{"config.extraConfig", "runtime.powerState"}, &vms); err != nil {
			return nil, err
		}
		var out []cloudsim.VSphereVM
		for _, vm := range vms {
			ec := map[string]string{}
			if vm.Config != nil {
				for _, ov := range vm.Config.ExtraConfig {
					o := ov.GetOptionValue()
					v, _ := o.Value.(string)
					ec[o.Key] = v
				}
			}
			out = append(out, cloudsim.VSphereVM{ID: vm.Self.Value, PoweredOn: vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn, ExtraConfig: ec})
		}
		return out, nil
	}
	watch, err := cloudsim.NewVSphereBooter(cloudsim.VSphereBootOptions{List: list, Boot: booter.Boot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watch.Close)

	c := hubtest.New(t, 1, hubtest.Options{BindIP: dc.Gateway().String(), AgentBinary: wharfBin, OpenProvider: vsphere.Open})
	anon, _ := client.New(client.Config{Address: c.Nodes[0].URL()})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := client.New(client.Config{Address: c.Nodes[0].URL(), Token: boot.Token})
	endpoint := *s.URL
	endpoint.User = nil
	creds, _ := json.Marshal(map[string]string{"username": "wharf@vsphere.local", "password": "vc-secret"})
	if _, err := admin.Providers().Create(ctx, apitypes.ProviderRequest{Name: "vc", Type: "vsphere", Endpoint: endpoint.String(), Insecure: true, Credentials: creds}); err != nil {
		t.Fatalf("the vsphere account: %v", err)
	}
	pool := func(min int) apitypes.PoolRequest {
		tmpl, _ := json.Marshal(map[string]string{"template": "DC0_H0_VM0", "datacenter": "DC0", "resource_pool": "/DC0/host/DC0_H0/Resources"})
		return apitypes.PoolRequest{Name: "vc", Datacenter: "dc1", Drivers: []string{"exec"}, Provision: &apitypes.Provision{
			Provider: "vc", Template: tmpl, MinHosts: min, MaxHosts: 1,
			ScaleDownAfter: apitypes.Duration(time.Second), BootTimeout: apitypes.Duration(2 * time.Minute),
		}}
	}
	if _, err := admin.Pools().Create(ctx, pool(1)); err != nil {
		t.Fatal(err)
	}
	var machine apitypes.Machine
	hubtest.WaitUntil(t, 90*time.Second, "the VM booted for real and its agent enrolled", func() error {
		ms, _, err := admin.Machines().List(ctx, "vc", nil)
		if err != nil {
			return err
		}
		hs, _, err := admin.Hosts().List(ctx, nil)
		if err != nil {
			return err
		}
		if len(ms) != 1 || ms[0].State != "ready" {
			return fmt.Errorf("machines %+v (booter: %q)", ms, watch.Error(firstProviderID(ms)))
		}
		for _, h := range hs {
			if h.ID == ms[0].Host && h.State == "ready" && h.Machine == ms[0].ID && h.ProviderID == ms[0].ProviderID {
				machine = ms[0]
				return nil
			}
		}
		return fmt.Errorf("no ready host of machine %+v in %+v", ms[0], hs)
	})
	if lab.Host(netboot.HostName(machine.ProviderID)) == nil {
		t.Fatalf("no lab host for VM %s", machine.ProviderID)
	}
	if _, err := admin.Pools().Update(ctx, pool(0)); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitUntil(t, 60*time.Second, "the idle machine deleted with its VM", func() error {
		vms, err := list(ctx)
		if err != nil {
			return err
		}
		for _, vm := range vms {
			if vm.ID == machine.ProviderID {
				return fmt.Errorf("VM %s stays", vm.ID)
			}
		}
		if lab.Host(netboot.HostName(machine.ProviderID)) != nil {
			return fmt.Errorf("its lab host stays")
		}
		return nil
	})
}

func firstProviderID(ms []apitypes.Machine) string {
	if len(ms) == 0 {
		return ""
	}
	return ms[0].ProviderID
}
