// Package identity owns the agent's identity: what enrolment with a join
// token gives it (a host id, a key and its certificate, the agent CA),
// kept in its data dir as one file replaced atomically, and renewed over
// an established connection before the certificate expires.
package identity

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/wharf-platform/wharf/internal/atomicfile"
	"github.com/wharf-platform/wharf/pkg/pki"
)

// Identity is what enrolment gives an agent, kept in its data dir.
type Identity struct {
	HostID string
	Cert   tls.Certificate
	CAFP   string // fingerprint of the agent CA, pinned for every connection
	CAPEM  []byte // the agent CA, kept across certificate renewals
}

// File holds the whole identity (host id, key, certificate, CA)
// in one file, replaced atomically: a crash leaves the old identity or the
// new one, never a key of one and a certificate of the other.
const File = "identity"

// The layout before File: four files, each renamed into place on
// its own. It is still read, and rewritten as fileIdentity.
const (
	legacyKey    = "agent.key"
	legacyCert   = "agent.crt"
	legacyCA     = "ca.crt"
	legacyHostID = "host-id"
)

// identityFile is the content of File.
type identityFile struct {
	HostID  string `json:"host_id"`
	KeyPEM  string `json:"key_pem"`
	CertPEM string `json:"cert_pem"`
	CAPEM   string `json:"ca_pem"`
}

// Load reads the identity from dir; (nil, nil) when not enrolled. It
// removes what a crash during Save left behind (a temporary copy holding
// a private key).
func Load(dir string) (*Identity, error) {
	path := filepath.Join(dir, File)
	if err := atomicfile.RemoveTemps(path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return loadLegacyIdentity(dir)
	}
	if err != nil {
		return nil, err
	}
	var f identityFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("agent identity %s: %w", path, err)
	}
	return parseIdentity(f.HostID, []byte(f.KeyPEM), []byte(f.CertPEM), []byte(f.CAPEM))
}

func parseIdentity(hostID string, keyPEM, certPEM, caPEM []byte) (*Identity, error) {
	if hostID == "" {
		return nil, errors.New("agent identity: empty host id")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("agent certificate: %w", err)
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("agent CA: %w", err)
	}
	return &Identity{HostID: hostID, Cert: cert, CAFP: pki.Fingerprint(ca), CAPEM: caPEM}, nil
}

// loadLegacyIdentity reads the four-file layout, rewrites it as one file
// and removes the old files.
func loadLegacyIdentity(dir string) (*Identity, error) {
	id, err := os.ReadFile(filepath.Join(dir, legacyHostID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pems [3][]byte
	for i, name := range []string{legacyKey, legacyCert, legacyCA} {
		if pems[i], err = os.ReadFile(filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("agent identity: %w", err)
		}
	}
	ident, err := parseIdentity(strings.TrimSpace(string(id)), pems[0], pems[1], pems[2])
	if err != nil {
		return nil, err
	}
	if err := Save(dir, ident.HostID, pems[0], pems[1], pems[2]); err != nil {
		return nil, err
	}
	// The new file takes precedence from now on, so an old file that
	// cannot be removed is only clutter.
	for _, name := range []string{legacyHostID, legacyKey, legacyCert, legacyCA} {
		os.Remove(filepath.Join(dir, name))
	}
	return ident, nil
}

// Save replaces the identity in dir as one unit (mode 0600: it holds the
// private key).
func Save(dir, hostID string, keyPEM, certPEM, caPEM []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(identityFile{HostID: hostID, KeyPEM: string(keyPEM), CertPEM: string(certPEM), CAPEM: string(caPEM)})
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, File), b, 0o600); err != nil {
		return fmt.Errorf("save agent identity: %w", err)
	}
	return nil
}
