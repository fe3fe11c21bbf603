package logs

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-platform/wharf/hub/logstore"
)

// Counts count this node's log intake.
type Counts struct {
	accepted, refused, replicated, replicaFailed atomic.Uint64
}

// Register exports the counts, and the size of store, on reg.
func (c *Counts) Register(reg prometheus.Registerer, store *logstore.Store) {
	reg.MustRegister(
		counter("wharf_hub_log_lines_accepted_total", "Log lines this node's agents shipped and it acknowledged.", &c.accepted),
		counter("wharf_hub_log_lines_refused_total", "Log lines refused (not an instance of the agent, or invalid).", &c.refused),
		counter("wharf_hub_log_batches_replicated_total", "Log batches copied to a second node before the ack.", &c.replicated),
		counter("wharf_hub_log_replication_failures_total", "Log batches no second node took (the agent resends them).", &c.replicaFailed),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wharf_hub_log_store_bytes", Help: "Bytes of this node's log store."},
			func() float64 { return float64(store.Stats().Bytes) }),
	)
}

func counter(name, help string, v *atomic.Uint64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
}
