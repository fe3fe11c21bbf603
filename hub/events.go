package hub

import (
	"context"
	"log/slog"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

// applier commits a state command through Raft.
type applier interface {
	Apply(ctx context.Context, msg []byte) (uint64, error)
}

// eventLog records the features' events (a drain failing, an alert
// firing, log lines an agent dropped) through Raft, best effort: a
// failure is logged, not returned.
type eventLog struct {
	apply applier
	log   *slog.Logger
}

// Record commits ev, stamped with the time now.
func (e eventLog) Record(ctx context.Context, ev state.Event) {
	ev.Time = time.Now()
	msg, err := state.Encode(state.EventRecordType, &state.EventRecordRequest{Event: ev})
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		_, err = e.apply.Apply(ctx, msg)
	}
	if err != nil {
		e.log.Warn("record event", "type", ev.Type, "subject", ev.Subject, "err", err)
	}
}
