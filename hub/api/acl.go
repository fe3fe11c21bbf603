package api

import (
	"net/http"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/scheduler"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/version"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ *principal) error {
	st := s.cfg.Cluster.Status()
	st.Bootstrapped = s.cfg.Store.Snapshot().Bootstrapped()
	st.Version = version.Get().Version
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) bootstrap(w http.ResponseWriter, r *http.Request, _ *principal) error {
	secret, id, err := newSecret()
	if err != nil {
		return err
	}
	tok := state.Token{ID: id, Name: "bootstrap", Role: state.RoleAdmin, SecretHash: hashSecret(secret)}
	if _, err := s.apply(r.Context(), state.BootstrapType, &state.BootstrapRequest{Token: tok, Time: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, apitypes.BootstrapResponse{Token: secret, ID: id})
}

// Tenants.

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.admin() {
		return errForbidden("listing tenants needs an admin token")
	}
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		ts, err := snap.Tenants(ws)
		return mapAll(ts, tenantOut), snap.Index(state.TableTenants), err
	})
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.admin() {
		return errForbidden("creating tenants needs an admin token")
	}
	var req apitypes.TenantRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	t := state.Tenant{Name: req.Name, Pools: req.Pools, Quota: quotaIn(req.Quota)}
	if _, err := s.apply(r.Context(), state.TenantCreateType, &state.TenantCreateRequest{Tenant: t, Time: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	got, err := s.cfg.Store.Snapshot().Tenant(nil, req.Name)
	if err != nil || got == nil {
		return errNotFound("tenant", req.Name) // deleted meanwhile
	}
	return writeJSON(w, http.StatusCreated, tenantOut(got))
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request, p *principal) error {
	name := r.PathValue("name")
	if !p.admin() && name != p.token.Tenant {
		return errNotFound("tenant", name)
	}
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		t, err := snap.Tenant(ws, name)
		if err != nil {
			return nil, 0, err
		}
		if t == nil {
			return nil, 0, errNotFound("tenant", name)
		}
		return tenantOut(t), snap.Index(state.TableTenants), nil
	})
}

func (s *Server) deleteTenant(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.admin() {
		return errForbidden("deleting tenants needs an admin token")
	}
	if _, err := s.apply(r.Context(), state.TenantDeleteType, &state.TenantDeleteRequest{Name: r.PathValue("name"), Time: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Tokens.

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.canManageTokens() {
		return errForbidden("listing tokens needs an admin or tenant-admin token")
	}
	tenant, err := tenantScope(r, p, false)
	if err != nil {
		return err
	}
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		ts, err := snap.Tokens(ws, tenant)
		return mapAll(ts, tokenOut), snap.Index(state.TableTokens), err
	})
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.canManageTokens() {
		return errForbidden("creating tokens needs an admin or tenant-admin token")
	}
	var req apitypes.TokenRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if !p.admin() {
		if req.Tenant == "" {
			req.Tenant = p.token.Tenant
		}
		if req.Role == apitypes.RoleAdmin {
			return errForbidden("a tenant-admin cannot create admin tokens")
		}
		if req.Tenant != p.token.Tenant {
			return errForbidden("a tenant-admin may create tokens only in its own tenant")
		}
	}
	if err := req.Validate(); err != nil {
		return err
	}
	secret, id, err := newSecret()
	if err != nil {
		return err
	}
	tok := state.Token{ID: id, Name: req.Name, Role: state.Role(req.Role), Tenant: req.Tenant, SecretHash: hashSecret(secret)}
	if _, err := s.apply(r.Context(), state.TokenCreateType, &state.TokenCreateRequest{Token: tok, Time: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	got, err := s.cfg.Store.Snapshot().Token(nil, id)
	if err != nil || got == nil {
		return errNotFound("token", id)
	}
	out := tokenOut(got)
	out.Secret = secret
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) selfToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	return writeJSON(w, http.StatusOK, tokenOut(p.token))
}

// tokenFor returns the token id if p may manage it, else an error that
// does not reveal whether it exists.
func (s *Server) tokenFor(snap *state.Snapshot, ws memdb.WatchSet, p *principal, id string) (*state.Token, error) {
	if !p.canManageTokens() {
		return nil, errForbidden("managing tokens needs an admin or tenant-admin token")
	}
	t, err := snap.Token(ws, id)
	if err != nil {
		return nil, err
	}
	if t == nil || (!p.admin() && t.Tenant != p.token.Tenant) {
		return nil, errNotFound("token", id)
	}
	return t, nil
}

func (s *Server) getToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		t, err := s.tokenFor(snap, ws, p, id)
		if err != nil {
			return nil, 0, err
		}
		return tokenOut(t), snap.Index(state.TableTokens), nil
	})
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if _, err := s.tokenFor(s.cfg.Store.Snapshot(), nil, p, id); err != nil {
		return err
	}
	scope := ""
	if !p.admin() {
		scope = p.token.Tenant
	}
	if _, err := s.apply(r.Context(), state.TokenDeleteType, &state.TokenDeleteRequest{ID: id, Tenant: scope}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Pools.

// poolVisible: a tenant limited to some pools sees only those.
func (s *Server) poolVisible(snap *state.Snapshot, p *principal, name string) bool {
	if p.admin() {
		return true
	}
	t, err := snap.Tenant(nil, p.token.Tenant)
	if err != nil || t == nil {
		return false
	}
	if len(t.Pools) == 0 {
		return true
	}
	for _, x := range t.Pools {
		if x == name {
			return true
		}
	}
	return false
}

func (s *Server) listPools(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		ps, err := snap.Pools(ws)
		out := []apitypes.Pool{}
		for _, x := range ps {
			if s.poolVisible(snap, p, x.Name) {
				out = append(out, poolOut(x))
			}
		}
		return out, snap.Index(state.TablePools), err
	})
}

