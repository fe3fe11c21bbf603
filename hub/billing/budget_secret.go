package billing

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/wharf-platform/wharf/hub/state"
)

// A budget webhook's secret signs its posts (HMAC-SHA256 over timestamp
// and body, as hub/alert signs alert webhooks: the X-Wharf-Signature
// header). It is sealed with the cluster's data key before it is
// committed, so neither the Raft log nor a snapshot holds it in plain
// text, and no read returns it. The additional data names the tenant, so
// one tenant's sealed secret does not open as another's.

// MaxWebhookSecret bounds a budget webhook's secret, in bytes.
const MaxWebhookSecret = 256

// SecretKeys seals and opens what the state store keeps sealed;
// *seal.Keyring is one.
type SecretKeys interface {
	Seal(plain, ad []byte) ([]byte, error)
	Open(sealed, ad []byte) ([]byte, error)
}

// Resealer is what SecretKeys may also do (*seal.Keyring does): tell a
// value sealed under a key other than the current one, and seal it again
// under the current one. After a cluster key rotation the budget runner
// re-seals the webhook secrets, as the provider accounts are.
type Resealer interface {
	IsCurrent(sealed []byte) bool
	Reseal(sealed, ad []byte) ([]byte, error)
}

func webhookAD(tenant string) []byte { return []byte("wharf budget webhook secret " + tenant) }

// SealWebhookSecret seals a tenant's budget webhook secret for the state
// store.
func SealWebhookSecret(keys SecretKeys, tenant, secret string) ([]byte, error) {
	if keys == nil {
		return nil, errors.New("this hub has no data key to seal the webhook secret with")
	}
	if secret == "" || len(secret) > MaxWebhookSecret {
		return nil, fmt.Errorf("a webhook secret is 1 to %d bytes", MaxWebhookSecret)
	}
	return keys.Seal([]byte(secret), webhookAD(tenant))
}

// OpenWebhookSecret opens a tenant's sealed budget webhook secret.
func OpenWebhookSecret(keys SecretKeys, tenant string, sealed []byte) (string, error) {
	if keys == nil {
		return "", errors.New("no data key to open the webhook secret with")
	}
	b, err := keys.Open(sealed, webhookAD(tenant))
	if err != nil {
		return "", fmt.Errorf("budget webhook secret of %s: %w", tenant, err)
	}
	return string(b), nil
}

// reseal seals a tenant's webhook secret again under the current key
// when an older one sealed it. The commit names the sealed value it
// replaces, so a secret set meanwhile is never overwritten.
func (b *Budgets) reseal(ctx context.Context, t *state.Tenant) error {
	rs, ok := b.cfg.Keys.(Resealer)
	if !ok || len(t.SealedBudgetSecret) == 0 || rs.IsCurrent(t.SealedBudgetSecret) {
		return nil
	}
	sealed, err := rs.Reseal(t.SealedBudgetSecret, webhookAD(t.Name))
	if err != nil {
		return fmt.Errorf("re-seal the budget webhook secret (give the node the previous cluster key): %w", err)
	}
	was := slices.Clone(t.SealedBudgetSecret)
	req := &state.TenantUpdateRequest{Name: t.Name, SealedBudgetSecret: &sealed, ResealOf: &was, Time: b.cfg.Now().UTC()}
	switch err := b.commit(ctx, state.TenantUpdateType, req); {
	case err == nil:
		b.log.Info("re-sealed the budget webhook secret under the current key", "tenant", t.Name)
	case !errors.Is(err, state.ErrConflict): // a conflict: it changed meanwhile, the next check sees it
		return err
	}
	return nil
}
