// Package logs is a hub node's log service: it takes the batches agents
// ship to this node, keeps them in the node's store (hub/logstore, outside
// Raft), copies them to one other node of the Raft configuration and only
// then acknowledges them, so every line acknowledged is on two nodes. Each
// store drops duplicates by (instance, seq); reads ask every node and
// merge by time, dropping the copies.
package logs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Snapshotter hands out read-only views of the state store (which
// instances an agent may speak for).
type Snapshotter interface {
	Snapshot() *state.Snapshot
}

// Peers is what the service needs of the cluster: the other nodes, and the
// internal RPC to reach them.
type Peers interface {
	// RaftAddr is this node's Raft/RPC address.
	RaftAddr() string
	// Servers lists the Raft configuration's addresses, this node's too.
	Servers() []string
	// Members is gossip's view of the nodes (which are dead).
	Members() []cluster.Member
	cluster.NodeCaller
}

// Events records an event through Raft, best effort.
type Events interface {
	Record(ctx context.Context, ev state.Event)
}

// Config is what the service needs.
type Config struct {
	State  Snapshotter     // required
	Store  *logstore.Store // this node's lines; required
	Peers  Peers           // required
	Events Events          // required
	Logger *slog.Logger    // nil discards
	Counts *Counts         // nil: a private set nobody reads
	// Usage, when set, counts the bytes of the lines stored, for metering.
	Usage Usage
}

// Usage counts the bytes of an app's log lines as they are stored.
type Usage interface {
	LogBytes(tenant, app string, n int64)
}

// Service is one node's log intake, replication and reads.
type Service struct {
	cfg Config
	log *slog.Logger
	c   *Counts

	mu   sync.Mutex
	next int // the peer that took the last copy
}

// New returns the service. Register its RPCs (Handlers) before the
// cluster runs.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Counts == nil {
		cfg.Counts = &Counts{}
	}
	return &Service{cfg: cfg, log: cfg.Logger, c: cfg.Counts}
}

// The internal RPCs between nodes: a copy of records (sources
// "tenant/app/instance"), and a read of one node's store.
var (
	replicateRPC = cluster.RPC[*wire.LogBatch, struct{}]{Name: "logs-replicate",
		Req: cluster.Proto[*wire.LogBatch]{New: func() *wire.LogBatch { return new(wire.LogBatch) }}, Resp: cluster.None{}}
	queryRPC = cluster.RPC[query, answer]{Name: "logs-query", Req: cluster.JSON[query]{}, Resp: cluster.JSON[answer]{}, MaxBody: 1 << 20}
)

// Handlers are the service's RPCs, for cluster.Cluster.Handle.
func (s *Service) Handlers() []cluster.Handler {
	return []cluster.Handler{replicateRPC.Serve(s.serveReplicate), queryRPC.Serve(s.serveQuery)}
}

// errNoReplica refuses a batch no second node could take: the agent keeps
// it and sends it again.
var errNoReplica = errors.New("no other hub node took a copy")

// Accept takes one agent's batch; it is acknowledged when Accept returns
// nil.
func (s *Service) Accept(ctx context.Context, from pki.AgentIdentity, b *wire.LogBatch) error {
	srcs := s.agentSources(from, b)
	recs := records(b, srcs, func(l *wire.LogLine, err error) {
		// Resending would not make it valid: dropped, said so.
		s.log.Warn("log line refused", "host", from.HostID, "source", b.Sources[l.Source], "seq", l.Seq, "err", err)
		s.c.refused.Add(1)
	})
	if len(recs) > 0 {
		for i := range recs {
			recs[i].Primary = true // this node drains them
		}
		n, err := s.cfg.Store.Append(recs)
		if err != nil {
			return fmt.Errorf("keep logs: %w", err)
		}
		if u := s.cfg.Usage; u != nil {
			// Lines an agent sends again are not stored twice: within an
			// instance they come in sequence order, so the stored ones are
			// the last n.
			for _, r := range recs[len(recs)-min(n, len(recs)):] {
				u.LogBytes(r.Tenant, r.App, int64(len(r.Line)))
			}
		}
		if err := s.replicate(ctx, recs); err != nil {
			s.c.replicaFailed.Add(1)
			return err
		}
		s.c.accepted.Add(uint64(len(recs)))
	}
	for _, d := range b.Drops {
		if int(d.Source) >= len(srcs) || !srcs[d.Source].ok || d.Count == 0 {
			continue
		}
		src := srcs[d.Source]
		go s.cfg.Events.Record(context.WithoutCancel(ctx), state.Event{Type: "logs.dropped", Subject: src.tenant + "/" + src.app,
			Message: fmt.Sprintf("agent %s dropped %d log lines of instance %s (seq %d-%d): its buffer was full while the hub was unreachable",
				from.HostID, d.Count, src.instance, d.First, d.Last)})
	}
	return nil
}

