// Package accounts owns provider accounts' credentials and apps' secrets
// at rest: it seals credentials (internal/seal) before they reach the Raft
// log, opens them into a providers.Account when a cloud call needs them,
// and describes both kinds of sealed value to the leader's re-sealing
// (hub/reseal) after a key rotation.
package accounts

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/reseal"
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

// Credentials is the reseal.Kind of provider accounts' credentials.
type Credentials struct{}

// Name implements reseal.Kind.
func (Credentials) Name() string { return "provider credentials" }

// Watch implements reseal.Kind.
func (Credentials) Watch(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
	_, err := snap.ProviderAccounts(ws)
	return snap.Index(state.TableProviders), err
}

// Stale implements reseal.Kind: one command per account.
func (Credentials) Stale(snap *state.Snapshot, keys *seal.Keyring) ([]reseal.Command, error) {
	accts, err := snap.ProviderAccounts(nil)
	if err != nil {
		return nil, err
	}
	var cmds []reseal.Command
	var errs []error
	for _, a := range accts {
		if keys.IsCurrent(a.SealedCredentials) {
			continue
		}
		sealed, err := keys.Reseal(a.SealedCredentials, ad(a.Name))
		if err != nil {
			errs = append(errs, fmt.Errorf("provider %s: %w", a.Name, err))
			continue
		}
		msg, err := state.Encode(state.ProviderResealType, &state.ProviderResealRequest{Name: a.Name, SealedCredentials: sealed, ModifyIndex: a.ModifyIndex})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cmds = append(cmds, reseal.Command{What: "provider " + a.Name, Msg: msg})
	}
	return cmds, errors.Join(errs...)
}
