package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/exec"
	"github.com/wharf-platform/wharf/e2e/netlab"
	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// multiHost is real wharf processes on netlab hosts: one hub node per
// datacenter and agents in pools of their datacenters.
type multiHost struct {
	t     testing.TB
	lab   *netlab.Lab
	hubs  []*netlab.Host
	admin *client.Client            // through the last datacenter's hub node
	token string                    // the admin token
	args  map[*netlab.Host][]string // how each wharf process was started, to restart it
	dirs  map[*netlab.Host]string   // each agent's data dir
}

// startHub runs `wharf hub` on h, the first of n nodes joining through
// join ("" for the first).
func startWharf(t testing.TB, h *netlab.Host, args ...string) {
	t.Helper()
	cmd := h.Command(context.Background(), wharfBin, args...)
	if err := h.Start(cmd); err != nil {
		t.Fatalf("start %s on %s: %v", args[0], h.Name(), err)
	}
}

func newMultiHost(t testing.TB, dcs int, agentsPerDC int, hubArgs ...string) (*multiHost, map[string][]*netlab.Host) {
	netlab.Require(t)
	m := &multiHost{t: t, lab: netlab.New(t, netlab.Options{}), args: map[*netlab.Host][]string{}, dirs: map[*netlab.Host]string{}}
	// Registered after the lab's own cleanup, so it runs before it: the
	// agents go first, then the exec instances they leave running (by
	// design they outlive a killed agent) are stopped through the driver,
	// which also removes their cgroups; the lab then removes what is left
	// of its namespaces.
	stopStrays(t, func() []string {
		var ds []string
		for _, d := range m.dirs {
			ds = append(ds, d)
		}
		return ds
	})
	stopLeftovers(t, func() []driver.Driver {
		var ds []driver.Driver
		for h, dir := range m.dirs {
			for _, cmd := range h.Processes() {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				select {
				case <-h.Done(cmd):
				case <-time.After(10 * time.Second):
					t.Errorf("wharf on %s not reaped 10s after SIGKILL", h.Name())
				}
			}
			id, err := os.ReadFile(filepath.Join(dir, "host-id"))
			if err != nil {
				continue // never enrolled: it started nothing
			}
			if d, err := exec.New(exec.Config{HostID: strings.TrimSpace(string(id)), DataDir: dir}); err == nil {
				ds = append(ds, d)
			}
		}
		return ds
	})
	agents := map[string][]*netlab.Host{}
	key := cluster.GenerateKey()
	for i := 0; i < dcs; i++ {
		dc := m.lab.AddDC(fmt.Sprintf("dc%d", i+1))
		m.hubs = append(m.hubs, dc.AddHost(fmt.Sprintf("hub%d", i+1)))
		for j := 0; j < agentsPerDC; j++ {
			agents[dc.Name()] = append(agents[dc.Name()], dc.AddHost(fmt.Sprintf("a%d-%d", i+1, j+1)))
		}
	}
	for i, h := range m.hubs {
		ip := h.IP().String()
		args := []string{"hub", "--node-name", h.Name(), "--data-dir", t.TempDir(), "--datacenter", fmt.Sprintf("dc%d", i+1),
			"--bootstrap-expect", fmt.Sprint(len(m.hubs)), "--cluster-key", key, "--advertise", ip,
			"--http-addr", ip + ":7480", "--quic-addr", ip + ":7481", "--raft-addr", ip + ":7482", "--gossip-addr", ip + ":7483",
			"--suspect-after", "2s", "--down-after", "4s", "--log-level", "warn"}
		args = append(args, hubArgs...) // later flags win
		if i > 0 {
			args = append(args, "--join", m.hubs[0].IP().String()+":7483")
		}
		m.args[h] = args
		startWharf(t, h, args...)
	}
	last := m.hubs[len(m.hubs)-1]
	anon, _ := client.New(client.Config{Address: "http://" + last.AddrPort(7480)})
	var boot *apitypes.BootstrapResponse
	hubtest.WaitFor(t, 60*time.Second, "the hub cluster elected a leader and bootstrapped", func() bool {
		var err error
		boot, err = anon.Bootstrap(context.Background())
		return err == nil
	})
	m.admin, _ = client.New(client.Config{Address: "http://" + last.AddrPort(7480), Token: boot.Token})
	m.token = boot.Token
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, dc := range m.lab.DCs() {
			for _, h := range dc.Hosts() {
				b, _ := os.ReadFile(h.LogPath())
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				t.Logf("--- %s log (tail):\n%s", h.Name(), b)
			}
		}
	})
	return m, agents
}

