package series

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Agents' metrics samples reach the node their agent is connected to; it
// relays them to the leader once a second, which keeps the series for the
// API and alerts and exposes the latest values on /metrics (Collector).

// Cluster is what the relay needs of the cluster.
type Cluster interface {
	IsLeader() bool
	cluster.LeaderCaller
}

type batch struct {
	Host   string              `json:"host"`
	Report *wire.MetricsReport `json:"report"`
}

// maxPending bounds the reports a node holds while the leader is away.
const maxPending = 10_000

// query selects series: an app's instances ("tenant/app") or a host.
type query struct {
	App  string `json:"app,omitempty"`
	Host string `json:"host,omitempty"`
	From int64  `json:"from"`
	To   int64  `json:"to"`
	Step int64  `json:"step_ms"`
}

var (
	addRPC   = cluster.RPC[[]batch, struct{}]{Name: "metrics", Req: cluster.JSON[[]batch]{}, Resp: cluster.None{}, MaxBody: 64 << 20}
	queryRPC = cluster.RPC[query, []apitypes.MetricSeries]{Name: "metrics-query", Req: cluster.JSON[query]{}, Resp: cluster.JSON[[]apitypes.MetricSeries]{}, MaxBody: 4096}
)

// Service relays this node's samples to the leader and, on the leader,
// keeps the series.
type Service struct {
	cl    Cluster
	log   *slog.Logger
	store *Store // the series, while this node leads

	mu      sync.Mutex
	pending []batch
}

// NewService returns the node's metrics service.
func NewService(cl Cluster, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cl: cl, log: log, store: NewStore(0)}
}

// Store is the leader's series (empty on followers).
func (s *Service) Store() *Store { return s.store }

// Handlers are the service's RPCs, for cluster.Cluster.Handle.
func (s *Service) Handlers() []cluster.Handler {
	return []cluster.Handler{
		addRPC.Serve(func(_ context.Context, bs []batch) (struct{}, error) {
			s.add(bs)
			return struct{}{}, nil
		}),
		queryRPC.Serve(func(_ context.Context, q query) ([]apitypes.MetricSeries, error) {
			return s.query(q), nil
		}),
	}
}

// Report takes one agent's samples (from the gateway).
func (s *Service) Report(from pki.AgentIdentity, r *wire.MetricsReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) < maxPending {
		s.pending = append(s.pending, batch{Host: from.HostID, Report: r})
	}
}

// Run hands this node's samples to the leader once a second until ctx
// ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.mu.Lock()
		bs := s.pending
		s.pending = nil
		s.mu.Unlock()
		if len(bs) == 0 {
			continue
		}
		if s.cl.IsLeader() {
			s.add(bs)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := addRPC.CallLeader(cctx, s.cl, bs); err != nil && ctx.Err() == nil {
			s.log.Debug("metrics relay", "err", err) // telemetry: dropped, not retried
		}
		cancel()
	}
}

// add stores batches in the leader's series.
func (s *Service) add(bs []batch) {
	for _, b := range bs {
		r := b.Report
		if r == nil {
			continue
		}
		if hm := r.Host; hm != nil {
			s.store.Add(Owner{Kind: "host", ID: b.Host}, time.UnixMilli(r.UnixMs), map[string]float64{
				"wharf_host_cpu_seconds_total": hm.CpuSeconds, "wharf_host_memory_total_bytes": float64(hm.MemoryTotal),
				"wharf_host_memory_used_bytes": float64(hm.MemoryUsed), "wharf_host_disk_total_bytes": float64(hm.DiskTotal),
				"wharf_host_disk_used_bytes": float64(hm.DiskUsed), "wharf_host_network_receive_bytes_total": float64(hm.NetRxBytes),
				"wharf_host_network_transmit_bytes_total": float64(hm.NetTxBytes)})
		}
		for _, i := range r.Instances {
			at := time.UnixMilli(i.UnixMs)
			if i.UnixMs == 0 {
				at = time.UnixMilli(r.UnixMs)
			}
			s.store.Add(Owner{Kind: "instance", ID: i.Instance, App: i.Tenant + "/" + i.App, Tenant: i.Tenant, Host: b.Host}, at, map[string]float64{
				CPUSeconds: i.CpuSeconds, MemoryWorkingSet: float64(i.MemoryWorkingSet), MemoryUsage: float64(i.MemoryUsage),
				NetRx: float64(i.NetRxBytes), NetTx: float64(i.NetTxBytes), FsUsage: float64(i.FsUsageBytes)})
		}
	}
}

func (s *Service) query(q query) []apitypes.MetricSeries {
	match := func(o Owner) bool {
		if q.App != "" {
			return o.Kind == "instance" && o.App == q.App
		}
		return o.Kind == "host" && o.ID == q.Host
	}
	out := []apitypes.MetricSeries{}
	for _, ser := range s.store.Query(match, time.Unix(q.From, 0), time.Unix(q.To, 0), time.Duration(q.Step)*time.Millisecond) {
		ms := apitypes.MetricSeries{ID: ser.ID, Host: ser.Host, Metrics: map[string][]apitypes.MetricPoint{}}
		for m, pts := range ser.Metrics {
			for _, p := range pts {
				ms.Metrics[m] = append(ms.Metrics[m], apitypes.MetricPoint{T: p.Unix, V: p.Value})
			}
		}
		out = append(out, ms)
	}
	return out
}

// Query answers the API's metric reads (an app's "tenant/app" instances,
// or a host) from the leader's series.
func (s *Service) Query(ctx context.Context, app, host string, from, to time.Time, step time.Duration) ([]apitypes.MetricSeries, error) {
	q := query{App: app, Host: host, From: from.Unix(), To: to.Unix(), Step: step.Milliseconds()}
	if s.cl.IsLeader() {
		return s.query(q), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return queryRPC.CallLeader(ctx, s.cl, q)
}
