package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/wharf-platform/wharf/agent/lease"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// registerLease renews the fencing lease with each heartbeat a hub node
// in touch with the Raft leader acknowledges, as of the heartbeat's
// sending.
func registerLease(c *control, l *lease.Lease, log *slog.Logger) {
	c.handle(&wire.Envelope_HeartbeatAck{}, func(_ context.Context, in inbound) error {
		if !in.env.GetHeartbeatAck().QuorumBacked || in.sent.IsZero() {
			return nil
		}
		if err := l.Renew(time.Since(in.sent)); err != nil {
			log.Warn("lease renewed in memory only", "err", err)
		}
		return nil
	})
}
