// Package gossip is the agent's member of its pool's gossip (memberlist):
// a dead agent is noticed within seconds by its neighbours, and the hub
// can tell a host cut off from it (its peers still see it) from a crashed
// one. The hub gives the pool's key and a few peers to join in Welcome;
// what gossip sees goes back to the hub in GossipReports.
package gossip

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/wharf-platform/wharf/internal/atomicfile"
	"github.com/wharf-platform/wharf/internal/gossipnet"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// FileKey keeps the pool's gossip key, so that an agent restarted
// while the hub is unreachable still gossips.
const FileKey = "gossip.key"

// deadKept is how long a peer gossip declared dead is still reported.
const deadKept = 5 * time.Minute

// Member is the agent's member of its pool's gossip.
type Member struct {
	ml   *memberlist.Memberlist
	self string

	mu      sync.Mutex
	views   map[string]peerView // host id -> latest view
	changed map[string]bool     // host ids whose view changed since the last report
}

type peerView struct {
	alive bool
	at    time.Time
}

// Start binds addr and joins the pool's gossip with key.
func Start(hostID, addr, advertise string, key []byte, log *slog.Logger) (*Member, error) {
	tr, host, err := gossipnet.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("--gossip-addr: %w", err)
	}
	g := &Member{self: hostID, views: map[string]peerView{}, changed: map[string]bool{}}
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
// when it is specific, else the advertised host (the agent gives the
// first address of this machine that is not loopback when it has no
// --advertise), else 127.0.0.1.
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
	return "127.0.0.1"
}

// Addr is where peers reach this member.
func (g *Member) Addr() string {
	n := g.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Join adds peers this member does not know yet.
func (g *Member) Join(addrs []string) {
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

// Report returns the views to send to the hub: the peers that died or
// came back since the last report and, with force (the periodic report),
// the ringPeers that follow this member on the pool's ring as well, so
// that every host is vouched for by a few peers each period, not by every
// peer: the hub's work stays linear in the pool's size. nil when there is
// nothing to say. At most maxReportedPeers views.
func (g *Member) Report(force bool) *wire.GossipReport {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	for id, v := range g.views {
		if !v.alive && now.Sub(v.at) > deadKept {
			delete(g.views, id)
			delete(g.changed, id)
		}
	}
	ids := make([]string, 0, len(g.changed)+ringPeers)
	for id := range g.changed {
		ids = append(ids, id)
	}
	clear(g.changed)
	if force {
		for _, id := range ringSuccessors(g.self, g.views, ringPeers) {
			if _, dup := g.views[id]; dup && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	sort.Strings(ids)
	r := &wire.GossipReport{}
	for _, id := range ids[:min(len(ids), maxReportedPeers)] {
		v, ok := g.views[id]
		if !ok {
			continue
		}
		st := "alive"
		if !v.alive {
			st = "dead"
		}
		r.Peers = append(r.Peers, &wire.PeerView{HostId: id, State: st})
	}
	if len(r.Peers) == 0 {
		return nil
	}
	return r
}

// ringPeers is how many peers each member vouches for in every periodic
// report: each host is reported by about as many.
const ringPeers = 4

// maxReportedPeers bounds one report (a pool where many views changed at
// once); the changes left out are in the views, which the next periodic
// report covers only for the ring: a peer's death is reported by every
// member that sees it, so enough reach the hub.
const maxReportedPeers = 512

// ringSuccessors returns the n live hosts of views that follow self on
// the ring of hashed host ids (fewer when the pool is smaller).
func ringSuccessors(self string, views map[string]peerView, n int) []string {
	type point struct {
		h  uint64
		id string
	}
	pos := ringHash(self)
	// The n smallest distances forward from self, wrapping around.
	best := make([]point, 0, n+1)
	for id, v := range views {
		if !v.alive {
			continue // reported when it died
		}
		p := point{ringHash(id) - pos, id} // wraps: the distance forward on the ring
		i := len(best)
		for i > 0 && (p.h < best[i-1].h || p.h == best[i-1].h && p.id < best[i-1].id) {
			i--
		}
		if i < n {
			best = slices.Insert(best, i, p)[:min(len(best)+1, n)]
		}
	}
	out := make([]string, len(best))
	for i, p := range best {
		out[i] = p.id
	}
	return out
}

func ringHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

func (g *Member) set(n *memberlist.Node, alive bool) {
	if n.Name == g.self {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// A death, or a recovery from one, is reported at once; a peer that
	// joins waits for the ring's periodic reports (a pool's every member
	// sees every join: reporting them all would make the hub's work grow
	// with the square of the pool).
	if old, ok := g.views[n.Name]; ok && old.alive != alive || !ok && !alive {
		g.changed[n.Name] = true
	}
	g.views[n.Name] = peerView{alive: alive, at: time.Now()}
}

// Stop leaves without a goodbye: to peers a stopped agent looks like a
// crashed one, which is what it is to the instances it ran.
func (g *Member) Stop() { g.ml.Shutdown() }

type gossipEvents struct{ g *Member }

func (e gossipEvents) NotifyJoin(n *memberlist.Node)   { e.g.set(n, true) }
func (e gossipEvents) NotifyLeave(n *memberlist.Node)  { e.g.set(n, false) }
func (e gossipEvents) NotifyUpdate(n *memberlist.Node) { e.g.set(n, true) }

// logWriter turns memberlist's log lines into debug records.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Debug(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// LoadKey reads the pool's key kept in dir (nil when there is none).
func LoadKey(dir string) []byte {
	b, err := os.ReadFile(filepath.Join(dir, FileKey))
	if err != nil || len(b) != 32 {
		return nil
	}
	return b
}

// SaveKey keeps the pool's key in dir.
func SaveKey(dir string, key []byte) error {
	if bytes.Equal(LoadKey(dir), key) {
		return nil
	}
	return atomicfile.Write(filepath.Join(dir, FileKey), key, 0o600)
}

var _ io.Writer = logWriter{}

// Peers is how many pool peers the gossip sees alive.
func (g *Member) Peers() int { return max(0, g.ml.NumMembers()-1) }
