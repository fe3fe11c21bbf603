package cluster

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Register exports this node's Raft figures on reg (the hub's /metrics).
func (c *Cluster) Register(reg prometheus.Registerer) {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	raftNum := func(key string) func() float64 {
		return func() float64 {
			v, _ := strconv.ParseFloat(c.RaftStats()[key], 64)
			return v
		}
	}
	reg.MustRegister(
		gauge("wharf_raft_leader", "1 while this node is the Raft leader.", func() float64 {
			if c.IsLeader() {
				return 1
			}
			return 0
		}),
		gauge("wharf_raft_term", "Current Raft term.", raftNum("term")),
		gauge("wharf_raft_last_log_index", "Index of the last entry in this node's Raft log.", raftNum("last_log_index")),
		gauge("wharf_raft_commit_index", "Highest Raft index known committed.", raftNum("commit_index")),
		gauge("wharf_raft_applied_index", "Highest Raft index applied to this node's state.", raftNum("applied_index")),
		gauge("wharf_raft_peers", "Other voters in the Raft configuration.", raftNum("num_peers")),
		gauge("wharf_raft_last_contact_seconds", "Since this node last heard from the leader (0 on the leader).", func() float64 {
			d, err := time.ParseDuration(c.RaftStats()["last_contact"]) // "0" on the leader, "never" before any
			if err != nil {
				return 0
			}
			return d.Seconds()
		}),
	)
}
