package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/e2e/cloudsim/netboot"
	"github.com/wharf-platform/wharf/e2e/netlab"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
	"github.com/wharf-platform/wharf/providers"
)

// BenchmarkProvisionPool100 scales a provisioned pool from 0 to 100
// machines in each cloud's simulator (a sub-benchmark per cloud: aws,
// aliyun, vsphere, openstack), through the real SDK and a real 3-node hub,
// with two leader kills on the way. A sample of the machines (10;
// WHARF_BENCH_REAL_BOOTS) boots for real as netlab hosts: cloud-init's
// runcmd fetches install.sh and the wharf binary from a hub node and
// starts an agent there. The others "boot" after the same fixed delay
// into an agent of this process (real QUIC, real enrolment with the join
// token and machine id their user data carries, a fake driver). It reports
// the time from the first pending instance to 100 ready hosts minus the
// boot delay, cloud API calls per machine, and duplicates and leaks (both
// must be 0). Without netlab (not root) every machine boots in-process.
//
//	go test -run '^$' -bench 'ProvisionPool100/aws' -benchtime 1x ./e2e
func BenchmarkProvisionPool100(b *testing.B) {
	for _, cloud := range provClouds {
		b.Run(cloud.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				provisionPool100(b, cloud.name, cloud.start)
			}
		})
	}
}

// userDataArgs finds an install option's values in a machine's user data.
func userDataArgs(userData []byte, flag string) []string {
	var doc struct {
		RunCmd [][]string `json:"runcmd"`
	}
	if err := yaml.Unmarshal(userData, &doc); err != nil || len(doc.RunCmd) == 0 || len(doc.RunCmd[0]) == 0 {
		return nil
	}
	cmd := doc.RunCmd[0][len(doc.RunCmd[0])-1]
	var out []string
	for _, m := range regexp.MustCompile(`--`+flag+` '?([^' ]+)'?`).FindAllStringSubmatch(cmd, -1) {
		out = append(out, m[1])
	}
	return out
}

