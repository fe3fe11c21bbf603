package registryauth

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/reseal"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/seal"
)

// Passwords is the reseal.Kind of registry passwords: without re-sealing,
// passwords sealed under a rotated-out key would stop opening once the
// previous cluster key is dropped.
type Passwords struct{}

// Name implements reseal.Kind.
func (Passwords) Name() string { return "registry passwords" }

// Watch implements reseal.Kind.
func (Passwords) Watch(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
	_, err := snap.Registries(ws)
	return snap.Index(state.TableRegistries), err
}

// Stale implements reseal.Kind: one command per registry.
func (Passwords) Stale(snap *state.Snapshot, keys *seal.Keyring) ([]reseal.Command, error) {
	regs, err := snap.Registries(nil)
	if err != nil {
		return nil, err
	}
	var cmds []reseal.Command
	var errs []error
	for _, reg := range regs {
		if keys.IsCurrent(reg.SealedPassword) {
			continue
		}
		sealed, err := keys.Reseal(reg.SealedPassword, ad(reg.Tenant, reg.Server))
		if err != nil {
			errs = append(errs, fmt.Errorf("registry %s of tenant %s: %w", reg.Server, reg.Tenant, err))
			continue
		}
		msg, err := state.Encode(state.RegistryResealType, &state.RegistryResealRequest{Tenant: reg.Tenant, Server: reg.Server, SealedPassword: sealed, ModifyIndex: reg.ModifyIndex})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cmds = append(cmds, reseal.Command{What: fmt.Sprintf("registry %s of tenant %s", reg.Server, reg.Tenant), Msg: msg})
	}
	return cmds, errors.Join(errs...)
}
