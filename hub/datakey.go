package hub

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/internal/seal"
)

// dataKeyFile holds, in the data dir of a hub started without a cluster
// key, the data key that seals secrets at rest (never in Raft).
const dataKeyFile = "data.key"

// dataKeys returns the keyring that seals secrets at rest. With a cluster
// key, the data key is derived from it (every node derives the same one),
// and from --previous-cluster-key during a rotation; a data.key left by an
// earlier run without a cluster key still opens what it sealed. Without a
// cluster key (single-node clusters), the data key is generated once and
// kept 0600 in the data dir.
func dataKeys(cfg Config) (*seal.Keyring, error) {
	var kept []byte
	path := filepath.Join(cfg.DataDir, dataKeyFile)
	if cfg.ClusterKey == "" {
		s, err := loadOrCreate(cfg.DataDir, dataKeyFile, func() (string, error) {
			return base64.StdEncoding.EncodeToString(seal.GenerateKey()), nil
		})
		if err != nil {
			return nil, fmt.Errorf("data key: %w", err)
		}
		if kept, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("data key %s is not base64", path)
		}
		var prev []byte
		if cfg.PreviousClusterKey != "" {
			if prev, err = derivedKey(cfg.PreviousClusterKey, "--previous-cluster-key"); err != nil {
				return nil, err
			}
		}
		return seal.NewKeyring(kept, prev)
	}
	cur, err := derivedKey(cfg.ClusterKey, "--cluster-key")
	if err != nil {
		return nil, err
	}
	var prev []byte
	if cfg.PreviousClusterKey != "" {
		if prev, err = derivedKey(cfg.PreviousClusterKey, "--previous-cluster-key"); err != nil {
			return nil, err
		}
	}
	if b, err := os.ReadFile(path); err == nil {
		if kept, err = base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b))); err != nil {
			return nil, fmt.Errorf("data key %s is not base64", path)
		}
	}
	return seal.NewKeyring(cur, prev, kept)
}

func derivedKey(clusterKey, flag string) ([]byte, error) {
	raw, err := cluster.ParseKey(clusterKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return seal.DeriveKey(raw)
}
