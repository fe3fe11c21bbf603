// Package accounts owns provider accounts' credentials at rest: it seals
// them (internal/seal) before they reach the Raft log, opens them into a
// providers.Account when a cloud call needs them, and, on the leader,
// re-seals every account still sealed under a previous data key after a
// key rotation.
package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/seal"
	"github.com/wharf-platform/wharf/providers"
)

// ad binds sealed credentials to their account: a sealed value copied to
// another account does not open.
func ad(name string) []byte { return []byte("wharf provider account " + name) }

// Seal seals an account's credentials for the state store.
func Seal(keys *seal.Keyring, name string, c providers.Credentials) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("seal credentials of %s: %w", name, err)
	}
	defer clear(b)
	return keys.Seal(b, ad(name))
}

// Open returns an account with its credentials unsealed, for a cloud call;
// the caller keeps it only as long as the call needs it.
func Open(keys *seal.Keyring, a *state.ProviderAccount) (providers.Account, error) {
	acct := providers.Account{Name: a.Name, Type: a.Type, Region: a.Region, Endpoint: a.Endpoint, Insecure: a.Insecure}
	b, err := keys.Open(a.SealedCredentials, ad(a.Name))
	if err != nil {
		return acct, fmt.Errorf("credentials of provider %s: %w", a.Name, err)
	}
	defer clear(b)
	if err := json.Unmarshal(b, &acct.Credentials); err != nil {
		return acct, fmt.Errorf("credentials of provider %s: not valid after opening", a.Name)
	}
	return acct, nil
}

// Committer commits a state command.
type Committer interface {
	Apply(ctx context.Context, msg []byte) (uint64, error)
}

// Resealer re-seals, on the leader, every account whose credentials (and
// every app whose secrets, apps.go) are not
// sealed under the current data key: once when it takes office, then for
// any account that appears or changes that way (one written by a node that
// has not been given the new key yet).
type Resealer struct {
	State  *state.Store
	Keys   *seal.Keyring
	Commit Committer
	// Logger: nil discards.
	Logger *slog.Logger
}

// Run re-seals until ctx ends.
func (r *Resealer) Run(ctx context.Context) error {
	log := r.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var index uint64
	wait := time.Second
	for ctx.Err() == nil {
		idx, err := r.State.Blocking(ctx, index, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
			if _, err := snap.ProviderAccounts(ws); err != nil {
				return 0, err
			}
			_, err := snap.Apps(ws, "")
			return snap.Index(state.TableProviders, state.TableApps), err
		})
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = r.Once(ctx)
		}
		if err != nil {
			log.Warn("re-seal provider credentials; retrying", "err", err, "in", wait)
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

// Once re-seals every account not sealed under the current key and returns
// the failures (after trying them all).
func (r *Resealer) Once(ctx context.Context) error {
	log := r.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	accts, err := r.State.Snapshot().ProviderAccounts(nil)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range accts {
		if r.Keys.IsCurrent(a.SealedCredentials) {
			continue
		}
		sealed, err := r.Keys.Reseal(a.SealedCredentials, ad(a.Name))
		if err != nil {
			// A key this node lacks: give it --previous-cluster-key.
			errs = append(errs, fmt.Errorf("provider %s: %w", a.Name, err))
			continue
		}
		msg, err := state.Encode(state.ProviderResealType, &state.ProviderResealRequest{Name: a.Name, SealedCredentials: sealed, ModifyIndex: a.ModifyIndex})
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = r.Commit.Apply(cctx, msg)
		cancel()
		switch {
		case err == nil:
			log.Info("re-sealed provider credentials under the current key", "provider", a.Name, "key", fmt.Sprintf("%08x", r.Keys.CurrentID()))
		case errors.Is(err, state.ErrConflict), errors.Is(err, state.ErrNotFound):
			// The account changed meanwhile; the watch sees it again.
		default:
			errs = append(errs, fmt.Errorf("provider %s: %w", a.Name, err))
		}
	}
	errs = append(errs, r.resealApps(ctx, log))
	return errors.Join(errs...)
}
