package hub

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The hub's own internals on /metrics: Raft, the agent gateway and the
// planner (the API's request latencies are registered by hub/api, the log
// intake by logs.go).

// planMetrics count the planner's work while this node leads.
type planMetrics struct {
	rounds, commits, conflicts, failures, placed, stopped atomic.Uint64
	build                                                 prometheus.Histogram
}

func newPlanMetrics() *planMetrics {
	return &planMetrics{build: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "wharf_planner_round_seconds", Help: "Time the leader's planner took to build a plan (one round).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
	})}
}

func (h *Hub) registerInternals(reg prometheus.Registerer) {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	p := h.plans
	reg.MustRegister(p.build,
		counter("wharf_planner_rounds_total", "Planner rounds on this node (while it led).", &p.rounds),
		counter("wharf_planner_plans_committed_total", "Plans committed through Raft.", &p.commits),
		counter("wharf_planner_plans_conflicted_total", "Plans the FSM refused as stale (planned again).", &p.conflicts),
		counter("wharf_planner_plans_failed_total", "Plans that could not be committed (no quorum, timeout).", &p.failures),
		counter("wharf_planner_instances_placed_total", "Instances placed by committed plans.", &p.placed),
		counter("wharf_planner_instances_stopped_total", "Instances stopped by committed plans.", &p.stopped),
	)
	gw := func(name, help string, kind prometheus.ValueType, f func() float64) prometheus.Collector {
		if kind == prometheus.CounterValue {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
		}
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(
		gw("wharf_gateway_connections_total", "Agent QUIC connections this node accepted.", prometheus.CounterValue,
			func() float64 { return float64(h.gateway.Stats().Connections) }),
		gw("wharf_gateway_heartbeats_total", "Agent heartbeats this node received.", prometheus.CounterValue,
			func() float64 { return float64(h.gateway.Stats().Heartbeats) }),
		gw("wharf_gateway_log_batches_total", "Agent log batches this node received.", prometheus.CounterValue,
			func() float64 { return float64(h.gateway.Stats().LogBatches) }),
		gw("wharf_gateway_agents", "Agents that sent this node a heartbeat within 10 s.", prometheus.GaugeValue,
			func() float64 { return float64(h.gateway.Stats().Agents) }),
	)
	raftNum := func(key string) func() float64 {
		return func() float64 {
			v, _ := strconv.ParseFloat(h.cluster.RaftStats()[key], 64)
			return v
		}
	}
	reg.MustRegister(
		gw("wharf_raft_leader", "1 while this node is the Raft leader.", prometheus.GaugeValue, func() float64 {
			if h.cluster.IsLeader() {
				return 1
			}
			return 0
		}),
		gw("wharf_raft_term", "Current Raft term.", prometheus.GaugeValue, raftNum("term")),
		gw("wharf_raft_last_log_index", "Index of the last entry in this node's Raft log.", prometheus.GaugeValue, raftNum("last_log_index")),
		gw("wharf_raft_commit_index", "Highest Raft index known committed.", prometheus.GaugeValue, raftNum("commit_index")),
		gw("wharf_raft_applied_index", "Highest Raft index applied to this node's state.", prometheus.GaugeValue, raftNum("applied_index")),
		gw("wharf_raft_peers", "Other voters in the Raft configuration.", prometheus.GaugeValue, raftNum("num_peers")),
		gw("wharf_raft_last_contact_seconds", "Since this node last heard from the leader (0 on the leader).", prometheus.GaugeValue, func() float64 {
			d, err := time.ParseDuration(h.cluster.RaftStats()["last_contact"]) // "0" on the leader, "never" before any
			if err != nil {
				return 0
			}
			return d.Seconds()
		}),
	)
}