// hubAddrs is every hub node's gateway address, comma-separated.
func (m *multiHost) hubAddrs() string {
	var out []string
	for _, h := range m.hubs {
		out = append(out, h.AddrPort(7481))
	}
	return strings.Join(out, ",")
}

// startAgent runs `wharf agent` (exec driver) on h in pool.
func (m *multiHost) startAgent(h *netlab.Host, pool, token string) {
	ip := h.IP().String()
	m.dirs[h] = m.t.TempDir()
	m.args[h] = []string{"agent", "--hub", m.hubAddrs(), "--token", token, "--data-dir", m.dirs[h], "--pool", pool, "--name", h.Name(),
		"--driver", "exec", "--advertise", ip, "--gossip-addr", ip + ":7484", "--local-addr", ip + ":7485",
		"--router-http-addr", ip + ":7080", "--router-https-addr", "", "--log-level", "warn"}
	startWharf(m.t, h, m.args[h]...)
}

// killWharf SIGKILLs the wharf process on h (only it: an agent's exec
// instances live on) and waits until it is reaped.
func (m *multiHost) killWharf(h *netlab.Host) {
	m.t.Helper()
	for _, cmd := range h.Processes() {
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			m.t.Fatalf("kill wharf on %s: %v", h.Name(), err)
		}
		select {
		case <-h.Done(cmd):
		case <-time.After(10 * time.Second):
			m.t.Fatalf("wharf on %s not reaped 10s after SIGKILL", h.Name())
		}
	}
}

// restartWharf starts the wharf process of h again as it first was (same
// data dir: the same node or agent).
func (m *multiHost) restartWharf(h *netlab.Host) {
	m.t.Helper()
	startWharf(m.t, h, m.args[h]...)
}