func provisionPool100(b *testing.B, cloud string, startSim func(testing.TB, simOptions) *provSim) {
	machines := 100
	if n, err := strconv.Atoi(os.Getenv("WHARF_BENCH_MACHINES")); err == nil && n > 0 {
		machines = n // a smaller run while looking into one
	}
	realBoots := 10
	if n, err := strconv.Atoi(os.Getenv("WHARF_BENCH_REAL_BOOTS")); err == nil && n >= 0 {
		realBoots = n
	}
	const bootDelay = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	hubOpts := hubtest.Options{ProductionRaft: true}
	var booter *netboot.Booter
	if err := netlab.Available(); err != nil {
		b.Logf("every machine boots in-process: %v", err)
		realBoots = 0
	} else if realBoots > 0 {
		lab := netlab.New(b, netlab.Options{})
		dc := lab.AddDC(cloud)
		// No Docker in the machines: their agents pick the exec driver.
		booter, err = netboot.New(dc, netboot.Options{Dir: b.TempDir(), Env: []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}})
		if err != nil {
			b.Fatal(err)
		}
		hubOpts.BindIP, hubOpts.AgentBinary = dc.Gateway().String(), wharfBin
	}
	c := hubtest.New(b, 3, hubOpts)
	anon, _ := client.New(client.Config{Address: c.Nodes[0].URL()})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		b.Fatal(err)
	}
	admins := make([]*client.Client, len(c.Nodes))
	for i, n := range c.Nodes {
		admins[i], _ = client.New(client.Config{Address: n.URL(), Token: boot.Token})
	}
	admin := func() *client.Client { // one of a running node
		for i, n := range c.Nodes {
			if n.Running() {
				return admins[i]
			}
		}
		b.Fatal("no hub node runs")
		return nil
	}

	// Every booted machine is an agent of this process, run until the
	// simulator terminates the instance.
	var (
		mu         sync.Mutex
		booted     int
		bootedReal int
		failed     []string
		realStart  = map[string]time.Time{} // real boots by instance id
	)
	var wg sync.WaitGroup
	sim := startSim(b, simOptions{BootDelay: bootDelay, Boot: func(bctx context.Context, inst cloudsim.Instance) error {
		mu.Lock()
		real := bootedReal < realBoots
		if real {
			bootedReal++
			booted++
			realStart[inst.ID] = time.Now()
		}
		mu.Unlock()
		if real {
			err := booter.Boot(bctx, inst)
			if err != nil && bctx.Err() == nil {
				mu.Lock()
				failed = append(failed, inst.ID+" (netlab): "+err.Error())
				mu.Unlock()
			}
			return err
		}
		tok, mid, gws := userDataArgs(inst.UserData, "token"), userDataArgs(inst.UserData, "machine-id"), userDataArgs(inst.UserData, "hub")
		if len(tok) != 1 || len(mid) != 1 {
			return fmt.Errorf("user data without one token and one machine id: %q", inst.UserData)
		}
		a, err := agent.New(agent.Config{Hubs: gws, Token: tok[0], MachineID: mid[0], DataDir: b.TempDir(), Name: inst.ID,
			Drivers: []string{"docker"}, DrainDelay: -1, GossipAddr: "", LocalAddr: "",
			NewDriver: fakeDriver(fake.NewHost())})
		mu.Lock()
		booted++
		if err != nil {
			failed = append(failed, inst.ID+": "+err.Error())
		}
		mu.Unlock()
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Run(bctx); err != nil && bctx.Err() == nil {
				mu.Lock()
				failed = append(failed, inst.ID+": "+err.Error())
				mu.Unlock()
			}
		}()
		return nil
	}})
	defer func() { sim.close(); wg.Wait() }()
	hubtest.WaitFor(b, 30*time.Second, "the provider account (the cluster has a leader)", func() bool {
		_, err := admin().Providers().Create(ctx, sim.account("sim", true))
		return err == nil || apitypes.StatusOf(err) == 409
	})
	if _, err := admin().Pools().Create(ctx, apitypes.PoolRequest{Name: "auto", Datacenter: "dc1",
		Provision: &apitypes.Provision{Provider: "sim", Template: sim.template(false), MinHosts: 0, MaxHosts: machines, BootTimeout: apitypes.Duration(5 * time.Minute)}}); err != nil {
		b.Fatal(err)
	}
	if _, err := admin().Tenants().Create(ctx, apitypes.TenantRequest{Name: "acme"}); err != nil {
		b.Fatal(err)
	}
	// One instance per machine: every cloud's template has 2 CPUs.
	n := machines
	b.ResetTimer()
	start := time.Now()
	if _, err := admin().Apps().Create(ctx, apitypes.AppSpec{Name: "wide", Image: "bench:1", Instances: &n, CPU: 1500, Memory: 128, Pools: []string{"auto"}},
		&client.WriteOptions{Tenant: "acme"}); err != nil {
		b.Fatal(err)
	}

	// Two leader kills while machines are created and boot: the first
	// once 30 exist in the cloud, the second once 60 do (the first node
	// back by then).
	ready := func() (hostsReady int, err error) {
		hs, _, err := admin().Hosts().List(ctx, nil)
		for _, h := range hs {
			if h.Machine != "" && h.State == "ready" {
				hostsReady++
			}
		}
		return hostsReady, err
	}
	killed := 0
	for deadline := time.Now().Add(time.Duration(machines) * 3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			r, err := ready()
			all, _, _ := admin().Machines().List(ctx, "auto", nil)
			var ms []apitypes.Machine // those not ready, which say why
			for _, m := range all {
				if m.State != "ready" && len(ms) < 10 {
					ms = append(ms, m)
				}
			}
			mu.Lock()
			b.Fatalf("in time: %d of %d hosts ready (%v); cloud calls %v; agents failed: %v; machines %+v", r, machines, err, sim.calls(), failed, ms)
		}
		allUp := true
		for _, n := range c.Nodes {
			allUp = allUp && n.Running()
		}
		if live := len(sim.live()); killed < 2 && allUp && live >= max(1, machines*3/10)*(killed+1) {
			l := c.Leader()
			if l == nil {
				continue
			}
			c.Kill(l.Index)
			killed++
			// With the real boots' times (logged at the end), where a
			// slow boot met the kill.
			b.Logf("leader hub%d killed %v after the first create", l.Index, time.Since(start).Round(100*time.Millisecond))
			go func(i int) { time.Sleep(3 * time.Second); c.Restart(i) }(l.Index)
		}
		if r, err := ready(); err == nil && r >= machines {
			break
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()

	// Duplicates (two live instances of one machine) and leaks (a live
	// instance no machine of the hub knows).
	var ms []apitypes.Machine
	hubtest.WaitFor(b, 30*time.Second, "the machine list", func() bool {
		ms, _, err = admin().Machines().List(ctx, "auto", nil)
		return err == nil
	})
	known := map[string]bool{}
	for _, m := range ms {
		known[m.ID] = true
	}
	perMachine := map[string]int{}
	leaks, dups := 0, 0
	for _, in := range sim.live() {
		id := in.Tags[providers.TagMachine]
		perMachine[id]++
		if !known[id] {
			leaks++
		}
	}
	for _, k := range perMachine {
		if k > 1 {
			dups += k - 1
		}
	}
	// Also those launched twice of which one is gone by now.
	ever := 0
	for _, k := range sim.duplicates() {
		ever += k - 1
	}
	dups = max(dups, ever)
	calls := 0
	var actions []string
	for a, k := range sim.calls() {
		calls += k
		actions = append(actions, fmt.Sprintf("%s=%d", a, k))
	}
	slices.Sort(actions)
	mu.Lock()
	b.Logf("%s: %d machines ready in %v (boot delay %v), %d leader kills; cloud calls %v; booted %d (%d for real in netlab); agent start failures %v",
		cloud, machines, elapsed.Round(time.Millisecond), bootDelay, killed, actions, booted, bootedReal, failed)
	mu.Unlock()
	b.ReportMetric((elapsed - bootDelay).Seconds(), "s-beyond-boot")
	b.ReportMetric(float64(calls)/float64(machines), "calls/machine")
	b.ReportMetric(float64(dups), "duplicates")
	b.ReportMetric(float64(leaks), "leaks")
	if dups > 0 || leaks > 0 {
		b.Errorf("%d duplicate and %d leaked machines", dups, leaks)
	}
	mu.Lock()
	starts := maps.Clone(realStart)
	mu.Unlock()
	logRealBoots(b, admin(), booter, start, starts)
	// The app leaves first so that the agents stop with nothing to do.
	_ = admin().Apps().Delete(ctx, "wide", &client.WriteOptions{Tenant: "acme"})
}

