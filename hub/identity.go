package hub

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/wharf-platform/wharf/internal/atomicfile"
)

// loadOrCreate returns the trimmed content of dir/name, creating it with
// make() (mode 0600) when it does not exist yet. The write is atomic and
// durable (internal/atomicfile): a crash never leaves half a file, and a
// value handed out survives power loss.
func loadOrCreate(dir, name string, make func() (string, error)) (string, error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err == nil {
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%s is empty", path)
		}
		return v, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	v, err := make()
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(path, []byte(v+"\n"), 0o600); err != nil {
		return "", err
	}
	return v, nil
}

// nodeID returns this node's persistent id (a random UUID-shaped string).
func nodeID(dataDir string) (string, error) {
	return loadOrCreate(dataDir, "node-id", func() (string, error) {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		h := hex.EncodeToString(b[:])
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
	})
}

// defaultNodeName is the hostname plus the first 6 characters of the node
// id, so two nodes on one machine never collide.
func defaultNodeName(id string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "hub"
	}
	host = strings.ToLower(strings.SplitN(host, ".", 2)[0])
	return host + "-" + id[:6]
}

// quicResetKey returns this node's persistent QUIC stateless reset key: a
// node restarted on the same address then answers packets of connections it
// lost with a stateless reset, and agents reconnect at once instead of
// waiting for silence.
func quicResetKey(dataDir string) (*[32]byte, error) {
	s, err := loadOrCreate(dataDir, "quic-reset-key", func() (string, error) {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		return hex.EncodeToString(b[:]), nil
	})
	if err != nil {
		return nil, err
	}
	var k [32]byte
	if b, err := hex.DecodeString(s); err != nil || len(b) != 32 {
		return nil, fmt.Errorf("quic-reset-key in %s is not 32 hex bytes", dataDir)
	} else {
		copy(k[:], b)
	}
	return &k, nil
}
