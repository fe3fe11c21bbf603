package gateway

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Register exports the gateway's counts on reg (the hub's /metrics).
func (g *Gateway) Register(reg prometheus.Registerer) {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	reg.MustRegister(
		counter("wharf_gateway_connections_total", "Agent QUIC connections this node accepted.", &g.connections),
		counter("wharf_gateway_heartbeats_total", "Agent heartbeats this node received.", &g.heartbeats),
		counter("wharf_gateway_log_batches_total", "Agent log batches this node received.", &g.logBatches),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wharf_gateway_agents", Help: "Agents that sent this node a heartbeat within 10 s."},
			func() float64 { return float64(g.Agents()) }),
	)
}