// logRealBoots logs how long each real boot took from its start (itself
// given from first, the first create) to its host's enrolment, and for a slow one (over 20 s) its console and the
// tail of its agent's log: where a boot that met a killed hub node spent
// its time.
func logRealBoots(b *testing.B, admin *client.Client, booter *netboot.Booter, first time.Time, started map[string]time.Time) {
	if booter == nil || len(started) == 0 {
		return
	}
	hs, _, err := admin.Hosts().List(context.Background(), nil)
	if err != nil {
		b.Logf("real boots: %v", err)
		return
	}
	enrolled := map[string]time.Time{}
	for _, h := range hs {
		enrolled[h.ProviderID] = h.EnrolledAt
	}
	var took, slow []string
	for id, t0 := range started {
		t1, ok := enrolled[id]
		if !ok {
			took = append(took, id+"=never")
			continue
		}
		d := t1.Sub(t0)
		phases := ""
		if m, ok := booter.Machine(id); ok {
			// Where the time went: the host made and its boot process
			// started (the host's log is last written then), the binary
			// downloaded, the agent's restart loop started, the host
			// enrolled.
			if m.Host != nil {
				if st, err := os.Stat(m.Host.LogPath()); err == nil {
					phases += fmt.Sprintf(" host+%s", st.ModTime().Sub(t0).Round(100*time.Millisecond))
				}
			}
			for _, f := range []string{"/usr/local/bin/wharf", "/var/lib/wharf-agent/agent.pid"} {
				if st, err := os.Stat(m.Path(f)); err == nil {
					phases += fmt.Sprintf(" %s+%s", f[strings.LastIndex(f, "/")+1:], st.ModTime().Sub(t0).Round(100*time.Millisecond))
				}
			}
			// install.sh's line on the download that landed: from
			// where, how many bytes on the wire, how long it took.
			for _, l := range strings.Split(m.Console(), "\n") {
				if _, dl, ok := strings.Cut(l, "wharf install: wharf-linux-"); ok {
					phases += "; " + dl[strings.Index(dl, " ")+1:]
				}
			}
		}
		took = append(took, fmt.Sprintf("%s=%s (started %v after the first create; %s)", id, d.Round(100*time.Millisecond), t0.Sub(first).Round(100*time.Millisecond), strings.TrimSpace(phases)))
		if m, ok := booter.Machine(id); ok && d > 20*time.Second {
			agentLog, _ := os.ReadFile(m.Path("/var/log/wharf-agent.log"))
			if len(agentLog) > 2000 {
				agentLog = agentLog[:2000] // its start: the enrolment
			}
			slow = append(slow, fmt.Sprintf("slow real boot %s (%s): console:\n%s\n--- its agent's log (head):\n%s", id, d.Round(time.Millisecond), m.Console(), agentLog))
		}
	}
	// The summary first: a benchmark's log is cut after a few lines.
	slices.Sort(took)
	b.Logf("real boots, start to enrolment: %v", took)
	for _, s := range slow {
		b.Log(s)
	}
}
