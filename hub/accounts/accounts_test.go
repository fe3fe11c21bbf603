package accounts

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wharf-platform/wharf/hub/reseal"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/seal"
	"github.com/wharf-platform/wharf/providers"
)

// fsmCommit applies commands straight to a real FSM.
type fsmCommit struct {
	mu    sync.Mutex
	fsm   *state.FSM
	index uint64
	n     int // commands applied
}

func (c *fsmCommit) Apply(_ context.Context, msg []byte) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index++
	c.n++
	if r := c.fsm.Apply(&raft.Log{Index: c.index, Type: raft.LogCommand, Data: msg}); r != nil {
		return c.index, r.(error)
	}
	return c.index, nil
}

func keyring(t *testing.T, cur []byte, prev ...[]byte) *seal.Keyring {
	t.Helper()
	k, err := seal.NewKeyring(cur, prev...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var creds = providers.Credentials{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "s3cr3t-wJalrXUtnFEMI"}

func TestSealOpen(t *testing.T) {
	keys := keyring(t, seal.GenerateKey())
	sealed, err := Seal(keys, "aws1", creds)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(creds.SecretAccessKey)) {
		t.Fatal("the secret is in the sealed value")
	}
	a := &state.ProviderAccount{Name: "aws1", Type: "aws", Region: "us-east-1", Endpoint: "http://127.0.0.1:1", SealedCredentials: sealed}
	got, err := Open(keys, a)
	if err != nil {
		t.Fatal(err)
	}
	if got.Credentials.SecretAccessKey != creds.SecretAccessKey || got.Type != "aws" || got.Region != "us-east-1" || got.Endpoint != a.Endpoint {
		t.Fatalf("opened %+v", got)
	}
	// Copied to another account, the value does not open.
	other := *a
	other.Name = "aws2"
	if _, err := Open(keys, &other); !errors.Is(err, seal.ErrCorrupt) {
		t.Fatalf("another account's credentials: %v, want ErrCorrupt", err)
	}
}

func TestResealAfterRotation(t *testing.T) {
	store, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	commit := &fsmCommit{fsm: state.NewFSM(store, nil)}
	oldKey, newKey := seal.GenerateKey(), seal.GenerateKey()
	oldRing := keyring(t, oldKey)
	put := func(name string, keys *seal.Keyring) {
		sealed, err := Seal(keys, name, creds)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := state.Encode(state.ProviderCreateType, &state.ProviderCreateRequest{Account: state.ProviderAccount{Name: name, Type: "aws", SealedCredentials: sealed}})
		if _, err := commit.Apply(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	rotated := keyring(t, newKey, oldKey)
	put("a1", oldRing)
	put("a2", oldRing)
	put("a3", rotated) // already under the new key
	before := commit.n

	r := &reseal.Runner{State: store, Keys: rotated, Commit: commit, Kinds: []reseal.Kind{Credentials{}}}
	if err := r.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := commit.n - before; got != 2 {
		t.Fatalf("re-sealed with %d commands, want 2 (one per old account)", got)
	}
	newOnly := keyring(t, newKey)
	accts, _ := store.Snapshot().ProviderAccounts(nil)
	for _, a := range accts {
		if id, _ := seal.SealedKeyID(a.SealedCredentials); id != seal.KeyID(newKey) {
			t.Fatalf("%s is still under key %08x", a.Name, id)
		}
		if got, err := Open(newOnly, a); err != nil || got.Credentials.SecretAccessKey != creds.SecretAccessKey {
			t.Fatalf("%s after re-seal: %+v, %v", a.Name, got.Credentials, err)
		}
	}
	// Once is once: nothing left to do.
	before = commit.n
	if err := r.Once(context.Background()); err != nil || commit.n != before {
		t.Fatalf("second pass: %v, %d commands", err, commit.n-before)
	}

	// Run picks up an account written under the old key later.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	put("a4", oldRing)
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, _ := store.Snapshot().ProviderAccount(nil, "a4")
		if rotated.IsCurrent(a.SealedCredentials) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not re-seal a4")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A keyring without the old key cannot re-seal, and says so.
	put("a5", oldRing)
	if err := (&reseal.Runner{State: store, Keys: newOnly, Commit: commit, Kinds: []reseal.Kind{Credentials{}}}).Once(context.Background()); !errors.Is(err, seal.ErrUnknownKey) {
		t.Fatalf("re-seal without the previous key: %v, want ErrUnknownKey", err)
	}
}
