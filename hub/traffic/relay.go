package traffic

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

// Routers' access counts reach the gateway node their agent is connected
// to; each node relays them to the leader once a second, where they are
// summed (Store) for `wharf app stats`, alerts, drills and QPS autoscaling.

// Cluster is what the relay needs of the cluster.
type Cluster interface {
	IsLeader() bool
	cluster.LeaderCaller
}

// maxPendingSeconds bounds what a node holds while the leader is away.
const maxPendingSeconds = 100_000

var (
	addRPC   = cluster.RPC[[]Second, struct{}]{Name: "traffic", Req: cluster.JSON[[]Second]{}, Resp: cluster.None{}, MaxBody: 64 << 20}
	queryRPC = cluster.RPC[query, []Second]{Name: "traffic-query", Req: cluster.JSON[query]{}, Resp: cluster.JSON[[]Second]{}, MaxBody: 4096}
)

type query struct {
	App   string `json:"app"`
	Since int64  `json:"since"`
}

// Service relays this node's counts to the leader and, on the leader,
// keeps the sums.
type Service struct {
	cl  Cluster
	log *slog.Logger
	sum Store // the sums, while this node leads

	mu      sync.Mutex
	pending []Second
	// bursts holds the signals for the autoscaler (Bursts); toLeader a
	// follower's on their way to the leader.
	bursts   chan Burst
	toLeader chan []Burst
}

// NewService returns the node's traffic service.
func NewService(cl Cluster, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cl: cl, log: log}
}

// Handlers are the service's RPCs, for cluster.Cluster.Handle.
func (s *Service) Handlers() []cluster.Handler {
	return []cluster.Handler{
		addRPC.Serve(func(_ context.Context, batch []Second) (struct{}, error) {
			s.sum.Add(time.Now(), batch)
			return struct{}{}, nil
		}),
		queryRPC.Serve(func(_ context.Context, q query) ([]Second, error) {
			return s.sum.Since(q.App, time.Unix(q.Since, 0)), nil
		}),
		s.burstHandler(),
	}
}

// Store is the leader's sums (empty on followers).
func (s *Service) Store() *Store { return &s.sum }

// Report takes one router's report (from the gateway).
func (s *Service) Report(_ pki.AgentIdentity, a *wire.AccessStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range a.Seconds {
		if len(s.pending) >= maxPendingSeconds {
			return
		}
		s.pending = append(s.pending, Second{App: x.App, Unix: x.Unix, Requests: x.Requests, Status: x.Status,
			BytesOut: x.BytesOut, Latency: x.Latency, BoundsMs: x.LatencyBoundsMs, Held: x.Held})
	}
}

// Run sends what this node's routers reported to the leader, once a
// second (their bursts at once), until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() { defer close(done); s.relayBursts(ctx) }()
	defer func() { <-done }()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		s.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		if s.cl.IsLeader() {
			s.sum.Add(time.Now(), batch)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := addRPC.CallLeader(cctx, s.cl, batch); err != nil && ctx.Err() == nil {
			s.log.Debug("traffic relay", "err", err) // telemetry: dropped, not retried
		}
		cancel()
	}
}

// Since answers GET /v1/apps/{name}/stats from the leader's sums.
func (s *Service) Since(ctx context.Context, app string, since time.Time) ([]apitypes.TrafficSecond, error) {
	if s.cl.IsLeader() {
		return s.sum.Since(app, since), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return queryRPC.CallLeader(ctx, s.cl, query{App: app, Since: since.Unix()})
}
