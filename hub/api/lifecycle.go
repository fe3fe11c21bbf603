package api

import (
	"net/http"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// registerDay2 adds the day-2 routes: the audit log, the OpenAPI
// document, and the lifecycle verbs of apps and hosts.
func (s *Server) registerDay2() {
	s.handle("GET /v1/audit", authed, s.listAudit)
	s.handle("GET /v1/openapi.json", public, s.openAPI)
	s.handle("POST /v1/apps/{name}/restart", authed, s.appLifecycle(state.AppRestartType))
	s.handle("POST /v1/apps/{name}/stop", authed, s.appLifecycle(state.AppStopType))
	s.handle("POST /v1/apps/{name}/start", authed, s.appLifecycle(state.AppStartType))
	s.handle("POST /v1/hosts/{id}/undrain", authed, s.undrainHost)
}

// appLifecycle serves restart, stop and start: no body, the app back.
func (s *Server) appLifecycle(t state.MessageType) handler {
	return func(w http.ResponseWriter, r *http.Request, p *principal) error {
		tenant, err := appScope(r, p, true)
		if err != nil {
			return err
		}
		name := r.PathValue("name")
		base := state.AppLifecycleRequest{Tenant: tenant, Name: name, Time: s.cfg.Now().UTC()}
		var req any
		switch t {
		case state.AppRestartType:
			req = (*state.AppRestartRequest)(&base)
		case state.AppStopType:
			req = (*state.AppStopRequest)(&base)
		default:
			req = (*state.AppStartRequest)(&base)
		}
		return s.writeApp(w, r, tenant, name, http.StatusOK, t, req)
	}
}

// undrainHost makes a draining or drained host ready again; liveness then
// judges it by its heartbeats as usual.
func (s *Server) undrainHost(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "undraining hosts"); err != nil {
		return err
	}
	id := r.PathValue("id")
	h, err := s.cfg.Store.Snapshot().Host(nil, id)
	if err != nil {
		return err
	}
	if h == nil {
		return errNotFound("host", id)
	}
	if h.State != state.HostDraining && h.State != state.HostDrained {
		return &apitypes.Error{Status: http.StatusConflict, Message: "host " + id + " is " + h.State + ", not draining or drained"}
	}
	req := &state.HostStateRequest{ID: id, State: state.HostReady, Disconnected: h.Disconnected, Reason: "undrained by " + p.token.Name, Time: s.cfg.Now().UTC(), From: h.State}
	if _, err := s.apply(r.Context(), state.HostStateType, req); err != nil {
		return err
	}
	snap := s.cfg.Store.Snapshot()
	got, err := snap.Host(nil, id)
	if err != nil || got == nil {
		return errNotFound("host", id)
	}
	return writeJSON(w, http.StatusOK, hostOut(snap, got))
}
