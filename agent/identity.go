package agent

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/wharf-platform/wharf/pkg/pki"
)

// identity is what enrolment gives an agent, kept in its data dir.
type identity struct {
	HostID string
	Cert   tls.Certificate
	CAFP   string // fingerprint of the agent CA, pinned for every connection
}

const (
	fileKey    = "agent.key"
	fileCert   = "agent.crt"
	fileCA     = "ca.crt"
	fileHostID = "host-id"
)

// loadIdentity reads the identity from dir; (nil, nil) when not enrolled.
func loadIdentity(dir string) (*identity, error) {
	id, err := os.ReadFile(filepath.Join(dir, fileHostID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, fileCert), filepath.Join(dir, fileKey))
	if err != nil {
		return nil, fmt.Errorf("agent certificate: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, fileCA))
	if err != nil {
		return nil, err
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("agent CA: %w", err)
	}
	return &identity{HostID: strings.TrimSpace(string(id)), Cert: cert, CAFP: pki.Fingerprint(ca)}, nil
}

// saveIdentity writes the files, the host id last: it marks the set complete.
func saveIdentity(dir, hostID string, keyPEM, certPEM, caPEM []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{fileKey, keyPEM}, {fileCert, certPEM}, {fileCA, caPEM}, {fileHostID, []byte(hostID + "\n")}} {
		tmp := filepath.Join(dir, f.name+".tmp")
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			return err
		}
	}
	return nil
}
