package gateway

import (
	"crypto/hkdf"
	"crypto/sha256"
	mrand "math/rand/v2"

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
	hosts, _ := snap.PoolHosts(nil, id.Pool)
	var peers []string
	// Reservoir sampling: one pass, no copy of a large pool.
	seen := 0
	for _, h := range hosts {
		if h.ID == id.HostID || h.Inventory.GossipAddr == "" || h.State == state.HostDown {
			continue
		}
		seen++
		if len(peers) < maxJoinPeers {
			peers = append(peers, h.Inventory.GossipAddr)
		} else if j := mrand.IntN(seen); j < maxJoinPeers {
			peers[j] = h.Inventory.GossipAddr
		}
	}
	return peers
}
