package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// enrolCluster starts a 3-node hub, bootstraps it and makes pool aws-bj.
func enrolCluster(t *testing.T) (*hubtest.Cluster, *client.Client, string) {
	t.Helper()
	return newCluster(t, hubtest.Options{SuspectAfter: time.Second, DownAfter: 2 * time.Second}, "aws-bj", "")
}

// newCluster starts a 3-node hub, bootstraps it, makes pool (in dc1) and,
// when given, tenant; it returns an admin client of node 0 and its token.
func newCluster(t *testing.T, opts hubtest.Options, pool, tenant string) (*hubtest.Cluster, *client.Client, string) {
	t.Helper()
	c := hubtest.New(t, 3, opts)
	ctx := context.Background()
	anon, _ := client.New(client.Config{Address: c.Nodes[0].URL()})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := client.New(client.Config{Address: c.Nodes[0].URL(), Token: boot.Token})
	if _, err := admin.Pools().Create(ctx, apitypes.PoolRequest{Name: pool, Datacenter: "dc1"}); err != nil {
		t.Fatal(err)
	}
	if tenant != "" {
		if _, err := admin.Tenants().Create(ctx, apitypes.TenantRequest{Name: tenant}); err != nil {
			t.Fatal(err)
		}
	}
	return c, admin, boot.Token
}

func joinToken(t testing.TB, admin *client.Client, req apitypes.JoinTokenRequest) *apitypes.JoinToken {
	t.Helper()
	var jt *apitypes.JoinToken
	hubtest.WaitFor(t, 10*time.Second, "a join token (the agent CA exists)", func() bool {
		var err error
		jt, err = admin.JoinTokens().Create(context.Background(), req)
		return err == nil
	})
	return jt
}

func hubs(c *hubtest.Cluster) []string {
	var out []string
	for _, n := range c.Nodes {
		if n.Running() {
			out = append(out, n.QUICAddr())
		}
	}
	return out
}

// startAgent runs an agent until the test ends.
func startAgent(t *testing.T, cfg agent.Config) (*agent.Agent, <-chan error) {
	t.Helper()
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1) // Run's result, for the test to read
	exited := make(chan struct{})
	go func() {
		done <- a.Run(ctx)
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Error("agent did not stop")
		}
	})
	return a, done
}

func TestAgentEnrolsOverQUICAndHeartbeats(t *testing.T) {
	c, admin, _ := enrolCluster(t)
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "aws-bj", Uses: 1})
	dir := t.TempDir()
	a, aDone := startAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dir, Name: "node-1", Labels: map[string]string{"ssd": "yes"}})
	hubtest.WaitFor(t, 15*time.Second, "heartbeats acknowledged", func() bool { return a.Acked() >= 2 })
	// The acknowledgement comes from the hub node the agent talks to; the
	// host's record is committed through Raft and read here from node 0.
	hubtest.WaitUntil(t, 15*time.Second, "the agent's host listed ready", func() error {
		hosts, _, err := admin.Hosts().List(context.Background(), nil)
		if err != nil || len(hosts) != 1 {
			return fmt.Errorf("hosts %+v %v", hosts, err)
		}
		if h := hosts[0]; h.ID != a.HostID() || h.Name != "node-1" || h.Pool != "aws-bj" || h.State != "ready" || h.Labels["ssd"] != "yes" || h.CPUs == 0 {
			return fmt.Errorf("host %+v (agent says %s)", h, a.HostID())
		}
		return nil
	})
	// The token had one use: a second agent is refused with the hub's reason,
	// and the refusal is an event.
	b, err := agent.New(agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: t.TempDir(), Name: "node-2"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = b.Run(ctx)
	if !errors.Is(err, agent.ErrEnrollRefused) || !strings.Contains(err.Error(), "used up") {
		t.Fatalf("second use of a one-use token: %v", err)
	}
	evs, _, _ := admin.Events(context.Background(), 0, nil)
	found := false
	for _, e := range evs {
		found = found || (e.Type == "join-token.refused" && strings.Contains(e.Message, "node-2"))
	}
	if !found {
		t.Fatalf("no refusal event in %+v", evs)
	}
	// A removed host is cut off while connected, and can no longer connect.
	if err := admin.Hosts().Remove(context.Background(), a.HostID()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-aDone:
		if err == nil || !strings.Contains(err.Error(), "removed") {
			t.Fatalf("the connected agent of a removed host ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connected agent of a removed host was not cut off")
	}
	again, err := agent.New(agent.Config{Hubs: hubs(c), DataDir: dir, Name: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := again.Run(ctx2); err == nil || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("removed host reconnecting: %v", err)
	}
}

func TestEnrolmentRefusals(t *testing.T) {
	c, admin, _ := enrolCluster(t)
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "aws-bj"})
	other, otherAdmin, _ := enrolCluster(t)
	foreign := joinToken(t, otherAdmin, apitypes.JoinTokenRequest{Pool: "aws-bj"})
	_ = other

	run := func(token string) error {
		a, err := agent.New(agent.Config{Hubs: hubs(c), Token: token, DataDir: t.TempDir(), Name: "n"})
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return a.Run(ctx)
	}
	// A token of another cluster fails the CA pin before any secret is sent.
	if err := run(foreign.Token); !errors.Is(err, agent.ErrEnrollRefused) || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("foreign token: %v", err)
	}
	// A revoked token.
	if err := admin.JoinTokens().Revoke(context.Background(), jt.ID); err != nil {
		t.Fatal(err)
	}
	if err := run(jt.Token); !errors.Is(err, agent.ErrEnrollRefused) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token: %v", err)
	}
	// Garbage.
	if err := run("WJ1.nope"); !errors.Is(err, agent.ErrEnrollRefused) {
		t.Fatalf("garbage token: %v", err)
	}
	// An expired token (1s TTL).
	short := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "aws-bj", TTL: apitypes.Duration(time.Second)})
	time.Sleep(1100 * time.Millisecond)
	if err := run(short.Token); !errors.Is(err, agent.ErrEnrollRefused) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
}

