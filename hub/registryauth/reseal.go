package registryauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/seal"
)

// Committer commits a state command.
type Committer interface {
	Apply(ctx context.Context, msg []byte) (uint64, error)
}

// Resealer re-seals, on the leader, every registry password not sealed
// under the current data key: once when it takes office, then for any
// registry that appears or changes that way (written by a node not given
// the new key yet). Without it, passwords sealed under a rotated-out key
// would stop opening once the previous cluster key is dropped.
type Resealer struct {
	State  *state.Store
	Keys   *seal.Keyring
	Commit Committer
	// Logger: nil discards.
	Logger *slog.Logger
}

func (r *Resealer) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return r.Logger
}

// Run re-seals until ctx ends.
func (r *Resealer) Run(ctx context.Context) error {
	var index uint64
	wait := time.Second
	for ctx.Err() == nil {
		idx, err := r.State.Blocking(ctx, index, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
			_, err := snap.Registries(ws)
			return snap.Index(state.TableRegistries), err
		})
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = r.Once(ctx)
		}
		if err != nil {
			r.log().Warn("re-seal registry passwords; retrying", "err", err, "in", wait)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Minute)
			continue
		}
		index, wait = max(idx, 1), time.Second
	}
	return nil
}

// Once re-seals every registry password not sealed under the current key
// and returns the failures (after trying them all).
func (r *Resealer) Once(ctx context.Context) error {
	regs, err := r.State.Snapshot().Registries(nil)
	if err != nil {
		return err
	}
	var errs []error
	for _, reg := range regs {
		if r.Keys.IsCurrent(reg.SealedPassword) {
			continue
		}
		sealed, err := r.Keys.Reseal(reg.SealedPassword, ad(reg.Tenant, reg.Server))
		if err != nil {
			// A key this node lacks: give it --previous-cluster-key.
			errs = append(errs, fmt.Errorf("registry %s of tenant %s: %w", reg.Server, reg.Tenant, err))
			continue
		}
		msg, err := state.Encode(state.RegistryResealType, &state.RegistryResealRequest{Tenant: reg.Tenant, Server: reg.Server, SealedPassword: sealed, ModifyIndex: reg.ModifyIndex})
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = r.Commit.Apply(cctx, msg)
		cancel()
		switch {
		case err == nil:
			r.log().Info("re-sealed a registry password under the current key", "tenant", reg.Tenant, "registry", reg.Server, "key", fmt.Sprintf("%08x", r.Keys.CurrentID()))
		case errors.Is(err, state.ErrConflict), errors.Is(err, state.ErrNotFound):
			// The registry changed meanwhile; the watch sees it again.
		default:
			errs = append(errs, fmt.Errorf("registry %s of tenant %s: %w", reg.Server, reg.Tenant, err))
		}
	}
	return errors.Join(errs...)
}
