package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/providers"
	"github.com/wharf-platform/wharf/providers/aws"
)

// TestProvisionSweepsLeakedMachines: a cloud machine tagged with this
// cluster that the hub does not know (a leak: created by hand, or by a
// create whose machine the state lost) is deleted once it has been seen
// unknown for the orphan grace, with an event that names it; a machine of
// another cluster in the same account, and the pool's own machine, are
// left alone.
func TestProvisionSweepsLeakedMachines(t *testing.T) {
	t.Parallel() // everything of its own: see doc.go
	sim, ec2 := startEC2Sim(t, simOptions{})
	p := newProvCluster(t, sim, hubtest.Options{OrphanGrace: 3 * time.Second, ProvisionListEvery: time.Second})
	ctx := context.Background()
	admin := p.admin()
	if _, err := admin.Pools().Create(ctx, p.pool("sweep", false, 1, 1, time.Hour, time.Hour)); err != nil {
		t.Fatal(err)
	}
	var own cloudsim.Instance
	hubtest.WaitUntil(t, 30*time.Second, "the pool's machine created in the cloud", func() error {
		for _, m := range p.machines("sweep") {
			if in, ok := ec2.Instance(m.ProviderID); ok {
				own = in
				return nil
			}
		}
		return fmt.Errorf("machines [%s]", states(p.machines("sweep")))
	})
	cluster := own.Tags[providers.TagCluster]
	if !strings.HasPrefix(cluster, "wharf-") {
		t.Fatalf("the pool's machine carries cluster tag %q", cluster)
	}

	// Two machines made outside the hub through the cloud's real API.
	id, secret := ec2.Key()
	creds, _ := json.Marshal(map[string]string{"access_key_id": id, "secret_access_key": secret})
	c, err := providers.DecodeCredentials("aws", creds)
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := aws.Open(providers.Account{Name: "by-hand", Type: "aws", Region: ec2.Region(), Endpoint: ec2.URL(), Credentials: c})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := providers.DecodeTemplate("aws", json.RawMessage(`{"instance_type":"t3.micro","image":"ami-0123456789abcdef0"}`))
	if err != nil {
		t.Fatal(err)
	}
	create := func(machine, cluster string) string {
		t.Helper()
		m, err := cloud.Create(ctx, providers.CreateRequest{MachineID: machine, Cluster: cluster, Pool: "sweep", Template: tmpl,
			Tags: map[string]string{providers.TagCluster: cluster, providers.TagPool: "sweep", providers.TagMachine: machine}})
		if err != nil {
			t.Fatal(err)
		}
		return m.ProviderID
	}
	leaked := create("m-leaked", cluster)
	foreign := create("m-foreign", "wharf-0000000000000000")

	hubtest.WaitUntil(t, 60*time.Second, "the leaked machine terminated", func() error {
		if in, _ := ec2.Instance(leaked); in.State != cloudsim.StateShuttingDown && in.State != cloudsim.StateTerminated {
			return fmt.Errorf("the leaked instance %s is %s", leaked, in.State)
		}
		return nil
	})
	hubtest.WaitUntil(t, 10*time.Second, "an event naming the leaked machine", func() error {
		evs, _, err := admin.Events(ctx, 0, nil)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if strings.Contains(e.Message, leaked) {
				return nil
			}
		}
		return fmt.Errorf("%d events, none names %s", len(evs), leaked)
	})
	// Several more listings and grace periods: the others stay.
	time.Sleep(5 * time.Second)
	for _, id := range []string{foreign, own.ID} {
		if in, _ := ec2.Instance(id); in.State != cloudsim.StatePending && in.State != cloudsim.StateRunning {
			t.Errorf("instance %s (machine %s) is %s: only the leak may go", id, in.Tags[providers.TagMachine], in.State)
		}
	}
	if n := ec2.Calls()["TerminateInstances"]; n != 1 {
		t.Errorf("%d TerminateInstances calls, want 1 (the leak's)", n)
	}
}
