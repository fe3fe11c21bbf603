package aliyun

import (
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/providers"
	"github.com/wharf-platform/wharf/providers/providertest"
)

// TestConformance runs the provider suite against the ECS simulator
// through the Alibaba Cloud SDK.
func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Harness{New: func(t *testing.T) *providertest.Cloud {
		s := newSim(t, cloudsim.ECSOptions{})
		p := openT(t, account(s))
		wrong := account(s)
		wrong.Credentials.AccessKeySecret = "not-the-" + testSecret[:5]
		tmpl := request("x").Template
		ecsWords := map[cloudsim.FaultKind]providertest.Words{
			cloudsim.FaultAuth:     {Code: "Forbidden.RAM", Message: "User not authorized to operate on the specified resource"},
			cloudsim.FaultThrottle: {Code: "Throttling.User", Message: "Request was denied due to user flow control."},
			cloudsim.FaultQuota:    {Code: "QuotaExceed.ElasticQuota", Message: "No additional quota is available"},
			cloudsim.FaultServer:   {Code: "InternalError", Message: "The request processing has failed"},
		}
		unknown := func(mutate func(*providers.Template)) providers.Template {
			u := tmpl
			mutate(&u)
			return u
		}
		return &providertest.Cloud{
			Provider:            p,
			BadCredentials:      openT(t, wrong),
			BadCredentialsWords: "SignatureDoesNotMatch",
			Template:            tmpl,
			Held: func(testing.TB) []providertest.Held {
				var out []providertest.Held
				for _, in := range s.Instances() {
					if in.Status != cloudsim.ECSStopping && in.Status != cloudsim.ECSStopped {
						out = append(out, providertest.Held{ProviderID: in.ID, MachineID: in.Tags[providers.TagMachine], Tags: in.Tags, UserData: in.UserData})
					}
				}
				return out
			},
			MissingID: "i-0123456789abcdef0123",
			Fail: func(kind cloudsim.FaultKind) providertest.Words {
				s.Faults().Fail("RunInstances", kind, 0)
				return ecsWords[kind]
			},
			Clear: s.ClearFaults,
			Unknown: []providertest.Unknown{
				{Part: "instance type", Template: unknown(func(t *providers.Template) { t.InstanceType = "ecs.gigantic" }), Words: "ecs.gigantic"},
				{Part: "image", Template: unknown(func(t *providers.Template) { t.Image = "debian-12" }), Words: "debian-12"},
				{Part: "vSwitch", Template: unknown(func(t *providers.Template) { t.VSwitch = "nope" }), Words: `"nope"`},
				{Part: "security group", Template: unknown(func(t *providers.Template) { t.SecurityGroup = "sg-nope" }), Words: "sg-nope"},
			},
			Hang: func(testing.TB) (providers.Provider, providers.Template) {
				s.Faults().Fail("", cloudsim.FaultHang, 0)
				return p, tmpl
			},
		}
	}})
}

// TestCreatedMachineBoots: an instance created through the SDK boots as
// a host of its own and runs its user data (base64 on the wire).
func TestCreatedMachineBoots(t *testing.T) {
	providertest.Boot(t, "aliyun", func(t *testing.T, boot cloudsim.BootFunc) providertest.BootCloud {
		s := newSim(t, cloudsim.ECSOptions{Boot: boot, BootDelay: 50 * time.Millisecond})
		return providertest.BootCloud{Provider: openT(t, account(s)), Template: request("x").Template}
	})
}
