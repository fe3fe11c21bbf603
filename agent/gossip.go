package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/wharf-platform/wharf/internal/atomicfile"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// The agents of a pool gossip with each other (memberlist) so that a dead
// agent is noticed within seconds by its neighbours, and so that the hub can
// tell a host cut off from it (its peers still see it) from a crashed one.
// The hub gives the pool's key and a few peers to join in Welcome; what
// gossip sees goes back to the hub in GossipReports.

// fileGossipKey keeps the pool's gossip key, so that an agent restarted
// while the hub is unreachable still gossips.
const fileGossipKey = "gossip.key"

// deadKept is how long a peer gossip declared dead is still reported.
const deadKept = 5 * time.Minute

// gossip is the agent's member of its pool's gossip.
type gossip struct {
	ml   *memberlist.Memberlist
	self string

	mu      sync.Mutex
	views   map[string]peerView // host id -> latest view
	changed bool                // since the last report
}

type peerView struct {
	alive bool
	at    time.Time
}

// startGossip binds addr and joins the pool's gossip with key.
func startGossip(hostID, addr, advertise string, key []byte, log *slog.Logger) (*gossip, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--gossip-addr %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("--gossip-addr port %q: %w", portStr, err)
	}
	tr, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port})
	if err != nil {
		return nil, fmt.Errorf("gossip listen %s: %w", addr, err)
	}
	g := &gossip{self: hostID, views: map[string]peerView{}}
	mc := memberlist.DefaultLANConfig()
	mc.Name = hostID
	mc.Transport = tr
	mc.BindAddr, mc.BindPort = host, tr.GetAutoBindPort()
	mc.AdvertiseAddr, mc.AdvertisePort = advertiseHost(host, advertise), tr.GetAutoBindPort()
	mc.SecretKey = key
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	// A dead neighbour is declared within about two seconds. The suspicion
	// timeout shrinks from its maximum as other members confirm a
	// suspicion; in a pool of two or three nobody can, and memberlist's
	// default maximum (6x) left a dead peer suspect for 9 s: keep it at 2x.
	mc.ProbeInterval, mc.ProbeTimeout, mc.SuspicionMult = 500*time.Millisecond, 250*time.Millisecond, 3
	mc.SuspicionMaxTimeoutMult = 2
	mc.Events = gossipEvents{g}
	mc.LogOutput = logWriter{log.With("lib", "memberlist")}
	ml, err := memberlist.Create(mc)
	if err != nil {
		tr.Shutdown()
		return nil, fmt.Errorf("gossip: %w", err)
	}
	g.ml = ml
	return g, nil
}

// advertiseHost is the address peers reach the gossip at: the bind host
// when it is specific, else the --advertise host, else the first address
// of this machine that is not loopback.
func advertiseHost(bind, advertise string) string {
	if ip := net.ParseIP(bind); ip != nil && !ip.IsUnspecified() {
		return bind
	}
	if advertise != "" {
		if h, _, err := net.SplitHostPort(advertise); err == nil {
			return h
		}
		return advertise
	}
	if addrs := hostAddresses(); len(addrs) > 0 {
		return addrs[0]
	}
	return "127.0.0.1"
}

// Addr is where peers reach this member.
func (g *gossip) Addr() string {
	n := g.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// join adds peers this member does not know yet.
func (g *gossip) join(addrs []string) {
	known := map[string]bool{}
	for _, m := range g.ml.Members() {
		known[net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))] = true
	}
	var todo []string
	for _, a := range addrs {
		if !known[a] {
			todo = append(todo, a)
		}
	}
	if len(todo) > 0 {
		g.ml.Join(todo) // those that fail are found later through the others
	}
}

// report returns the peers' views to send to the hub, at most maxPeers of
// them; force includes them even when nothing changed.
func (g *gossip) report(force bool) *wire.GossipReport {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.changed && !force {
		return nil
	}
	g.changed = false
	now := time.Now()
	r := &wire.GossipReport{}
	for id, v := range g.views {
		if !v.alive && now.Sub(v.at) > deadKept {
			delete(g.views, id)
			continue
		}
		st := "alive"
		if !v.alive {
			st = "dead"
		}
		if len(r.Peers) < maxReportedPeers {
			r.Peers = append(r.Peers, &wire.PeerView{HostId: id, State: st})
		}
	}
	if len(r.Peers) == 0 {
		return nil
	}
	return r
}

