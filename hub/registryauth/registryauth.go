// Package registryauth owns tenants' private registry passwords at rest: it
// seals them (internal/seal) before they reach the Raft log, and opens
// them only to hand an agent the credentials for the image of an instance
// it runs.
package registryauth

import (
	"errors"
	"fmt"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Keys seals and opens; *seal.Keyring is one.
type Keys interface {
	Seal(plain, ad []byte) ([]byte, error)
	Open(sealed, ad []byte) ([]byte, error)
}

// ad binds a sealed password to its tenant and server: a sealed value
// copied to another tenant's registry does not open.
func ad(tenant, server string) []byte {
	return []byte("wharf registry " + tenant + "\x00" + server)
}

// Seal seals a tenant's password for a registry server.
func Seal(keys Keys, tenant, server, password string) ([]byte, error) {
	if keys == nil {
		return nil, errors.New("this hub has no data key to seal registry passwords with")
	}
	return keys.Seal([]byte(password), ad(tenant, server))
}

// Open returns a registry's password.
func Open(keys Keys, r *state.Registry) (string, error) {
	if keys == nil {
		return "", errors.New("this hub has no data key to open registry passwords with")
	}
	b, err := keys.Open(r.SealedPassword, ad(r.Tenant, r.Server))
	if err != nil {
		return "", fmt.Errorf("password of registry %s (tenant %s): %w", r.Server, r.Tenant, err)
	}
	return string(b), nil
}

// Credentials are what a pull from a private registry needs.
type Credentials struct {
	Server   string
	Username string
	Password string
}

// Finder opens the credentials a tenant's image is pulled with.
type Finder struct {
	Keys Keys
}

// ForImage returns the tenant's credentials for the registry the image is
// pulled from (nil for an image of Docker Hub or of a registry the tenant
// has no credentials for: the pull goes without), and whether that
// registry is private: some tenant keeps credentials for it, so every new
// container pulls, and the registry checks this tenant's access.
func (f Finder) ForImage(snap *state.Snapshot, tenant, image string) (*Credentials, bool, error) {
	server := apitypes.ImageRegistry(image)
	if server == "" {
		return nil, false, nil
	}
	r, err := snap.Registry(nil, tenant, server)
	if err != nil {
		return nil, false, err
	}
	if r == nil {
		private, err := snap.RegistryKept(nil, server)
		return nil, private, err
	}
	pw, err := Open(f.Keys, r)
	if err != nil {
		return nil, true, err
	}
	return &Credentials{Server: r.Server, Username: r.Username, Password: pw}, true, nil
}
