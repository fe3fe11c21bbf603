package hub

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/hub/api"
	"github.com/wharf-platform/wharf/hub/liveness"
	"github.com/wharf-platform/wharf/hub/planner"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/pki"
)

// leaderDuties runs while this node is the ready leader.
func (h *Hub) leaderDuties(ctx context.Context) {
	select { // Raft may elect a restarted node before New has returned.
	case <-h.running:
	case <-ctx.Done():
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The agent CA: the first leader makes it; a retry loop covers a
		// term that ends or a write that times out.
		for ctx.Err() == nil {
			err := h.ensureAgentCA(ctx)
			if err == nil {
				return
			}
			h.log.Warn("create the agent CA", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	wg.Add(3)
	go func() {
		defer wg.Done()
		planner.New(planner.Config{State: h.store, Plans: h.cluster, Leases: h.liveness, Metrics: h.plans,
			Logger: h.log.With("component", "planner")}).Run(ctx)
	}()
	go func() {
		defer wg.Done()
		h.runAlerts(ctx)
	}()
	go func() {
		defer wg.Done()
		h.watchDrills(ctx)
	}()
	h.liveness.Run(ctx)
	wg.Wait()
}

// rpcLiveness is the internal RPC that carries heartbeat reports.
const rpcLiveness = "liveness"

// reportHeartbeats tells the leader, twice a second, which hosts this node
// has heard from and how long ago.
func (h *Hub) reportHeartbeats(ctx context.Context) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		o := h.gateway.Observe()
		if len(o.HeartbeatAges) == 0 && len(o.PeerAliveAges) == 0 && len(o.PeerDeadAges) == 0 {
			continue
		}
		body, err := json.Marshal(liveness.Report{Node: h.cfg.NodeName, AgesMs: o.HeartbeatAges, CertTTLMs: o.CertTTLs,
			PeerAliveAgesMs: o.PeerAliveAges, PeerDeadAgesMs: o.PeerDeadAges, RouteCurrent: o.RouteCurrent})
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := h.cluster.CallLeader(cctx, rpcLiveness, body); err != nil && ctx.Err() == nil {
			h.log.Debug("heartbeat report", "err", err)
		}
		cancel()
	}
}

// rpcHostInfo is the internal RPC that asks the leader about a host's
// connection (last heartbeat, hub node, certificate expiry).
const rpcHostInfo = "host-info"

// hostInfo returns what the leader's tracker knows of a host's connection.
func (h *Hub) hostInfo(ctx context.Context, id string) (liveness.Info, error) {
	if h.cluster.IsLeader() {
		return h.liveness.Info(id), nil
	}
	body, err := h.cluster.CallLeader(ctx, rpcHostInfo, []byte(id))
	if err != nil {
		return liveness.Info{}, err
	}
	var info liveness.Info
	err = json.Unmarshal(body, &info)
	return info, err
}

// hostConn adapts hostInfo for the API.
func (h *Hub) hostConn(ctx context.Context, id string) (api.HostConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := h.hostInfo(ctx, id)
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

func (h *Hub) ensureAgentCA(ctx context.Context) error {
	ca, err := h.store.Snapshot().AgentCA(nil)
	if err != nil || ca != nil {
		return err
	}
	now := time.Now().UTC()
	made, err := pki.NewCA("Wharf agent CA", now, 0)
	if err != nil {
		return err
	}
	msg, err := state.Encode(state.AgentCACreateType, &state.AgentCACreateRequest{
		CA:   state.AgentCA{CertPEM: made.CertPEM(), KeyPEM: made.KeyPEM(), Fingerprint: made.Fingerprint()},
		Time: now,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := h.cluster.Apply(ctx, msg); err != nil && !errors.Is(err, state.ErrConflict) {
		return err
	}
	h.log.Info("agent CA created", "fingerprint", made.Fingerprint())
	return nil
}
