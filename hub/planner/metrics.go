package planner

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count the planner's work on this node, across its terms as
// leader.
type Metrics struct {
	rounds, commits, conflicts, failures, placed, stopped atomic.Uint64
	build                                                 prometheus.Histogram
}

// NewMetrics returns zeroed counters.
func NewMetrics() *Metrics {
	return &Metrics{build: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "wharf_planner_round_seconds", Help: "Time the leader's planner took to build a plan (one round).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
	})}
}

// Register exports the counters on reg.
func (m *Metrics) Register(reg prometheus.Registerer) {
	reg.MustRegister(m.build,
		counter("wharf_planner_rounds_total", "Planner rounds on this node (while it led).", &m.rounds),
		counter("wharf_planner_plans_committed_total", "Plans committed through Raft.", &m.commits),
		counter("wharf_planner_plans_conflicted_total", "Plans the FSM refused as stale (planned again).", &m.conflicts),
		counter("wharf_planner_plans_failed_total", "Plans that could not be committed (no quorum, timeout).", &m.failures),
		counter("wharf_planner_instances_placed_total", "Instances placed by committed plans.", &m.placed),
		counter("wharf_planner_instances_stopped_total", "Instances stopped by committed plans.", &m.stopped),
	)
}

func counter(name, help string, v *atomic.Uint64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
}
