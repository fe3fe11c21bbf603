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

	"github.com/wharf-platform/wharf/e2e/cloudsim/netboot"
	"github.com/wharf-platform/wharf/e2e/netlab"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
	"github.com/wharf-platform/wharf/providers"
)

// provCluster is a hub cluster with a provider account "sim" on a cloud
// simulator.
type provCluster struct {
	t     *testing.T
	c     *hubtest.Cluster
	sim   *provSim
	token string
}

// newProvCluster starts a 3-node hub cluster with opts beside sim,
// bootstraps it, makes tenant acme and the account "sim".
func newProvCluster(t *testing.T, sim *provSim, opts hubtest.Options) *provCluster {
	t.Helper()
	// Raft's production timeouts: these tests run beside others (see
	// doc.go), and with the fast test ones a load spike costs an election
	// that fails a single API write ("leadership lost while committing").
	opts.ProductionRaft = true
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
	// Credentials the cloud refuses: 422 with the cloud's own words, and
	// no account.
	_, err = admin.Providers().Create(ctx, sim.account("bad", false))
	var apiErr *apitypes.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity || !strings.Contains(apiErr.Error(), sim.wrongSecret) {
		t.Fatalf("an account with a wrong secret: %v, want 422 with the cloud's %s", err, sim.wrongSecret)
	}
	if _, _, err := admin.Providers().Get(ctx, "bad", nil); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("the refused account: %v, want 404", err)
	}
	good := sim.account("sim", true)
	if _, err := admin.Providers().Create(ctx, good); err != nil {
		t.Fatalf("the account with the right credentials: %v", err)
	}
	got, _, err := admin.Providers().Get(ctx, "sim", nil)
	if err != nil || got.Credentials != apitypes.CredentialsSet || strings.Contains(fmt.Sprint(got), secretOf(good)) {
		t.Fatalf("GET the account: %+v %v, want credentials %q and no secret", got, err, apitypes.CredentialsSet)
	}
	return p
}

// secretOf is the secret in an account request's credentials.
func secretOf(r apitypes.ProviderRequest) string {
	var c map[string]string
	_ = json.Unmarshal(r.Credentials, &c)
	for _, k := range []string{"secret_access_key", "access_key_secret", "password"} {
		if c[k] != "" {
			return c[k]
		}
	}
	return "\x00no secret"
}

// admin is an admin client of a running node.
// write makes one API write, sent again while the cluster answers 503:
// these tests run beside others (see doc.go), and a load spike can cost
// an election that cuts off a write ("leadership lost while committing").
// Such a write may or may not have been committed, so the client does not
// send it again by itself; every write here is the same write when sent
// twice (a PUT, a scale, a pool's update), except a create, whose second
// send finds the first one's object (409) when it had been committed.
func (p *provCluster) write(what string, fn func(*client.Client) error) {
	p.t.Helper()
	sent := false
	hubtest.WaitUntil(p.t, 60*time.Second, what, func() error {
		err := fn(p.admin())
		var ae *apitypes.Error
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable:
			sent = true
			return err
		case sent && errors.As(err, &ae) && ae.Status == http.StatusConflict && strings.Contains(ae.Message, "already exists"):
			return nil
		case err != nil:
			p.t.Fatalf("%s: %v", what, err)
		}
		return nil
	})
}

// putApp creates app spec in tenant acme (a PUT: the same write when sent
// again).
func (p *provCluster) putApp(ctx context.Context, spec apitypes.AppSpec) {
	p.t.Helper()
	p.write("app "+spec.Name+" written", func(c *client.Client) error {
		_, _, _, err := c.Apps().Put(ctx, spec, &client.WriteOptions{Tenant: "acme"})
		return err
	})
}

// createPool creates pool req.
func (p *provCluster) createPool(ctx context.Context, req apitypes.PoolRequest) {
	p.t.Helper()
	p.write("pool "+req.Name+" created", func(c *client.Client) error {
		_, err := c.Pools().Create(ctx, req)
		return err
	})
}

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

