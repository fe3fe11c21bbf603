package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestAuditCommand(t *testing.T) {
	entries := []apitypes.AuditEntry{
		{Seq: 7, Time: time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC), Actor: "ci", ActorID: "tok-1", Role: "developer", Tenant: "acme", Method: "POST", Path: "/v1/apps/web/scale", Status: 200, Object: "web"},
		{Seq: 8, Time: time.Date(2026, 12, 4, 22, 1, 0, 0, time.UTC), Method: "POST", Path: "/v1/tenants", Status: 401},
	}
	f, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){"GET /v1/audit": jsonAnswer(200, entries)})
	out, stderr, code := run(t, "", "--addr", addr, "--token", "T", "audit", "--since", "1h", "--tenant", "acme", "--limit", "5")
	if code != 0 {
		t.Fatalf("audit: %d %q", code, stderr)
	}
	if q := f.last().query; !strings.Contains(q, "since=1h") || !strings.Contains(q, "tenant=acme") || !strings.Contains(q, "limit=5") {
		t.Fatalf("query %q", q)
	}
	for _, want := range []string{"ci (tok-1)", "developer", "/v1/apps/web/scale", "200", "web", "(no valid token)", "401", "2026-12-04T22:00:00Z"} {
		if !strings.Contains(out, want) {
			t.Fatalf("table lacks %q:\n%s", want, out)
		}
	}
	out, _, code = run(t, "", "--addr", addr, "audit", "-o", "json")
	var got []apitypes.AuditEntry
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 2 || got[0] != entries[0] {
		t.Fatalf("-o json: %d %s", code, out)
	}
	for _, args := range [][]string{{"audit", "--since", "yesterday"}, {"audit", "--limit", "-1"}, {"audit", "extra"}} {
		if _, stderr, code := run(t, "", append([]string{"--addr", addr}, args...)...); code != 2 {
			t.Fatalf("%v: exit %d %q, want 2", args, code, stderr)
		}
	}
}

func TestAppVerbsAndUndrain(t *testing.T) {
	app := apitypes.App{AppSpec: apitypes.AppSpec{Name: "web", Instances: intp(0)}, Version: 4, Stopped: true, StoppedInstances: 3}
	f, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"POST /v1/apps/web/restart": jsonAnswer(200, app),
		"POST /v1/apps/web/stop":    jsonAnswer(200, app),
		"POST /v1/apps/web/start":   jsonAnswer(409, apitypes.Error{Message: "app web is not stopped"}),
		"POST /v1/hosts/h1/undrain": jsonAnswer(200, apitypes.Host{ID: "h1", Name: "n1", State: "ready"}),
	})
	for _, tt := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"app", "restart", "web", "--detach"}, 0, "restarting app web as version 4"},
		{[]string{"app", "stop", "web", "--detach"}, 0, "stopping app web"},
		{[]string{"app", "start", "web", "--detach"}, 1, ""},
		{[]string{"host", "undrain", "h1"}, 0, "host n1 is ready"},
		{[]string{"app", "restart"}, 2, ""},
	} {
		out, stderr, code := run(t, "", append([]string{"--addr", addr, "--tenant", "acme"}, tt.args...)...)
		if code != tt.code || !strings.Contains(out, tt.out) {
			t.Fatalf("%v: exit %d out %q stderr %q; want %d and %q", tt.args, code, out, stderr, tt.code, tt.out)
		}
		if tt.code != 2 && tt.args[0] == "app" && f.last().query != "tenant=acme" {
			t.Fatalf("%v sent query %q", tt.args, f.last().query)
		}
	}
}

func intp(n int) *int { return &n }
