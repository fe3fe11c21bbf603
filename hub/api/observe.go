package api

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/alert"
	"github.com/wharf-platform/wharf/hub/drain"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// newID returns prefix and 12 random hex digits.
func newID(prefix string) (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + hex.EncodeToString(b), nil
}

func drainOut(d *state.LogDrain) apitypes.LogDrain {
	out := apitypes.LogDrain{ID: d.ID, App: d.App, URL: "(unparsable)", CreatedAt: d.CreatedAt}
	if t, err := drain.Parse(d.URL); err == nil {
		out.URL, out.Kind = t.String(), string(t.Kind)
	}
	return out
}

func (s *Server) addLogDrain(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	var req apitypes.LogDrainRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if _, err := drain.Parse(req.URL); err != nil {
		return apitypes.FieldError("url", "%v", err)
	}
	id, err := newID("d-")
	if err != nil {
		return err
	}
	d := state.LogDrain{ID: id, Tenant: tenant, App: r.PathValue("name"), URL: req.URL}
	now := s.cfg.Now().UTC()
	if _, err := s.apply(r.Context(), state.LogDrainAddType, &state.LogDrainAddRequest{Drain: d, Time: now}); err != nil {
		return err
	}
	d.CreatedAt = now
	return writeJSON(w, http.StatusCreated, drainOut(&d))
}

func (s *Server) listLogDrains(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := tenantScope(r, p, true)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		if a, err := snap.App(ws, tenant, name); err != nil {
			return nil, 0, err
		} else if a == nil {
			return nil, 0, errNotFound("app", name)
		}
		ds, err := snap.AppLogDrains(ws, tenant, name)
		out := []apitypes.LogDrain{}
		for _, d := range ds {
			out = append(out, drainOut(d))
		}
		return out, snap.Index(state.TableLogDrains, state.TableApps), err
	})
}

func (s *Server) deleteLogDrain(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	cmd := &state.LogDrainDeleteRequest{Tenant: tenant, App: r.PathValue("name"), ID: r.PathValue("id")}
	if _, err := s.apply(r.Context(), state.LogDrainDeleteType, cmd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ruleIn turns a request into a rule, or a field error.
func ruleIn(req apitypes.AlertRule) (alert.Rule, error) {
	rule := alert.Rule{App: req.App, Pool: req.Pool, Metric: alert.Metric(req.Metric), Webhook: req.Webhook, Secret: req.Secret}
	if req.Above != "" {
		t, err := alert.ParseThreshold(req.Above)
		if err != nil {
			return rule, apitypes.FieldError("above", "%v", err)
		}
		rule.Above = &t
	}
	if req.Below != "" {
		t, err := alert.ParseThreshold(req.Below)
		if err != nil {
			return rule, apitypes.FieldError("below", "%v", err)
		}
		rule.Below = &t
	}
	if req.For != "" {
		d, err := time.ParseDuration(req.For)
		if err != nil {
			return rule, apitypes.FieldError("for", "for must be a duration such as 1m")
		}
		rule.For = alert.Duration(d)
	}
	if err := rule.Validate(); err != nil {
		return rule, &apitypes.Error{Status: http.StatusBadRequest, Message: err.Error()}
	}
	return rule, nil
}

// ruleStored is a validated rule as the store keeps it: thresholds in
// their canonical text.
func ruleStored(r alert.Rule) state.AlertRule {
	out := state.AlertRule{ID: r.ID, Tenant: r.Tenant, App: r.App, Pool: r.Pool, Metric: string(r.Metric), For: state.Duration(r.For),
		Webhook: r.Webhook, Secret: r.Secret}
	if r.Above != nil {
		out.Above = r.Above.String()
	}
	if r.Below != nil {
		out.Below = r.Below.String()
	}
	return out
}

func ruleOut(a *state.Alert, firing bool) apitypes.AlertRule {
	out := apitypes.AlertRule{ID: a.ID, Tenant: a.Tenant, App: a.App, Pool: a.Pool, Metric: string(a.Metric), For: time.Duration(a.For).String(),
		Webhook: a.Webhook, CreatedAt: a.CreatedAt}
	out.Above, out.Below = a.Above, a.Below
	if firing {
		out.State = "firing"
	}
	return out
}

func (s *Server) addAlert(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req apitypes.AlertRule
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	rule, err := ruleIn(req)
	if err != nil {
		return err
	}
	if rule.Pool != "" {
		if err := requireAdmin(p, "an alert rule on a pool"); err != nil {
			return err
		}
	} else {
		tenant, err := appScope(r, p, true)
		if err != nil {
			return err
		}
		rule.Tenant = tenant
	}
	if rule.ID, err = newID("a-"); err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	if _, err := s.apply(r.Context(), state.AlertAddType, &state.AlertAddRequest{Rule: ruleStored(rule), Time: now}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, ruleOut(&state.Alert{AlertRule: ruleStored(rule), CreatedAt: now}, false))
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := tenantScope(r, p, false)
	if err != nil {
		return err
	}
	firing := map[string]bool{}
	if s.cfg.Alerts != nil {
		if ids, err := s.cfg.Alerts.Firing(r.Context()); err == nil {
			for _, id := range ids {
				firing[id] = true
			}
		}
	}
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		all, err := snap.Alerts(ws)
		out := []apitypes.AlertRule{}
		for _, a := range all {
			if (tenant != "" && a.Tenant != tenant) || (!p.admin() && a.Tenant == "") {
				continue
			}
			out = append(out, ruleOut(a, firing[a.ID]))
		}
		return out, snap.Index(state.TableAlerts), err
	})
}

func (s *Server) deleteAlert(w http.ResponseWriter, r *http.Request, p *principal) error {
	cmd := &state.AlertDeleteRequest{ID: r.PathValue("id")}
	if !p.admin() {
		tenant, err := appScope(r, p, true)
		if err != nil {
			return err
		}
		cmd.Tenant = tenant
	}
	if _, err := s.apply(r.Context(), state.AlertDeleteType, cmd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
