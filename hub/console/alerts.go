package console

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// alertMetrics are the metrics an alert rule on an app may watch.
var alertMetrics = []string{"cpu", "memory", "qps", "restarts"}

// alertFields are the alert form's fields.
var alertFields = []string{"metric", "above", "below", "for", "webhook", "secret"}

// appObserve is what the app page shows of an app's alert rules and log
// drains, with their forms as typed when an action was refused.
type appObserve struct {
	Alerts    []apitypes.AlertRule
	Drains    []apitypes.LogDrain
	Metrics   []string
	AlertForm form
	DrainForm form
}

// loadObserve reads the app's alert rules (the tenant's list, filtered to
// the app) and log drains.
func (c *Console) loadObserve(ctx context.Context, s *session, tenant, name string) appObserve {
	d := appObserve{Metrics: alertMetrics, AlertForm: blank(map[string]string{"metric": "cpu"}), DrainForm: blank(nil)}
	cl := c.client(s)
	o := &client.QueryOptions{Tenant: tenant}
	if rs, _, err := cl.Alerts().List(ctx, o); err == nil {
		for _, a := range rs {
			if a.Tenant == tenant && a.App == name {
				d.Alerts = append(d.Alerts, a)
			}
		}
	}
	slices.SortFunc(d.Alerts, func(a, b apitypes.AlertRule) int { return a.CreatedAt.Compare(b.CreatedAt) })
	d.Drains, _, _ = cl.LogDrains().List(ctx, name, o)
	slices.SortFunc(d.Drains, func(a, b apitypes.LogDrain) int { return strings.Compare(a.URL+a.ID, b.URL+b.ID) })
	return d
}

// observeURL is the app page at its alerts and drains.
func observeURL(r *http.Request, anchor string) string {
	return appURL(r.PathValue("tenant"), r.PathValue("app")) + "#" + anchor
}

func (c *Console) addAlert(w http.ResponseWriter, r *http.Request, s *session) {
	f := readForm(r, alertFields...)
	req := apitypes.AlertRule{App: r.PathValue("app"), Metric: f.V["metric"], Above: f.V["above"], Below: f.V["below"],
		For: f.V["for"], Webhook: f.V["webhook"], Secret: f.V["secret"]}
	f.V["secret"] = "" // a webhook's secret is never shown back
	ctx, cancel := apiCtx(r)
	defer cancel()
	rule, err := c.client(s).Alerts().Add(ctx, req, tenantOpts(r))
	if err != nil {
		f.apiError(err, nil)
		c.renderAppForms(w, r, s, statusOf(err), "The alert rule was not added: "+errText(err), func(a *appForms) { a.Observe.AlertForm = f })
		return
	}
	c.log.Info("console: alert rule added", "tenant", r.PathValue("tenant"), "app", r.PathValue("app"), "alert", rule.ID, "session_user", s.Name)
	redirect(w, r, observeURL(r, "alerts"))
}

func (c *Console) removeAlert(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	id, tenant, app := r.PathValue("id"), r.PathValue("tenant"), r.PathValue("app")
	// The API removes any of the tenant's rules by id: remove only one of
	// this app's, as the page lists them.
	rs, _, err := c.client(s).Alerts().List(ctx, &client.QueryOptions{Tenant: tenant})
	if err == nil && !slices.ContainsFunc(rs, func(a apitypes.AlertRule) bool { return a.ID == id && a.Tenant == tenant && a.App == app }) {
		err = &apitypes.Error{Status: http.StatusNotFound, Message: "app " + app + " has no alert rule " + id}
	}
	if err == nil {
		err = c.client(s).Alerts().Delete(ctx, id, tenantOpts(r))
	}
	if err != nil {
		c.renderAppForms(w, r, s, statusOf(err), "The alert rule was not removed: "+errText(err), func(*appForms) {})
		return
	}
	c.log.Info("console: alert rule removed", "tenant", tenant, "app", app, "alert", id, "session_user", s.Name)
	redirect(w, r, observeURL(r, "alerts"))
}

func (c *Console) addDrain(w http.ResponseWriter, r *http.Request, s *session) {
	f := readForm(r, "url")
	ctx, cancel := apiCtx(r)
	defer cancel()
	d, err := c.client(s).LogDrains().Add(ctx, r.PathValue("app"), f.V["url"], tenantOpts(r))
	if err != nil {
		f.apiError(err, nil)
		c.renderAppForms(w, r, s, statusOf(err), "The log drain was not added: "+errText(err), func(a *appForms) { a.Observe.DrainForm = f })
		return
	}
	c.log.Info("console: log drain added", "tenant", r.PathValue("tenant"), "app", r.PathValue("app"), "drain", d.ID, "session_user", s.Name)
	redirect(w, r, observeURL(r, "drains"))
}

func (c *Console) removeDrain(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	if err := c.client(s).LogDrains().Delete(ctx, r.PathValue("app"), r.PathValue("id"), tenantOpts(r)); err != nil {
		c.renderAppForms(w, r, s, statusOf(err), "The log drain was not removed: "+errText(err), func(*appForms) {})
		return
	}
	c.log.Info("console: log drain removed", "tenant", r.PathValue("tenant"), "app", r.PathValue("app"), "drain", r.PathValue("id"), "session_user", s.Name)
	redirect(w, r, observeURL(r, "drains"))
}