// pool is the request of a pool provisioned on account "sim" from the
// cloud's template (or its unknown machine kind, bad).
func (p *provCluster) pool(name string, bad bool, minHosts, maxHosts int, scaleDownAfter, bootTimeout time.Duration) apitypes.PoolRequest {
	return apitypes.PoolRequest{Name: name, Datacenter: "dc1", Drivers: []string{"exec"}, Provision: &apitypes.Provision{
		Provider: "sim", Template: p.sim.template(bad), MinHosts: minHosts, MaxHosts: maxHosts,
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

// checkCloudMatches fails unless no machine has more than one live
// instance in the cloud, and the live instances are exactly the hub's
// machines' (the live ones of failed or deleting machines may still be on
// their way out).
func (p *provCluster) checkCloudMatches() error {
	perMachine := map[string][]string{}
	live := p.sim.live()
	for _, in := range live {
		m := in.Tags[providers.TagMachine]
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
	for id, in := range live {
		if _, ok := known[id]; !ok {
			return fmt.Errorf("instance %s (machine %s) is unknown to the hub", id, in.Tags[providers.TagMachine])
		}
	}
	for _, m := range ms {
		if m.State == "ready" || m.State == "booting" {
			if _, ok := live[m.ProviderID]; !ok {
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

// TestProvisionedPoolBootsRealMachines, for each cloud: a provisioned pool
// on the cloud's simulator whose machines boot for real as netlab hosts:
// their cloud-init fetches install.sh and the wharf binary from a hub node
// over the lab's network, and the agents enroll with their machines'
// tokens. The pool keeps min_hosts, runs an app there, shrinks to the busy
// host by deleting exactly the idle machines, grows for demand up to
// max_hosts and no further, and a leader killed while machines are on
// their way (one create's answer lost) leaves no duplicate, leaked or
// stuck one. The clouds run side by side, each in a lab and hub cluster of
// its own.
func TestProvisionedPoolBootsRealMachines(t *testing.T) {
	t.Parallel() // everything of its own: see doc.go
	netlab.Require(t)
	for _, cloud := range provClouds {
		t.Run(cloud.name, func(t *testing.T) {
			t.Parallel()
			poolLifecycle(t, cloud.name, cloud.start)
		})
	}
}

// bootLab is a netlab datacenter whose hosts boot a simulator's machines;
// the machines have no Docker, so their agents pick the exec driver.
func bootLab(t *testing.T, lab *netlab.Lab, dcName string) (*netlab.DC, *netboot.Booter) {
	t.Helper()
	dc := lab.AddDC(dcName)
	booter, err := netboot.New(dc, netboot.Options{Dir: t.TempDir(), Env: []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}})
	if err != nil {
		t.Fatal(err)
	}
	return dc, booter
}

// logMachines logs, when the test failed, each booted machine's console
// and the tail of its agent's log.
func logMachines(t *testing.T, sim *provSim, booter *netboot.Booter) {
	if !t.Failed() {
		return
	}
	for _, sm := range sim.list() {
		if m, ok := booter.Machine(sm.ID); ok {
			agentLog, _ := os.ReadFile(m.Path("/var/log/wharf-agent.log"))
			if len(agentLog) > 3000 {
				agentLog = agentLog[len(agentLog)-3000:]
			}
			t.Logf("--- %s (%s) console:\n%s\n--- its agent's log (tail):\n%s", sm.ID, sm.State, m.Console(), agentLog)
		}
	}
}

func poolLifecycle(t *testing.T, cloud string, start func(testing.TB, simOptions) *provSim) {
	lab := netlab.New(t, netlab.Options{})
	dc, booter := bootLab(t, lab, cloud)
	sim := start(t, simOptions{Boot: booter.Boot, BootDelay: time.Second})
	p := newProvCluster(t, sim, hubtest.Options{BindIP: dc.Gateway().String(), AgentBinary: wharfBin})
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
		logMachines(t, sim, booter)
	})

	p.createPool(ctx, p.pool("auto", false, 3, 4, 3*time.Second, 2*time.Minute))
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
			live := sim.live()
			for _, m := range ms {
				h, ok := hs[m.Host]
				if m.State != "ready" || !ok || h.State != "ready" {
					return fmt.Errorf("machine %s is %s with host %q (%+v)", m.ID, m.State, m.Host, h)
				}
				name := netboot.HostName(m.ProviderID)
				if h.Machine != m.ID || h.ProviderID != m.ProviderID || h.Name != name || m.Provider != "sim" {
					return fmt.Errorf("host %s shows machine %q %q, name %q; want %s %s %s", h.ID, h.Machine, h.ProviderID, h.Name, m.ID, m.ProviderID, name)
				}
				if lab.Host(name) == nil {
					return fmt.Errorf("machine %s's instance %s has no lab host", m.ID, m.ProviderID)
				}
				sm, ok := live[m.ProviderID]
				if !ok {
					return fmt.Errorf("machine %s's instance %s is not live in the cloud", m.ID, m.ProviderID)
				}
				if err := checkSimMachine(m, sm); err != nil {
					return err
				}
				if err := sim.inspect(m, sm); err != nil {
					return err
				}
			}
			return p.checkCloudMatches()
		}
	}
	begin := time.Now()
	hubtest.WaitUntil(t, 90*time.Second, "3 machines booted for real and enrolled", linked(3))
	t.Logf("%s: 3 machines ready and enrolled after %s", cloud, time.Since(begin).Round(time.Millisecond))

	// The demo app, run by the exec driver from the binary the install put
	// on each machine, on all three.
	three := 3
	web := apitypes.AppSpec{Name: "web", Command: []string{"/usr/local/bin/wharf", "demo"}, Instances: &three, Pools: []string{"auto"},
		Ports: []apitypes.Port{{Name: "http", ContainerPort: 8080}}}
	p.putApp(ctx, web)
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
	// drained and deleted, their instances gone from the cloud and their
	// hosts from the lab; nothing else is deleted.
	p.write("web scaled to 1", func(c *client.Client) error {
		_, err := c.Apps().Scale(ctx, "web", 1, acme)
		return err
	})
	hubtest.WaitUntil(t, 30*time.Second, "the app down to one instance", running("web", 1))
	before := p.machines("auto")
	liveBefore := sim.live()
	// The same update sent again changes nothing: sent until it is
	// answered, as a leader lost mid-commit answers 503.
	hubtest.WaitUntil(t, 30*time.Second, "the pool updated", func() error {
		_, err := p.admin().Pools().Update(ctx, p.pool("auto", false, 1, 4, 3*time.Second, 2*time.Minute))
		return err
	})
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
		live := sim.live()
		gone := map[string]bool{}
		for id := range liveBefore {
			if _, ok := live[id]; !ok {
				gone[id] = true
			}
		}
		if len(want) != 2 || !maps.Equal(gone, want) {
			return fmt.Errorf("deleted %v, want exactly the idle machines' %v", gone, want)
		}
		for id := range want {
			if lab.Host(netboot.HostName(id)) != nil {
				return fmt.Errorf("the lab host of deleted %s stays", id)
			}
		}
		if _, ok := live[kept.ProviderID]; !ok || lab.Host(netboot.HostName(kept.ProviderID)) == nil {
			return fmt.Errorf("the busy machine %s or its lab host is gone", kept.ProviderID)
		}
		return nil
	})

	// Demand beyond max_hosts: six instances that each need most of a
	// 2-CPU machine. The pool grows to 4 machines; the leader is killed
	// while they are on their way.
	// The first create's answer is lost (the machine exists, the hub does
	// not know its id): the retry, by this leader or the next, must find
	// it (by its client token, or by its name or tag) rather than create a
	// second one.
	sim.loseCreates(1)
	six := 6
	big := apitypes.AppSpec{Name: "big", Command: []string{"/usr/local/bin/wharf", "demo"}, Instances: &six, Pools: []string{"auto"},
		CPU: 1500, Ports: []apitypes.Port{{Name: "http", ContainerPort: 8080}}}
	p.putApp(ctx, big)
	var growing []apitypes.Machine
	hubtest.WaitUntil(t, 30*time.Second, "the pool growing", func() error {
		growing = p.machines("auto")
		if !slices.ContainsFunc(growing, func(m apitypes.Machine) bool { return m.State == "creating" || m.State == "booting" }) {
			return fmt.Errorf("machines [%s]", states(growing))
		}
		return nil
	})
	leader := p.c.WaitLeader(30 * time.Second) // a loaded machine may be between leaders
	t.Logf("%s: killing leader hub%d with machines [%s]", cloud, leader.Index, states(growing))
	p.c.Kill(leader.Index)
	p.c.WaitLeader(30 * time.Second)
	hubtest.WaitUntil(t, 120*time.Second, "4 machines, all ready and enrolled, after the leader's death", linked(4))
	// No further: the demand is still there, the pool stays at max_hosts.
	for hold := time.Now().Add(5 * time.Second); time.Now().Before(hold); time.Sleep(200 * time.Millisecond) {
		if ms, live := p.machines("auto"), sim.live(); len(ms) > 4 || len(live) > 4 {
			t.Fatalf("the pool grew past max_hosts: machines [%s], %d live instances", states(ms), len(live))
		}
	}
	hubtest.WaitUntil(t, 30*time.Second, "4 ready machines after holding at max_hosts", linked(4))
	if d := sim.duplicates(); len(d) > 0 {
		t.Fatalf("machines launched more than once: %v", d)
	}
	hubtest.WaitUntil(t, 60*time.Second, "big on every host it fits", running("big", 4))
}

// TestProvisionFaults, for each cloud: what the cloud refuses (an unknown
// machine kind, a quota, a key that may no longer create machines) fails a
// machine with the cloud's words, shown on the machine, counted on the
// pool and told in an event, with no hot loop of retries; throttling only
// slows a pool down; and a machine that never enrolls is replaced after
// boot_timeout. The machines boot to nothing: no agent ever enrolls.
func TestProvisionFaults(t *testing.T) {
	t.Parallel() // everything of its own: see doc.go
	for _, cloud := range provClouds {
		t.Run(cloud.name, func(t *testing.T) {
			t.Parallel()
			provisionFaults(t, cloud.start(t, simOptions{BootDelay: time.Second}))
		})
	}
}

func provisionFaults(t *testing.T, sim *provSim) {
	p := newProvCluster(t, sim, hubtest.Options{})
	ctx := context.Background()

	failedWith := func(pool, words string) func() error {
		return func() error {
			ms := p.machines(pool)
			found := false
			for _, m := range ms {
				found = found || m.State == "failed" && strings.Contains(m.Error, words)
			}
			if !found {
				return fmt.Errorf("machines [%s]", states(ms))
			}
			pl, _, err := p.admin().Pools().Get(ctx, pool, nil)
			if err != nil {
				return err
			}
			if pl.MachinesByState["failed"] < 1 {
				return fmt.Errorf("pool %s shows machines by state %v, want a failed one", pool, pl.MachinesByState)
			}
			return nil
		}
	}
	quiet := func(what string) {
		t.Helper()
		before := sim.creates()
		time.Sleep(4 * time.Second)
		if n := sim.creates() - before; n > 1 {
			t.Fatalf("%s: %d create calls in 4s, want at most 1", what, n)
		}
	}
	told := func(words string) {
		t.Helper()
		hubtest.WaitUntil(t, 10*time.Second, "an event saying "+words, func() error {
			evs, _, err := p.admin().Events(ctx, 0, nil)
			if err != nil {
				return err
			}
			for _, e := range evs {
				if strings.Contains(e.Message, words) {
					return nil
				}
			}
			return fmt.Errorf("%d events, none says %q", len(evs), words)
		})
	}
	// A pool keeps its provision while it has machines: shrinking it to
	// none lets its failed machine go.
	shrink := func(pool string, bootTimeout time.Duration) {
		t.Helper()
		p.write("pool "+pool+" shrunk", func(c *client.Client) error {
			_, err := c.Pools().Update(ctx, p.pool(pool, false, 0, 2, time.Minute, bootTimeout))
			return err
		})
	}

	// A machine kind the cloud does not have.
	p.createPool(ctx, p.pool("badpart", true, 1, 2, time.Minute, time.Minute))
	hubtest.WaitUntil(t, 30*time.Second, "a machine failed with the cloud's words on "+sim.badPart, failedWith("badpart", sim.badPart))
	quiet("an unknown " + sim.badPart)
	told(sim.badPart)
	shrink("badpart", time.Minute)

	// Quota: at most one live machine, a pool of two.
	sim.quota(true)
	p.createPool(ctx, p.pool("quota", false, 2, 2, time.Minute, time.Minute))
	hubtest.WaitUntil(t, 30*time.Second, "a machine failed with the cloud's quota message", failedWith("quota", sim.quotaWords))
	quiet("quota exceeded")
	told(sim.quotaWords)
	sim.quota(false)
	shrink("quota", time.Minute)

	// Throttling: the pool still reaches min_hosts.
	sim.throttle(6)
	p.createPool(ctx, p.pool("throttled", false, 2, 2, time.Minute, 4*time.Second))
	var first []apitypes.Machine
	hubtest.WaitUntil(t, 60*time.Second, "the throttled pool at min_hosts", func() error {
		first = p.machines("throttled")
		live := sim.live()
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

	// Nothing enrolls: after boot_timeout each machine is deleted (gone
	// from the cloud) and replaced by a new one, with an event that says
	// why.
	hubtest.WaitUntil(t, 60*time.Second, "the machines that never enrolled replaced", func() error {
		ms := p.machines("throttled")
		live := sim.live()
		for _, old := range first {
			if _, ok := live[old.ProviderID]; ok {
				return fmt.Errorf("instance %s of machine %s is still live", old.ProviderID, old.ID)
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
	told("is replaced: its agent did not enroll within 4s")
	shrink("throttled", 4*time.Second)

	// Credentials the cloud stops honouring for creates. Last: a refusal
	// of the credentials pauses the whole account.
	sim.revoke()
	p.createPool(ctx, p.pool("revoked", false, 1, 2, time.Minute, time.Minute))
	hubtest.WaitUntil(t, 30*time.Second, "a machine failed with the cloud's refusal of the key", failedWith("revoked", sim.revokedWords))
	quiet("a refused key")
	told(sim.revokedWords)
	sim.clearFaults()
	shrink("revoked", time.Minute)
	hubtest.WaitUntil(t, 60*time.Second, "no instance the hub does not know", p.checkCloudMatches)
	if d := sim.duplicates(); len(d) > 0 {
		t.Fatalf("machines launched more than once: %v", d)
	}
}
