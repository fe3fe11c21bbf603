package api

import (
	"context"
	"net/http"
	"time"

	"github.com/wharf-platform/wharf/hub/billing"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// UsageReader reads metered usage per tenant, app and hour (hub/billing's
// Meter).
type UsageReader interface {
	Usage(ctx context.Context, tenant string, from, to time.Time) ([]billing.Usage, error)
	// Hour is the length of a metered hour.
	Hour() time.Duration
	// ClosedThrough is the end of the last closed hour (zero: none).
	ClosedThrough() (time.Time, error)
}

// usageParams are the ones GET /v1/usage knows.
var usageParams = map[string]bool{"tenant": true, "app": true, "from": true, "to": true, "group": true, "stale": true}

// usage serves GET /v1/usage?tenant=T&from=&to=[&app=A][&group=hour|day|app]:
// the hours that overlap [from, to) (default: from the start of this
// month to now), grouped per hour (default), UTC day or app.
func (s *Server) usage(w http.ResponseWriter, r *http.Request, p *principal) error {
	q := r.URL.Query()
	for k := range q {
		if !usageParams[k] {
			return apitypes.FieldError(k, "unknown parameter %q (tenant, app, from, to, group)", k)
		}
	}
	tenant, err := tenantScope(r, p, false)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	to := now
	for _, f := range []struct {
		name string
		into *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(f.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return apitypes.FieldError(f.name, "%s must be an RFC 3339 time such as 2026-12-01T00:00:00Z", f.name)
			}
			*f.into = t.UTC()
		}
	}
	if from.After(to) {
		return apitypes.FieldError("from", "from (%s) is after to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	group := q.Get("group")
	switch group {
	case "":
		group = apitypes.UsageByHour
	case apitypes.UsageByHour, apitypes.UsageByDay, apitypes.UsageByApp:
	default:
		return apitypes.FieldError("group", "group must be hour, day or app, not %q", group)
	}
	if s.cfg.Usage == nil {
		return &apitypes.Error{Status: http.StatusServiceUnavailable, Message: "metering is not running on this node"}
	}
	if !q.Has("stale") {
		cctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		err := s.cfg.Cluster.ConsistentRead(cctx)
		cancel()
		if err != nil {
			return err
		}
	}
	if tenant != "" {
		snap := s.cfg.Store.Snapshot()
		t, err := snap.Tenant(nil, tenant)
		if err != nil {
			return err
		}
		if t == nil { // a deleted tenant's usage stays readable
			if has, err := snap.HasUsage(tenant); err != nil {
				return err
			} else if !has {
				return errNotFound("tenant", tenant)
			}
		}
	}
	rows, err := s.cfg.Usage.Usage(r.Context(), tenant, from, to)
	if err != nil {
		return err
	}
	closed, err := s.cfg.Usage.ClosedThrough()
	if err != nil {
		return err
	}
	app := q.Get("app")
	hour := s.cfg.Usage.Hour()
	lo := from.Truncate(hour)
	hi := to.Truncate(hour)
	if hi.Before(to) {
		hi = hi.Add(hour)
	}
	return writeJSON(w, http.StatusOK, groupUsage(rows, app, group, lo, hi, closed))
}

// groupUsage sums hour rows (of one app when app is not "") per group
// over [lo, hi); a row is final when its whole period is closed.
func groupUsage(rows []billing.Usage, app, group string, lo, hi, closed time.Time) []apitypes.UsageRow {
	type key struct {
		tenant, app string
		from        time.Time
	}
	sums := map[key]*billing.Usage{}
	var order []key
	for _, r := range rows {
		if app != "" && r.App != app {
			continue
		}
		k := key{r.Tenant, r.App, r.From}
		from, to := r.From, r.To
		switch group {
		case apitypes.UsageByDay:
			day := time.Date(r.From.Year(), r.From.Month(), r.From.Day(), 0, 0, 0, 0, time.UTC)
			from, to = maxTime(day, lo), minTime(day.AddDate(0, 0, 1), hi)
			k.from = from
		case apitypes.UsageByApp:
			from, to = lo, hi
			k.from = lo
		}
		u := sums[k]
		if u == nil {
			u = &billing.Usage{Tenant: r.Tenant, App: r.App, From: from, To: to}
			sums[k] = u
			order = append(order, k)
		}
		u.Add(r)
	}
	out := make([]apitypes.UsageRow, 0, len(order))
	for _, k := range order {
		u := sums[k]
		out = append(out, apitypes.UsageRow{
			Tenant: u.Tenant, App: u.App, From: u.From, To: u.To,
			InstanceSeconds: u.InstanceSeconds,
			CPUCoreSeconds:  apitypes.DecimalRatio(u.CPUMilliSeconds, 1000),
			MemoryGBSeconds: apitypes.DecimalRatio(u.MemoryMBSeconds, 1024),
			Requests:        u.Requests, EgressBytes: u.EgressBytes, LogBytes: u.LogBytes,
			Final: !closed.IsZero() && !u.To.After(closed),
		})
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