// TestHostLiveness: a stopped agent's host goes suspect, then down, within
// --down-after; when it comes back its host is ready again. Killing the hub
// node it is connected to moves it to another node without a new enrolment.
func TestHostLiveness(t *testing.T) {
	c, admin, token := enrolCluster(t)
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "aws-bj"})
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dir, Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	state := func() string {
		h, _, err := admin.Hosts().Get(context.Background(), a.HostID(), nil)
		if err != nil {
			return ""
		}
		return h.State
	}
	hubtest.WaitFor(t, 10*time.Second, "the host to be ready", func() bool { return a.HostID() != "" && state() == "ready" })
	cancel() // the agent stops: no more heartbeats
	<-done
	stopped := time.Now()
	hubtest.WaitFor(t, 10*time.Second, "the host to be down", func() bool { return state() == "down" })
	t.Logf("down %s after the agent stopped (--down-after 2s)", time.Since(stopped).Round(10*time.Millisecond))
	evs, _, _ := admin.Events(context.Background(), 0, nil)
	var seq []string
	for _, e := range evs {
		if e.Type == "host.state" {
			seq = append(seq, e.Message)
		}
	}
	if len(seq) < 2 || !strings.Contains(seq[len(seq)-2], "suspect") || !strings.Contains(seq[len(seq)-1], "down") {
		t.Fatalf("state events %q, want ready -> suspect -> down", seq)
	}
	// It comes back: ready again, same identity.
	b, _ := startAgent(t, agent.Config{Hubs: hubs(c), DataDir: dir, Name: "n1"})
	if b.HostID() != a.HostID() {
		t.Fatalf("restarted agent has host id %s, want %s", b.HostID(), a.HostID())
	}
	hubtest.WaitFor(t, 10*time.Second, "the host to be ready again", func() bool { return state() == "ready" })
	// Kill the hub node it talks to (the first it dials): it reconnects to
	// another and stays ready, without enrolling again.
	before := b.Acked()
	c.Kill(0)
	hubtest.WaitFor(t, 15*time.Second, "heartbeats through another hub node", func() bool { return b.Acked() > before+3 })
	// With --suspect-after 1s the host may have looked suspect during the
	// switch; it is ready again once the new node's reports reach the leader.
	admin2, _ := client.New(client.Config{Address: c.Nodes[1].URL(), Token: token})
	hubtest.WaitFor(t, 10*time.Second, "the host ready after its hub node died", func() bool {
		hs, _, err := admin2.Hosts().List(context.Background(), nil)
		return err == nil && len(hs) == 1 && hs[0].State == "ready"
	})
}

