package api

import (
	"net/http"
	"strconv"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/scheduler"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// appScope returns the tenant of an app request after the role check.
func appScope(r *http.Request, p *principal, write bool) (string, error) {
	if write && !p.canWriteApps() {
		return "", errForbidden("a " + string(p.token.Role) + " token cannot change apps")
	}
	return tenantScope(r, p, true)
}

func parseCAS(r *http.Request) (*uint64, error) {
	v := queryValue(r, "cas")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, apitypes.FieldError("cas", "cas must be a modify index (a non-negative integer)")
	}
	return &n, nil
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := tenantScope(r, p, false)
	if err != nil {
		return err
	}
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		as, err := snap.Apps(ws, tenant)
		return mapAll(as, appOut), snap.Index(state.TableApps), err
	})
}

func (s *Server) readApp(w http.ResponseWriter, r *http.Request, p *principal, fn func(ws memdb.WatchSet, snap *state.Snapshot, a *state.App) (any, error)) error {
	tenant, err := appScope(r, p, false)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		a, err := snap.App(ws, tenant, name)
		if err != nil {
			return nil, 0, err
		}
		if a == nil {
			return nil, 0, errNotFound("app", name)
		}
		out, err := fn(ws, snap, a)
		return out, snap.Index(state.TableApps, state.TableAppVersions, state.TableInstances, state.TableDeployments), err
	})
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.readApp(w, r, p, func(_ memdb.WatchSet, _ *state.Snapshot, a *state.App) (any, error) {
		return appOut(a), nil
	})
}

func (s *Server) appVersions(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.readApp(w, r, p, func(ws memdb.WatchSet, snap *state.Snapshot, a *state.App) (any, error) {
		vs, err := snap.AppVersions(ws, a.Tenant, a.Name)
		return mapAll(vs, versionOut), err
	})
}

func (s *Server) appHistory(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.readApp(w, r, p, func(ws memdb.WatchSet, snap *state.Snapshot, a *state.App) (any, error) {
		ds, err := snap.History(ws, a.Tenant, a.Name)
		return mapAll(ds, deploymentOut), err
	})
}

// hostRuns reports whether host h's drivers run instance i of app a (a
// pending instance on a host that cannot run it waits for the planner to
// move it).
func hostRuns(snap *state.Snapshot, a *state.App, i *state.Instance, h *state.Host) bool {
	image := a.Spec.Image
	if i.Version != a.Version {
		v, err := snap.AppVersion(nil, a.Tenant, a.Name, i.Version)
		if err != nil || v == nil {
			return true
		}
		image = v.Spec.Image
	}
	return scheduler.HostRuns(h.Inventory.Drivers, scheduler.WorkloadOf(image))
}

// decodeSpec reads, validates and normalizes an app spec.
func (s *Server) decodeSpec(r *http.Request, pathName string) (apitypes.AppSpec, error) {
	var spec apitypes.AppSpec
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &spec); err != nil {
		return spec, err
	}
	if pathName != "" {
		if spec.Name == "" {
			spec.Name = pathName
		} else if spec.Name != pathName {
			return spec, apitypes.FieldError("name", "name %q does not match the path's %q", spec.Name, pathName)
		}
	}
	if err := spec.Validate(); err != nil {
		return spec, err
	}
	if _, err := scheduler.ParseConstraints(spec.Constraints); err != nil {
		return spec, apitypes.FieldError("constraints", "%v", err)
	}
	spec.Normalize()
	return spec, nil
}

// writeApp commits an app command and answers with the app as stored.
func (s *Server) writeApp(w http.ResponseWriter, r *http.Request, tenant, name string, code int, t state.MessageType, req any) error {
	idx, err := s.applyAudited(w, r, code, tenant, name, t, req)
	if err != nil {
		return err
	}
	a, err := s.cfg.Store.Snapshot().App(nil, tenant, name)
	if err != nil {
		return err
	}
	if a == nil {
		return errNotFound("app", name) // deleted meanwhile
	}
	// The header names this write's index even if a later write already
	// changed the app.
	w.Header().Set("X-Wharf-Index", strconv.FormatUint(idx, 10))
	return writeJSON(w, code, appOut(a))
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	spec, err := s.decodeSpec(r, "")
	if err != nil {
		return err
	}
	req := &state.AppUpsertRequest{Tenant: tenant, Spec: specIn(spec), Create: true, Time: s.cfg.Now().UTC()}
	return s.writeApp(w, r, tenant, spec.Name, http.StatusCreated, state.AppUpsertType, req)
}

func (s *Server) putApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := apitypes.CheckName("name", name); err != nil {
		return err
	}
	cas, err := parseCAS(r)
	if err != nil {
		return err
	}
	spec, err := s.decodeSpec(r, name)
	if err != nil {
		return err
	}
	existed, err := s.cfg.Store.Snapshot().App(nil, tenant, name)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if existed == nil {
		code = http.StatusCreated
	}
	req := &state.AppUpsertRequest{Tenant: tenant, Spec: specIn(spec), CAS: cas, Time: s.cfg.Now().UTC()}
	return s.writeApp(w, r, tenant, name, code, state.AppUpsertType, req)
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	cas, err := parseCAS(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if _, err := s.applyAudited(w, r, http.StatusNoContent, tenant, name, state.AppDeleteType, &state.AppDeleteRequest{Tenant: tenant, Name: name, CAS: cas, Time: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) scaleApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	var req apitypes.ScaleRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	name := r.PathValue("name")
	cmd := &state.AppScaleRequest{Tenant: tenant, Name: name, Instances: *req.Instances, Time: s.cfg.Now().UTC()}
	return s.writeApp(w, r, tenant, name, http.StatusOK, state.AppScaleType, cmd)
}

func (s *Server) rollbackApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	var req apitypes.RollbackRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	name := r.PathValue("name")
	cmd := &state.AppRollbackRequest{Tenant: tenant, Name: name, Version: req.Version, Time: s.cfg.Now().UTC()}
	return s.writeApp(w, r, tenant, name, http.StatusOK, state.AppRollbackType, cmd)
}

// promoteApp and abortApp end a canary update.
func (s *Server) failbackApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	cmd := &state.AppFailbackRequest{Tenant: tenant, Name: name, Time: s.cfg.Now().UTC()}
	return s.writeApp(w, r, tenant, name, http.StatusOK, state.AppFailbackType, cmd)
}

func (s *Server) promoteApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.endCanary(w, r, p, true)
}

func (s *Server) abortApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.endCanary(w, r, p, false)
}

func (s *Server) endCanary(w http.ResponseWriter, r *http.Request, p *principal, promote bool) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	cmd := &state.AppCanaryRequest{Tenant: tenant, Name: name, Promote: promote, Time: s.cfg.Now().UTC()}
	return s.writeApp(w, r, tenant, name, http.StatusOK, state.AppCanaryType, cmd)
}
