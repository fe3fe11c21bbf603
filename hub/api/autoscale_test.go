package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestAutoscaleAPI: bad policies are 400 with a message that names what
// is wrong and change nothing; a policy set through the spec or its own
// endpoint shows on GET with autoscale_reason; manual scale is 409 while
// it is set; removing it keeps the count; a viewer may not set it.
func TestAutoscaleAPI(t *testing.T) {
	f := newFixture(t)
	lo := 1
	for _, tc := range []struct {
		name string
		body any
		want string
	}{
		{"min above max", apitypes.Autoscale{Min: ptr(5), Max: 3, QPS: 10}, "min must be between 0 and max"},
		{"no max", apitypes.Autoscale{QPS: 10}, "max must be between 1"},
		{"no target", apitypes.Autoscale{Max: 3}, "needs a target"},
		{"cpu over", apitypes.Autoscale{Max: 3, CPU: 5000}, "cpu is a percent"},
		{"bad window", apitypes.Autoscale{Max: 3, QPS: 1, Window: apitypes.Duration(100 * time.Millisecond)}, "window must be"},
		{"bad cron", apitypes.Autoscale{Max: 3, Schedules: []apitypes.AutoscaleSchedule{{Cron: "61 * * * *", Min: 1}}}, "minute: 61 is outside 0-59"},
		{"bad zone", apitypes.Autoscale{Max: 3, Schedules: []apitypes.AutoscaleSchedule{{Cron: "0 9 * * *", Timezone: "Mars/Olympus", Min: 1}}}, "unknown timezone"},
		{"schedule min over max", apitypes.Autoscale{Max: 3, Schedules: []apitypes.AutoscaleSchedule{{Cron: "0 9 * * *", Min: 4}}}, "above its max"},
		{"unknown field", `{"max": 3, "qps": 5, "target": 1}`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := f.do("acme/developer", "PUT", "/v1/apps/web/autoscale", tc.body)
			if code != 400 || !strings.Contains(string(body), tc.want) {
				t.Fatalf("%d %s, want 400 with %q", code, body, tc.want)
			}
			var app apitypes.App
			f.ok("acme/viewer", "GET", "/v1/apps/web", nil, &app)
			if app.Autoscale != nil {
				t.Fatalf("a refused policy was stored: %+v", app.Autoscale)
			}
		})
	}
	if code, _, _ := f.do("acme/viewer", "PUT", "/v1/apps/web/autoscale", apitypes.Autoscale{Max: 3, QPS: 5}); code != 403 {
		t.Fatalf("a viewer set a policy: %d", code)
	}

	var app apitypes.App
	f.ok("acme/developer", "PUT", "/v1/apps/web/autoscale", apitypes.Autoscale{Min: &lo, Max: 4, QPS: 20}, &app)
	if app.Autoscale == nil || app.Autoscale.Window != apitypes.Duration(10*time.Second) || app.Autoscale.ScaleDownDelay != apitypes.Duration(time.Minute) ||
		!strings.Contains(app.AutoscaleReason, "policy set") || *app.Instances != 1 {
		t.Fatalf("after PUT autoscale: %+v reason %q", app.Autoscale, app.AutoscaleReason)
	}
	code, body, _ := f.do("acme/developer", "POST", "/v1/apps/web/scale", apitypes.ScaleRequest{Instances: ptr(3)})
	if code != 409 || !strings.Contains(string(body), "autoscaled") {
		t.Fatalf("manual scale of an autoscaled app: %d %s", code, body)
	}
	// The autoscaler's decision, as the leader's runner commits it.
	f.applyState(state.AutoscaleType, &state.AutoscaleRequest{Tenant: "acme", Name: "web", Instances: 3, Reason: "qps 55.0/s", Time: time.Now()})
	var st apitypes.AutoscaleStatus
	f.ok("acme/viewer", "GET", "/v1/apps/web/autoscale", nil, &st)
	if st.Policy == nil || st.Instances != 3 || st.Reason != "qps 55.0/s" || len(st.Decisions) != 1 || st.Decisions[0].Kind != "autoscale" {
		b, _ := json.Marshal(st)
		t.Fatalf("status: %s", b)
	}
	var off apitypes.App
	f.ok("acme/developer", "DELETE", "/v1/apps/web/autoscale", nil, &off)
	if off.Autoscale != nil || *off.Instances != 3 || off.AutoscaleReason != "" {
		t.Fatalf("after off: %+v %d %q", off.Autoscale, *off.Instances, off.AutoscaleReason)
	}
	f.ok("acme/developer", "POST", "/v1/apps/web/scale", apitypes.ScaleRequest{Instances: ptr(2)}, &app)

	// In the spec itself.
	spec := apitypes.AppSpec{Name: "api", Image: "api:1", Autoscale: &apitypes.Autoscale{Min: ptr(0), Max: 2, CPU: 60}}
	var created apitypes.App
	f.ok("acme/developer", "PUT", "/v1/apps/api", spec, &created)
	if created.Autoscale == nil || *created.Autoscale.Min != 0 || created.Autoscale.CPU != 60 || *created.Instances != 1 {
		t.Fatalf("spec with a policy: %+v", created.Autoscale)
	}
}
