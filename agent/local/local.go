// Package local serves the agent's local endpoints: GET /healthz (200
// while connected to a hub node, 503 otherwise, with what the agent
// knows of its hubs, gossip and log buffer) and GET /metrics
// (Prometheus).
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health is what GET /healthz answers.
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

// Status is the agent as the endpoints show it: its health, and what
// only /metrics shows.
type Status struct {
	Health
	// CertRotations counts certificate renewals; CertNotAfter is when
	// the certificate in use expires (zero before enrolment).
	CertRotations uint64
	CertNotAfter  time.Time
}

// Handler serves /healthz and /metrics from what status returns at each
// request.
func Handler(status func() Status) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gauge := func(name, help string, f func(Status) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(status()) }))
	}
	counter := func(name, help string, f func(Status) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(status()) }))
	}
	gauge("wharf_agent_connected", "1 while the agent is connected to a hub node.", func(s Status) float64 {
		if s.Connected {
			return 1
		}
		return 0
	})
	counter("wharf_agent_heartbeats_acked_total", "Heartbeats the hub acknowledged.", func(s Status) float64 { return float64(s.Acked) })
	counter("wharf_agent_cert_rotations_total", "Certificate renewals.", func(s Status) float64 { return float64(s.CertRotations) })
	gauge("wharf_agent_cert_not_after_seconds", "When the agent's certificate expires (unix seconds).", func(s Status) float64 {
		if s.CertNotAfter.IsZero() {
			return 0
		}
		return float64(s.CertNotAfter.Unix())
	})
	gauge("wharf_agent_gossip_peers", "Pool peers the gossip sees alive.", func(s Status) float64 { return float64(s.GossipPeers) })
	gauge("wharf_agent_logs_unacked", "Captured log lines the hub has not acknowledged yet.", func(s Status) float64 { return float64(s.LogsUnacked) })
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		h := status().Health
		w.Header().Set("Content-Type", "application/json")
		if !h.Connected {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(h)
	})
	return mux
}

// Serve serves the endpoints on addr until ctx ends. Only a taken or bad
// address is an error; a failure while serving is logged, and the agent
// goes on without its endpoints.
func Serve(ctx context.Context, addr string, status func() Status, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--local-addr: %w", err)
	}
	srv := &http.Server{Handler: Handler(status), ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("local endpoint", "err", err)
	}
	return nil
}
