package liveness

import (
	"context"
	"log/slog"
	"time"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/gateway"
)

// Every hub node tells the leader, twice a second, which hosts it has
// heard from and how long ago (reportRPC); any node asks the leader what
// it knows of a host's connection (infoRPC).
var (
	reportRPC = cluster.RPC[Report, struct{}]{Name: "liveness", Req: cluster.JSON[Report]{}, Resp: cluster.JSON[struct{}]{}, MaxBody: 8 << 20}
	infoRPC   = cluster.RPC[string, Info]{Name: "host-info", Req: cluster.Text{}, Resp: cluster.JSON[Info]{}, MaxBody: 256}
)

// Handlers are the tracker's RPCs, for cluster.Cluster.Handle.
func (t *Tracker) Handlers() []cluster.Handler {
	return []cluster.Handler{
		reportRPC.Serve(func(_ context.Context, r Report) (struct{}, error) {
			t.Observe(r)
			return struct{}{}, nil
		}),
		infoRPC.Serve(func(_ context.Context, id string) (Info, error) { return t.Info(id), nil }),
	}
}

// Cluster tells whether this node leads and reaches the leader.
type Cluster interface {
	IsLeader() bool
	cluster.LeaderCaller
}

// Observer is what this node's gateway saw of its agents.
type Observer interface {
	Observe() gateway.Observations
}

// Reporter sends this node's observations to the leader's tracker.
type Reporter struct {
	Node    string // this hub node's name
	Gateway Observer
	Cluster Cluster
	// Tracker is this node's: while the node leads, its own observations
	// go straight to it, not through an RPC's encoding (nil: always the
	// RPC).
	Tracker  *Tracker
	Logger   *slog.Logger
	Interval time.Duration // zero: 500 ms
}

// Run reports until ctx ends.
func (r *Reporter) Run(ctx context.Context) error {
	every := r.Interval
	if every == 0 {
		every = 500 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		o := r.Gateway.Observe()
		if len(o.HeartbeatAges) == 0 && len(o.PeerAliveAges) == 0 && len(o.PeerDeadAges) == 0 {
			continue
		}
		rep := Report{Node: r.Node, AgesMs: o.HeartbeatAges, CertTTLMs: o.CertTTLs,
			PeerAliveAgesMs: o.PeerAliveAges, PeerDeadAgesMs: o.PeerDeadAges, RouteCurrent: o.RouteCurrent}
		if r.Tracker != nil && r.Cluster.IsLeader() {
			r.Tracker.Observe(rep)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := reportRPC.CallLeader(cctx, r.Cluster, rep); err != nil && ctx.Err() == nil && r.Logger != nil {
			r.Logger.Debug("heartbeat report", "err", err)
		}
		cancel()
	}
}

// HostInfo returns what the leader's tracker knows of a host's
// connection, asking the leader when this node is not it.
func (t *Tracker) HostInfo(ctx context.Context, cl Cluster, id string) (Info, error) {
	if cl.IsLeader() {
		return t.Info(id), nil
	}
	return infoRPC.CallLeader(ctx, cl, id)
}
