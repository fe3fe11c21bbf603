package api

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Routes and certificates.

func routeOut(r *state.Route) apitypes.Route {
	return apitypes.Route{ID: r.ID, Tenant: r.Tenant, App: r.App, Host: r.Host, Path: r.Path, TCP: r.TCP, Port: r.Port,
		TargetPort: r.TargetPort, CreatedAt: r.CreatedAt}
}

// DefaultRouteHost is an app's default route: <app>.<tenant>.<apps-domain>.
func DefaultRouteHost(app, tenant, appsDomain string) string {
	return app + "." + tenant + "." + appsDomain
}

func (s *Server) appRoutes(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.readApp(w, r, p, func(ws memdb.WatchSet, snap *state.Snapshot, a *state.App) (any, error) {
		rs, err := snap.AppRoutes(ws, a.Tenant, a.Name)
		out := []apitypes.Route{{Tenant: a.Tenant, App: a.Name, Host: DefaultRouteHost(a.Name, a.Tenant, s.cfg.AppsDomain), Path: "/", Default: true}}
		return append(out, mapAll(rs, routeOut)...), err
	})
}

func (s *Server) listRoutes(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := tenantScope(r, p, false)
	if err != nil {
		return err
	}
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		var rs []*state.Route
		var err error
		if tenant == "" {
			rs, err = snap.Routes(ws)
		} else {
			rs, err = snap.TenantRoutes(ws, tenant)
		}
		return mapAll(rs, routeOut), snap.Index(state.TableRoutes), err
	})
}

func (s *Server) addRoute(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	var req apitypes.RouteRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	req.Normalize()
	if err := req.Validate(); err != nil {
		return err
	}
	// Names under the apps domain are the tenants' default routes: a
	// tenant may add routes under its own part of it only.
	if d := s.cfg.AppsDomain; !req.TCP && (req.Host == d || strings.HasSuffix(req.Host, "."+d)) && !strings.HasSuffix(req.Host, "."+tenant+"."+d) {
		return apitypes.FieldError("host", "%s is under the apps domain %s: only names under %s.%s are yours", req.Host, d, tenant, d)
	}
	id, err := routeID()
	if err != nil {
		return err
	}
	rt := state.Route{ID: id, Tenant: tenant, App: r.PathValue("name"), Host: req.Host, Path: req.Path, TCP: req.TCP, Port: req.Port, TargetPort: req.TargetPort}
	if _, err := s.apply(r.Context(), state.RouteAddType, &state.RouteAddRequest{Route: rt, Time: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	stored, err := s.cfg.Store.Snapshot().AppRoutes(nil, tenant, rt.App)
	if err != nil {
		return err
	}
	for _, x := range stored {
		if x.ID == id {
			return writeJSON(w, http.StatusCreated, routeOut(x))
		}
	}
	return errNotFound("route", id) // deleted meanwhile
}

func (s *Server) deleteRoute(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	cmd := &state.RouteDeleteRequest{Tenant: tenant, App: r.PathValue("name"), ID: r.PathValue("id")}
	if _, err := s.apply(r.Context(), state.RouteDeleteType, cmd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func routeID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "r-" + hex.EncodeToString(b), nil
}

func certOut(c *state.Cert) apitypes.Cert {
	return apitypes.Cert{Tenant: c.Tenant, Domain: c.Domain, Names: c.Names, NotAfter: c.NotAfter, CreatedAt: c.CreatedAt}
}

func (s *Server) listCerts(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := tenantScope(r, p, false)
	if err != nil {
		return err
	}
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		var cs []*state.Cert
		var err error
		if tenant == "" {
			cs, err = snap.Certs(ws)
		} else {
			cs, err = snap.TenantCerts(ws, tenant)
		}
		return mapAll(cs, certOut), snap.Index(state.TableCerts), err
	})
}

func (s *Server) putCert(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	var req apitypes.CertRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	names, notAfter, err := req.ParseCert(now)
	if err != nil {
		return err
	}
	if d := s.cfg.AppsDomain; strings.HasSuffix(req.Domain, "."+d) && !strings.HasSuffix(req.Domain, "."+tenant+"."+d) {
		return apitypes.FieldError("domain", "%s is under the apps domain %s: only names under %s.%s are yours", req.Domain, d, tenant, d)
	}
	c := state.Cert{Tenant: tenant, Domain: req.Domain, CertPEM: []byte(req.Cert), KeyPEM: []byte(req.Key), Names: names, NotAfter: notAfter}
	if _, err := s.apply(r.Context(), state.CertPutType, &state.CertPutRequest{Cert: c, Time: now}); err != nil {
		return err
	}
	c.CreatedAt = now
	return writeJSON(w, http.StatusCreated, certOut(&c))
}

func (s *Server) deleteCert(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	domain := strings.ToLower(r.PathValue("domain"))
	if _, err := s.apply(r.Context(), state.CertDeleteType, &state.CertDeleteRequest{Tenant: tenant, Domain: domain}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// appStats serves an app's recent router counts: ?since=DURATION (default
// 5m, at most 15m).
func (s *Server) appStats(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, name, err := s.existingApp(r, p)
	if err != nil {
		return err
	}
	since := 5 * time.Minute
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 15*time.Minute {
			return apitypes.FieldError("since", "since must be a duration up to 15m")
		}
		since = d
	}
	out := []apitypes.TrafficSecond{}
	if s.cfg.Traffic != nil {
		secs, err := s.cfg.Traffic.Since(r.Context(), tenant+"/"+name, s.cfg.Now().Add(-since))
		if err != nil {
			return &apitypes.Error{Status: http.StatusServiceUnavailable, Message: "traffic counts: " + err.Error()}
		}
		out = append(out, secs...)
	}
	return writeJSON(w, http.StatusOK, out)
}

// metricsRange reads ?from=&to= (RFC 3339 or Unix seconds; default the
// last hour to now) and ?step= (a duration; default none).
func (s *Server) metricsRange(r *http.Request) (time.Time, time.Time, time.Duration, error) {
	now := s.cfg.Now()
	from, to, step := now.Add(-time.Hour), now, time.Duration(0)
	parse := func(field, v string, into *time.Time) error {
		if v == "" {
			return nil
		}
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			*into = t
			return nil
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			*into = time.Unix(n, 0)
			return nil
		}
		return apitypes.FieldError(field, "%s must be RFC 3339 or Unix seconds", field)
	}
	q := r.URL.Query()
	if err := parse("from", q.Get("from"), &from); err != nil {
		return from, to, step, err
	}
	if err := parse("to", q.Get("to"), &to); err != nil {
		return from, to, step, err
	}
	if v := q.Get("step"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return from, to, step, apitypes.FieldError("step", "step must be a duration of at least 1s")
		}
		step = d
	}
	if to.Before(from) {
		return from, to, step, apitypes.FieldError("to", "to is before from")
	}
	return from, to, step, nil
}

