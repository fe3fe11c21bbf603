package accounts

import (
	"context"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/reseal"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/seal"
)

// TestResealAppSecretsAfterRotation: apps' secrets sealed under the old
// key are re-sealed under the new one (same values, no new version), and
// a second pass commits nothing.
func TestResealAppSecretsAfterRotation(t *testing.T) {
	store, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	commit := &fsmCommit{fsm: state.NewFSM(store, nil)}
	oldKey, newKey := seal.GenerateKey(), seal.GenerateKey()
	oldRing := keyring(t, oldKey)
	apply := func(mt state.MessageType, req any) {
		t.Helper()
		msg, err := state.Encode(mt, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := commit.Apply(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	apply(state.TenantCreateType, &state.TenantCreateRequest{Tenant: state.Tenant{Name: "acme"}, Time: now})
	apply(state.AppUpsertType, &state.AppUpsertRequest{Tenant: "acme", Spec: state.AppSpec{Name: "web", Image: "web:1"}, Create: true, Time: now})
	sealed, err := oldRing.Seal([]byte("db-pass"), state.SecretAD("acme", "web", "DB_PASSWORD"))
	if err != nil {
		t.Fatal(err)
	}
	apply(state.SecretsSetType, &state.SecretsSetRequest{Tenant: "acme", App: "web", Sealed: map[string][]byte{"DB_PASSWORD": sealed}, Time: now})
	before, _ := store.Snapshot().App(nil, "acme", "web")

	ring := keyring(t, newKey, oldKey)
	r := &reseal.Runner{State: store, Keys: ring, Commit: commit, Kinds: []reseal.Kind{AppSecrets{}}}
	n := commit.n
	if err := r.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if commit.n != n+1 {
		t.Fatalf("%d commands, want 1", commit.n-n)
	}
	a, _ := store.Snapshot().App(nil, "acme", "web")
	if !ring.IsCurrent(a.Secrets["DB_PASSWORD"]) || a.Version != before.Version || a.SecretsRevision != before.SecretsRevision {
		t.Fatalf("after re-seal: current %v, version %d (was %d), revision %d", ring.IsCurrent(a.Secrets["DB_PASSWORD"]), a.Version, before.Version, a.SecretsRevision)
	}
	plain, err := keyring(t, newKey).Open(a.Secrets["DB_PASSWORD"], state.SecretAD("acme", "web", "DB_PASSWORD"))
	if err != nil || string(plain) != "db-pass" {
		t.Fatalf("the new key alone opens %q, %v", plain, err)
	}
	if err := r.Once(context.Background()); err != nil || commit.n != n+1 {
		t.Fatalf("second pass: %v, %d commands", err, commit.n-n-1)
	}
}
