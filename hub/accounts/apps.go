package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

// resealApps re-seals apps' secrets sealed under a previous data key: the
// same values under the current key, one command per app, which makes no
// new version.
func (r *Resealer) resealApps(ctx context.Context, log *slog.Logger) error {
	apps, err := r.State.Snapshot().Apps(nil, "")
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range apps {
		sealed := map[string][]byte{}
		var failed error
		for name, v := range a.Secrets {
			if r.Keys.IsCurrent(v) {
				continue
			}
			b, err := r.Keys.Reseal(v, state.SecretAD(a.Tenant, a.Name, name))
			if err != nil {
				// A key this node lacks: give it --previous-cluster-key.
				failed = fmt.Errorf("secret %s of app %s/%s: %w", name, a.Tenant, a.Name, err)
				break
			}
			sealed[name] = b
		}
		if failed != nil {
			errs = append(errs, failed)
			continue
		}
		if len(sealed) == 0 {
			continue
		}
		msg, err := state.Encode(state.SecretsResealType, &state.SecretsResealRequest{Tenant: a.Tenant, App: a.Name, Sealed: sealed, ModifyIndex: a.ModifyIndex})
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = r.Commit.Apply(cctx, msg)
		cancel()
		switch {
		case err == nil:
			log.Info("re-sealed app secrets under the current key", "tenant", a.Tenant, "app", a.Name, "secrets", len(sealed), "key", fmt.Sprintf("%08x", r.Keys.CurrentID()))
		case errors.Is(err, state.ErrConflict), errors.Is(err, state.ErrNotFound):
			// The app changed meanwhile; the watch sees it again.
		default:
			errs = append(errs, fmt.Errorf("secrets of app %s/%s: %w", a.Tenant, a.Name, err))
		}
	}
	return errors.Join(errs...)
}
