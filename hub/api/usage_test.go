package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/billing"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

var usageT0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// usageFixture is the API fixture with acme/web running one instance (333
// millicores, 100 MB) from 10:00, read at 11:30 by a meter of that clock.
func usageFixture(t *testing.T) *fixture {
	f := newFixture(t)
	now := func() time.Time { return usageT0.Add(90 * time.Minute) }
	f.applyState(state.HostInventoryType, &state.HostInventoryRequest{ID: "host1", Inventory: state.Inventory{CPUs: 4, MemoryBytes: 8 << 30}})
	f.applyState(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: "i1", Tenant: "acme", App: "web", Version: 1, Host: "host1", CPU: 333, Memory: 100}}, Time: usageT0})
	f.applyState(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "host1", Updates: []state.InstanceUpdate{{ID: "i1", State: state.InstanceRunning}}, Time: usageT0})
	meter, err := billing.NewMeter(billing.MeterConfig{State: f.api.cfg.Store, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.api.cfg
	cfg.Usage, cfg.Now = meter, now
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.api = s
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func TestUsageBadInput(t *testing.T) {
	f := usageFixture(t)
	for _, tc := range []struct {
		who, query string
		code       int
		field      string
	}{
		{"admin", "?tenant=acme&from=2026-12-01T12:00:00Z&to=2026-12-01T11:00:00Z", 400, "from"},
		{"admin", "?tenant=acme&from=yesterday", 400, "from"},
		{"admin", "?tenant=acme&to=1764583200", 400, "to"},
		{"admin", "?tenant=acme&group=week", 400, "group"},
		{"admin", "?tenant=acme&grup=day", 400, "grup"},
		{"admin", "?tenant=nope", 404, ""},
		{"acme/viewer", "?tenant=beta", 404, ""},
	} {
		t.Run(tc.query, func(t *testing.T) {
			before := f.cluster.index
			code, body, _ := f.do(tc.who, "GET", "/v1/usage"+tc.query, nil)
			var e apitypes.Error
			if code != tc.code || json.Unmarshal(body, &e) != nil || e.Message == "" || e.Field != tc.field {
				t.Fatalf("got %d %s, want %d with a message about %q", code, body, tc.code, tc.field)
			}
			if f.cluster.index != before {
				t.Fatal("a read committed something")
			}
		})
	}
}

func TestUsageRows(t *testing.T) {
	f := usageFixture(t)
	get := func(who, query string) ([]apitypes.UsageRow, string) {
		t.Helper()
		code, body, _ := f.do(who, "GET", "/v1/usage"+query, nil)
		if code != http.StatusOK {
			t.Fatalf("GET /v1/usage%s: %d %s", query, code, body)
		}
		var us []apitypes.UsageRow
		if err := json.Unmarshal(body, &us); err != nil {
			t.Fatal(err)
		}
		return us, string(body)
	}
	row := func(from, to time.Time, secs int64, cpu, mem string, final bool) apitypes.UsageRow {
		return apitypes.UsageRow{Tenant: "acme", App: "web", From: from, To: to, InstanceSeconds: secs,
			CPUCoreSeconds: apitypes.Decimal(cpu), MemoryGBSeconds: apitypes.Decimal(mem), Final: final}
	}
	h := func(n int) time.Time { return usageT0.Add(time.Duration(n) * time.Hour) }
	q := "?tenant=acme&from=2026-12-01T10:00:00Z&to=2026-12-01T11:30:00Z"
	// 333 m × 3600 s = 1198.8 core-seconds; 100 MB × 3600 s = 351.5625 GB-seconds.
	us, raw := get("acme/viewer", q)
	want := []apitypes.UsageRow{row(h(0), h(1), 3600, "1198.8", "351.5625", false), row(h(1), h(2), 1800, "599.4", "175.78125", false)}
	if !reflect.DeepEqual(us, want) {
		t.Fatalf("hours:\n got %+v\nwant %+v", us, want)
	}
	if !strings.Contains(raw, `"cpu_core_seconds":1198.8,`) {
		t.Fatalf("cpu_core_seconds is not an exact JSON number: %s", raw)
	}
	f.applyState(state.CloseHourType, &state.CloseHourRequest{From: h(0), To: h(1), Time: h(1)})
	us, _ = get("admin", q)
	want[0].Final = true
	if !reflect.DeepEqual(us, want) {
		t.Fatalf("after closing 10:00:\n got %+v\nwant %+v", us, want)
	}
	for _, g := range []string{"day", "app"} {
		us, _ = get("admin", q+"&group="+g)
		if w := []apitypes.UsageRow{row(h(0), h(2), 5400, "1798.2", "527.34375", false)}; !reflect.DeepEqual(us, w) {
			t.Fatalf("group=%s:\n got %+v\nwant %+v", g, us, w)
		}
	}
	if us, _ = get("admin", q+"&app=other"); len(us) != 0 {
		t.Fatalf("app=other: %+v", us)
	}
	if us, _ = get("admin", "?from=2026-12-01T10:00:00Z&to=2026-12-01T11:00:00Z"); len(us) != 1 || us[0] != want[0] {
		t.Fatalf("every tenant, 10:00 to 11:00: %+v", us)
	}
	// A deleted tenant's usage stays readable.
	f.ok("admin", "DELETE", "/v1/apps/web?tenant=acme", nil, nil)
	f.ok("admin", "DELETE", "/v1/tenants/acme", nil, nil)
	us, _ = get("admin", q)
	if len(us) != 2 || us[0] != want[0] || us[1] != want[1] {
		t.Fatalf("after deleting the tenant: %+v", us)
	}
}
