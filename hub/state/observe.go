package state

import (
	"time"

	"github.com/hashicorp/go-memdb"
)

// Log drains and alert rules: what observability keeps in Raft. The lines
// and the samples themselves live outside it (hub/logstore, hub/series).
const (
	TableLogDrains = "log_drains"
	TableAlerts    = "alerts"
)

// Limits per app (drains) and per tenant or pool (alert rules).
const (
	MaxDrainsPerApp = 10
	MaxAlertRules   = 100
)

// LogDrain forwards an app's log lines to a syslog, Loki or Elasticsearch
// endpoint. URL may hold credentials: the API shows it redacted.
type LogDrain struct {
	ID        string
	Tenant    string
	App       string
	URL       string
	CreatedAt time.Time
	Meta
}

// Alert is an alert rule: on an app (tenant set) or a pool (admins;
// tenant empty). hub/alert validates and evaluates it.
type Alert struct {
	AlertRule
	CreatedAt time.Time
	Meta
}

// AlertRule is an alert rule as stored (its JSON names are the stored
// format). Exactly one of App and Pool, and of Above and Below, is set;
// thresholds are in hub/alert's canonical text ("80%", "512MiB", "5").
type AlertRule struct {
	ID      string   `json:"id"`
	Tenant  string   `json:"tenant,omitempty"`
	App     string   `json:"app,omitempty"`
	Pool    string   `json:"pool,omitempty"`
	Metric  string   `json:"metric"`
	Above   string   `json:"above,omitempty"`
	Below   string   `json:"below,omitempty"`
	For     Duration `json:"for"`
	Webhook string   `json:"webhook,omitempty"`
	Secret  string   `json:"secret,omitempty"`
}

func observeSchemas() (*memdb.TableSchema, *memdb.TableSchema) {
	str := func(field string) memdb.Indexer { return &memdb.StringFieldIndex{Field: field} }
	drains := &memdb.TableSchema{Name: TableLogDrains, Indexes: map[string]*memdb.IndexSchema{
		"id":  {Name: "id", Unique: true, Indexer: str("ID")},
		"app": {Name: "app", Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{str("Tenant"), str("App")}}},
	}}
	alerts := &memdb.TableSchema{Name: TableAlerts, Indexes: map[string]*memdb.IndexSchema{
		"id":     {Name: "id", Unique: true, Indexer: str("ID")},
		"tenant": {Name: "tenant", AllowMissing: true, Indexer: str("Tenant")},
	}}
	return drains, alerts
}

// LogDrains returns every drain, by id.
func (s *Snapshot) LogDrains(ws memdb.WatchSet) ([]*LogDrain, error) {
	return list[LogDrain](s, ws, TableLogDrains, "id")
}

// AppLogDrains returns an app's drains.
func (s *Snapshot) AppLogDrains(ws memdb.WatchSet, tenant, app string) ([]*LogDrain, error) {
	return list[LogDrain](s, ws, TableLogDrains, "app", tenant, app)
}

// Alerts returns every alert rule, by id.
func (s *Snapshot) Alerts(ws memdb.WatchSet) ([]*Alert, error) {
	return list[Alert](s, ws, TableAlerts, "id")
}

// LogDrainAddRequest adds a drain to an existing app (the API node parses
// the URL).
type LogDrainAddRequest struct {
	Drain LogDrain
	Time  time.Time
}

// LogDrainDeleteRequest removes one of an app's drains.
type LogDrainDeleteRequest struct {
	Tenant, App, ID string
}

// AlertAddRequest adds a rule the API node validated.
type AlertAddRequest struct {
	Rule AlertRule
	Time time.Time
}

// AlertDeleteRequest removes a rule; Tenant "" is an admin (any rule).
type AlertDeleteRequest struct {
	Tenant, ID string
}