// TestCertificateRotation: with 3 s certificates the agent renews before
// expiry, reconnects with the new one, and keeps heartbeating.
func TestCertificateRotation(t *testing.T) {
	c, admin, _ := newCluster(t, hubtest.Options{AgentCertTTL: 3 * time.Second}, "p1", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p1"})
	dir := t.TempDir()
	host := fake.NewHost()
	a, _ := startAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dir, Name: "r1", NewDriver: fakeDriver(host)})
	hubtest.WaitFor(t, 10*time.Second, "enrolment", func() bool { return a.Acked() > 0 })
	// An instance runs before the rotations; moving to a new connection
	// must not apply its assignment again (it is not restarted).
	if _, err := admin.Apps().Create(ctx, apitypes.AppSpec{Name: "web", Image: "w"}, &client.WriteOptions{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 10*time.Second, "the instance running", func() bool { return len(host.Running()) == 1 })
	id := host.Running()[0]
	first, _ := os.ReadFile(filepath.Join(dir, "identity"))
	hubtest.WaitFor(t, 15*time.Second, "two rotations", func() bool { return a.Rotations() >= 2 })
	now, _ := os.ReadFile(filepath.Join(dir, "identity"))
	if string(first) == string(now) {
		t.Fatal("the identity (certificate) on disk did not change")
	}
	before := a.Acked()
	hubtest.WaitFor(t, 5*time.Second, "heartbeats on the renewed certificate", func() bool { return a.Acked() > before+2 })
	hubtest.WaitUntil(t, 10*time.Second, "the host ready after the rotations", func() error {
		h, _, err := admin.Hosts().Get(ctx, a.HostID(), nil)
		if err != nil || h.State != "ready" {
			return fmt.Errorf("host %+v %v", h, err)
		}
		return nil
	})
	if got := host.Running(); len(got) != 1 || got[0] != id || host.Started(id) != 1 {
		t.Fatalf("after the rotations the host runs %v (%s started %d times), want %s started once", got, id, host.Started(id), id)
	}
}

// TestAgentLearnsHubNodes: an agent given one hub node learns the others
// from Welcome (and keeps them on disk), so it survives that node's death.
func TestAgentLearnsHubNodes(t *testing.T) {
	c, admin, _ := enrolCluster(t)
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "aws-bj"})
	dir := t.TempDir()
	a, _ := startAgent(t, agent.Config{Hubs: []string{c.Nodes[0].QUICAddr()}, Token: jt.Token, DataDir: dir, Name: "solo"})
	hubtest.WaitFor(t, 10*time.Second, "the agent to learn all three hub nodes", func() bool { return len(a.Hubs()) == 3 })
	saved, err := os.ReadFile(filepath.Join(dir, "hubs"))
	if err != nil || len(strings.Fields(string(saved))) != 3 {
		t.Fatalf("hubs file %q %v", saved, err)
	}
	before := a.Acked()
	c.Kill(0)
	hubtest.WaitFor(t, 15*time.Second, "heartbeats through a learnt hub node", func() bool { return a.Acked() > before+3 })

	// A node added after the agent's Welcome: heartbeat acks name it, and
	// the agent finds it once every node it knew from the Welcome is gone.
	added := c.Add()
	hubtest.WaitFor(t, 60*time.Second, "the agent to learn the added hub node", func() bool { return slices.Contains(a.Hubs(), added.QUICAddr()) })
	hubtest.WaitFor(t, 60*time.Second, "the added node to hold the agent's host", func() bool {
		h, err := added.Hub().Store().Snapshot().Host(nil, a.HostID())
		return err == nil && h != nil
	})
	c.Kill(1)
	c.Kill(2)
	before = a.Acked()
	hubtest.WaitFor(t, 60*time.Second, "heartbeats through the added node alone", func() bool { return a.Acked() > before+3 })
}

