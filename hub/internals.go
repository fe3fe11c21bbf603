package hub

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The hub's own internals on /metrics: Raft and the agent gateway (the
// API's request latencies are registered by hub/api, the planner's by
// hub/planner, the log intake's by hub/logs).

// counter exports v as a Prometheus counter.
func counter(name, help string, v *atomic.Uint64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
}

func gauge(name, help string, f func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
}

func (h *Hub) registerInternals(reg prometheus.Registerer) {
	gs := h.gateway.Counters()
	reg.MustRegister(
		counter("wharf_gateway_connections_total", "Agent QUIC connections this node accepted.", gs.Connections),
		counter("wharf_gateway_heartbeats_total", "Agent heartbeats this node received.", gs.Heartbeats),
		counter("wharf_gateway_log_batches_total", "Agent log batches this node received.", gs.LogBatches),
		gauge("wharf_gateway_agents", "Agents that sent this node a heartbeat within 10 s.", func() float64 { return float64(h.gateway.Agents()) }),
	)
	raftNum := func(key string) func() float64 {
		return func() float64 {
			v, _ := strconv.ParseFloat(h.cluster.RaftStats()[key], 64)
			return v
		}
	}
	reg.MustRegister(
		gauge("wharf_raft_leader", "1 while this node is the Raft leader.", func() float64 {
			if h.cluster.IsLeader() {
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
			d, err := time.ParseDuration(h.cluster.RaftStats()["last_contact"]) // "0" on the leader, "never" before any
			if err != nil {
				return 0
			}
			return d.Seconds()
		}),
	)
}
