package gateway

import (
	"crypto/hkdf"
	"crypto/sha256"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// peerReport records what an agent's gossip says of its pool peers. Only
// hosts of the reporter's own pool count; views of itself are ignored.
func (g *Gateway) peerReport(from pki.AgentIdentity, r *wire.GossipReport) {
	if len(r.Peers) > maxPeerViews {
		r.Peers = r.Peers[:maxPeerViews]
	}
	snap := g.cfg.Store.Snapshot()
	now := g.cfg.Now()
	g.seenMu.Lock()
	defer g.seenMu.Unlock()
	for _, p := range r.Peers {
		if p.HostId == from.HostID || (p.State != "alive" && p.State != "dead") {
			continue
		}
		if h, _ := snap.Host(nil, p.HostId); h == nil || h.Pool != from.Pool {
			continue
		}
		w := g.peers[p.HostId]
		if w == nil {
			w = &peerWord{}
			g.peers[p.HostId] = w
		}
		if p.State == "alive" {
			w.alive = now
		} else {
			w.dead = now
		}
	}
}

// maxJoinPeers is how many pool peers a Welcome names for the agent's
// gossip to join; gossip spreads the rest.
const maxJoinPeers = 5

// poolGossip returns the gossip key of the agent's pool (derived from the
// agent CA's key, so every hub node derives the same one and no other pool
// or cluster can join) and a few of its peers' gossip addresses.
func (g *Gateway) poolGossip(id pki.AgentIdentity) ([]byte, []string) {
	rec, err := g.cfg.Store.Snapshot().AgentCA(nil)
	if err != nil || rec == nil {
		return nil, nil
	}
	key, err := hkdf.Key(sha256.New, rec.KeyPEM, nil, "wharf pool gossip "+id.Pool, 32)
	if err != nil {
		return nil, nil
	}
	return key, g.poolPeers(id)
}

// poolPeers returns up to maxJoinPeers gossip addresses of other hosts of
// the agent's pool, picked at random, or none when the agent itself runs
// no gossip.
func (g *Gateway) poolPeers(id pki.AgentIdentity) []string {
	snap := g.cfg.Store.Snapshot()
	if self, _ := snap.Host(nil, id.HostID); self == nil || self.Inventory.GossipAddr == "" {
		return nil
	}
	l := g.gossipPeers(snap, id.Pool)
	n := len(l.ids)
	var peers []string
	if n <= 2*maxJoinPeers {
		// A small pool: a pass over it (reservoir sampling).
		seen := 0
		for i, h := range l.ids {
			if h == id.HostID {
				continue
			}
			seen++
			if len(peers) < maxJoinPeers {
				peers = append(peers, l.addrs[i])
			} else if j := mrand.IntN(seen); j < maxJoinPeers {
				peers[j] = l.addrs[i]
			}
		}
		return peers
	}
	// A large one: distinct random picks, past the agent itself.
	picked := make([]int, 0, maxJoinPeers)
	for len(picked) < maxJoinPeers {
		i := mrand.IntN(n)
		if l.ids[i] == id.HostID || slices.Contains(picked, i) {
			continue
		}
		picked = append(picked, i)
		peers = append(peers, l.addrs[i])
	}
	return peers
}

// peerList is a pool's hosts that run gossip and are not down, as of a
// store index.
type peerList struct {
	index      uint64 // the hosts table's
	built      time.Time
	ids, addrs []string
}

// peerListMaxAge is how long a pool's peer list is used after the hosts
// table changed. Every agent asks for peers in its first heartbeats and
// every tenth after, and a pass over a pool of 10,000 hosts took ~0.9 ms:
// at 10,000 agents, most of a core, and more after a restart, when all of
// them ask at once. The peers only seed the gossip, which finds the rest;
// one a second old is as good a seed.
const peerListMaxAge = time.Second

// gossipPeers returns pool's peer list, built again from snap when the
// hosts changed and the list is older than peerListMaxAge.
func (g *Gateway) gossipPeers(snap *state.Snapshot, pool string) *peerList {
	idx, now := snap.Index(state.TableHosts), g.cfg.Now()
	g.gossipMu.Lock()
	defer g.gossipMu.Unlock()
	l := g.gossipLists[pool]
	if l != nil && (l.index == idx || now.Sub(l.built) < peerListMaxAge) {
		return l
	}
	hosts, _ := snap.PoolHosts(nil, pool)
	l = &peerList{index: idx, built: now}
	for _, h := range hosts {
		if h.Inventory.GossipAddr != "" && h.State != state.HostDown {
			l.ids = append(l.ids, h.ID)
			l.addrs = append(l.addrs, h.Inventory.GossipAddr)
		}
	}
	if g.gossipLists == nil {
		g.gossipLists = map[string]*peerList{}
	}
	g.gossipLists[pool] = l
	return l
}
