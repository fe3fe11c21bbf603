package hub

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/internal/seal"
)

func TestDataKeys(t *testing.T) {
	k1, k2 := cluster.GenerateKey(), cluster.GenerateKey()
	ring := func(cfg Config) *seal.Keyring {
		t.Helper()
		r, err := dataKeys(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ad := []byte("acct")
	sealWith := func(r *seal.Keyring) []byte {
		t.Helper()
		b, err := r.Seal([]byte("secret"), ad)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	opens := func(r *seal.Keyring, b []byte) bool {
		got, err := r.Open(b, ad)
		return err == nil && string(got) == "secret"
	}

	// Two nodes with the same cluster key derive the same data key, and
	// write no key file.
	a := ring(Config{DataDir: t.TempDir(), ClusterKey: k1})
	bDir := t.TempDir()
	b := ring(Config{DataDir: bDir, ClusterKey: k1})
	if !opens(b, sealWith(a)) {
		t.Fatal("a node with the same cluster key cannot open another's values")
	}
	if _, err := os.Stat(filepath.Join(bDir, dataKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a hub with a cluster key wrote %s: %v", dataKeyFile, err)
	}
	if opens(ring(Config{DataDir: t.TempDir(), ClusterKey: k2}), sealWith(a)) {
		t.Fatal("another cluster key opens the values")
	}

	// Rotation: the new key with the old one as previous opens both and
	// seals with the new one.
	old := sealWith(a)
	rotated := ring(Config{DataDir: t.TempDir(), ClusterKey: k2, PreviousClusterKey: k1})
	if !opens(rotated, old) || rotated.IsCurrent(old) || !rotated.IsCurrent(sealWith(rotated)) {
		t.Fatal("a rotated keyring does not open old values, or seals with the old key")
	}
	if _, err := dataKeys(Config{DataDir: t.TempDir(), ClusterKey: k2, PreviousClusterKey: "nope"}); err == nil {
		t.Fatal("a malformed previous key was accepted")
	}

	// Without a cluster key: a data key generated once, 0600, kept.
	dir := t.TempDir()
	solo := ring(Config{DataDir: dir, BootstrapExpect: 1})
	fi, err := os.Stat(filepath.Join(dir, dataKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want 0600", dataKeyFile, err, fi.Mode().Perm())
	}
	v := sealWith(solo)
	if !opens(ring(Config{DataDir: dir, BootstrapExpect: 1}), v) {
		t.Fatal("a restarted single node cannot open its values")
	}
	// Given a cluster key later, it still opens what data.key sealed.
	if later := ring(Config{DataDir: dir, BootstrapExpect: 1, ClusterKey: k1}); !opens(later, v) || later.IsCurrent(v) {
		t.Fatal("a node given a cluster key lost its data.key values, or does not re-seal them")
	}
}
