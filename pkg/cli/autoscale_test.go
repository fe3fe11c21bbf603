package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestAutoscaleCommands: the flags become a policy (merged into the one
// the app has), schedules parse from CRON@TZ=MIN:MAX, --off removes it,
// show prints inputs and decisions, and bad usage exits 2 before any
// request.
func TestAutoscaleCommands(t *testing.T) {
	one := 1
	policy := &apitypes.Autoscale{Min: &one, Max: 4, QPS: 20, Window: apitypes.Duration(10 * time.Second), ScaleDownDelay: apitypes.Duration(time.Minute)}
	three := 3
	autoscaled := apitypes.App{AppSpec: apitypes.AppSpec{Name: "web", Instances: &three, Autoscale: policy}, AutoscaleReason: "qps 55.0/s"}
	cpu := 42.0
	f, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"GET /v1/apps/web":              jsonAnswer(200, autoscaled),
		"PUT /v1/apps/web/autoscale":    jsonAnswer(200, autoscaled),
		"DELETE /v1/apps/web/autoscale": jsonAnswer(200, apitypes.App{AppSpec: apitypes.AppSpec{Name: "web", Instances: &three}}),
		"GET /v1/apps/web/autoscale": jsonAnswer(200, apitypes.AutoscaleStatus{App: "web", Policy: policy, Instances: 3, Ready: 3, Min: 1, Max: 4, Bounds: "policy",
			QPS: 55, CPU: &cpu, Wanted: 3, WantedReason: "qps 55.0/s over 10s for 20/s per instance: 3", Reason: "qps 55.0/s",
			Decisions: []apitypes.Deployment{{Kind: "autoscale", Instances: 3, Message: "autoscaled from 1 to 3 instances: qps 55.0/s", Time: time.Now()}}}),
		"POST /v1/apps/web/scale": jsonAnswer(409, apitypes.Error{Message: "app web is autoscaled (between 1 and 4 instances): its count is the autoscaler's; change the policy, or remove it (wharf app autoscale web --off) to scale by hand", Field: "instances"}),
	})
	out, stderr, code := run(t, "", "--addr", addr, "app", "autoscale", "web", "--max", "6", "--cpu", "70", "--schedule", "0 9 * * 1-5@Asia/Shanghai=5:10", "--schedule", "0 19 * * *=1")
	if code != 0 || !strings.Contains(out, "app web:") {
		t.Fatalf("autoscale: %d %q %q", code, out, stderr)
	}
	var sent apitypes.Autoscale
	if err := json.Unmarshal(f.last().body, &sent); err != nil || sent.Max != 6 || sent.CPU != 70 || sent.QPS != 20 || *sent.Min != 1 || len(sent.Schedules) != 2 ||
		sent.Schedules[0] != (apitypes.AutoscaleSchedule{Cron: "0 9 * * 1-5", Timezone: "Asia/Shanghai", Min: 5, Max: 10}) ||
		sent.Schedules[1] != (apitypes.AutoscaleSchedule{Cron: "0 19 * * *", Min: 1}) {
		t.Fatalf("sent %s", f.last().body)
	}
	if out, _, code := run(t, "", "--addr", addr, "app", "autoscale", "web", "--off"); code != 0 || !strings.Contains(out, "autoscaling off; it stays at 3 instances") || f.last().method != "DELETE" {
		t.Fatalf("--off: %d %q", code, out)
	}
	out, _, code = run(t, "", "--addr", addr, "app", "autoscale", "show", "web")
	for _, want := range []string{"QPS:", "55.0/s", "CPU:", "42%", "1 to 4 (policy)", "Last decisions:", "autoscaled from 1 to 3"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("show: %d, no %q in\n%s", code, want, out)
		}
	}
	_, stderr, code = run(t, "", "--addr", addr, "app", "scale", "web", "2")
	if code != 1 || !strings.Contains(stderr, "autoscaled") || !strings.Contains(stderr, "--off") {
		t.Fatalf("manual scale: %d %q", code, stderr)
	}
	count := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.reqs)
	}
	n := count()
	for _, args := range [][]string{
		{"app", "autoscale", "web"},
		{"app", "autoscale", "web", "--off", "--max", "3"},
		{"app", "autoscale", "web", "--schedule", "0 9 * * *"},
		{"app", "autoscale", "web", "--schedule", "0 9 * * *=x"},
	} {
		if _, stderr, code := run(t, "", append([]string{"--addr", addr}, args...)...); code != 2 {
			t.Fatalf("%v: exit %d %q, want 2", args, code, stderr)
		}
	}
	if count() != n {
		t.Fatalf("bad usage sent %d requests", count()-n)
	}
}
