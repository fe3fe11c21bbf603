package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/e2e/cloudsim/netboot"
	"github.com/wharf-platform/wharf/e2e/netlab"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
	"github.com/wharf-platform/wharf/providers/aws"
)

// provCluster is a hub cluster with an aws provider account on an EC2
// simulator.
type provCluster struct {
	t     *testing.T
	c     *hubtest.Cluster
	sim   *cloudsim.EC2
	token string
}

// newProvCluster starts the simulator and a 3-node hub cluster with opts,
// bootstraps it, makes tenant acme and the aws account "sim".
func newProvCluster(t *testing.T, simOpts cloudsim.EC2Options, opts hubtest.Options) *provCluster {
	t.Helper()
	sim, err := cloudsim.NewEC2(simOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	opts.OpenProvider = aws.Open // the real SDK, as the wharf binary links it
	p := &provCluster{t: t, sim: sim, c: hubtest.New(t, 3, opts)}
	ctx := context.Background()
	anon, _ := client.New(client.Config{Address: p.c.Nodes[0].URL()})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.token = boot.Token
	admin := p.admin()
	if _, err := admin.Tenants().Create(ctx, apitypes.TenantRequest{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	id, secret := sim.Key()
	// Credentials the cloud refuses: 422 with the cloud's own words, and
	// no account.
	_, err = admin.Providers().Create(ctx, p.account("bad", id, "not-the-secret"))
	var apiErr *apitypes.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity || !strings.Contains(apiErr.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("an account with a wrong secret: %v, want 422 with the cloud's SignatureDoesNotMatch", err)
	}
	if _, _, err := admin.Providers().Get(ctx, "bad", nil); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("the refused account: %v, want 404", err)
	}
	if _, err := admin.Providers().Create(ctx, p.account("sim", id, secret)); err != nil {
		t.Fatalf("the account with the right keys: %v", err)
	}
	got, _, err := admin.Providers().Get(ctx, "sim", nil)
	if err != nil || got.Credentials != apitypes.CredentialsSet || strings.Contains(fmt.Sprint(got), secret) {
		t.Fatalf("GET the account: %+v %v, want credentials %q and no secret", got, err, apitypes.CredentialsSet)
	}
	return p
}

func (p *provCluster) account(name, id, secret string) apitypes.ProviderRequest {
	creds, _ := json.Marshal(map[string]string{"access_key_id": id, "secret_access_key": secret})
	return apitypes.ProviderRequest{Name: name, Type: "aws", Region: p.sim.Region(), Endpoint: p.sim.URL(), Credentials: creds}
}

// admin is an admin client of a running node.
func (p *provCluster) admin() *client.Client {
	for _, n := range p.c.Nodes {
		if n.Running() {
			c, _ := client.New(client.Config{Address: n.URL(), Token: p.token})
			return c
		}
	}
	p.t.Fatal("no hub node runs")
	return nil
}

// pool is the request of a provisioned pool on account "sim".
func provPool(name, instanceType string, minHosts, maxHosts int, scaleDownAfter, bootTimeout time.Duration) apitypes.PoolRequest {
	tmpl, _ := json.Marshal(map[string]string{"instance_type": instanceType, "image": "ami-0123456789abcdef0"})
	return apitypes.PoolRequest{Name: name, Datacenter: "dc1", Drivers: []string{"exec"}, Provision: &apitypes.Provision{
		Provider: "sim", Template: tmpl, MinHosts: minHosts, MaxHosts: maxHosts,
		ScaleDownAfter: apitypes.Duration(scaleDownAfter), BootTimeout: apitypes.Duration(bootTimeout),
	}}
}

// machines lists a pool's machines ("" for all), retrying while the
// cluster has no leader (after a kill) for up to 20 s.
func (p *provCluster) machines(pool string) []apitypes.Machine {
	p.t.Helper()
	var ms []apitypes.Machine
	hubtest.WaitUntil(p.t, 20*time.Second, "GET /v1/machines", func() error {
		var err error
		ms, _, err = p.admin().Machines().List(context.Background(), pool, nil)
		return err
	})
	return ms
}

// live is the simulator's instances that are not terminated (or on
// their way), by id.
func (p *provCluster) live() map[string]cloudsim.Instance {
	out := map[string]cloudsim.Instance{}
	for _, in := range p.sim.Instances() {
		if in.State == cloudsim.StatePending || in.State == cloudsim.StateRunning {
			out[in.ID] = in
		}
	}
	return out
}

// checkCloudMatchesHub fails unless every instance the simulator ever
// launched for a machine is that machine's only one, and the live
// instances are exactly the hub's machines' (plus those of failed or
// deleting machines, which may still be on their way out).
func (p *provCluster) checkCloudMatches() error {
	perMachine := map[string][]string{}
	for _, in := range p.sim.Instances() {
		if in.State == cloudsim.StateTerminated || in.State == cloudsim.StateShuttingDown {
			continue
		}
		m := in.Tags["wharf-machine"]
		perMachine[m] = append(perMachine[m], in.ID)
	}
	for m, ids := range perMachine {
		if len(ids) > 1 {
			return fmt.Errorf("machine %s has %d live instances %v", m, len(ids), ids)
		}
	}
	ms, _, err := p.admin().Machines().List(context.Background(), "", nil)
	if err != nil {
		return err
	}
	known := map[string]apitypes.Machine{}
	for _, m := range ms {
		known[m.ProviderID] = m
	}
	for id, in := range p.live() {
		if _, ok := known[id]; !ok {
			return fmt.Errorf("instance %s (machine %s) is unknown to the hub", id, in.Tags["wharf-machine"])
		}
	}
	for _, m := range ms {
		if m.State == "ready" || m.State == "booting" {
			if _, ok := p.live()[m.ProviderID]; !ok {
				return fmt.Errorf("machine %s is %s but its instance %q does not run", m.ID, m.State, m.ProviderID)
			}
		}
	}
	return nil
}

func states(ms []apitypes.Machine) string {
	var s []string
	for _, m := range ms {
		e := ""
		if m.Error != "" {
			e = " (" + m.Error + ")"
		}
		s = append(s, m.ID+"="+m.State+e)
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// TestProvisionedPoolBootsRealMachines: a provisioned pool on the EC2
// simulator whose instances boot for real as netlab hosts: their
// cloud-init fetches install.sh and the wharf binary from a hub node over
// the lab's network, and the agents enroll with their machines' tokens.
// The pool keeps min_hosts, runs an app there, shrinks to the busy host,
// grows for demand up to max_hosts and no further, and a leader killed
// while machines are on their way (one create's answer lost) leaves no
// duplicate, leaked or stuck one.
func TestProvisionedPoolBootsRealMachines(t *testing.T) {
	netlab.Require(t)
	lab := netlab.New(t, netlab.Options{})
	dc := lab.AddDC("aws")
	// No Docker in the machines: their agents pick the exec driver.
	booter, err := netboot.New(dc, netboot.Options{Dir: t.TempDir(), Env: []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}})
	if err != nil {
		t.Fatal(err)
	}
	p := newProvCluster(t, cloudsim.EC2Options{Boot: booter.Boot, BootDelay: time.Second},
		hubtest.Options{BindIP: dc.Gateway().String(), AgentBinary: wharfBin})
	ctx := context.Background()
	acme := &client.WriteOptions{Tenant: "acme"}
	t.Cleanup(func() {
		// Stop the instances through the hub while it runs, so that
		// their supervisors end cleanly before the machines go.
		a := p.admin()
		for _, app := range []string{"web", "big"} {
			_ = a.Apps().Delete(ctx, app, acme)
		}
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			pl, _, err := a.Pools().Get(ctx, "auto", nil)
			if err != nil || pl.Usage == nil || pl.Usage.Instances == 0 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if t.Failed() {
			for _, in := range p.sim.Instances() {
				if m, ok := booter.Machine(in.ID); ok {
					agentLog, _ := os.ReadFile(m.Path("/var/log/wharf-agent.log"))
					if len(agentLog) > 3000 {
						agentLog = agentLog[len(agentLog)-3000:]
					}
					t.Logf("--- %s (%s) console:\n%s\n--- its agent's log (tail):\n%s", in.ID, in.State, m.Console(), agentLog)
				}
			}
		}
	})

	if _, err := p.admin().Pools().Create(ctx, provPool("auto", "t3.small", 3, 4, 3*time.Second, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Three machines boot, install, enroll: three ready hosts, each its
	// machine's.
	hostsOf := func() (map[string]apitypes.Host, error) {
		hs, _, err := p.admin().Hosts().List(ctx, nil)
		if err != nil {
			return nil, err
		}
		out := map[string]apitypes.Host{}
		for _, h := range hs {
			if h.Pool == "auto" {
				out[h.ID] = h
			}
		}
		return out, nil
	}
	linked := func(n int) func() error {
		return func() error {
			ms := p.machines("auto")
			hs, err := hostsOf()
			if err != nil {
				return err
			}
			if len(ms) != n || len(hs) != n {
				return fmt.Errorf("%d machines [%s], %d hosts, want %d ready", len(ms), states(ms), len(hs), n)
			}
			for _, m := range ms {
				h, ok := hs[m.Host]
				if m.State != "ready" || !ok || h.State != "ready" {
					return fmt.Errorf("machine %s is %s with host %q (%+v)", m.ID, m.State, m.Host, h)
				}
				if h.Machine != m.ID || h.ProviderID != m.ProviderID || h.Name != m.ProviderID {
					return fmt.Errorf("host %s shows machine %q %q, name %q; want %s %s", h.ID, h.Machine, h.ProviderID, h.Name, m.ID, m.ProviderID)
				}
				if lab.Host(m.ProviderID) == nil {
					return fmt.Errorf("machine %s's instance %s has no lab host", m.ID, m.ProviderID)
				}
			}
			return p.checkCloudMatches()
		}
	}
	start := time.Now()
	hubtest.WaitUntil(t, 90*time.Second, "3 machines booted for real and enrolled", linked(3))
	t.Logf("3 machines ready and enrolled after %s", time.Since(start).Round(time.Millisecond))

	// The demo app, run by the exec driver from the binary the install put
	// on each machine, on all three.
	three := 3
	web := apitypes.AppSpec{Name: "web", Command: []string{"/usr/local/bin/wharf", "demo"}, Instances: &three, Pools: []string{"auto"},
		Ports: []apitypes.Port{{Name: "http", ContainerPort: 8080}}}
	if _, err := p.admin().Apps().Create(ctx, web, acme); err != nil {
		t.Fatal(err)
	}
	running := func(app string, n int) func() error {
		return func() error {
			ins, _, err := p.admin().Apps().Instances(ctx, app, &client.QueryOptions{Tenant: "acme"})
			if err != nil {
				return err
			}
			hosts := map[string]bool{}
			for _, in := range ins {
				if in.State == "running" && in.Ready {
					hosts[in.Host] = true
				}
			}
			if len(hosts) != n {
				return fmt.Errorf("ready on %d hosts, want %d: %+v", len(hosts), n, ins)
			}
			return nil
		}
	}
	hubtest.WaitUntil(t, 60*time.Second, "3 ready instances of the demo app on the 3 hosts", running("web", 3))

	// Shrink: min_hosts 1, the app on one host. The two idle machines are
	// drained and deleted, their instances terminated and hosts gone.
	if _, err := p.admin().Apps().Scale(ctx, "web", 1, acme); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitUntil(t, 30*time.Second, "the app down to one instance", running("web", 1))
	terminated := func() map[string]bool {
		out := map[string]bool{}
		for _, in := range p.sim.Instances() {
			if in.State == cloudsim.StateTerminated || in.State == cloudsim.StateShuttingDown {
				out[in.ID] = true
			}
		}
		return out
	}
	gone := terminated() // machines replaced before, if any
	before := p.machines("auto")
	if _, err := p.admin().Pools().Update(ctx, provPool("auto", "t3.small", 1, 4, 3*time.Second, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitUntil(t, 60*time.Second, "the two idle machines deleted, the busy one kept", func() error {
		ms := p.machines("auto")
		if len(ms) != 1 || ms[0].State != "ready" {
			return fmt.Errorf("machines [%s], want one ready", states(ms))
		}
		kept := ms[0]
		ins, _, err := p.admin().Apps().Instances(ctx, "web", &client.QueryOptions{Tenant: "acme"})
		if err != nil {
			return err
		}
		if len(ins) != 1 || ins[0].Host != kept.Host || ins[0].State != "running" {
			return fmt.Errorf("the app's instances %+v, want one running on the kept machine's host %s", ins, kept.Host)
		}
		want := map[string]bool{}
		for _, m := range before {
			if m.ID != kept.ID {
				want[m.ProviderID] = true
			}
		}
		now := map[string]bool{}
		for id := range terminated() {
			if !gone[id] {
				now[id] = true
			}
		}
		if len(want) != 2 || !maps.Equal(now, want) {
			return fmt.Errorf("terminated %v, want exactly the idle machines' %v", now, want)
		}
		for id := range want {
			if lab.Host(id) != nil {
				return fmt.Errorf("the lab host of terminated %s stays", id)
			}
		}
		if lab.Host(kept.ProviderID) == nil {
			return fmt.Errorf("the busy machine's lab host %s is gone", kept.ProviderID)
		}
		return nil
	})

	// Demand beyond max_hosts: six instances that each need most of a
	// 2-core machine. The pool grows to 4 machines; the leader is killed
	// while they are on their way.
	// The first create's answer is lost (the instance exists, the hub
	// does not know its id): the retry, by this leader or the next, must
	// find it by its client token rather than launch a second one.
	p.sim.LoseAnswers("RunInstances", 1)
	six := 6
	big := apitypes.AppSpec{Name: "big", Command: []string{"/usr/local/bin/wharf", "demo"}, Instances: &six, Pools: []string{"auto"},
		CPU: 1500, Ports: []apitypes.Port{{Name: "http", ContainerPort: 8080}}}
	if _, err := p.admin().Apps().Create(ctx, big, acme); err != nil {
		t.Fatal(err)
	}
	var growing []apitypes.Machine
	hubtest.WaitUntil(t, 30*time.Second, "the pool growing", func() error {
		growing = p.machines("auto")
		if !slices.ContainsFunc(growing, func(m apitypes.Machine) bool { return m.State == "creating" || m.State == "booting" }) {
			return fmt.Errorf("machines [%s]", states(growing))
		}
		return nil
	})
	leader := p.c.Leader()
	if leader == nil {
		t.Fatal("no leader")
	}
	t.Logf("killing leader hub%d with machines [%s]", leader.Index, states(growing))
	p.c.Kill(leader.Index)
	p.c.WaitLeader(30 * time.Second)
	hubtest.WaitUntil(t, 120*time.Second, "4 machines, all ready and enrolled, after the leader's death", linked(4))
	// No further: the demand is still there, the pool stays at max_hosts.
	for hold := time.Now().Add(5 * time.Second); time.Now().Before(hold); time.Sleep(200 * time.Millisecond) {
		if ms, live := p.machines("auto"), p.live(); len(ms) > 4 || len(live) > 4 {
			t.Fatalf("the pool grew past max_hosts: machines [%s], %d live instances", states(ms), len(live))
		}
	}
	hubtest.WaitUntil(t, 30*time.Second, "4 ready machines after holding at max_hosts", linked(4))
	perMachine := map[string]int{}
	for _, in := range p.sim.Instances() {
		perMachine[in.Tags["wharf-machine"]]++
	}
	for m, n := range perMachine {
		if n > 1 {
			t.Fatalf("machine %s was launched %d times", m, n)
		}
	}
	hubtest.WaitUntil(t, 60*time.Second, "big on every host it fits", running("big", 4))
}

// TestProvisionFaults: what the cloud refuses fails machines with its
// words (no hot loop of retries), throttling only slows a pool down, and
// a machine that never enrolls is replaced after boot_timeout. The
// instances boot to nothing: no agent ever enrolls.
func TestProvisionFaults(t *testing.T) {
	p := newProvCluster(t, cloudsim.EC2Options{}, hubtest.Options{})
	ctx := context.Background()
	admin := p.admin()

	// An instance type the cloud does not have.
	if _, err := admin.Pools().Create(ctx, provPool("badtype", "t9.huge", 1, 2, time.Minute, time.Minute)); err != nil {
		t.Fatal(err)
	}
	failedWith := func(pool, words string) func() error {
		return func() error {
			ms := p.machines(pool)
			for _, m := range ms {
				if m.State == "failed" && strings.Contains(m.Error, words) {
					return nil
				}
			}
			return fmt.Errorf("machines [%s]", states(ms))
		}
	}
	hubtest.WaitUntil(t, 30*time.Second, "a machine failed with the cloud's words on the instance type", failedWith("badtype", "t9.huge"))
	quiet := func(what string) {
		t.Helper()
		before := p.sim.Calls()["RunInstances"]
		time.Sleep(4 * time.Second)
		if n := p.sim.Calls()["RunInstances"] - before; n > 1 {
			t.Fatalf("%s: %d RunInstances calls in 4s, want at most 1", what, n)
		}
	}
	quiet("an unknown instance type")
	hubtest.WaitUntil(t, 10*time.Second, "an event naming the failure", func() error {
		evs, _, err := admin.Events(ctx, 0, nil)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if strings.Contains(e.Message, "t9.huge") {
				return nil
			}
		}
		return fmt.Errorf("%d events, none about t9.huge", len(evs))
	})
	if err := admin.Pools().Delete(ctx, "badtype"); err != nil {
		// A pool keeps its provision while it has machines: shrink it to
		// none and wait for the failed machine to go.
		if _, err := admin.Pools().Update(ctx, provPool("badtype", "t3.micro", 0, 1, time.Minute, time.Minute)); err != nil {
			t.Fatal(err)
		}
	}

	// Quota: one instance allowed, a pool of two.
	p.sim.SetMaxInstances(1)
	if _, err := admin.Pools().Create(ctx, provPool("quota", "t3.micro", 2, 2, time.Minute, time.Minute)); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitUntil(t, 30*time.Second, "a machine failed with the cloud's quota message", failedWith("quota", "InstanceLimitExceeded"))
	quiet("quota exceeded")
	p.sim.SetMaxInstances(0)
	if _, err := admin.Pools().Update(ctx, provPool("quota", "t3.micro", 0, 2, time.Minute, time.Minute)); err != nil {
		t.Fatal(err)
	}

	// Throttling: the pool still reaches min_hosts.
	p.sim.Throttle("RunInstances", 6)
	if _, err := admin.Pools().Create(ctx, provPool("throttled", "t3.micro", 2, 2, time.Minute, 4*time.Second)); err != nil {
		t.Fatal(err)
	}
	var first []apitypes.Machine
	hubtest.WaitUntil(t, 60*time.Second, "the throttled pool at min_hosts", func() error {
		first = p.machines("throttled")
		live := p.live()
		n := 0
		for _, m := range first {
			if _, ok := live[m.ProviderID]; ok && m.State == "booting" {
				n++
			}
		}
		if n != 2 {
			return fmt.Errorf("machines [%s]", states(first))
		}
		return nil
	})

	// Nothing enrolls: after boot_timeout each machine is deleted (its
	// instance terminated) and replaced by a new one.
	hubtest.WaitUntil(t, 60*time.Second, "the machines that never enrolled replaced", func() error {
		ms := p.machines("throttled")
		for _, old := range first {
			if in, ok := p.sim.Instance(old.ProviderID); ok && in.State != cloudsim.StateTerminated {
				return fmt.Errorf("instance %s of machine %s is %s", old.ProviderID, old.ID, in.State)
			}
			if slices.ContainsFunc(ms, func(m apitypes.Machine) bool { return m.ID == old.ID }) {
				return fmt.Errorf("machine %s stays: [%s]", old.ID, states(ms))
			}
		}
		if len(ms) != 2 {
			return fmt.Errorf("machines [%s], want 2 replacements", states(ms))
		}
		return nil
	})
	if _, err := admin.Pools().Update(ctx, provPool("throttled", "t3.micro", 0, 2, time.Minute, 4*time.Second)); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitUntil(t, 60*time.Second, "no instance the hub does not know", p.checkCloudMatches)
}