// agentSources parses a batch's sources, keeping only instances the agent
// may speak for: an instance placed on its host, or (an instance the state
// no longer holds) one of an app that exists. The lines of the rest are
// dropped with a warning: resending would not make them valid.
func (s *Service) agentSources(from pki.AgentIdentity, b *wire.LogBatch) []source {
	snap := s.cfg.State.Snapshot()
	srcs := parseSources(b.Sources)
	for i, src := range srcs {
		if src.ok {
			if inst, _ := snap.Instance(nil, src.instance); inst != nil {
				src.ok = inst.Host == from.HostID && inst.Tenant == src.tenant && inst.App == src.app
			} else {
				app, _ := snap.App(nil, src.tenant, src.app)
				src.ok = app != nil
			}
			srcs[i] = src
		}
		if !src.ok {
			s.log.Warn("log lines refused: not an instance of this agent", "host", from.HostID, "source", b.Sources[i])
			for _, l := range b.Lines {
				if int(l.Source) == i {
					s.c.refused.Add(1)
				}
			}
		}
	}
	return srcs
}

// replicate copies recs to one other server of the Raft configuration,
// trying each in turn. A single-server cluster has no other node to lose
// the lines to.
func (s *Service) replicate(ctx context.Context, recs []logstore.Record) error {
	self := s.cfg.Peers.RaftAddr()
	var peers []string
	for _, a := range s.cfg.Peers.Servers() {
		if a != self {
			peers = append(peers, a)
		}
	}
	if len(peers) == 0 {
		return nil
	}
	// Peers gossip calls dead last: a cut-off one would hold every batch
	// for the call's timeout.
	dead := s.deadServers()
	slices.SortStableFunc(peers, func(a, b string) int { return cmp.Compare(btoi(dead[a]), btoi(dead[b])) })
	batch := toWire(recs)
	// Start with a different peer per node so replicas spread.
	s.mu.Lock()
	first := s.next % len(peers)
	s.mu.Unlock()
	var errs []error
	for i := range peers {
		p := peers[(first+i)%len(peers)]
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := replicateRPC.Call(cctx, s.cfg.Peers, p, batch)
		cancel()
		if err == nil {
			s.c.replicated.Add(1)
			s.mu.Lock()
			s.next = (first + i) % len(peers)
			s.mu.Unlock()
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("%w: %v", errNoReplica, errors.Join(errs...))
}

// serveReplicate keeps another node's copy of its records.
func (s *Service) serveReplicate(_ context.Context, b *wire.LogBatch) (struct{}, error) {
	srcs := parseSources(b.Sources)
	for _, src := range srcs {
		if !src.ok {
			return struct{}{}, cluster.BadRequest{Err: errors.New("logs: bad source")}
		}
	}
	for _, l := range b.Lines {
		if int(l.Source) >= len(srcs) {
			return struct{}{}, cluster.BadRequest{Err: errors.New("logs: bad source index")}
		}
	}
	var bad error
	recs := records(b, srcs, func(_ *wire.LogLine, err error) { bad = err })
	if bad != nil {
		return struct{}{}, cluster.BadRequest{Err: fmt.Errorf("logs: %w", bad)}
	}
	if _, err := s.cfg.Store.Append(recs); err != nil {
		if errors.Is(err, logstore.ErrInvalid) {
			err = cluster.BadRequest{Err: err}
		}
		return struct{}{}, err
	}
	return struct{}{}, nil
}

// deadServers returns the Raft addresses of the nodes gossip calls dead.
func (s *Service) deadServers() map[string]bool {
	dead := map[string]bool{}
	for _, m := range s.cfg.Peers.Members() {
		if !m.Alive && m.RaftAddr != "" {
			dead[m.RaftAddr] = true
		}
	}
	return dead
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TenantRetention reads a tenant's log retention from its quota (zero
// fields: the node's defaults), for logstore.Config.TenantLimits.
func TenantRetention(st Snapshotter) func(string) logstore.Retention {
	return func(tenant string) logstore.Retention {
		t, _ := st.Snapshot().Tenant(nil, tenant)
		if t == nil {
			return logstore.Retention{}
		}
		return logstore.Retention{MaxBytes: t.Quota.LogBytes, MaxAge: time.Duration(t.Quota.LogAge)}
	}
}
