package openstack

import (
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/providers"
	"github.com/wharf-platform/wharf/providers/providertest"
)

// TestConformance runs the provider suite against the OpenStack
// simulator (Keystone, Nova, Glance, Neutron) through gophercloud.
func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Harness{New: func(t *testing.T) *providertest.Cloud {
		s := newSim(t, cloudsim.OpenStackOptions{})
		p := openFast(t, account(s))
		wrong := account(s)
		wrong.Credentials.Password = "not-the-" + testPassword[:5]
		tmpl := request("x").Template
		novaWords := map[cloudsim.FaultKind]providertest.Words{
			cloudsim.FaultAuth:     {Code: "unauthorized", Message: "The request you have made requires authentication."},
			cloudsim.FaultThrottle: {Code: "overLimit", Message: "This request was rate-limited."},
			cloudsim.FaultQuota:    {Code: "forbidden", Message: "Quota exceeded for instances"},
			cloudsim.FaultServer:   {Code: "computeFault", Message: "Unexpected API Error."},
		}
		unknown := func(mutate func(*providers.Template)) providers.Template {
			u := tmpl
			mutate(&u)
			return u
		}
		return &providertest.Cloud{
			Provider:            p,
			BadCredentials:      openFast(t, wrong),
			BadCredentialsWords: "requires authentication",
			Template:            tmpl,
			Held: func(testing.TB) []providertest.Held {
				var out []providertest.Held
				for _, sv := range s.Servers() {
					if sv.Status != cloudsim.NovaDeleted {
						out = append(out, providertest.Held{ProviderID: sv.ID, MachineID: sv.Metadata[providers.TagMachine], Tags: sv.Metadata, UserData: sv.UserData})
					}
				}
				return out
			},
			MissingID: "0b1c2d3e-0000-4000-8000-000000000000",
			Fail: func(kind cloudsim.FaultKind) providertest.Words {
				s.Faults().Fail("CreateServer", kind, 0)
				return novaWords[kind]
			},
			Clear: s.ClearFaults,
			Unknown: []providertest.Unknown{
				{Part: "flavor", Template: unknown(func(t *providers.Template) { t.Flavor = "m9.huge" }), Words: "m9.huge"},
				{Part: "image", Template: unknown(func(t *providers.Template) { t.Image = "windows-95" }), Words: "windows-95"},
				{Part: "network", Template: unknown(func(t *providers.Template) { t.Network = "public" }), Words: "public"},
			},
			Hang: func(testing.TB) (providers.Provider, providers.Template) {
				s.Faults().Fail("", cloudsim.FaultHang, 0)
				return p, tmpl
			},
		}
	}})
}

// TestCreatedMachineBoots: a server created through gophercloud boots as
// a host of its own and runs its user data.
func TestCreatedMachineBoots(t *testing.T) {
	providertest.Boot(t, "openstack", func(t *testing.T, boot cloudsim.BootFunc) providertest.BootCloud {
		s := newSim(t, cloudsim.OpenStackOptions{Boot: boot, BootDelay: 50 * time.Millisecond})
		return providertest.BootCloud{Provider: openFast(t, account(s)), Template: request("x").Template}
	})
}
