package cluster

import (
	"github.com/hashicorp/raft"

	"github.com/wharf-platform/wharf/hub/state"
)

// Log entry formats in a cluster upgraded one node at a time: each node
// publishes the newest format its FSM reads (Meta.Entries), commands are
// written in the newest format every voter reads (EntryFormat), and once
// the voters read a format no node that reads less becomes a voter
// (admitVoter): it would fail on entries the log already holds. Going
// back to an older version after every node ran a newer one is not
// supported, as in most replicated stores.

// EntryFormat returns the newest log entry format every voter reads. A
// voter gossip says nothing of (not heard from yet, or a version before
// formats were published) counts as 1: JSON, which every version reads;
// so does a node that is not a voter in its own copy of the
// configuration (one that has not caught up with the cluster yet cannot
// tell who the voters are). The API asks on every write.
func (c *Cluster) EntryFormat() int {
	f := c.raft.GetConfiguration()
	if f.Error() != nil {
		return state.FormatJSON
	}
	c.membersMu.Lock()
	defer c.membersMu.Unlock()
	low, self := c.cfg.EntryFormat, false
	for _, s := range f.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		if string(s.ID) == c.cfg.NodeID {
			self = true
			continue
		}
		g, _ := c.memberFormat(string(s.ID))
		low = min(low, max(g, state.FormatJSON))
	}
	if !self {
		return state.FormatJSON
	}
	return low
}

// memberFormat returns the format the live member id publishes (0: none
// published) and whether gossip knows it alive. c.membersMu is held.
func (c *Cluster) memberFormat(id string) (int, bool) {
	for _, m := range c.members {
		if m.ID == id && m.Alive {
			return m.Entries, true
		}
	}
	return 0, false
}

// admitVoter says whether a node that reads log entries up to format f
// may become a voter of configuration servers. It may when it reads this
// node's format, or when a voter known to read no more than it does is
// still in the cluster (an upgrade under way, so nothing newer than f was
// written). A voter gossip says nothing of does not count as older: it
// may be a node of this version not heard from yet.
func (c *Cluster) admitVoter(id string, f int, servers []raft.Server) bool {
	f = max(f, 1)
	if f >= c.cfg.EntryFormat {
		return true
	}
	c.membersMu.Lock()
	defer c.membersMu.Unlock()
	for _, s := range servers {
		if s.Suffrage != raft.Voter || string(s.ID) == id || string(s.ID) == c.cfg.NodeID {
			continue
		}
		if g, ok := c.memberFormat(string(s.ID)); ok && max(g, 1) <= f {
			return true
		}
	}
	return false
}
