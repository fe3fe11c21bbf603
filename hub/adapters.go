package hub

import (
	"context"
	"net/http"
	"time"

	"github.com/wharf-platform/wharf/hub/api"
	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/liveness"
)

// The few places where one part's answer needs another's shape.

// gatewayPeers tells agents every node's gateway address.
type gatewayPeers struct{ h *Hub }

func (p gatewayPeers) GatewayAddrs() []string { return p.h.gatewayAddrs("") }

// leaderProxy forwards the API's write requests to the leader.
type leaderProxy struct{ cl *cluster.Cluster }

func (p leaderProxy) Forward(w http.ResponseWriter, r *http.Request) bool {
	return p.cl.ProxyToLeader(w, r, rpcAPI)
}

// hostConns answers the API's host reads from the leader's tracker.
type hostConns struct {
	tracker *liveness.Tracker
	cl      liveness.Cluster
}

func (c hostConns) HostConn(ctx context.Context, id string) (api.HostConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := c.tracker.HostInfo(ctx, c.cl, id)
	if err != nil {
		return api.HostConn{}, err
	}
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC().Round(time.Millisecond)
		return &t
	}
	return api.HostConn{LastHeartbeat: opt(info.LastHeartbeat), HubNode: info.HubNode, CertNotAfter: opt(info.CertNotAfter)}, nil
}
