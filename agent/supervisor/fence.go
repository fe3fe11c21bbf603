package supervisor

import (
	"context"
	"time"

	"github.com/wharf-platform/wharf/pkg/wire"
)

// Lease tells whether the host's fencing lease still covers instances of
// failover.mode fenced.
type Lease interface {
	// Expired reports whether instances fenced with maxDisconnect must
	// stop.
	Expired(maxDisconnect time.Duration) bool
}

// fenced reports whether in must not run now: it is fenced and the lease
// ran out (or was never renewed since boot).
func (s *Supervisor) fenced(in *wire.Instance) bool {
	return in.Failover == wire.FailoverFenced && s.lease != nil && s.lease.Expired(time.Duration(in.MaxDisconnectMs)*time.Millisecond)
}

// fence stops a fenced instance whose lease ran out (or that has not been
// renewed since boot) and keeps it stopped until the lease is renewed:
// by then the hub may have replaced it elsewhere, and two copies must
// never run at once.
func (s *Supervisor) fence(ctx context.Context, in *wire.Instance, t *tracked, running bool) {
	if running {
		s.log.Warn("lease expired: stopping fenced instance", "instance", in.Id, "app", in.App)
		if err := s.drv.Stop(ctx, in.Id, StopGrace); err != nil {
			s.log.Warn("stop", "instance", in.Id, "err", err)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.started, t.up, t.failures, t.next, t.backoff = time.Time{}, false, 0, time.Time{}, restartBackoffMin
	s.set(in.Id, t, istatus{State: wire.InstanceStopped, Restarts: t.status.Restarts, Message: "fenced: the host's lease is not renewed"})
}
