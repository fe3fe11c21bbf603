package agent

import (
	"context"
	"time"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/gossip"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// gossipPeers is how many pool peers the gossip sees alive (0 without
// gossip).
func (a *Agent) gossipPeers() int {
	g := a.gossip.Load()
	if g == nil {
		return 0
	}
	return g.Peers()
}

// ensureGossip starts the pool gossip with key if it does not run yet,
// and joins peers.
func (a *Agent) ensureGossip(key []byte, peers []string) {
	if a.cfg.GossipAddr == "" || len(key) == 0 {
		return
	}
	g := a.gossip.Load()
	if g == nil {
		var err error
		advertise := a.cfg.Advertise
		if addrs := hostAddresses(); advertise == "" && len(addrs) > 0 {
			advertise = addrs[0]
		}
		g, err = gossip.Start(a.HostID(), a.cfg.GossipAddr, advertise, key, a.log)
		if err != nil {
			a.log.Warn("pool gossip", "err", err)
			return
		}
		a.gossip.Store(g)
		if err := gossip.SaveKey(a.cfg.DataDir, key); err != nil {
			a.log.Warn("keep the gossip key", "err", err)
		}
		a.log.Info("pool gossip started", "addr", g.Addr())
	}
	g.Join(peers)
}

// GossipAddr returns where the pool gossip listens ("" when it does not).
func (a *Agent) GossipAddr() string {
	if g := a.gossip.Load(); g != nil {
		return g.Addr()
	}
	return ""
}

// gossipReportEvery is how often the gossip view is sent even unchanged,
// so that the hub's evidence of "peers see it alive" stays fresh.
const gossipReportEvery = 2 * time.Second

// stopGossip stops the pool gossip when ctx ends.
func (a *Agent) stopGossip(ctx context.Context) error {
	<-ctx.Done()
	if g := a.gossip.Load(); g != nil {
		g.Stop()
	}
	return nil
}

// registerGossip starts the pool gossip with the key Welcome gives and
// joins the peers Welcome and acknowledgements name; it reports what the
// gossip sees after heartbeats: on a change, and every
// gossipReportEvery regardless.
func (a *Agent) registerGossip(c *control.Control) {
	c.Handle(&wire.Envelope_Welcome{}, func(_ context.Context, in control.Inbound) error {
		w := in.Env.GetWelcome()
		a.ensureGossip(w.GossipKey, w.PoolPeers)
		return nil
	})
	c.Handle(&wire.Envelope_HeartbeatAck{}, func(_ context.Context, in control.Inbound) error {
		if g := a.gossip.Load(); g != nil && len(in.Env.GetHeartbeatAck().PoolPeers) > 0 {
			go g.Join(in.Env.GetHeartbeatAck().PoolPeers)
		}
		return nil
	})
	c.Send(func() control.Feed {
		var lastFull time.Time
		return control.Feed{Tick: func(now time.Time) *wire.Envelope {
			g := a.gossip.Load()
			if g == nil {
				return nil
			}
			full := now.Sub(lastFull) >= gossipReportEvery
			if full {
				lastFull = now
			}
			if r := g.Report(full); r != nil {
				return &wire.Envelope{Msg: &wire.Envelope_GossipReport{GossipReport: r}}
			}
			return nil
		}}
	})
}
