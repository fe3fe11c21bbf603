package api

import (
	"errors"
	"net/http"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// maxDecisions is how many of the autoscaler's last changes
// GET /v1/apps/{name}/autoscale shows.
const maxDecisions = 10

func (s *Server) getAutoscale(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	return s.readApp(w, r, p, func(ws memdb.WatchSet, snap *state.Snapshot, a *state.App) (any, error) {
		out := apitypes.AutoscaleStatus{}
		if s.cfg.Autoscale != nil && a.Spec.Autoscale != nil {
			st, err := s.cfg.Autoscale.Status(ctx, a.Tenant+"/"+a.Name)
			if err != nil {
				return nil, err
			}
			out = st
		}
		out.App, out.Policy, out.Instances, out.Reason = a.Name, autoscaleOut(a.Spec.Autoscale), *a.Spec.Instances, a.AutoscaleReason
		hist, err := snap.History(ws, a.Tenant, a.Name)
		if err != nil {
			return nil, err
		}
		out.Decisions = []apitypes.Deployment{}
		for _, d := range hist {
			if d.Kind == state.DeployAutoscale {
				out.Decisions = append(out.Decisions, deploymentOut(d))
			}
		}
		if n := len(out.Decisions); n > maxDecisions {
			out.Decisions = out.Decisions[n-maxDecisions:]
		}
		return out, nil
	})
}

// putAutoscale sets an app's policy (the body is the spec's "autoscale"),
// deleteAutoscale removes it; the rest of the spec stays as it is.
func (s *Server) putAutoscale(w http.ResponseWriter, r *http.Request, p *principal) error {
	var pol apitypes.Autoscale
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &pol); err != nil {
		return err
	}
	if err := pol.Validate(); err != nil {
		return err
	}
	pol.Normalize()
	return s.setAutoscale(w, r, p, autoscaleIn(&pol))
}

func (s *Server) deleteAutoscale(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.setAutoscale(w, r, p, nil)
}

func (s *Server) setAutoscale(w http.ResponseWriter, r *http.Request, p *principal, pol *state.Autoscale) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	// Read, change, write with the read's index: the planner and the
	// autoscaler write the app too, so a stale index is tried again.
	for try := 0; ; try++ {
		a, err := s.cfg.Store.Snapshot().App(nil, tenant, name)
		if err != nil {
			return err
		}
		if a == nil {
			return errNotFound("app", name)
		}
		spec := a.Copy().Spec
		spec.Autoscale = pol
		cas := a.ModifyIndex
		req := &state.AppUpsertRequest{Tenant: tenant, Spec: spec, CAS: &cas, Time: s.cfg.Now().UTC()}
		err = s.writeApp(w, r, tenant, name, http.StatusOK, state.AppUpsertType, req)
		if !errors.Is(err, state.ErrConflict) || try == 4 {
			return err
		}
		if err := s.cfg.Cluster.ConsistentRead(r.Context()); err != nil {
			return err
		}
	}
}
