package autoscale

import (
	"context"
	"time"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

var statusRPC = cluster.RPC[statusQuery, apitypes.AutoscaleStatus]{Name: "autoscale-status",
	Req: cluster.JSON[statusQuery]{}, Resp: cluster.JSON[apitypes.AutoscaleStatus]{}, MaxBody: 4096}

type statusQuery struct {
	App string `json:"app"` // "tenant/app"
}

// statusOf is what a round saw and decided, for `wharf app autoscale show`.
func statusOf(p Policy, o Observed, d Decision) apitypes.AutoscaleStatus {
	s := apitypes.AutoscaleStatus{Min: p.Min, Max: p.Max, Bounds: p.Bounds, Ready: o.Ready, QPS: o.QPS, Wanted: d.Instances,
		WantedReason: d.Reason, Panic: d.Panic}
	if !o.LastRequest.IsZero() {
		t := o.LastRequest.UTC()
		s.LastRequest = &t
	}
	opt := func(v float64) *float64 {
		if v < 0 {
			return nil
		}
		return &v
	}
	s.CPU, s.Memory = opt(o.CPU), opt(o.Memory)
	return s
}

// Handlers are the runner's RPCs, for cluster.Cluster.Handle.
func (r *Runner) Handlers() []cluster.Handler {
	return []cluster.Handler{statusRPC.Serve(func(_ context.Context, q statusQuery) (apitypes.AutoscaleStatus, error) {
		return r.local(q.App), nil
	})}
}

func (r *Runner) local(app string) apitypes.AutoscaleStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status[app]
}

// Status returns what the leader's runner last saw of an app ("tenant/app")
// and wanted for it: its inputs and bounds (zero when it has not looked
// at the app yet).
func (r *Runner) Status(ctx context.Context, app string) (apitypes.AutoscaleStatus, error) {
	if r.cfg.Cluster == nil || r.cfg.Cluster.IsLeader() {
		return r.local(app), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return statusRPC.CallLeader(ctx, r.cfg.Cluster, statusQuery{App: app})
}