func (s *Server) createPool(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.admin() {
		return errForbidden("creating pools needs an admin token")
	}
	var req apitypes.PoolRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	if err := checkDrivers(req.Drivers); err != nil {
		return err
	}
	prov, err := s.provisionIn(&req)
	if err != nil {
		return err
	}
	pool := state.Pool{Name: req.Name, Datacenter: req.Datacenter, Region: req.Region, Provider: req.Provider, Labels: req.Labels, Drivers: req.Drivers, Provision: prov}
	if _, err := s.apply(r.Context(), state.PoolCreateType, &state.PoolCreateRequest{Pool: pool, Time: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	got, err := s.cfg.Store.Snapshot().Pool(nil, req.Name)
	if err != nil || got == nil {
		return errNotFound("pool", req.Name)
	}
	return writeJSON(w, http.StatusCreated, poolOut(got))
}

// checkDrivers validates a pool's declared drivers.
func checkDrivers(ds []string) error {
	for i, d := range ds {
		if !scheduler.KnownDriver(d) {
			return apitypes.FieldError("drivers", "unknown driver %q: want docker, exec or kubernetes", d)
		}
		if slices.Contains(ds[:i], d) {
			return apitypes.FieldError("drivers", "driver %q given twice", d)
		}
	}
	return nil
}

func (s *Server) getPool(w http.ResponseWriter, r *http.Request, p *principal) error {
	name := r.PathValue("name")
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		x, err := snap.Pool(ws, name)
		if err != nil {
			return nil, 0, err
		}
		if x == nil || !s.poolVisible(snap, p, name) {
			return nil, 0, errNotFound("pool", name)
		}
		out := poolOut(x)
		if err := poolDetail(snap, ws, &out); err != nil {
			return nil, 0, err
		}
		return out, snap.Index(state.TablePools, state.TableHosts, state.TableInstances, state.TableMachines), nil
	})
}

// putPool replaces a pool with the whole pool in the body.
func (s *Server) putPool(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.admin() {
		return errForbidden("changing pools needs an admin token")
	}
	name := r.PathValue("name")
	var req apitypes.PoolRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = name
	}
	if req.Name != name {
		return apitypes.FieldError("name", "the body names pool %q, the path %q", req.Name, name)
	}
	if err := req.Validate(); err != nil {
		return err
	}
	if err := checkDrivers(req.Drivers); err != nil {
		return err
	}
	prov, err := s.provisionIn(&req)
	if err != nil {
		return err
	}
	pool := state.Pool{Name: req.Name, Datacenter: req.Datacenter, Region: req.Region, Provider: req.Provider, Labels: req.Labels, Drivers: req.Drivers, Provision: prov}
	if _, err := s.apply(r.Context(), state.PoolUpdateType, &state.PoolUpdateRequest{Pool: pool, Time: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	got, err := s.cfg.Store.Snapshot().Pool(nil, name)
	if err != nil || got == nil {
		return errNotFound("pool", name)
	}
	return writeJSON(w, http.StatusOK, poolOut(got))
}

func (s *Server) deletePool(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.admin() {
		return errForbidden("deleting pools needs an admin token")
	}
	if _, err := s.apply(r.Context(), state.PoolDeleteType, &state.PoolDeleteRequest{Name: r.PathValue("name")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