// TestPoolGossip: agents of a pool gossip. One cut off from the hub only is
// flagged disconnected while its peers see it; one that dies is down long
// before --down-after, because its peers confirm it dead. Along the way,
// inventory refreshed after enrolment and host show's connection details.
func TestPoolGossip(t *testing.T) {
	c, admin, _ := newCluster(t, hubtest.Options{SuspectAfter: time.Second, DownAfter: 30 * time.Second}, "edge", "")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "edge"})
	var agents []*agent.Agent
	var stops []context.CancelFunc
	for i := range 3 {
		a, err := agent.New(agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: t.TempDir(), Name: "g" + string(rune('0'+i)),
			GossipAddr: "127.0.0.1:0", Zone: "z1", Provider: "baremetal"})
		if err != nil {
			t.Fatal(err)
		}
		actx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(actx) }()
		stop := sync.OnceFunc(func() { cancel(); <-done })
		t.Cleanup(stop)
		agents = append(agents, a)
		stops = append(stops, stop)
	}
	host := func(a *agent.Agent) apitypes.Host {
		h, _, err := admin.Hosts().Get(ctx, a.HostID(), nil)
		if err != nil {
			return apitypes.Host{}
		}
		return *h
	}
	// Everything the host record should show once its agent has enrolled,
	// refreshed its inventory and heartbeated over its mTLS connection.
	complete := func(a *agent.Agent) error {
		h := host(a)
		switch {
		case h.State != "ready":
			return fmt.Errorf("%s: state %q", a.HostID(), h.State)
		case h.GossipAddr == "" || h.GossipAddr != a.GossipAddr():
			return fmt.Errorf("%s: gossip address %q, agent has %q", a.HostID(), h.GossipAddr, a.GossipAddr())
		case h.Zone != "z1" || h.Provider != "baremetal" || h.MemoryBytes == 0 || h.DiskBytes == 0:
			return fmt.Errorf("%s: inventory not refreshed: zone %q provider %q memory %d disk %d", a.HostID(), h.Zone, h.Provider, h.MemoryBytes, h.DiskBytes)
		case h.LastHeartbeat == nil || time.Since(*h.LastHeartbeat) > 5*time.Second:
			return fmt.Errorf("%s: last heartbeat %v", a.HostID(), h.LastHeartbeat)
		case h.HubNode == "":
			return fmt.Errorf("%s: no hub node", a.HostID())
		case h.CertNotAfter == nil || time.Until(*h.CertNotAfter) < time.Hour:
			return fmt.Errorf("%s: certificate valid until %v", a.HostID(), h.CertNotAfter)
		}
		return nil
	}
	hubtest.WaitUntil(t, 20*time.Second, "three ready hosts with their inventory and connection", func() error {
		for _, a := range agents {
			if err := complete(a); err != nil {
				return err
			}
		}
		return nil
	})

	// Cut g0 off from the hub only: its peers still see it.
	agents[0].CutHub(true)
	hubtest.WaitFor(t, 15*time.Second, "g0 suspect and disconnected", func() bool {
		h := host(agents[0])
		return h.State == "suspect" && h.Disconnected
	})
	agents[0].CutHub(false)
	hubtest.WaitFor(t, 15*time.Second, "g0 ready again, connected", func() bool {
		h := host(agents[0])
		return h.State == "ready" && !h.Disconnected
	})

	// g1 dies: its peers confirm it dead, so it is down far sooner than
	// --down-after (30 s), and not flagged disconnected.
	stops[1]()
	died := time.Now()
	hubtest.WaitFor(t, 15*time.Second, "g1 down through its peers' word", func() bool {
		h := host(agents[1])
		return h.State == "down" && !h.Disconnected
	})
	t.Logf("g1 down %s after it died (--suspect-after 1s, --down-after 30s)", time.Since(died).Round(10*time.Millisecond))
	evs, _, _ := admin.Events(ctx, 0, nil)
	found := false
	for _, e := range evs {
		found = found || (e.Subject == agents[1].HostID() && strings.Contains(e.Message, "pool peers confirm"))
	}
	if !found {
		t.Fatalf("no event says g1's peers confirmed it dead: %+v", evs)
	}
}

// TestEnrolmentRetriesWhileNoHubAnswers: an agent whose hub drops every
// packet at first keeps trying to enrol (only a refusal ends it) and
// enrols once packets flow.
func TestEnrolmentRetriesWhileNoHubAnswers(t *testing.T) {
	c, admin, _ := enrolCluster(t)
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "aws-bj"})
	gate := newUDPGate(t, c.Nodes[0].QUICAddr())
	a, done := startAgent(t, agent.Config{Hubs: []string{gate.addr()}, Token: jt.Token, DataDir: t.TempDir(), Name: "patient"})
	select {
	case err := <-done:
		t.Fatalf("the agent gave up while no hub answered: %v", err)
	case <-time.After(13 * time.Second): // past the first attempt's 10 s dial timeout
	}
	if a.Acked() != 0 {
		t.Fatal("packets went through a closed gate")
	}
	gate.open.Store(true)
	hubtest.WaitFor(t, 40*time.Second, "the agent enrolled once the hub answered", func() bool { return a.Acked() > 0 })
}

// udpGate relays UDP datagrams to target while open, and drops them
// otherwise: a hub that is unreachable, then reachable, at one address.
type udpGate struct {
	pc   net.PacketConn
	open atomic.Bool
}

func newUDPGate(t *testing.T, target string) *udpGate {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &udpGate{pc: pc}
	t.Cleanup(func() { pc.Close() })
	up, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	conns := map[string]*net.UDPConn{} // client address -> its upstream socket
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if !g.open.Load() {
				continue
			}
			mu.Lock()
			uc := conns[from.String()]
			if uc == nil {
				if uc, err = net.DialUDP("udp", nil, up); err != nil {
					mu.Unlock()
					continue
				}
				conns[from.String()] = uc
				t.Cleanup(func() { uc.Close() })
				go func(uc *net.UDPConn, from net.Addr) { // replies back to the client
					b := make([]byte, 64<<10)
					for {
						n, err := uc.Read(b)
						if err != nil {
							return
						}
						pc.WriteTo(b[:n], from)
					}
				}(uc, from)
			}
			mu.Unlock()
			uc.Write(buf[:n])
		}
	}()
	return g
}

func (g *udpGate) addr() string { return g.pc.LocalAddr().String() }
