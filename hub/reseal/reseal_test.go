package reseal_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wharf-platform/wharf/hub/accounts"
	"github.com/wharf-platform/wharf/hub/registryauth"
	"github.com/wharf-platform/wharf/hub/reseal"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/seal"
	"github.com/wharf-platform/wharf/providers"
)

// commit applies commands to a real FSM; conflict makes the next n
// commands fail as if their values had changed meanwhile.
type commit struct {
	mu       sync.Mutex
	fsm      *state.FSM
	index    uint64
	conflict int
}

func (c *commit) Apply(_ context.Context, msg []byte) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conflict > 0 {
		c.conflict--
		return 0, state.ErrConflict
	}
	c.index++
	if r := c.fsm.Apply(&raft.Log{Index: c.index, Type: raft.LogCommand, Data: msg}); r != nil {
		return c.index, r.(error)
	}
	return c.index, nil
}

func (c *commit) must(t *testing.T, mt state.MessageType, req any) {
	t.Helper()
	msg, err := state.Encode(mt, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

func keyring(t *testing.T, keys ...[]byte) *seal.Keyring {
	t.Helper()
	r, err := seal.NewKeyring(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRunnerWatchesEveryKind: one runner over two kinds re-seals values of
// either written after it started, passes over a value that changed
// meanwhile (and gets it on the next change), and reports the values it
// cannot open by kind.
func TestRunnerWatchesEveryKind(t *testing.T) {
	store, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	c := &commit{fsm: state.NewFSM(store, nil)}
	oldKey, newKey := seal.GenerateKey(), seal.GenerateKey()
	oldRing, ring := keyring(t, oldKey), keyring(t, newKey, oldKey)
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	c.must(t, state.TenantCreateType, &state.TenantCreateRequest{Tenant: state.Tenant{Name: "acme"}, Time: t0})

	putAccount := func(name string) {
		sealed, err := accounts.Seal(oldRing, name, providers.Credentials{AccessKeyID: "AKIA", SecretAccessKey: "s3cret"})
		if err != nil {
			t.Fatal(err)
		}
		c.must(t, state.ProviderCreateType, &state.ProviderCreateRequest{Account: state.ProviderAccount{Name: name, Type: "aws", SealedCredentials: sealed}})
	}
	putRegistry := func(server string) {
		sealed, err := registryauth.Seal(oldRing, "acme", server, "pw")
		if err != nil {
			t.Fatal(err)
		}
		c.must(t, state.RegistryPutType, &state.RegistryPutRequest{Registry: state.Registry{Tenant: "acme", Server: server, Username: "ci", SealedPassword: sealed}, Time: t0})
	}
	current := func() (acct, reg bool) {
		snap := store.Snapshot()
		if a, _ := snap.ProviderAccount(nil, "a1"); a != nil {
			acct = ring.IsCurrent(a.SealedCredentials)
		}
		if r, _ := snap.Registry(nil, "acme", "r.acme.test"); r != nil {
			reg = ring.IsCurrent(r.SealedPassword)
		}
		return acct, reg
	}

	r := &reseal.Runner{State: store, Keys: ring, Commit: c, Kinds: []reseal.Kind{accounts.Credentials{}, registryauth.Passwords{}}}
	// A value that changed between the listing and the commit is no
	// failure: the watch brings it back.
	putAccount("a1")
	c.conflict = 1
	if err := r.Once(context.Background()); err != nil {
		t.Fatalf("a conflicting re-seal reported %v", err)
	}
	if acct, _ := current(); acct {
		t.Fatal("the conflicting command was committed")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("Run did not re-seal %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait("the account at start", func() bool { a, _ := current(); return a })
	// The second kind's table alone changes: the runner must watch it too.
	putRegistry("r.acme.test")
	wait("the registry written later", func() bool { _, reg := current(); return reg })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Without the previous key nothing opens: the error names the kind.
	putAccount("a2")
	err = (&reseal.Runner{State: store, Keys: keyring(t, newKey), Commit: c, Kinds: r.Kinds}).Once(context.Background())
	if !errors.Is(err, seal.ErrUnknownKey) || !strings.Contains(err.Error(), "provider credentials: provider a2") {
		t.Fatalf("re-seal without the previous key: %v", err)
	}
}