// maxReportedPeers bounds one report; map order varies, so large pools are
// covered over several reports.
const maxReportedPeers = 512

func (g *gossip) set(n *memberlist.Node, alive bool) {
	if n.Name == g.self {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, ok := g.views[n.Name]; !ok || old.alive != alive {
		g.changed = true
	}
	g.views[n.Name] = peerView{alive: alive, at: time.Now()}
}

// stop leaves without a goodbye: to peers a stopped agent looks like a
// crashed one, which is what it is to the instances it ran.
func (g *gossip) stop() { g.ml.Shutdown() }

type gossipEvents struct{ g *gossip }

func (e gossipEvents) NotifyJoin(n *memberlist.Node)   { e.g.set(n, true) }
func (e gossipEvents) NotifyLeave(n *memberlist.Node)  { e.g.set(n, false) }
func (e gossipEvents) NotifyUpdate(n *memberlist.Node) { e.g.set(n, true) }

// logWriter turns memberlist's log lines into debug records.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Debug(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func loadGossipKey(dir string) []byte {
	b, err := os.ReadFile(filepath.Join(dir, fileGossipKey))
	if err != nil || len(b) != 32 {
		return nil
	}
	return b
}

func saveGossipKey(dir string, key []byte) error {
	if bytes.Equal(loadGossipKey(dir), key) {
		return nil
	}
	return atomicfile.Write(filepath.Join(dir, fileGossipKey), key, 0o600)
}

var _ io.Writer = logWriter{}

// gossipPeers is how many pool peers the gossip sees alive (0 without
// gossip).
func (a *Agent) gossipPeers() int {
	g := a.gossip.Load()
	if g == nil {
		return 0
	}
	return max(0, g.ml.NumMembers()-1)
}

// ensureGossip starts the pool gossip with key if it does not run yet,
// and joins peers.
func (a *Agent) ensureGossip(key []byte, peers []string) {
	if a.cfg.GossipAddr == "" || len(key) == 0 {
		return
	}
	g := a.gossip.Load()
	if g == nil {
		var err error
		g, err = startGossip(a.HostID(), a.cfg.GossipAddr, a.cfg.Advertise, key, a.log)
		if err != nil {
			a.log.Warn("pool gossip", "err", err)
			return
		}
		a.gossip.Store(g)
		if err := saveGossipKey(a.cfg.DataDir, key); err != nil {
			a.log.Warn("keep the gossip key", "err", err)
		}
		a.log.Info("pool gossip started", "addr", g.Addr())
	}
	g.join(peers)
}

// GossipAddr returns where the pool gossip listens ("" when it does not).
func (a *Agent) GossipAddr() string {
	if g := a.gossip.Load(); g != nil {
		return g.Addr()
	}
	return ""
}

// gossipReportEvery is how often the gossip view is sent even unchanged,
// so that the hub's evidence of "peers see it alive" stays fresh.
const gossipReportEvery = 2 * time.Second

// stopGossip stops the pool gossip when ctx ends.
func (a *Agent) stopGossip(ctx context.Context) error {
	<-ctx.Done()
	if g := a.gossip.Load(); g != nil {
		g.stop()
	}
	return nil
}

// registerGossip starts the pool gossip with the key Welcome gives and
// joins the peers Welcome and acknowledgements name; it reports what the
// gossip sees after heartbeats: on a change, and every
// gossipReportEvery regardless.
func (a *Agent) registerGossip(c *control) {
	c.handle(&wire.Envelope_Welcome{}, func(_ context.Context, in inbound) error {
		w := in.env.GetWelcome()
		a.ensureGossip(w.GossipKey, w.PoolPeers)
		return nil
	})
	c.handle(&wire.Envelope_HeartbeatAck{}, func(_ context.Context, in inbound) error {
		if g := a.gossip.Load(); g != nil && len(in.env.GetHeartbeatAck().PoolPeers) > 0 {
			go g.join(in.env.GetHeartbeatAck().PoolPeers)
		}
		return nil
	})
	c.send(func() feed {
		var lastFull time.Time
		return feed{tick: func(now time.Time) *wire.Envelope {
			g := a.gossip.Load()
			if g == nil {
				return nil
			}
			full := now.Sub(lastFull) >= gossipReportEvery
			if full {
				lastFull = now
			}
			if r := g.report(full); r != nil {
				return &wire.Envelope{Msg: &wire.Envelope_GossipReport{GossipReport: r}}
			}
			return nil
		}}
	})
}
