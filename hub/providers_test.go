package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/internal/seal"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/providers"
)

// okCloud accepts every credential check and does nothing else.
type okCloud struct{}

func (okCloud) Check(context.Context) error { return nil }
func (okCloud) Create(context.Context, providers.CreateRequest) (providers.Machine, error) {
	return providers.Machine{}, errors.ErrUnsupported
}
func (okCloud) Delete(context.Context, string) error { return errors.ErrUnsupported }
func (okCloud) Describe(context.Context, string) (providers.Machine, error) {
	return providers.Machine{}, errors.ErrUnsupported
}
func (okCloud) List(context.Context, string) ([]providers.Machine, error) {
	return nil, errors.ErrUnsupported
}
func (okCloud) Shape(context.Context, providers.Template) (providers.Resources, bool, error) {
	return providers.Resources{}, false, nil
}

// syncBuffer collects every node's logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProviderCredentialsNeverOnDisk writes a provider account through a
// follower of a real 3-node cluster and then looks for its secret in every
// file of every node's data dir (Raft log, stable store, snapshots, keys),
// in the nodes' logs and in every read.
func TestProviderCredentialsNeverOnDisk(t *testing.T) {
	const secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
	const keyID = "AKIAIOSFODNN7EXAMPLE"
	var logs syncBuffer
	c := hubtest.New(t, 3, hubtest.Options{
		Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OpenProvider: func(providers.Account) (providers.Provider, error) { return okCloud{}, nil },
	})
	admin := bootstrap(t, c)
	follower := c.Nodes[0]
	if l := c.Leader(); l == follower {
		follower = c.Nodes[1]
	}
	body := map[string]any{"name": "aws1", "type": "aws", "region": "us-east-1", "endpoint": "http://127.0.0.1:9",
		"credentials": map[string]string{"access_key_id": keyID, "secret_access_key": secret}}
	var p apitypes.Provider
	admin.must(t, "POST", follower.URL()+"/v1/providers", body, &p)
	if p.Credentials != "set" {
		t.Fatalf("created %+v", p)
	}
	admin.must(t, "POST", follower.URL()+"/v1/pools", map[string]any{"name": "auto", "provision": map[string]any{
		"provider": "aws1", "template": map[string]any{"instance_type": "t3.small", "image": "ami-1"}, "max_hosts": 2}}, nil)
	// A PUT re-seals new credentials; the old ones must not linger either.
	body["credentials"] = map[string]string{"access_key_id": keyID, "secret_access_key": secret + "-2"}
	admin.must(t, "PUT", follower.URL()+"/v1/providers/aws1", body, nil)

	// Every node has applied it (stale reads are local) and shows no secret.
	for _, n := range c.Nodes {
		hubtest.WaitFor(t, 10*time.Second, "node "+n.URL()+" to have the account", func() bool {
			var ps []apitypes.Provider
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, _, err := admin.call(ctx, "GET", n.URL()+"/v1/providers?stale", nil, &ps)
			return err == nil && len(ps) == 1 && ps[0].Credentials == "set" && ps[0].Region == "us-east-1"
		})
	}
	// Reads, on every node.
	for _, path := range []string{"/v1/providers", "/v1/providers/aws1", "/v1/pools/auto", "/v1/pools", "/v1/events"} {
		b := rawGet(t, admin, c.Nodes[2].URL()+path)
		if strings.Contains(b, secret) || strings.Contains(b, keyID) {
			t.Fatalf("GET %s shows the credentials: %s", path, b)
		}
	}

	// Disks: stop the nodes so every buffered write is on disk, then read
	// every file.
	c.Stop()
	files, plain := 0, 0
	for _, n := range c.Nodes {
		err := filepath.WalkDir(n.DataDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			if bytes.Contains(b, []byte("http://127.0.0.1:9")) {
				plain++ // the account's other fields, in the Raft log
			}
			for _, s := range []string{secret, keyID} {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s holds %q in plain text", path, s)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if plain == 0 {
		t.Fatal("no data dir file holds the account's endpoint: the search would not find a plain-text secret either")
	}
	if files < 6 {
		t.Fatalf("only %d files in the data dirs: did the nodes write their Raft logs elsewhere?", files)
	}
	if l := logs.String(); strings.Contains(l, secret) || strings.Contains(l, keyID) {
		t.Fatal("a node logged the credentials")
	} else if !strings.Contains(l, "hub started") {
		t.Fatal("the nodes' logs were not captured")
	}
}

func rawGet(t *testing.T, r *rest, url string) string {
	t.Helper()
	var v any
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := r.call(ctx, "GET", url, nil, &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestKeyRotationReseals rotates the cluster key of a running 3-node
// cluster: with the old key as --previous-cluster-key, the leader re-seals
// every provider account under the new data key, on every node's replica,
// and the accounts stay readable once the old key is dropped.
func TestKeyRotationReseals(t *testing.T) {
	c := hubtest.New(t, 3, hubtest.Options{
		OpenProvider: func(providers.Account) (providers.Provider, error) { return okCloud{}, nil },
	})
	admin := bootstrap(t, c)
	for _, name := range []string{"aws1", "aws2"} {
		admin.must(t, "POST", c.Nodes[0].URL()+"/v1/providers", map[string]any{"name": name, "type": "aws",
			"credentials": map[string]string{"access_key_id": "AKIA", "secret_access_key": "s"}}, nil)
	}
	keyID := func(clusterKey string) uint32 {
		raw, err := cluster.ParseKey(clusterKey)
		if err != nil {
			t.Fatal(err)
		}
		dk, err := seal.DeriveKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		return seal.KeyID(dk)
	}
	sealedUnder := func(want uint32) func() bool {
		return func() bool {
			for _, n := range c.Nodes {
				accts, _ := n.Hub().Store().Snapshot().ProviderAccounts(nil)
				if len(accts) != 2 {
					return false
				}
				for _, a := range accts {
					if id, _ := seal.SealedKeyID(a.SealedCredentials); id != want {
						return false
					}
				}
			}
			return true
		}
	}
	old := c.Key()
	hubtest.WaitFor(t, 10*time.Second, "the accounts sealed under the first key on every node", sealedUnder(keyID(old)))

	next := cluster.GenerateKey()
	c.RotateKey(next, old)
	hubtest.WaitFor(t, 20*time.Second, "the accounts re-sealed under the new key on every node", sealedUnder(keyID(next)))

	// The old key can go: the accounts are still there and still "set".
	c.RotateKey(next, "")
	admin = newREST(t, admin.token)
	var ps []apitypes.Provider
	admin.must(t, "GET", c.Leader().URL()+"/v1/providers", nil, &ps)
	if len(ps) != 2 || ps[0].Credentials != "set" {
		t.Fatalf("providers after dropping the old key: %+v", ps)
	}
}
