package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

func TestAppAlertsAndLogDrains(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	app := "/ui/apps/alpha/web-alpha"
	q := &client.QueryOptions{Tenant: "alpha"}
	alerts := func() []apitypes.AlertRule {
		t.Helper()
		rs, _, err := e.api.Alerts().List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}

	// Alert rules: a forged POST (no CSRF) is refused and adds nothing; an
	// invalid threshold shows the API's error next to its field.
	rule := url.Values{"metric": {"cpu"}, "above": {"80%"}, "for": {"5m"}, "webhook": {"https://hooks.example.com/w"}, "secret": {"s3cret-value"}}
	if resp, _ := e.devB.post(app+"/alerts", rule); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("alert add without CSRF answered %d", resp.StatusCode)
	}
	if rs := alerts(); len(rs) != 0 {
		t.Fatalf("a forged POST added alert rules: %+v", rs)
	}
	resp, body := e.devB.post(app+"/alerts", url.Values{"csrf": {e.devCSRF}, "metric": {"cpu"}, "above": {"lots"}, "secret": {"s3cret-value"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-field="above"`) || !strings.Contains(body, `value="lots"`) || strings.Contains(body, "s3cret-value") {
		t.Fatalf("an invalid threshold answered %d (field error, typed value kept, secret not shown):\n%s", resp.StatusCode, body)
	}
	if rs := alerts(); len(rs) != 0 {
		t.Fatalf("a refused rule was added: %+v", rs)
	}
	rule.Set("csrf", e.devCSRF)
	if resp, body := e.devB.post(app+"/alerts", rule); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("alert add answered %d:\n%s", resp.StatusCode, body)
	}
	rs := alerts()
	if len(rs) != 1 || rs[0].App != "web-alpha" || rs[0].Metric != "cpu" || rs[0].Above != "80%" || rs[0].Webhook != "https://hooks.example.com/w" {
		t.Fatalf("alert rules after add: %+v", rs)
	}
	id := rs[0].ID
	// A rule on another app of the tenant is not this app's to list.
	one := 1
	if _, err := e.api.Apps().Create(ctx, apitypes.AppSpec{Name: "other", Image: "web:1", Instances: &one}, &client.WriteOptions{Tenant: "alpha"}); err != nil {
		t.Fatal(err)
	}
	other, err := e.api.Alerts().Add(ctx, apitypes.AlertRule{App: "other", Metric: "memory", Above: "90%"}, &client.WriteOptions{Tenant: "alpha"})
	if err != nil {
		t.Fatal(err)
	}

	// Log drains.
	drain := url.Values{"url": {"syslog+tls://logs.example.com:6514"}}
	if resp, _ := e.devB.post(app+"/drains", drain); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("drain add without CSRF answered %d", resp.StatusCode)
	}
	resp, body = e.devB.post(app+"/drains", url.Values{"csrf": {e.devCSRF}, "url": {"ftp://nowhere"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-field="url"`) || !strings.Contains(body, `value="ftp://nowhere"`) {
		t.Fatalf("a bad drain URL answered %d:\n%s", resp.StatusCode, body)
	}
	if ds, _, err := e.api.LogDrains().List(ctx, "web-alpha", q); err != nil || len(ds) != 0 {
		t.Fatalf("refused drains changed the list: %+v %v", ds, err)
	}
	drain.Set("csrf", e.devCSRF)
	if resp, body := e.devB.post(app+"/drains", drain); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("drain add answered %d:\n%s", resp.StatusCode, body)
	}
	ds, _, err := e.api.LogDrains().List(ctx, "web-alpha", q)
	if err != nil || len(ds) != 1 || ds[0].Kind != "syslog+tls" {
		t.Fatalf("drains after add: %+v %v", ds, err)
	}
	drainID := ds[0].ID

	// The viewer sees both lists and no forms, and cannot remove either.
	_, page := e.viewerB.get(app)
	if !strings.Contains(page, `class="alert-rule" data-id="`+id+`"`) || !strings.Contains(page, `class="drain" data-id="`+drainID+`"`) {
		t.Fatalf("the viewer's app page does not list the rule and the drain:\n%s", page)
	}
	if strings.Contains(page, other.ID) {
		t.Fatalf("the app page lists another app's alert rule %s:\n%s", other.ID, page)
	}
	for _, a := range []string{app + "/alerts", app + "/drains"} {
		noForm(t, "viewer", page, a)
	}
	if resp, _ := e.viewerB.post(app+"/alerts/"+id+"/remove", url.Values{"csrf": {e.viewerCSRF}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a viewer's alert remove answered %d, want 403", resp.StatusCode)
	}
	if resp, _ := e.viewerB.post(app+"/drains/"+drainID+"/remove", url.Values{"csrf": {e.viewerCSRF}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a viewer's drain remove answered %d, want 403", resp.StatusCode)
	}
	_, page = e.devB.get(app)
	for _, a := range []string{app + "/alerts", app + "/drains", app + "/alerts/" + id + "/remove", app + "/drains/" + drainID + "/remove"} {
		if !strings.Contains(page, `action="`+a+`"`) {
			t.Fatalf("the developer's app page has no form posting to %s:\n%s", a, page)
		}
	}

	// Removing: forged POSTs change nothing; another app's rule cannot be
	// removed through this app's page; then both go.
	if resp, _ := e.devB.post(app+"/alerts/"+id+"/remove", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("alert remove without CSRF answered %d", resp.StatusCode)
	}
	if resp, _ := e.devB.post(app+"/drains/"+drainID+"/remove", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("drain remove without CSRF answered %d", resp.StatusCode)
	}
	if resp, _ := e.devB.post(app+"/alerts/"+other.ID+"/remove", url.Values{"csrf": {e.devCSRF}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("removing another app's rule answered %d, want 404", resp.StatusCode)
	}
	if rs := alerts(); len(rs) != 2 {
		t.Fatalf("refused removes changed the rules: %+v", rs)
	}
	if resp, body := e.devB.post(app+"/alerts/"+id+"/remove", url.Values{"csrf": {e.devCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("alert remove answered %d:\n%s", resp.StatusCode, body)
	}
	if resp, body := e.devB.post(app+"/drains/"+drainID+"/remove", url.Values{"csrf": {e.devCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("drain remove answered %d:\n%s", resp.StatusCode, body)
	}
	if rs := alerts(); len(rs) != 1 || rs[0].ID != other.ID {
		t.Fatalf("alert rules after remove: %+v", rs)
	}
	if ds, _, _ := e.api.LogDrains().List(ctx, "web-alpha", q); len(ds) != 0 {
		t.Fatalf("drains after remove: %+v", ds)
	}
}
