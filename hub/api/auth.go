package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// principal is the caller, identified by its token.
type principal struct {
	token *state.Token
}

func (p *principal) admin() bool { return p.token.Role == state.RoleAdmin }

// canWriteApps: admin, tenant-admin and developer.
func (p *principal) canWriteApps() bool {
	switch p.token.Role {
	case state.RoleAdmin, state.RoleTenantAdmin, state.RoleDeveloper:
		return true
	}
	return false
}

// canManageTokens: admin and tenant-admin.
func (p *principal) canManageTokens() bool {
	return p.token.Role == state.RoleAdmin || p.token.Role == state.RoleTenantAdmin
}

// hashSecret is how token secrets are stored.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func unauthorized(msg string) error {
	return &apitypes.Error{Status: http.StatusUnauthorized, Message: msg}
}

func (s *Server) authenticate(r *http.Request) (*principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, unauthorized("missing token: send Authorization: Bearer TOKEN")
	}
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(secret) == "" {
		return nil, unauthorized("malformed Authorization header: want Bearer TOKEN")
	}
	hash := hashSecret(strings.TrimSpace(secret))
	tok, err := s.cfg.Store.Snapshot().TokenByHash(nil, hash)
	if err != nil {
		return nil, err
	}
	if tok == nil {
		// This replica may lag behind the write that created the token:
		// check again after a linearizable-read barrier, so a token works
		// on every node as soon as its creation was acknowledged.
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		err := s.cfg.Cluster.ConsistentRead(ctx)
		cancel()
		if err == nil {
			tok, err = s.cfg.Store.Snapshot().TokenByHash(nil, hash)
			if err != nil {
				return nil, err
			}
		}
	}
	if tok == nil {
		return nil, unauthorized("invalid or revoked token")
	}
	return &principal{token: tok}, nil
}

// tenantScope returns the tenant a request acts on. Admins name it with
// ?tenant= (required when required is true); other tokens act on their own
// tenant, and naming another one is answered as if it did not exist.
func tenantScope(r *http.Request, p *principal, required bool) (string, error) {
	q := queryValue(r, "tenant")
	if p.admin() {
		if q == "" && required {
			return "", apitypes.FieldError("tenant", "an admin token must name the tenant with ?tenant=NAME")
		}
		return q, nil
	}
	if q != "" && q != p.token.Tenant {
		return "", errNotFound("tenant", q)
	}
	return p.token.Tenant, nil
}

// newSecret returns a token secret and a token id.
func newSecret() (secret, id string, err error) {
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	h := hex.EncodeToString(b[32:])
	return "wharf_" + base64.RawURLEncoding.EncodeToString(b[:32]), h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}
