package api

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Drills (admin only).

func drillOut(d *state.Drill) apitypes.Drill {
	out := apitypes.Drill{ID: d.ID, Pool: d.Pool, Datacenter: d.Datacenter, Mode: d.Mode, State: d.State, Hosts: d.Hosts, Apps: d.Instances,
		StartedAt: d.StartedAt, DetectedMs: d.DetectedMs, ScheduledMs: d.ScheduledMs, ReadyMs: d.ReadyMs, RoutedMs: d.RoutedMs,
		FailedRequests: d.FailedRequests}
	if !d.EndedAt.IsZero() {
		t := d.EndedAt
		out.EndedAt = &t
	}
	return out
}

func (s *Server) startDrill(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "running drills"); err != nil {
		return err
	}
	var req apitypes.DrillRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	id := "d-" + hex.EncodeToString(b)
	cmd := &state.DrillStartRequest{ID: id, Pool: req.Pool, Datacenter: req.Datacenter, Mode: req.Mode, Time: s.cfg.Now().UTC()}
	if _, err := s.apply(r.Context(), state.DrillStartType, cmd); err != nil {
		return err
	}
	d, err := s.cfg.Store.Snapshot().Drill(nil, id)
	if err != nil || d == nil {
		return writeJSON(w, http.StatusCreated, apitypes.Drill{ID: id})
	}
	return writeJSON(w, http.StatusCreated, drillOut(d))
}

func (s *Server) listDrills(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "reading drills"); err != nil {
		return err
	}
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		ds, err := snap.Drills(ws)
		return mapAll(ds, drillOut), snap.Index(state.TableDrills), err
	})
}

func (s *Server) getDrill(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "reading drills"); err != nil {
		return err
	}
	id := r.PathValue("id")
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		d, err := snap.Drill(ws, id)
		if err != nil {
			return nil, 0, err
		}
		if d == nil {
			return nil, 0, errNotFound("drill", id)
		}
		return drillOut(d), snap.Index(state.TableDrills), nil
	})
}

func (s *Server) endDrill(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "ending drills"); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := s.apply(r.Context(), state.DrillEndType, &state.DrillEndRequest{ID: id, Time: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	d, err := s.cfg.Store.Snapshot().Drill(nil, id)
	if err != nil || d == nil {
		return errNotFound("drill", id)
	}
	return writeJSON(w, http.StatusOK, drillOut(d))
}
