package cluster

import (
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

func sortServers(s []raft.Server) {
	sort.Slice(s, func(i, j int) bool { return s[i].ID < s[j].ID })
}

// reconcile runs on the leader: alive hub nodes that are not voters are
// added; voters not alive in gossip are removed after DeadServerGrace.
func (c *Cluster) reconcile() {
	if !c.leaderReady.Load() {
		return
	}
	f := c.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	servers := f.Configuration().Servers
	inConfig := map[raft.ServerID]raft.ServerAddress{}
	for _, s := range servers {
		inConfig[s.ID] = s.Address
	}
	alive := map[raft.ServerID]bool{}
	for _, m := range c.Members() {
		id := raft.ServerID(m.ID)
		if !m.Alive {
			continue
		}
		alive[id] = true
		if addr, ok := inConfig[id]; !ok || addr != raft.ServerAddress(m.RaftAddr) {
			if !c.admitVoter(m.ID, m.Entries, servers) {
				if f, ok := c.refused[id]; !ok || f != m.Entries {
					c.refused[id] = m.Entries
					c.log.Warn("hub node not added as voter: it reads log entries up to format "+strconv.Itoa(max(m.Entries, 1))+
						" and the cluster writes newer ones; run this version on it", "node", m.Name, "cluster_format", c.cfg.EntryFormat)
				}
				continue
			}
			delete(c.refused, id)
			c.log.Info("adding hub node as voter", "node", m.Name, "addr", m.RaftAddr)
			if err := c.raft.AddVoter(id, raft.ServerAddress(m.RaftAddr), 0, 10*time.Second).Error(); err != nil {
				c.log.Warn("add voter", "node", m.Name, "err", err)
			}
		}
	}
	now := time.Now()
	for id := range inConfig {
		if id == raft.ServerID(c.cfg.NodeID) || alive[id] {
			delete(c.deadSince, id)
			continue
		}
		since, ok := c.deadSince[id]
		if !ok {
			c.deadSince[id] = now
			since = now
		}
		if now.Sub(since) >= c.cfg.DeadServerGrace {
			c.log.Info("removing hub node", "id", id, "dead_for", now.Sub(since).Round(time.Second))
			if err := c.raft.RemoveServer(id, 0, 10*time.Second).Error(); err != nil {
				c.log.Warn("remove server", "id", id, "err", err)
				continue
			}
			delete(c.deadSince, id)
		}
	}
}
