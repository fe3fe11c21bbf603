package apitypes

import (
	"fmt"
	"time"
)

// Role is what a token may do.
type Role string

// Roles. admin has no tenant; the others act within exactly one tenant.
const (
	RoleAdmin       Role = "admin"
	RoleTenantAdmin Role = "tenant-admin"
	RoleDeveloper   Role = "developer"
	RoleViewer      Role = "viewer"
)

// Roles lists every role, most powerful first.
var Roles = []Role{RoleAdmin, RoleTenantAdmin, RoleDeveloper, RoleViewer}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// Token describes an API token. Secret is set only in the answer that
// created it; the hub stores a hash and can never show it again.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Tenant    string    `json:"tenant,omitempty"`
	Secret    string    `json:"token,omitempty"`
	CreatedAt time.Time `json:"created_at"`

	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// TokenRequest is the body of POST /v1/tokens.
type TokenRequest struct {
	Name   string `json:"name"`
	Role   Role   `json:"role"`
	Tenant string `json:"tenant,omitempty"`
}

// Validate checks the request without looking at cluster state.
func (r *TokenRequest) Validate() error {
	if len(r.Name) > 128 {
		return FieldError("name", "name is longer than 128 characters")
	}
	if !r.Role.Valid() {
		return FieldError("role", "role must be one of admin, tenant-admin, developer, viewer")
	}
	if r.Role == RoleAdmin && r.Tenant != "" {
		return FieldError("tenant", "an admin token belongs to no tenant")
	}
	if r.Role != RoleAdmin {
		if r.Tenant == "" {
			return FieldError("tenant", "a %s token needs a tenant", r.Role)
		}
		if err := CheckName("tenant", r.Tenant); err != nil {
			return err
		}
	}
	return nil
}

// BootstrapResponse is the answer of POST /v1/bootstrap.
type BootstrapResponse struct {
	Token string `json:"token"`
	ID    string `json:"id"`
}

// String implements fmt.Stringer without revealing the secret.
func (t Token) String() string { return fmt.Sprintf("token %s (%s)", t.ID, t.Role) }