func (s *Server) readMetrics(w http.ResponseWriter, r *http.Request, app, host string) error {
	from, to, step, err := s.metricsRange(r)
	if err != nil {
		return err
	}
	out := []apitypes.MetricSeries{}
	if s.cfg.Metrics != nil {
		ms, err := s.cfg.Metrics.Query(r.Context(), app, host, from, to, step)
		if err != nil {
			return &apitypes.Error{Status: http.StatusServiceUnavailable, Message: "metrics: " + err.Error()}
		}
		out = append(out, ms...)
	}
	return writeJSON(w, http.StatusOK, out)
}

// appMetrics serves the series of an app's instances.
func (s *Server) appMetrics(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, name, err := s.existingApp(r, p)
	if err != nil {
		return err
	}
	return s.readMetrics(w, r, tenant+"/"+name, "")
}

// existingApp returns the tenant in scope and the {name} of an app that
// exists on this node's replica (not found otherwise), for reads of what
// lives outside the state (counts, series, logs).
func (s *Server) existingApp(r *http.Request, p *principal) (tenant, name string, err error) {
	if tenant, err = tenantScope(r, p, true); err != nil {
		return "", "", err
	}
	name = r.PathValue("name")
	if a, err := s.cfg.Store.Snapshot().App(nil, tenant, name); err != nil {
		return "", "", err
	} else if a == nil {
		return "", "", errNotFound("app", name)
	}
	return tenant, name, nil
}

// hostMetrics serves a host's series (admins).
func (s *Server) hostMetrics(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "reading host metrics"); err != nil {
		return err
	}
	id := r.PathValue("id")
	if h, err := s.cfg.Store.Snapshot().Host(nil, id); err != nil {
		return err
	} else if h == nil {
		return errNotFound("host", id)
	}
	return s.readMetrics(w, r, "", id)
}
