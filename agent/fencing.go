package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/lease"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// registerLease renews the fencing lease with each heartbeat a hub node
// in touch with the Raft leader acknowledges, as of the heartbeat's
// sending.
func registerLease(c *control.Control, l *lease.Lease, log *slog.Logger) {
	c.Handle(&wire.Envelope_HeartbeatAck{}, func(_ context.Context, in control.Inbound) error {
		if !in.Env.GetHeartbeatAck().QuorumBacked || in.Sent.IsZero() {
			return nil
		}
		if err := l.Renew(time.Since(in.Sent)); err != nil {
			log.Warn("lease renewed in memory only", "err", err)
		}
		return nil
	})
}
