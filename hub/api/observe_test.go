package api

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestLogDrainsAndAlertRules: drains and rules are added, listed (the
// drain's password and the rule's secret never shown), removed, and go
// with their app; bad URLs and rules are refused with the reason and
// change nothing.
func TestLogDrainsAndAlertRules(t *testing.T) {
	f := newFixture(t)
	var d apitypes.LogDrain
	f.ok("acme/developer", "POST", "/v1/apps/web/log-drains", apitypes.LogDrainRequest{URL: "es+https://bob:hunter2@es.example.com:9200/web-logs"}, &d)
	if d.ID == "" || d.Kind != "es" || strings.Contains(d.URL, "hunter2") {
		t.Fatalf("drain: %+v", d)
	}
	var r apitypes.AlertRule
	f.ok("acme/developer", "POST", "/v1/alerts", apitypes.AlertRule{App: "web", Metric: "cpu", Above: "80%", For: "1m", Webhook: "https://hooks.example.com/x", Secret: "s3cret"}, &r)
	if r.ID == "" || r.Above != "80%" || r.For != "1m0s" || r.Secret != "" || r.Tenant != "acme" {
		t.Fatalf("rule: %+v", r)
	}
	before := f.api.cfg.Store.Snapshot().LatestIndex()
	for _, tc := range []struct {
		name, who, method, path, body string
		code                          int
		msg                           string
	}{
		{"unknown scheme", "acme/developer", "POST", "/v1/apps/web/log-drains", `{"url":"ftp://x.example.com"}`, 400, "scheme"},
		{"no port", "acme/developer", "POST", "/v1/apps/web/log-drains", `{"url":"syslog+tls://logs.example.com"}`, 400, "port"},
		{"empty url", "acme/developer", "POST", "/v1/apps/web/log-drains", `{"url":""}`, 400, "url"},
		{"unknown field", "acme/developer", "POST", "/v1/apps/web/log-drains", `{"url":"syslog://a.example.com:514","x":1}`, 400, "unknown field"},
		{"missing app", "acme/developer", "POST", "/v1/apps/nope/log-drains", `{"url":"syslog://a.example.com:514"}`, 404, "nope"},
		{"same url twice", "acme/developer", "POST", "/v1/apps/web/log-drains", `{"url":"es+https://bob:hunter2@es.example.com:9200/web-logs"}`, 409, "already"},
		{"viewer", "acme/viewer", "POST", "/v1/apps/web/log-drains", `{"url":"syslog://a.example.com:514"}`, 403, ""},
		{"unknown metric", "acme/developer", "POST", "/v1/alerts", `{"app":"web","metric":"disk","above":"1"}`, 400, "metric"},
		{"over 100%", "acme/developer", "POST", "/v1/alerts", `{"app":"web","metric":"cpu","above":"120%"}`, 400, "100"},
		{"no threshold", "acme/developer", "POST", "/v1/alerts", `{"app":"web","metric":"cpu"}`, 400, "above"},
		{"bad for", "acme/developer", "POST", "/v1/alerts", `{"app":"web","metric":"cpu","above":"80%","for":"soon"}`, 400, "for"},
		{"bad webhook", "acme/developer", "POST", "/v1/alerts", `{"app":"web","metric":"qps","above":"5","webhook":"ftp://x"}`, 400, "webhook"},
		{"pool rule by a tenant", "acme/developer", "POST", "/v1/alerts", `{"pool":"aws-bj","metric":"host_down","above":"0"}`, 403, "admin"},
		{"missing app rule", "acme/developer", "POST", "/v1/alerts", `{"app":"nope","metric":"qps","above":"5"}`, 404, "nope"},
	} {
		code, b, _ := f.do(tc.who, tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(string(b), tc.msg) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, b, tc.code, tc.msg)
		}
	}
	if after := f.api.cfg.Store.Snapshot().LatestIndex(); after != before {
		t.Fatalf("refused requests changed the state: index %d -> %d", before, after)
	}
	var ds []apitypes.LogDrain
	f.ok("acme/viewer", "GET", "/v1/apps/web/log-drains", nil, &ds)
	var rs []apitypes.AlertRule
	f.ok("acme/viewer", "GET", "/v1/alerts", nil, &rs)
	if len(ds) != 1 || len(rs) != 1 || strings.Contains(string(mustJSON(t, rs)), "s3cret") {
		t.Fatalf("lists: %+v %+v", ds, rs)
	}
	var admins []apitypes.AlertRule
	f.ok("admin", "POST", "/v1/alerts", apitypes.AlertRule{Pool: "aws-bj", Metric: "host_down", Above: "0"}, nil)
	f.ok("admin", "GET", "/v1/alerts", nil, &admins)
	f.ok("acme/viewer", "GET", "/v1/alerts", nil, &rs)
	if len(admins) != 2 || len(rs) != 1 {
		t.Fatalf("admin sees %d rules, a tenant %d", len(admins), len(rs))
	}
	f.ok("acme/developer", "DELETE", "/v1/apps/web/log-drains/"+d.ID, nil, nil)
	f.ok("acme/developer", "DELETE", "/v1/alerts/"+r.ID, nil, nil)
	f.ok("acme/developer", "POST", "/v1/apps/web/log-drains", apitypes.LogDrainRequest{URL: "loki+http://loki.example.com:3100"}, nil)
	f.ok("acme/developer", "POST", "/v1/alerts", apitypes.AlertRule{App: "web", Metric: "qps", Above: "100"}, nil)
	f.ok("acme/developer", "DELETE", "/v1/apps/web", nil, nil)
	snap := f.api.cfg.Store.Snapshot()
	if left, _ := snap.LogDrains(nil); len(left) != 0 {
		t.Fatalf("drains outlive their app: %+v", left)
	}
	if left, _ := snap.Alerts(nil); len(left) != 1 || left[0].Pool != "aws-bj" {
		t.Fatalf("rules after the app went: %+v", left)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logsFunc reads logs with a function.
type logsFunc func(ctx context.Context, q apitypes.LogQuery, emit func([]apitypes.LogLine, bool) error) error

func (f logsFunc) Read(ctx context.Context, q apitypes.LogQuery, emit func([]apitypes.LogLine, bool) error) error {
	return f(ctx, q, emit)
}

// TestLogsTruncatedTrailer: a read whose hub nodes left older lines out
// says so in a trailer, which the client turns into ErrLogsTruncated after
// handing over every line it got.
func TestLogsTruncatedTrailer(t *testing.T) {
	f := newFixture(t)
	for _, cut := range []bool{false, true} {
		f.api.cfg.Logs = logsFunc(func(ctx context.Context, q apitypes.LogQuery, emit func([]apitypes.LogLine, bool) error) error {
			if q.Tenant != "acme" || q.App != "web" || q.Grep != "x" {
				t.Errorf("query %+v", q)
			}
			return emit([]apitypes.LogLine{{Instance: "i1", Seq: 1, Line: "x1"}, {Instance: "i1", Seq: 2, Line: "x2"}}, cut)
		})
		c, _ := client.New(client.Config{Address: f.srv.URL, Token: f.tokens["acme/viewer"]})
		var got []string
		err := c.Apps().Logs(context.Background(), "web", client.LogOptions{Grep: "x"}, func(l apitypes.LogLine) error {
			got = append(got, l.Line)
			return nil
		})
		if len(got) != 2 || errors.Is(err, client.ErrLogsTruncated) != cut || (!cut && err != nil) {
			t.Fatalf("truncated %v: lines %v, err %v", cut, got, err)
		}
	}
}
