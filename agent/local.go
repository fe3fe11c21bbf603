package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health is what GET /healthz on the agent's local address answers.
type Health struct {
	HostID    string   `json:"host_id"`
	Connected bool     `json:"connected"`
	Acked     uint64   `json:"heartbeats_acked"`
	Hubs      []string `json:"hubs"`
	Gossip    string   `json:"gossip_addr,omitempty"`
	// GossipPeers is how many pool peers the gossip sees alive.
	GossipPeers int `json:"gossip_peers"`
	// Hub is the gateway address of the hub node the agent is connected
	// to ("" when it is not).
	Hub string `json:"hub,omitempty"`
	// LogsUnacked is how many captured lines the hub has not acknowledged
	// yet; LogsDropped how many the full buffer dropped, not yet reported.
	LogsUnacked uint64 `json:"logs_unacked"`
	// LogsCaptured counts the instance output lines captured since the
	// agent started.
	LogsCaptured uint64 `json:"logs_captured"`
	LogsDropped  uint64 `json:"logs_dropped"`
}

// localHandler serves /healthz (200 while connected to a hub node, 503
// otherwise) and /metrics (Prometheus).
func (a *Agent) localHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wharf_agent_connected", Help: "1 while the agent is connected to a hub node."},
		func() float64 {
			if a.connected.Load() {
				return 1
			}
			return 0
		}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "wharf_agent_heartbeats_acked_total", Help: "Heartbeats the hub acknowledged."},
		func() float64 { return float64(a.acked.Load()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "wharf_agent_cert_rotations_total", Help: "Certificate renewals."},
		func() float64 { return float64(a.id.Rotations()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wharf_agent_cert_not_after_seconds", Help: "When the agent's certificate expires (unix seconds)."},
		func() float64 {
			if id := a.id.Current(); id != nil && id.Cert.Leaf != nil {
				return float64(id.Cert.Leaf.NotAfter.Unix())
			}
			return 0
		}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wharf_agent_gossip_peers", Help: "Pool peers the gossip sees alive."},
		func() float64 { return float64(a.gossipPeers()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wharf_agent_logs_unacked", Help: "Captured log lines the hub has not acknowledged yet."},
		func() float64 {
			h := a.host.Load()
			if h == nil {
				return 0
			}
			return float64(h.buf.Stats().Unacked)
		}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		h := Health{HostID: a.HostID(), Connected: a.connected.Load(), Acked: a.acked.Load(), Hubs: a.Hubs(), Gossip: a.GossipAddr(), GossipPeers: a.gossipPeers()}
		if h.Connected {
			h.Hub, _ = a.hub.Load().(string)
		}
		if host := a.host.Load(); host != nil {
			st := host.buf.Stats()
			h.LogsUnacked, h.LogsDropped, h.LogsCaptured = st.Unacked, st.Dropped, host.logs.Captured()
		}
		w.Header().Set("Content-Type", "application/json")
		if !h.Connected {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(h)
	})
	return mux
}

// serveLocal serves the local endpoints on Config.LocalAddr until ctx
// ends.
func (a *Agent) serveLocal(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.LocalAddr)
	if err != nil {
		return fmt.Errorf("--local-addr: %w", err)
	}
	srv := &http.Server{Handler: a.localHandler(), ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Warn("local endpoint", "err", err)
	}
	return nil
}

// LogsCaptured counts the instance output lines captured since the agent
// started (0 without a driver).
func (a *Agent) LogsCaptured() uint64 {
	if h := a.host.Load(); h != nil {
		return h.logs.Captured()
	}
	return 0
}
