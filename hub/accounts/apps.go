package accounts

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/reseal"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/seal"
)

// AppSecrets is the reseal.Kind of apps' secrets: the same values under
// the current key, one command per app, which makes no new version.
type AppSecrets struct{}

// Name implements reseal.Kind.
func (AppSecrets) Name() string { return "app secrets" }

// Watch implements reseal.Kind.
// It watches the apps table's index rather than listing every app: the
// list would cost a read of every app on every write.
func (AppSecrets) Watch(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
	return snap.WatchTables(ws, state.TableApps), nil
}

// Stale implements reseal.Kind.
func (AppSecrets) Stale(snap *state.Snapshot, keys *seal.Keyring) ([]reseal.Command, error) {
	apps, err := snap.Apps(nil, "")
	if err != nil {
		return nil, err
	}
	var cmds []reseal.Command
	var errs []error
	for _, a := range apps {
		var sealed map[string][]byte // most apps have none stale: no map
		var failed error
		for name, v := range a.Secrets {
			if keys.IsCurrent(v) {
				continue
			}
			b, err := keys.Reseal(v, state.SecretAD(a.Tenant, a.Name, name))
			if err != nil {
				failed = fmt.Errorf("secret %s of app %s/%s: %w", name, a.Tenant, a.Name, err)
				break
			}
			if sealed == nil {
				sealed = map[string][]byte{}
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
			errs = append(errs, err)
			continue
		}
		cmds = append(cmds, reseal.Command{What: fmt.Sprintf("secrets of app %s/%s", a.Tenant, a.Name), Msg: msg})
	}
	return cmds, errors.Join(errs...)
}
