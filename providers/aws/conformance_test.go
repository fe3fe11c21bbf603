package aws

import (
	"context"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/providers"
	"github.com/wharf-platform/wharf/providers/providertest"
)

// TestConformance runs the provider suite against the EC2 simulator
// through the AWS SDK.
func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Harness{New: func(t *testing.T) *providertest.Cloud {
		tmpl := request("x").Template
		s := newSim(t, cloudsim.EC2Options{Images: []string{tmpl.Image}})
		p := openFast(t, account(s))
		wrong := account(s)
		wrong.Credentials.SecretAccessKey = "not-the-" + testSecret[:5]
		ec2Words := map[cloudsim.FaultKind]providertest.Words{
			cloudsim.FaultAuth:     {Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation."},
			cloudsim.FaultThrottle: {Code: "RequestLimitExceeded", Message: "Request limit exceeded."},
			cloudsim.FaultQuota:    {Code: "InstanceLimitExceeded", Message: "Your quota allows for 0 more running instance(s)."},
			cloudsim.FaultServer:   {Code: "InternalError", Message: "An internal error has occurred."},
		}
		unknownType := tmpl
		unknownType.InstanceType = "t3.gigantic"
		unknownImage := tmpl
		unknownImage.Image = "ami-00000000deadbeef0"
		return &providertest.Cloud{
			Provider:            p,
			BadCredentials:      openFast(t, wrong),
			BadCredentialsWords: "SignatureDoesNotMatch",
			Template:            tmpl,
			Held: func(testing.TB) []providertest.Held {
				var out []providertest.Held
				for _, in := range s.Instances() {
					if in.State == cloudsim.StatePending || in.State == cloudsim.StateRunning {
						out = append(out, providertest.Held{ProviderID: in.ID, MachineID: in.Tags[providers.TagMachine], Tags: in.Tags, UserData: in.UserData})
					}
				}
				return out
			},
			MissingID: "i-0123456789abcdef0",
			Fail: func(kind cloudsim.FaultKind) providertest.Words {
				s.Faults().Fail("RunInstances", kind, 0)
				return ec2Words[kind]
			},
			Clear: s.ClearFaults,
			Unknown: []providertest.Unknown{
				{Part: "instance type", Template: unknownType, Words: "t3.gigantic"},
				{Part: "image", Template: unknownImage, Words: "ami-00000000deadbeef0"},
			},
			AddUntagged: func(t testing.TB) {
				// Run by hand, with the SDK, carrying no tags at all.
				_, err := p.client.RunInstances(context.Background(), &ec2.RunInstancesInput{
					ImageId: sdk.String(tmpl.Image), InstanceType: "t3.micro", MinCount: sdk.Int32(1), MaxCount: sdk.Int32(1),
				})
				if err != nil {
					t.Fatal(err)
				}
			},
			Hang: func(testing.TB) (providers.Provider, providers.Template) {
				s.Faults().Fail("", cloudsim.FaultHang, 0)
				return p, tmpl
			},
		}
	}})
}

// TestCreatedMachineBoots: an instance created through the SDK boots as
// a host of its own and runs its user data.
func TestCreatedMachineBoots(t *testing.T) {
	providertest.Boot(t, "aws", func(t *testing.T, boot cloudsim.BootFunc) providertest.BootCloud {
		s := newSim(t, cloudsim.EC2Options{Boot: boot, BootDelay: 50 * time.Millisecond})
		return providertest.BootCloud{Provider: openFast(t, account(s)), Template: request("x").Template}
	})
}
