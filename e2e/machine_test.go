package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/providers"
)

// acceptingCloud passes every credential check; nothing else is called.
type acceptingCloud struct{}

func (acceptingCloud) Check(context.Context) error { return nil }
func (acceptingCloud) Create(context.Context, providers.CreateRequest) (providers.Machine, error) {
	return providers.Machine{}, errors.ErrUnsupported
}
func (acceptingCloud) Delete(context.Context, string) error { return errors.ErrUnsupported }
func (acceptingCloud) Describe(context.Context, string) (providers.Machine, error) {
	return providers.Machine{}, errors.ErrUnsupported
}
func (acceptingCloud) List(context.Context, string) ([]providers.Machine, error) {
	return nil, errors.ErrUnsupported
}
func (acceptingCloud) Shape(context.Context, providers.Template) (providers.Resources, bool, error) {
	return providers.Resources{}, false, nil
}

// TestMachineEnrolsWithItsToken records a machine of a provisioned pool
// (as the provisioning loop does, through Raft), then enrols real agents
// over QUIC with the machine's join token: an agent that says it is
// another machine is refused; the right one becomes the machine's host,
// and removing that host retires the machine.
func TestMachineEnrolsWithItsToken(t *testing.T) {
	t.Parallel() // everything of its own: see doc.go
	c, admin, _ := newCluster(t, hubtest.Options{OpenProvider: func(providers.Account) (providers.Provider, error) { return acceptingCloud{}, nil }}, "aws-bj", "")
	ctx := context.Background()
	if _, err := admin.Providers().Create(ctx, apitypes.ProviderRequest{Name: "aws1", Type: "aws", Region: "us-east-1",
		Credentials: []byte(`{"access_key_id":"AKIA1","secret_access_key":"s"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Pools().Create(ctx, apitypes.PoolRequest{Name: "auto", Provision: &apitypes.Provision{Provider: "aws1",
		Template: []byte(`{"instance_type":"t3.small","image":"ami-1"}`), MaxHosts: 2}}); err != nil {
		t.Fatal(err)
	}
	joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "aws-bj"}) // waits for the agent CA
	leader := c.WaitLeader(30 * time.Second).Hub()
	ca, err := leader.Store().Snapshot().AgentCA(nil)
	if err != nil || ca == nil {
		t.Fatalf("agent CA: %v %v", ca, err)
	}
	tok, err := pki.NewJoinToken(ca.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	msg, _ := state.Encode(state.MachineCreateType, &state.MachineCreateRequest{
		Machine: state.Machine{ID: "m1", Pool: "auto", State: state.MachineBooting, ProviderID: "i-0001"},
		Token:   state.JoinToken{ID: tok.ID, SecretHash: pki.HashSecret(tok.Secret), ExpiresAt: now.Add(time.Hour)}, Time: now})
	if _, err := leader.Cluster().Apply(ctx, msg); err != nil {
		t.Fatal(err)
	}

	// The token says m1; an agent that says m2 is refused.
	b, err := agent.New(agent.Config{Hubs: hubs(c), Token: tok.String(), DataDir: t.TempDir(), Name: "imposter", MachineID: "m2"})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = b.Run(rctx)
	cancel()
	if !errors.Is(err, agent.ErrEnrollRefused) || !strings.Contains(err.Error(), "belongs to machine m1") {
		t.Fatalf("an agent claiming another machine: %v", err)
	}

	a, _ := startAgent(t, agent.Config{Hubs: hubs(c), Token: tok.String(), DataDir: t.TempDir(), Name: "m1", MachineID: "m1"})
	hubtest.WaitFor(t, 15*time.Second, "heartbeats acknowledged", func() bool { return a.Acked() >= 1 })
	ms, _, err := admin.Machines().List(ctx, "auto", nil)
	if err != nil || len(ms) != 1 || ms[0].State != "ready" || ms[0].Host != a.HostID() {
		t.Fatalf("machines after enrolment: %+v %v (host %s)", ms, err, a.HostID())
	}
	h, _, err := admin.Hosts().Get(ctx, a.HostID(), nil)
	if err != nil || h.Machine != "m1" || h.ProviderID != "i-0001" || h.Pool != "auto" {
		t.Fatalf("the machine's host: %+v %v", h, err)
	}
	// Removing a provisioned host retires its machine; the host stays
	// until the provisioning loop has deleted the cloud machine.
	if err := admin.Hosts().Remove(ctx, a.HostID()); err != nil {
		t.Fatal(err)
	}
	ms, _, _ = admin.Machines().List(ctx, "", nil)
	if len(ms) != 1 || ms[0].State != "draining" {
		t.Fatalf("machines after removing the host: %+v", ms)
	}
	if _, _, err := admin.Hosts().Get(ctx, a.HostID(), nil); err != nil {
		t.Fatalf("the host went before its machine: %v", err)
	}
}
