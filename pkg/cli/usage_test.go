package cli

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestUsageCommand(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rows := []apitypes.UsageRow{{Tenant: "acme", App: "web", From: t0, To: t0.Add(24 * time.Hour), InstanceSeconds: 7200,
		CPUCoreSeconds: "1798.2", MemoryGBSeconds: "527.34375", Requests: 12, EgressBytes: 3400, LogBytes: 56, Final: true}}
	f, addr := newFakeAPI(t, map[string]func(w http.ResponseWriter){"GET /v1/usage": jsonAnswer(200, rows)})

	out, errOut, code := run(t, "", "--addr", addr, "--token", "T", "usage", "--tenant", "acme", "--app", "web", "--group", "day",
		"--from", "2026-12-01T00:00:00Z", "--to", "2026-12-02T00:00:00Z")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	q, _ := url.ParseQuery(f.last().query)
	want := url.Values{"tenant": {"acme"}, "app": {"web"}, "group": {"day"}, "from": {"2026-12-01T00:00:00Z"}, "to": {"2026-12-02T00:00:00Z"}}
	for k, v := range want {
		if q.Get(k) != v[0] {
			t.Fatalf("query %v, want %v", q, want)
		}
	}
	for _, s := range []string{"TENANT", "acme", "web", "2026-12-01T00:00:00Z", "7200", "1798.2", "527.34375", "yes"} {
		if !strings.Contains(out, s) {
			t.Fatalf("table lacks %q:\n%s", s, out)
		}
	}

	out, _, code = run(t, "", "--addr", addr, "--token", "T", "usage", "-o", "json")
	if code != 0 || !strings.Contains(out, `"cpu_core_seconds": 1798.2`) {
		t.Fatalf("exit %d, -o json:\n%s", code, out)
	}
	var back []apitypes.UsageRow
	if err := json.Unmarshal([]byte(out), &back); err != nil || len(back) != 1 || back[0] != rows[0] {
		t.Fatalf("-o json does not read back: %v %+v", err, back)
	}

	n := len(f.reqs)
	for _, args := range [][]string{{"--group", "week"}, {"--from", "yesterday"}, {"--to", "1764547200"}} {
		_, errOut, code := run(t, "", append([]string{"--addr", addr, "--token", "T", "usage"}, args...)...)
		if code != 2 || errOut == "" {
			t.Fatalf("%v: exit %d, %q; want 2 with a message", args, code, errOut)
		}
	}
	if len(f.reqs) != n {
		t.Fatal("bad usage sent a request")
	}
}
