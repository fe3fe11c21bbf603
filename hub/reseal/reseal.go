// Package reseal keeps every sealed value in the hub's state under the
// cluster's current data key. After a key rotation, values sealed under a
// previous key (or written later by a node not yet given the new key) would
// stop opening once the previous key is dropped: the leader's Runner finds
// them, once when it takes office and then on every change of the tables
// they live in, and commits each re-sealed under the current key.
//
// What is sealed, and how its re-sealed form is committed, belongs to the
// packages that own the values; each describes its values as a Kind.
package reseal

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

// Kind is one kind of sealed value in the state.
type Kind interface {
	// Name names the values in logs ("provider credentials").
	Name() string
	// Watch reads the tables the values live in into ws and returns their
	// index: the Runner looks again when it moves.
	Watch(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error)
	// Stale returns a command for every value in snap not sealed under the
	// keyring's current key, which stores it re-sealed under that key and
	// is refused with state.ErrConflict if the value changed meanwhile; and
	// the values it could not re-seal (a key this node lacks), joined.
	Stale(snap *state.Snapshot, keys *seal.Keyring) ([]Command, error)
}

// Command re-seals one value.
type Command struct {
	// What names the value in logs and errors ("provider aws-prod").
	What string
	// Msg is the encoded state command.
	Msg []byte
}

// Committer commits a state command.
type Committer interface {
	Apply(ctx context.Context, msg []byte) (uint64, error)
}

// Runner re-seals, on the leader, every value of its Kinds not sealed
// under the current key.
type Runner struct {
	State  *state.Store
	Keys   *seal.Keyring
	Commit Committer
	Kinds  []Kind
	// Interval is the least time between two passes: a burst of writes
	// to the watched tables (every app update changes the apps table) is
	// looked at once, not once per entry, since a pass reads every value.
	// Zero means one second.
	Interval time.Duration
	// Logger: nil discards.
	Logger *slog.Logger
}

func (r *Runner) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return r.Logger
}

// Run re-seals until ctx ends: at once, then whenever a table of a Kind
// changes (at most once an Interval); a failed pass is retried with a
// backoff up to a minute.
func (r *Runner) Run(ctx context.Context) error {
	var index uint64
	wait := time.Second
	interval := r.Interval
	if interval == 0 {
		interval = time.Second
	}
	for ctx.Err() == nil {
		idx, err := r.State.Blocking(ctx, index, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
			var top uint64
			for _, k := range r.Kinds {
				i, err := k.Watch(ws, snap)
				if err != nil {
					return 0, err
				}
				top = max(top, i)
			}
			return top, nil
		})
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = r.Once(ctx)
		}
		if err != nil {
			r.log().Warn("re-seal under the current key; retrying", "err", err, "in", wait)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Minute)
			continue
		}
		index, wait = max(idx, 1), time.Second
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
	return nil
}

// Once re-seals every value not sealed under the current key and returns
// the failures (after trying them all).
func (r *Runner) Once(ctx context.Context) error {
	snap := r.State.Snapshot()
	var errs []error
	for _, k := range r.Kinds {
		cmds, err := k.Stale(snap, r.Keys)
		if err != nil {
			// A key this node lacks: give it --previous-cluster-key.
			errs = append(errs, fmt.Errorf("%s: %w", k.Name(), err))
		}
		for _, c := range cmds {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := r.Commit.Apply(cctx, c.Msg)
			cancel()
			switch {
			case err == nil:
				r.log().Info("re-sealed under the current key", "kind", k.Name(), "what", c.What, "key", fmt.Sprintf("%08x", r.Keys.CurrentID()))
			case errors.Is(err, state.ErrConflict), errors.Is(err, state.ErrNotFound):
				// The value changed meanwhile; the watch sees it again.
			default:
				errs = append(errs, fmt.Errorf("%s: %w", c.What, err))
			}
		}
	}
	return errors.Join(errs...)
}
