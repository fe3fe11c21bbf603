package api

import (
	"net/http"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/registryauth"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Private registries: a tenant's credentials for the registries its images
// are pulled from. The password is sealed before it is committed and no
// read shows it.

func registryOut(r *state.Registry) apitypes.Registry {
	return apitypes.Registry{Tenant: r.Tenant, Server: r.Server, Username: r.Username,
		CreatedAt: r.CreatedAt, CreateIndex: r.CreateIndex, ModifyIndex: r.ModifyIndex}
}

// registryScope is the tenant a registry request acts on; writes need a
// role that may change the tenant's apps (their images are pulled with
// these credentials).
func registryScope(r *http.Request, p *principal, write bool) (string, error) {
	if write && !p.canWriteApps() {
		return "", errForbidden("a " + string(p.token.Role) + " token cannot change registries")
	}
	return tenantScope(r, p, write)
}

func (s *Server) listRegistries(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := registryScope(r, p, false)
	if err != nil {
		return err
	}
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		var regs []*state.Registry
		if tenant == "" {
			regs, err = snap.Registries(ws)
		} else {
			regs, err = snap.TenantRegistries(ws, tenant)
		}
		return mapAll(regs, registryOut), snap.Index(state.TableRegistries), err
	})
}

// putRegistry adds a tenant's credentials for a registry, or replaces
// them when the server has some already (200 then, 201 when new).
func (s *Server) putRegistry(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := registryScope(r, p, true)
	if err != nil {
		return err
	}
	var req apitypes.RegistryRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	if s.cfg.Keys == nil {
		return &apitypes.Error{Status: http.StatusServiceUnavailable, Message: "this hub has no data key to seal registry passwords with"}
	}
	sealed, err := registryauth.Seal(s.cfg.Keys, tenant, req.Server, req.Password)
	if err != nil {
		return err
	}
	old, err := s.cfg.Store.Snapshot().Registry(nil, tenant, req.Server)
	if err != nil {
		return err
	}
	reg := state.Registry{Tenant: tenant, Server: req.Server, Username: req.Username, SealedPassword: sealed}
	if _, err := s.apply(r.Context(), state.RegistryPutType, &state.RegistryPutRequest{Registry: reg, Time: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	got, err := s.cfg.Store.Snapshot().Registry(nil, tenant, req.Server)
	if err != nil || got == nil {
		return errNotFound("registry", req.Server) // deleted meanwhile
	}
	code := http.StatusCreated
	if old != nil {
		code = http.StatusOK
	}
	return writeJSON(w, code, registryOut(got))
}

func (s *Server) deleteRegistry(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := registryScope(r, p, true)
	if err != nil {
		return err
	}
	server, err := apitypes.NormalizeRegistry(r.PathValue("server"))
	if err != nil {
		return err
	}
	if _, err := s.apply(r.Context(), state.RegistryDeleteType, &state.RegistryDeleteRequest{Tenant: tenant, Server: server}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
