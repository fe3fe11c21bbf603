package registryauth

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wharf-platform/wharf/hub/reseal"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/seal"
)

// fsmCommit applies commands straight to a real FSM.
type fsmCommit struct {
	mu    sync.Mutex
	fsm   *state.FSM
	index uint64
}

func (c *fsmCommit) Apply(_ context.Context, msg []byte) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index++
	if r := c.fsm.Apply(&raft.Log{Index: c.index, Type: raft.LogCommand, Data: msg}); r != nil {
		return c.index, r.(error)
	}
	return c.index, nil
}

func (c *fsmCommit) must(t *testing.T, mt state.MessageType, req any) {
	t.Helper()
	msg, err := state.Encode(mt, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

func keyring(t *testing.T, cur []byte, prev ...[]byte) *seal.Keyring {
	t.Helper()
	k, err := seal.NewKeyring(cur, prev...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSealBindsTenantAndServer: the sealed value holds no plain password
// and opens only for its own tenant and server.
func TestSealBindsTenantAndServer(t *testing.T) {
	const pw = "registry-pass-123"
	keys := keyring(t, seal.GenerateKey())
	sealed, err := Seal(keys, "acme", "r.acme.test", pw)
	if err != nil || bytes.Contains(sealed, []byte(pw)) {
		t.Fatalf("sealed %q, %v", sealed, err)
	}
	for _, tt := range []struct {
		tenant, server string
		ok             bool
	}{{"acme", "r.acme.test", true}, {"beta", "r.acme.test", false}, {"acme", "r.beta.test", false}} {
		got, err := Open(keys, &state.Registry{Tenant: tt.tenant, Server: tt.server, SealedPassword: sealed})
		if (err == nil) != tt.ok || (tt.ok && got != pw) {
			t.Errorf("open as %s/%s: %q, %v", tt.tenant, tt.server, got, err)
		}
	}
	if _, err := Seal(nil, "acme", "r.acme.test", pw); err == nil {
		t.Fatal("sealed without keys")
	}
}

// TestResealAfterRotation: passwords sealed under the previous key are
// re-sealed under the current one, and then open without the previous
// key.
func TestResealAfterRotation(t *testing.T) {
	const pw = "rotated-registry-pass"
	oldKey, newKey := seal.GenerateKey(), seal.GenerateKey()
	store, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	c := &fsmCommit{fsm: state.NewFSM(store, nil)}
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	c.must(t, state.TenantCreateType, &state.TenantCreateRequest{Tenant: state.Tenant{Name: "acme"}, Time: t0})
	sealed, err := Seal(keyring(t, oldKey), "acme", "r.acme.test", pw)
	if err != nil {
		t.Fatal(err)
	}
	c.must(t, state.RegistryPutType, &state.RegistryPutRequest{Registry: state.Registry{Tenant: "acme", Server: "r.acme.test", Username: "ci", SealedPassword: sealed}, Time: t0})

	// A node without the previous key cannot re-seal, and says so.
	if err := (&reseal.Runner{State: store, Keys: keyring(t, newKey), Commit: c, Kinds: []reseal.Kind{Passwords{}}}).Once(context.Background()); err == nil {
		t.Fatal("re-sealed without the previous key")
	}
	r := &reseal.Runner{State: store, Keys: keyring(t, newKey, oldKey), Commit: c, Kinds: []reseal.Kind{Passwords{}}}
	if err := r.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg, _ := store.Snapshot().Registry(nil, "acme", "r.acme.test")
	if !r.Keys.IsCurrent(reg.SealedPassword) {
		t.Fatal("the password is not sealed under the current key")
	}
	if got, err := Open(keyring(t, newKey), reg); err != nil || got != pw {
		t.Fatalf("without the previous key the password opens to %q, %v", got, err)
	}
	before := c.index
	if err := r.Once(context.Background()); err != nil || c.index != before {
		t.Fatalf("a second pass committed %d commands (%v), want none", c.index-before, err)
	}
	// A stale re-seal (the registry changed meanwhile) is refused.
	msg, _ := state.Encode(state.RegistryResealType, &state.RegistryResealRequest{Tenant: "acme", Server: "r.acme.test", SealedPassword: []byte{1}, ModifyIndex: reg.ModifyIndex - 1})
	if _, err := c.Apply(context.Background(), msg); err == nil {
		t.Fatal("a stale re-seal was applied")
	}
}
