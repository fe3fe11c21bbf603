package supervisor

import (
	"fmt"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Restarts back off exponentially on the same instance id: an instance
// that exits (or cannot start) waits restartBackoffMin, then twice as
// long after each further failure, up to restartBackoffMax; one that ran
// for backoffReset before it exited starts again from the minimum. The
// hub keeps a backing-off instance where it is and hears why it does not
// run (wire.Reason).
const (
	restartBackoffMin = time.Second
	restartBackoffMax = 5 * time.Minute
	backoffReset      = time.Minute
	// crashLoopAfter exits in a row, each before backoffReset, make a
	// crash loop.
	crashLoopAfter = 3
)

// exited records that an instance it started (or found running) no longer
// runs and schedules its restart: a crash loop once it has exited
// crashLoopAfter times in a row, each soon after its start. Callers hold
// s.mu.
func (s *Supervisor) exited(id string, t *tracked, st driver.Status, gone bool, now time.Time) {
	t.up = false
	if now.Sub(t.started) >= backoffReset { // it ran well: start over
		t.failures, t.backoff = 0, restartBackoffMin
	}
	t.failures++
	wait := backOff(t, now)
	how := fmt.Sprintf("exited with code %d", st.ExitCode)
	if gone {
		how = "vanished from the runtime"
	}
	cur := istatus{State: wire.InstanceStarting, Restarts: t.status.Restarts, Message: fmt.Sprintf("%s; restarting in %s", how, wait)}
	if t.failures >= crashLoopAfter {
		cur.Reason = wire.Reason_REASON_CRASH_LOOP
		cur.Message = fmt.Sprintf("%s, %d times in a row; restarts back off (next in %s)", how, t.failures, wait)
	}
	s.set(id, t, cur)
	s.log.Warn("instance exited", "instance", id, "code", st.ExitCode, "failures", t.failures, "restart_in", wait)
}

// backOff schedules t's next start from now and doubles its backoff, up
// to restartBackoffMax; it returns the wait.
func backOff(t *tracked, now time.Time) time.Duration {
	wait := t.backoff
	t.next = now.Add(wait)
	t.backoff = min(t.backoff*2, restartBackoffMax)
	return wait
}
