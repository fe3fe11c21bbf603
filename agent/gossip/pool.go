package gossip

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// PoolConfig configures a Pool.
type PoolConfig struct {
	// HostID names this member.
	HostID string
	// Addr is where the gossip listens (TCP and UDP). "": no gossip.
	Addr string
	// Advertise is the host peers reach the gossip at when Addr's host
	// is unspecified ("": 127.0.0.1).
	Advertise string
	// Dir keeps the pool's key (FileKey).
	Dir    string
	Logger *slog.Logger
}

// Pool is the agent's part in its pool's gossip over the agent's life:
// no member until the pool's key is known (from disk, or from the hub's
// Welcome), then one, stopped when Run ends.
type Pool struct {
	cfg    PoolConfig
	member atomic.Pointer[Member]

	mu      sync.Mutex // serialises starts
	pending []byte     // the key of a start that failed, retried by Run
	stopped bool       // Run has ended: no more starts
}

// retryEvery is how often Run retries a start that failed (its port
// was taken, say) until one succeeds.
var retryEvery = 5 * time.Second

// NewPool returns a pool that gossips nothing until Start.
func NewPool(cfg PoolConfig) *Pool { return &Pool{cfg: cfg} }

// Start joins the gossip with key if it does not run yet (and keeps the
// key on disk), then joins peers. Without an address or a key it does
// nothing.
func (p *Pool) Start(key []byte, peers []string) {
	if p.cfg.Addr == "" || len(key) == 0 {
		return
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	m := p.member.Load()
	if m == nil {
		var err error
		m, err = Start(p.cfg.HostID, p.cfg.Addr, p.cfg.Advertise, key, p.cfg.Logger)
		if err != nil {
			p.pending = key
			p.mu.Unlock()
			p.cfg.Logger.Warn("pool gossip", "err", err, "retry", retryEvery)
			return
		}
		p.pending = nil
		if err := SaveKey(p.cfg.Dir, key); err != nil {
			p.cfg.Logger.Warn("keep the gossip key", "err", err)
		}
		p.member.Store(m)
		p.cfg.Logger.Info("pool gossip started", "addr", m.Addr())
	}
	p.mu.Unlock()
	m.Join(peers)
}

// Addr returns where peers reach this member ("" while there is none).
func (p *Pool) Addr() string {
	if m := p.member.Load(); m != nil {
		return m.Addr()
	}
	return ""
}

// Peers returns how many pool peers the gossip sees alive (0 while there
// is no member).
func (p *Pool) Peers() int {
	if m := p.member.Load(); m != nil {
		return m.Peers()
	}
	return 0
}

// Run retries a start that failed, every retryEvery, and stops the
// member when ctx ends.
func (p *Pool) Run(ctx context.Context) error {
	t := time.NewTicker(retryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.mu.Lock()
			defer p.mu.Unlock()
			p.stopped = true
			if m := p.member.Load(); m != nil {
				m.Stop()
			}
			return nil
		case <-t.C:
			p.mu.Lock()
			key := p.pending
			p.mu.Unlock()
			if key != nil {
				p.Start(key, nil)
			}
		}
	}
}

// reportEvery is how often the gossip view is sent even unchanged, so
// that the hub's evidence of "peers see it alive" stays fresh.
const reportEvery = 2 * time.Second

// Register starts the gossip with the key Welcome gives and joins the
// peers Welcome and acknowledgements name; it reports what the gossip
// sees after heartbeats: on a change, and every reportEvery regardless.
func (p *Pool) Register(c *control.Control) {
	c.Handle(&wire.Envelope_Welcome{}, func(_ context.Context, in control.Inbound) error {
		w := in.Env.GetWelcome()
		p.Start(w.GossipKey, w.PoolPeers)
		return nil
	})
	c.Handle(&wire.Envelope_HeartbeatAck{}, func(_ context.Context, in control.Inbound) error {
		if m := p.member.Load(); m != nil && len(in.Env.GetHeartbeatAck().PoolPeers) > 0 {
			go m.Join(in.Env.GetHeartbeatAck().PoolPeers)
		}
		return nil
	})
	c.Send(func() control.Feed {
		var lastFull time.Time
		return control.Feed{Tick: func(now time.Time) *wire.Envelope {
			m := p.member.Load()
			if m == nil {
				return nil
			}
			full := now.Sub(lastFull) >= reportEvery
			if full {
				lastFull = now
			}
			if r := m.Report(full); r != nil {
				return &wire.Envelope{Msg: &wire.Envelope_GossipReport{GossipReport: r}}
			}
			return nil
		}}
	})
}
