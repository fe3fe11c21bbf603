package hub

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/hub/traffic"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Routers' access counts reach the gateway node their agent is connected
// to; each node relays them to the leader once a second, where they are
// summed (traffic.Store) for `wharf app stats` and QPS autoscaling.
const (
	rpcTraffic      = "traffic"
	rpcTrafficQuery = "traffic-query"
)

// maxPendingSeconds bounds what a node holds while the leader is away.
const maxPendingSeconds = 100_000

type trafficRelay struct {
	mu      sync.Mutex
	pending []traffic.Second
	metrics []metricsBatch
}

// accessStats is the gateway's callback: one router's report.
func (h *Hub) accessStats(from pki.AgentIdentity, s *wire.AccessStats) {
	h.relay.mu.Lock()
	defer h.relay.mu.Unlock()
	for _, x := range s.Seconds {
		if len(h.relay.pending) >= maxPendingSeconds {
			return
		}
		h.relay.pending = append(h.relay.pending, traffic.Second{App: x.App, Unix: x.Unix, Requests: x.Requests, Status: x.Status,
			BytesOut: x.BytesOut, Latency: x.Latency, BoundsMs: x.LatencyBoundsMs})
	}
}

// relayTraffic sends what this node's routers reported to the leader.
func (h *Hub) relayTraffic(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		h.relay.mu.Lock()
		batch, mbatch := h.relay.pending, h.relay.metrics
		h.relay.pending, h.relay.metrics = nil, nil
		h.relay.mu.Unlock()
		if len(mbatch) > 0 {
			h.relayMetrics(ctx, mbatch)
		}
		if len(batch) == 0 {
			continue
		}
		if h.cluster.IsLeader() {
			h.traffic.Add(time.Now(), batch)
			continue
		}
		body, err := json.Marshal(batch)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := h.cluster.CallLeader(cctx, rpcTraffic, body); err != nil && ctx.Err() == nil {
			h.log.Debug("traffic relay", "err", err) // telemetry: dropped, not retried
		}
		cancel()
	}
}

func (h *Hub) trafficHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []traffic.Second
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.traffic.Add(time.Now(), batch)
	})
}

type trafficQuery struct {
	App   string `json:"app"`
	Since int64  `json:"since"`
}

func (h *Hub) trafficQueryHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var q trafficQuery
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(h.traffic.Since(q.App, time.Unix(q.Since, 0)))
	})
}

// appTraffic answers GET /v1/apps/{name}/stats from the leader's store.
func (h *Hub) appTraffic(ctx context.Context, app string, since time.Time) ([]apitypes.TrafficSecond, error) {
	if h.cluster.IsLeader() {
		return h.traffic.Since(app, since), nil
	}
	body, err := json.Marshal(trafficQuery{App: app, Since: since.Unix()})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := h.cluster.CallLeader(ctx, rpcTrafficQuery, body)
	if err != nil {
		return nil, err
	}
	var secs []apitypes.TrafficSecond
	err = json.Unmarshal(out, &secs)
	return secs, err
}

// relayMetrics hands samples to the leader's series.
func (h *Hub) relayMetrics(ctx context.Context, batch []metricsBatch) {
	if h.cluster.IsLeader() {
		h.addMetrics(batch)
		return
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := h.cluster.CallLeader(cctx, rpcMetrics, body); err != nil && ctx.Err() == nil {
		h.log.Debug("metrics relay", "err", err) // telemetry: dropped, not retried
	}
}
