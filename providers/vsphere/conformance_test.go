package vsphere

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/providers"
	"github.com/wharf-platform/wharf/providers/providertest"
)

// TestConformance runs the provider suite against govmomi's vCenter
// simulator, behind the cloudsim front that breaks calls on demand.
func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Harness{New: func(t *testing.T) *providertest.Cloud {
		v := newVCenter(t)
		p := openFast(t, v.account())
		wrong := v.account()
		wrong.Credentials.Password = "not-the-" + testPassword[:5]
		tmpl := template()
		words := map[cloudsim.FaultKind]providertest.Words{
			cloudsim.FaultAuth:     {Code: "NoPermission", Message: "Permission to perform this operation was denied."},
			cloudsim.FaultThrottle: {Code: "429"},
			cloudsim.FaultQuota:    {Code: "InsufficientResourcesFault", Message: "Insufficient resources"},
			cloudsim.FaultServer:   {Code: "SystemError", Message: "A general system error occurred"},
		}
		unknown := func(mutate func(*providers.Template)) providers.Template {
			u := tmpl
			mutate(&u)
			return u
		}
		return &providertest.Cloud{
			Provider:            p,
			BadCredentials:      openFast(t, wrong),
			BadCredentialsWords: "InvalidLogin",
			Template:            tmpl,
			Held:                v.held,
			MissingID:           "vm-424242",
			Fail: func(kind cloudsim.FaultKind) providertest.Words {
				v.front.Faults().Fail("CloneVM_Task", kind, 0)
				return words[kind]
			},
			Clear: v.front.ClearFaults,
			Unknown: []providertest.Unknown{
				{Part: "template VM", Template: unknown(func(t *providers.Template) { t.VMTemplate = "no-such-vm" }), Words: "no-such-vm"},
				{Part: "datacenter", Template: unknown(func(t *providers.Template) { t.Datacenter = "DC9" }), Words: "DC9"},
				{Part: "resource pool", Template: unknown(func(t *providers.Template) { t.ResourcePool = "/DC0/host/nowhere/Resources" }), Words: "nowhere"},
				{Part: "datastore", Template: unknown(func(t *providers.Template) { t.Datastore = "NoDS" }), Words: "NoDS"},
				{Part: "folder", Template: unknown(func(t *providers.Template) { t.Folder = "/DC0/vm/none" }), Words: "/DC0/vm/none"},
				{Part: "network", Template: unknown(func(t *providers.Template) { t.Network = "No Network" }), Words: "No Network"},
			},
			Hang: func(testing.TB) (providers.Provider, providers.Template) {
				v.front.Faults().Fail("", cloudsim.FaultHang, 0)
				return p, tmpl
			},
		}
	}})
}

// held reads the VMs Wharf made (those with a wharf-machine key) from
// the simulator, as the suite compares them: tags from the extraConfig
// keys, user data decoded as cloud-init would.
func (v *vcenter) held(t testing.TB) []providertest.Held {
	t.Helper()
	vms, err := v.vms(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []providertest.Held
	for _, vm := range vms {
		id, ok := vm.ExtraConfig[providers.TagMachine]
		if !ok {
			continue
		}
		h := providertest.Held{ProviderID: vm.ID, MachineID: id, Tags: map[string]string{}}
		for k, val := range vm.ExtraConfig {
			switch {
			case strings.HasPrefix(k, TagKeyPrefix):
				h.Tags[strings.TrimPrefix(k, TagKeyPrefix)] = val
			case strings.HasPrefix(k, "wharf-"):
				h.Tags[k] = val
			}
		}
		if h.UserData, _, err = cloudsim.DecodeGuestinfoUserData(vm.ExtraConfig); err != nil {
			t.Fatalf("VM %s: %v", vm.ID, err)
		}
		out = append(out, h)
	}
	return out
}

// TestCreatedVMBoots: a VM cloned through govmomi powers on; the booter
// finds it in the simulator, reads its guestinfo as cloud-init would and
// boots it as a host of its own that runs the user data.
func TestCreatedVMBoots(t *testing.T) {
	providertest.Boot(t, "vsphere", func(t *testing.T, boot cloudsim.BootFunc) providertest.BootCloud {
		v := newVCenter(t)
		watch, err := cloudsim.NewVSphereBooter(cloudsim.VSphereBootOptions{List: v.vms, Boot: boot, Interval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(watch.Close)
		return providertest.BootCloud{Provider: openFast(t, v.account()), Template: template(), Stuck: watch.Error}
	})
}