func (w *writer) logDrainAdd(r *LogDrainAddRequest) *Error {
	d := r.Drain
	if d.ID == "" || d.Tenant == "" || d.App == "" || d.URL == "" {
		return Errorf(KindInvalid, "log drain lacks id, tenant, app or url")
	}
	a, e := w.app(d.Tenant, d.App)
	if e != nil {
		return e
	}
	if a == nil {
		return Errorf(KindNotFound, "app %s not found", d.App)
	}
	have, err := w.snap().AppLogDrains(nil, d.Tenant, d.App)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if len(have) >= MaxDrainsPerApp {
		return Errorf(KindInvalid, "app %s has %d log drains already (at most %d)", d.App, len(have), MaxDrainsPerApp)
	}
	for _, o := range have {
		if o.URL == d.URL {
			return Errorf(KindConflict, "app %s already drains to that URL (drain %s)", d.App, o.ID)
		}
		if o.ID == d.ID {
			return Errorf(KindConflict, "log drain id %s is taken", d.ID)
		}
	}
	d.CreatedAt = r.Time
	return w.insert(TableLogDrains, &d)
}

func (w *writer) logDrainDelete(r *LogDrainDeleteRequest) *Error {
	d, err := first[LogDrain](w.snap(), nil, TableLogDrains, "id", r.ID)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if d == nil || d.Tenant != r.Tenant || d.App != r.App {
		return Errorf(KindNotFound, "log drain %s not found", r.ID)
	}
	return w.delete(TableLogDrains, d)
}

// dropAppDrains removes a deleted app's drains.
func (w *writer) dropAppDrains(tenant, app string) *Error {
	ds, err := w.snap().AppLogDrains(nil, tenant, app)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, d := range ds {
		if e := w.delete(TableLogDrains, d); e != nil {
			return e
		}
	}
	return nil
}

func (w *writer) alertAdd(r *AlertAddRequest) *Error {
	rule := r.Rule
	switch {
	case rule.ID == "":
		return Errorf(KindInvalid, "alert rule lacks an id")
	case (rule.App == "") == (rule.Pool == ""):
		return Errorf(KindInvalid, "alert rule %s: exactly one of app and pool", rule.ID)
	case (rule.Above == "") == (rule.Below == ""):
		return Errorf(KindInvalid, "alert rule %s: exactly one of above and below", rule.ID)
	case rule.Metric == "":
		return Errorf(KindInvalid, "alert rule %s lacks a metric", rule.ID)
	}
	if old, err := first[Alert](w.snap(), nil, TableAlerts, "id", rule.ID); err != nil {
		return Errorf(KindInternal, "%v", err)
	} else if old != nil {
		return Errorf(KindConflict, "alert rule id %s is taken", rule.ID)
	}
	if rule.App != "" {
		a, e := w.app(rule.Tenant, rule.App)
		if e != nil {
			return e
		}
		if a == nil {
			return Errorf(KindNotFound, "app %s not found", rule.App)
		}
	} else {
		p, err := w.snap().Pool(nil, rule.Pool)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		if p == nil {
			return Errorf(KindNotFound, "pool %s not found", rule.Pool)
		}
	}
	all, err := w.snap().Alerts(nil)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	n := 0
	for _, a := range all {
		if a.Tenant == rule.Tenant {
			n++
		}
	}
	if n >= MaxAlertRules {
		return Errorf(KindInvalid, "at most %d alert rules", MaxAlertRules)
	}
	return w.insert(TableAlerts, &Alert{AlertRule: rule, CreatedAt: r.Time})
}

func (w *writer) alertDelete(r *AlertDeleteRequest) *Error {
	a, err := first[Alert](w.snap(), nil, TableAlerts, "id", r.ID)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if a == nil || (r.Tenant != "" && a.Tenant != r.Tenant) {
		return Errorf(KindNotFound, "alert rule %s not found", r.ID)
	}
	return w.delete(TableAlerts, a)
}

// dropAppAlerts removes a deleted app's rules.
func (w *writer) dropAppAlerts(tenant, app string) *Error {
	all, err := w.snap().Alerts(nil)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, a := range all {
		if a.App == app {
			if e := w.delete(TableAlerts, a); e != nil {
				return e
			}
		}
	}
	return nil
}