// poolsP1P2 creates tenant acme and pools p1 (dc1) and p2 (dc2), starts the
// first agent of each of those datacenters in its pool and waits until
// both hosts are ready.
func (m *multiHost) poolsP1P2(agents map[string][]*netlab.Host) {
	t, ctx := m.t, context.Background()
	t.Helper()
	for i, p := range []string{"p1", "p2"} {
		if _, err := m.admin.Pools().Create(ctx, apitypes.PoolRequest{Name: p, Datacenter: fmt.Sprintf("dc%d", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.admin.Tenants().Create(ctx, apitypes.TenantRequest{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"p1", "p2"} {
		jt := joinToken(t, m.admin, apitypes.JoinTokenRequest{Pool: p})
		m.startAgent(agents[fmt.Sprintf("dc%d", i+1)][0], p, jt.Token)
	}
	hubtest.WaitFor(t, 60*time.Second, "two ready hosts", func() bool {
		hs, _, err := m.admin.Hosts().List(ctx, nil)
		return err == nil && len(hs) == 2 && hs[0].State == "ready" && hs[1].State == "ready" && hs[0].MemoryBytes > 0 && hs[1].MemoryBytes > 0
	})
}

// TestMultiHostDatacenterLoss: three hub nodes in three datacenters, an
// agent in pool p1 (dc1) and one in p2 (dc2), real processes in network
// namespaces. An app in p1 with failover pool p2; kill -9 every host of
// dc1 (its agent and its hub node): the hub stays writable, and the app
// serves from dc2.
func TestMultiHostDatacenterLoss(t *testing.T) {
	first, all := datacenterLoss(t)
	t.Logf("dc1 lost (kill -9 of its hub node and agent): first request served through dc2's router after %s, all instances ready after %s", first.Round(time.Millisecond), all.Round(time.Millisecond))
}

// BenchmarkDatacenterLoss repeats the datacenter loss with default
// liveness settings (suspect 4 s, down 10 s) and reports p50 and p99 of
// the time from the kill to the first instance serving from the other
// datacenter and to all of them.
//
//	go test -run '^$' -bench DatacenterLoss -benchtime 10x ./e2e
func BenchmarkDatacenterLoss(b *testing.B) {
	var firsts, alls []time.Duration
	for i := 0; i < b.N; i++ {
		run := &scope{TB: b}
		first, all := datacenterLoss(run, "--suspect-after", "4s", "--down-after", "10s")
		run.close()
		firsts, alls = append(firsts, first), append(alls, all)
	}
	quantiles(b, "serving", firsts)
	quantiles(b, "all-ready", alls)
}

// scope runs the cleanups registered during one benchmark iteration at
// its end (close), not at the end of the whole benchmark: each iteration's
// lab and processes are gone before the next starts.
type scope struct {
	testing.TB
	fns []func()
}

func (s *scope) Cleanup(f func()) { s.fns = append(s.fns, f) }

func (s *scope) close() {
	for i := len(s.fns) - 1; i >= 0; i-- {
		s.fns[i]()
	}
	s.fns = nil
}

// quantiles reports p50 and p99 of ds as name-p50-ms and name-p99-ms.
func quantiles(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(ds[len(ds)/2]), name+"-p50-ms")
	b.ReportMetric(ms(ds[min(len(ds)-1, len(ds)*99/100)]), name+"-p99-ms")
	b.ReportMetric(0, "ns/op")
}

// datacenterLoss runs the scenario and returns the time from the kill to
// the first instance serving from dc2, and to all. hubArgs override the
// hub nodes' liveness flags.
func datacenterLoss(t testing.TB, hubArgs ...string) (time.Duration, time.Duration) {
	m, agents := newMultiHost(t, 3, 1, hubArgs...)
	ctx := context.Background()
	bin := drivertest.BuildTestApp(t)
	m.poolsP1P2(agents)
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	spec := apitypes.AppSpec{Name: "web", Command: []string{bin}, Instances: intp(2), Pools: []string{"p1"}, FailoverPools: []string{"p2"},
		Ports: []apitypes.Port{{ContainerPort: 8080}}, Health: &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)}}
	if _, err := m.admin.Apps().Create(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	serving := func(dc string) int {
		is, _, err := m.admin.Apps().Instances(ctx, "web", q)
		if err != nil {
			return 0
		}
		n := 0
		hc := &http.Client{Timeout: time.Second}
		for _, i := range is {
			if i.Desired != "run" || !i.Ready || !strings.HasPrefix(i.HostName, "a"+strings.TrimPrefix(dc, "dc")+"-") {
				continue
			}
			resp, err := hc.Get("http://" + i.Address + "/")
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.HasPrefix(string(b), "version=") {
				n++
			}
		}
		return n
	}
	hubtest.WaitFor(t, 60*time.Second, "2 instances serving in dc1", func() bool { return serving("dc1") == 2 })

	start := time.Now()
	if err := m.lab.KillDC(m.lab.DCs()[0]); err != nil {
		t.Fatal(err)
	}
	// Time to serving: the first request answered through the surviving
	// datacenter's router (the app's default route).
	router := agents["dc2"][0].AddrPort(7080)
	hubtest.WaitFor(t, 60*time.Second, "a request served through dc2's router", func() bool {
		req, _ := http.NewRequest("GET", "http://"+router+"/", nil)
		req.Host = "web.acme.localhost"
		resp, err := (&http.Client{Timeout: time.Second}).Do(req)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200 && strings.HasPrefix(string(b), "version=")
	})
	first := time.Since(start)
	hubtest.WaitFor(t, 60*time.Second, "both instances serving in dc2", func() bool { return serving("dc2") == 2 })
	all := time.Since(start)
	// The hub lost a node and stays writable.
	if _, err := m.admin.Tenants().Create(ctx, apitypes.TenantRequest{Name: "after-loss"}); err != nil {
		t.Fatalf("write after losing dc1: %v", err)
	}
	return first, all
}

// BenchmarkHostDeath: two agents in one pool (pool gossip on), default
// liveness settings; an app with one instance per host. kill -9 one
// agent host: its peers' gossip confirms it dead, the hub marks it down
// early and the instance is replaced on the survivor. Reports p50/p99 of
// the time from the kill to the app having all its instances ready again.
//
//	go test -run '^$' -bench HostDeath -benchtime 10x ./e2e
func BenchmarkHostDeath(b *testing.B) {
	var alls []time.Duration
	for i := 0; i < b.N; i++ {
		run := &scope{TB: b}
		alls = append(alls, hostDeath(run, "--suspect-after", "4s", "--down-after", "10s"))
		run.close()
	}
	quantiles(b, "all-ready", alls)
}

func hostDeath(t testing.TB, hubArgs ...string) time.Duration {
	m, agents := newMultiHost(t, 3, 2, hubArgs...)
	ctx := context.Background()
	bin := drivertest.BuildTestApp(t)
	if _, err := m.admin.Pools().Create(ctx, apitypes.PoolRequest{Name: "p1", Datacenter: "dc1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.admin.Tenants().Create(ctx, apitypes.TenantRequest{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	jt := joinToken(t, m.admin, apitypes.JoinTokenRequest{Pool: "p1"})
	for _, h := range agents["dc1"] {
		m.startAgent(h, "p1", jt.Token)
	}
	hubtest.WaitFor(t, 60*time.Second, "two ready hosts", func() bool {
		hs, _, err := m.admin.Hosts().List(ctx, nil)
		return err == nil && len(hs) == 2 && hs[0].State == "ready" && hs[1].State == "ready" && hs[0].MemoryBytes > 0 && hs[1].MemoryBytes > 0
	})
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	spec := apitypes.AppSpec{Name: "web", Command: []string{bin}, Instances: intp(2), Pools: []string{"p1"},
		Ports: []apitypes.Port{{ContainerPort: 8080}}, Health: &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)}}
	if _, err := m.admin.Apps().Create(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	readyOn := func() map[string]int {
		is, _, err := m.admin.Apps().Instances(ctx, "web", q)
		out := map[string]int{}
		if err != nil {
			return out
		}
		for _, i := range is {
			if i.Desired == "run" && i.Ready {
				out[i.HostName]++
			}
		}
		return out
	}
	victim, survivor := agents["dc1"][0], agents["dc1"][1]
	hubtest.WaitFor(t, 60*time.Second, "one ready instance per host", func() bool {
		r := readyOn()
		return r[victim.Name()] == 1 && r[survivor.Name()] == 1
	})
	// The two agents must know each other through the pool gossip first
	// (as hosts that have run for a while do).
	hubtest.WaitFor(t, 30*time.Second, "the two agents gossiping", func() bool {
		for _, h := range agents["dc1"] {
			resp, err := http.Get("http://" + h.AddrPort(7485) + "/healthz")
			if err != nil {
				return false
			}
			var hl struct {
				Peers int `json:"gossip_peers"`
			}
			err = json.NewDecoder(resp.Body).Decode(&hl)
			resp.Body.Close()
			if err != nil || hl.Peers < 1 {
				return false
			}
		}
		return true
	})
	start := time.Now()
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 60*time.Second, "both instances ready on the survivor", func() bool { return readyOn()[survivor.Name()] == 2 })
	d := time.Since(start)
	m.keepLogs()
	return d
}

// keepLogs copies every host's log to $WHARF_KEEP_LOGS, when set, before
// the lab (and its temporary directory) goes.
func (m *multiHost) keepLogs() {
	dir := os.Getenv("WHARF_KEEP_LOGS")
	if dir == "" {
		return
	}
	_ = os.MkdirAll(dir, 0o755)
	for _, dc := range m.lab.DCs() {
		for _, h := range dc.Hosts() {
			if b, err := os.ReadFile(h.LogPath()); err == nil {
				_ = os.WriteFile(filepath.Join(dir, h.Name()+".log"), b, 0o644)
			}
		}
	}
}

// TestMultiHostLeaderDatacenterLoss: the datacenter of the hub leader is
// cut off from the others and its hub node killed while a client keeps
// writing: a new leader is elected among the other two, the hub stays
// writable, and every write acknowledged before, during and after is
// there.
func TestMultiHostLeaderDatacenterLoss(t *testing.T) {
	m, _ := newMultiHost(t, 3, 0)
	ctx := context.Background()
	st, err := m.admin.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var leader *netlab.Host
	for _, h := range m.hubs {
		if h.Name() == st.Leader { // node names are the host names
			leader = h
		}
	}
	if leader == nil {
		t.Fatalf("leader %q is none of the hub nodes", st.Leader)
	}
	// The client talks to a node outside the leader's datacenter.
	var via *netlab.Host
	for _, h := range m.hubs {
		if h.DC() != leader.DC() {
			via = h
		}
	}
	admin, _ := client.New(client.Config{Address: "http://" + via.AddrPort(7480), Token: m.token})
	var acked []string
	write := func(i int) {
		name := fmt.Sprintf("t%03d", i)
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := admin.Tenants().Create(wctx, apitypes.TenantRequest{Name: name}); err == nil {
			acked = append(acked, name)
		}
	}
	for i := 0; i < 20; i++ {
		write(i)
	}
	start := time.Now()
	m.lab.Cut(leader.DC())
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	for i := 20; time.Since(start) < 20*time.Second && len(acked) < 40; i++ {
		write(i)
	}
	if len(acked) < 40 {
		t.Fatalf("only %d writes acknowledged in 20 s after the leader's datacenter was lost", len(acked))
	}
	t.Logf("leader %s (dc %s) lost: writing again %s later", leader.Name(), leader.DC().Name(), time.Since(start).Round(time.Millisecond))
	ts, _, err := admin.Tenants().List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, x := range ts {
		have[x.Name] = true
	}
	for _, name := range acked {
		if !have[name] {
			t.Errorf("acknowledged write %s lost", name)
		}
	}
	if st, err := admin.Status(ctx); err != nil || st.State == "" || st.Leader == "" {
		t.Fatalf("status after the loss: %+v %v", st, err)
	}
}

// TestMultiHostCutDatacenter cuts dc1 (its hub node and its agent) off
// from the other datacenters without killing anything; the test process
// still reaches both sides. A fenced singleton: dc1's agent stops its copy
// once its lease runs out (its hub node lost the leader, so its acks no
// longer renew), the replacement in dc2 starts only after that, and no
// moment sees two copies answer; after the heal it stays single. The same
// cut with an availability singleton: replaced at once (both copies may
// answer meanwhile), and the cut-off copy stops once dc1 is back.
func TestMultiHostCutDatacenter(t *testing.T) {
	for _, mode := range []string{apitypes.FailoverFenced, apitypes.FailoverAvailability} {
		t.Run(mode, func(t *testing.T) { cutDatacenter(t, mode) })
	}
}

func cutDatacenter(t *testing.T, mode string) {
	m, agents := newMultiHost(t, 3, 1)
	ctx := context.Background()
	bin := drivertest.BuildTestApp(t)
	m.poolsP1P2(agents)
	const maxDisconnect = 3 * time.Second
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	spec := apitypes.AppSpec{Name: "db", Command: []string{bin}, Instances: intp(1), Pools: []string{"p1"}, FailoverPools: []string{"p2"},
		Ports: []apitypes.Port{{ContainerPort: 8080}}, Health: &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)},
		Failover: &apitypes.Failover{Mode: mode, MaxDisconnect: apitypes.Duration(maxDisconnect)}}
	if _, err := m.admin.Apps().Create(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	var first string // the dc1 copy's address
	hubtest.WaitFor(t, 60*time.Second, "the singleton serving in dc1", func() bool {
		is, _, err := m.admin.Apps().Instances(ctx, "db", q)
		if err != nil || len(is) != 1 || !is[0].Ready || !strings.HasPrefix(is[0].HostName, "a1-") {
			return false
		}
		first = is[0].Address
		return true
	})
	answers := func(addr string) bool {
		hc := &http.Client{Timeout: 300 * time.Millisecond}
		resp, err := hc.Get("http://" + addr + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	var second string // the replacement's address, once placed
	dc2Copy := func() string {
		is, _, err := m.admin.Apps().Instances(ctx, "db", q)
		if err != nil {
			return second
		}
		for _, i := range is {
			if strings.HasPrefix(i.HostName, "a2-") && i.Address != "" {
				second = i.Address
			}
		}
		return second
	}
	cut := time.Now()
	m.lab.Cut(m.lab.DCs()[0])
	var firstGone, secondUp time.Duration
	both, firstServed := false, false
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && (secondUp == 0 || (mode == apitypes.FailoverFenced && firstGone == 0)) {
		a := answers(first)
		b := dc2Copy() != "" && answers(second)
		if a && b {
			both = true
		}
		firstServed = firstServed || a
		if !a && firstGone == 0 {
			firstGone = time.Since(cut)
		}
		if b && secondUp == 0 {
			secondUp = time.Since(cut)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s: after the cut, dc1's copy answered: %v, stopped answering at %s; dc2's started at %s; both at once: %v", mode, firstServed,
		firstGone.Round(10*time.Millisecond), secondUp.Round(10*time.Millisecond), both)
	if secondUp == 0 {
		t.Fatal("no replacement in dc2")
	}
	if mode == apitypes.FailoverAvailability && !firstServed {
		t.Fatal("availability: dc1's copy did not keep serving during the cut")
	}
	if mode == apitypes.FailoverFenced {
		if both || firstGone == 0 || firstGone > secondUp {
			t.Fatalf("fenced: two copies answered at once (%v), or dc1's copy (gone at %s) outlived the replacement's start (%s)", both, firstGone, secondUp)
		}
		if firstGone < maxDisconnect-time.Second {
			t.Fatalf("fenced: dc1's copy stopped %s after the cut, before max_disconnect", firstGone)
		}
	}
	m.lab.Heal(m.lab.DCs()[0])
	// After the heal: one copy, in dc2 (availability: dc1's agent stops
	// the copy the hub replaced; fenced: it never restarts it).
	hubtest.WaitFor(t, 60*time.Second, "only dc2's copy answering after the heal", func() bool {
		return !answers(first) && answers(second)
	})
	time.Sleep(3 * time.Second)
	if answers(first) {
		t.Fatal("dc1's copy came back after the heal")
	}
}

// TestMultiHostDrills runs drills against real processes: a cutoff of
// pool p1 (its agent refused by every hub node, the machines untouched)
// moves the app to p2 and the report's ready time agrees with what the
// test saw; ending it brings p1 back, and failback auto moves the app home
// only after the hold time; an evacuation then moves it off p1 again
// without ever dropping below one ready instance.
func TestMultiHostDrills(t *testing.T) {
	m, agents := newMultiHost(t, 3, 1)
	ctx := context.Background()
	bin := drivertest.BuildTestApp(t)
	m.poolsP1P2(agents)
	const hold = 5 * time.Second
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	spec := apitypes.AppSpec{Name: "web", Command: []string{bin}, Instances: intp(2), Pools: []string{"p1"}, FailoverPools: []string{"p2"},
		Ports: []apitypes.Port{{ContainerPort: 8080}}, Health: &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)},
		Failover: &apitypes.Failover{Failback: "auto", FailbackHold: apitypes.Duration(hold)}}
	if _, err := m.admin.Apps().Create(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	readyIn := func(prefix string) int {
		is, _, err := m.admin.Apps().Instances(ctx, "web", q)
		if err != nil {
			return -1
		}
		n := 0
		for _, i := range is {
			if i.Desired == "run" && i.Ready && strings.HasPrefix(i.HostName, prefix) {
				n++
			}
		}
		return n
	}
	hubtest.WaitFor(t, 60*time.Second, "2 ready in p1", func() bool { return readyIn("a1-") == 2 })

	d, err := m.admin.Drills().Run(ctx, apitypes.DrillRequest{Pool: "p1", Mode: "cutoff"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	hubtest.WaitFor(t, 60*time.Second, "2 ready in p2", func() bool { return readyIn("a2-") == 2 })
	saw := time.Since(start)
	var rep *apitypes.Drill
	hubtest.WaitFor(t, 20*time.Second, "the cutoff report", func() bool {
		rep, _, err = m.admin.Drills().Get(ctx, d.ID, nil)
		return err == nil && rep.RoutedMs >= 0
	})
	t.Logf("cutoff: detected %d ms, scheduled %d ms, ready %d ms, routed %d ms, failed %d; the test saw ready after %s",
		rep.DetectedMs, rep.ScheduledMs, rep.ReadyMs, rep.RoutedMs, rep.FailedRequests, saw.Round(time.Millisecond))
	if diff := time.Duration(rep.ReadyMs)*time.Millisecond - saw; diff > 2*time.Second || diff < -2*time.Second {
		t.Fatalf("report: ready after %d ms; the test saw it after %s", rep.ReadyMs, saw)
	}
	if _, err := m.admin.Drills().End(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	hubtest.WaitFor(t, 60*time.Second, "a1 ready again", func() bool {
		hs, _, err := m.admin.Hosts().List(ctx, nil)
		if err != nil {
			return false
		}
		for _, h := range hs {
			if strings.HasPrefix(h.Name, "a1-") && h.State == "ready" {
				return true
			}
		}
		return false
	})
	back := time.Now()
	hubtest.WaitFor(t, 60*time.Second, "failback: 2 ready in p1, none in p2", func() bool {
		if readyIn("a1-") > 0 && time.Since(back) < hold-time.Second {
			t.Fatalf("failback %s after p1 came back, before the %s hold", time.Since(back), hold)
		}
		return readyIn("a1-") == 2 && readyIn("a2-") == 0
	})
	t.Logf("failback: p1 ready %s after the drill ended, the app home %s later (hold %s)", back.Sub(ended).Round(time.Millisecond), time.Since(back).Round(time.Millisecond), hold)

	d, err = m.admin.Drills().Run(ctx, apitypes.DrillRequest{Pool: "p1", Mode: "evacuate"})
	if err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 60*time.Second, "evacuated to p2", func() bool {
		if readyIn("a1-")+readyIn("a2-") < 1 {
			t.Fatal("no ready instance during the evacuation")
		}
		return readyIn("a2-") == 2 && readyIn("a1-") == 0
	})
	hubtest.WaitFor(t, 20*time.Second, "the evacuation report", func() bool {
		rep, _, err = m.admin.Drills().Get(ctx, d.ID, nil)
		return err == nil && rep.RoutedMs >= 0 && rep.DetectedMs == 0
	})
	t.Logf("evacuate: scheduled %d ms, ready %d ms, routed %d ms, failed %d", rep.ScheduledMs, rep.ReadyMs, rep.RoutedMs, rep.FailedRequests)
	if _, err := m.admin.Drills().End(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
}
