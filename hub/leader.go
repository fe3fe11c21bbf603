package hub

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/pki"
)

// leaderDuties runs the leader's tasks while this node is the ready
// leader (ctx ends with the term).
func (h *Hub) leaderDuties(ctx context.Context) {
	select { // Raft may elect a restarted node before New has returned.
	case <-h.running:
	case <-ctx.Done():
		return
	}
	if err := runAll(ctx, h.leader); err != nil && ctx.Err() == nil {
		h.log.Error("leader task stopped; the others with it until the next term", "err", err)
	}
}

// agentCA makes the agent CA when the cluster has none: the first leader
// does, and a retry loop covers a term that ends or a write that times
// out. Then it has nothing to do until the term ends.
type agentCA struct {
	state  interface{ Snapshot() *state.Snapshot }
	commit applier
	log    *slog.Logger
}

func (a agentCA) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := a.ensure(ctx)
		if err == nil {
			break
		}
		a.log.Warn("create the agent CA", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	<-ctx.Done()
	return nil
}

func (a agentCA) ensure(ctx context.Context) error {
	ca, err := a.state.Snapshot().AgentCA(nil)
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
	if _, err := a.commit.Apply(ctx, msg); err != nil && !errors.Is(err, state.ErrConflict) {
		return err
	}
	a.log.Info("agent CA created", "fingerprint", made.Fingerprint())
	return nil
}
