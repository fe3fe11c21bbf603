package gateway

import (
	"context"
	"time"

	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// What the gateway needs of the rest of the hub node, each behind an
// interface of its own: the cluster, the other nodes' addresses, and the
// services that take what agents send.

// Cluster is what the gateway needs of the hub cluster.
type Cluster interface {
	// Apply commits a state command.
	Apply(ctx context.Context, msg []byte) (uint64, error)
	// ConsistentRead brings the local replica up to date before a
	// connection's host is checked, so a host removed a moment ago on
	// another node is refused here too. Without a leader the replica is
	// used as it is.
	ConsistentRead(ctx context.Context) error
	// LeaderContact is how long since this node heard from the leader
	// (0 on the leader).
	LeaderContact() time.Duration
}

// Peers lists every hub node's gateway address, this one first.
type Peers interface {
	GatewayAddrs() []string
}

// MetricsSink takes an agent's metrics samples.
type MetricsSink interface {
	Report(from pki.AgentIdentity, r *wire.MetricsReport)
}

// AccessSink takes a router's per-app counts, and its bursts the moment
// it sees them.
type AccessSink interface {
	Report(from pki.AgentIdentity, s *wire.AccessStats)
	Signal(from pki.AgentIdentity, s *wire.RateSignal)
}

// LogSink takes an agent's log batch: it is acknowledged when Accept
// returns nil, refused (to be resent) otherwise.
type LogSink interface {
	Accept(ctx context.Context, from pki.AgentIdentity, b *wire.LogBatch) error
}

// UsageSink commits an agent's usage report: Commit returns nil once the
// report is committed (counted once per host and seq, however often it
// is committed), when the agent may forget it; an error leaves it to the
// agent to send it again.
type UsageSink interface {
	Commit(ctx context.Context, from pki.AgentIdentity, r *wire.UsageReport) error
}
