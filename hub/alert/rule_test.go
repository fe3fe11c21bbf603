package alert

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func th(t testing.TB, s string) *Threshold {
	t.Helper()
	v, err := ParseThreshold(s)
	if err != nil {
		t.Fatal(err)
	}
	return &v
}

func TestRuleValidate(t *testing.T) {
	valid := func() Rule {
		return Rule{ID: "r1", Tenant: "acme", App: "web", Metric: MetricCPU, Above: th(t, "80%"), For: Duration(time.Minute)}
	}
	cases := []struct {
		name   string
		change func(r *Rule)
		frag   string // "" means valid
	}{
		{"valid cpu", func(r *Rule) {}, ""},
		{"memory percent", func(r *Rule) { r.Metric = MetricMemory }, ""},
		{"memory bytes", func(r *Rule) { r.Metric, r.Above = MetricMemory, th(t, "512MiB") }, ""},
		{"qps below", func(r *Rule) { r.Metric, r.Above, r.Below = MetricQPS, nil, th(t, "0.5") }, ""},
		{"restarts", func(r *Rule) { r.Metric, r.Above = MetricRestarts, th(t, "3") }, ""},
		{"pool host_down", func(r *Rule) { r.App, r.Pool, r.Metric, r.Above = "", "edge", MetricHostDown, th(t, "0") }, ""},
		{"pool cpu", func(r *Rule) { r.App, r.Pool = "", "edge" }, ""},
		{"for zero", func(r *Rule) { r.For = 0 }, ""},
		{"for 24h", func(r *Rule) { r.For = Duration(24 * time.Hour) }, ""},
		{"webhook with secret", func(r *Rule) { r.Webhook, r.Secret = "https://hooks.example.com/a?b=c", "s3cret" }, ""},
		{"http webhook with port", func(r *Rule) { r.Webhook = "http://10.0.0.1:8080/hook" }, ""},

		{"no id yet", func(r *Rule) { r.ID = "" }, ""},
		{"long id", func(r *Rule) { r.ID = strings.Repeat("x", 129) }, "id: longer"},
		{"no scope", func(r *Rule) { r.App = "" }, "app, pool: one is required"},
		{"both scopes", func(r *Rule) { r.Pool = "edge" }, "app, pool: only one"},
		{"no metric", func(r *Rule) { r.Metric = "" }, "metric: required (valid: cpu, memory, qps, restarts, host_down)"},
		{"unknown metric", func(r *Rule) { r.Metric = "disk" }, `metric: unknown "disk" (valid: cpu, memory, qps, restarts, host_down)`},
		{"app host_down", func(r *Rule) { r.Metric, r.Above = MetricHostDown, th(t, "0") }, "metric: host_down is for pool rules only"},
		{"pool qps", func(r *Rule) { r.App, r.Pool, r.Metric, r.Above = "", "edge", MetricQPS, th(t, "10") }, "metric: qps is not for pool rules (valid: cpu, memory, host_down)"},
		{"pool restarts", func(r *Rule) { r.App, r.Pool, r.Metric = "", "edge", MetricRestarts }, "metric: restarts is not for pool rules"},
		{"no threshold", func(r *Rule) { r.Above = nil }, "above, below: one is required"},
		{"two thresholds", func(r *Rule) { r.Below = th(t, "10%") }, "above, below: only one"},
		{"cpu plain", func(r *Rule) { r.Above = th(t, "80") }, "above: 80: cpu takes a percentage"},
		{"cpu bytes", func(r *Rule) { r.Below = nil; r.Above = th(t, "1GiB") }, "above: 1GiB: cpu takes a percentage"},
		{"memory plain", func(r *Rule) { r.Metric, r.Above = MetricMemory, th(t, "80") }, "above: 80: memory takes a percentage"},
		{"qps percent", func(r *Rule) { r.Metric = MetricQPS }, "above: 80%: qps takes a plain number"},
		{"restarts bytes", func(r *Rule) { r.Metric, r.Above = MetricRestarts, th(t, "1KB") }, "above: 1KB: restarts takes a plain number"},
		{"host_down percent", func(r *Rule) { r.App, r.Pool, r.Metric = "", "edge", MetricHostDown }, "above: 80%: host_down takes a plain number"},
		{"below names field", func(r *Rule) { r.Above, r.Below = nil, th(t, "5") }, "below: 5: cpu takes"},
		{"threshold over 100%", func(r *Rule) { r.Above = &Threshold{150, "%"} }, "above: 150%: above 100%"},
		{"negative threshold", func(r *Rule) { r.Metric, r.Above = MetricQPS, &Threshold{-1, ""} }, "above: -1: must not be negative"},
		{"NaN threshold", func(r *Rule) { r.Metric, r.Above = MetricQPS, &Threshold{math.NaN(), ""} }, "finite"},
		{"unknown unit", func(r *Rule) { r.Above = &Threshold{1, "x"} }, `unknown unit "x"`},
		{"for negative", func(r *Rule) { r.For = Duration(-time.Second) }, "for: -1s is not between 0s and 24h0m0s"},
		{"for too long", func(r *Rule) { r.For = Duration(25 * time.Hour) }, "for: 25h0m0s is not between"},
		{"restarts no window", func(r *Rule) { r.Metric, r.Above, r.For = MetricRestarts, th(t, "3"), 0 }, "for: restarts are counted over"},
		{"webhook scheme", func(r *Rule) { r.Webhook = "ftp://example.com/x" }, "webhook: must be an absolute http or https URL"},
		{"webhook relative", func(r *Rule) { r.Webhook = "/hook" }, "webhook: must be an absolute"},
		{"webhook no host", func(r *Rule) { r.Webhook = "https:///hook" }, "webhook: host required"},
		{"webhook opaque", func(r *Rule) { r.Webhook = "https:example.com" }, "webhook: host required"},
		{"webhook port only", func(r *Rule) { r.Webhook = "http://:8080/" }, "webhook: host required"},
		{"webhook fragment", func(r *Rule) { r.Webhook = "https://example.com/a#b" }, "webhook: fragment not allowed"},
		{"webhook empty fragment", func(r *Rule) { r.Webhook = "https://example.com/a#" }, "webhook: fragment not allowed"},
		{"webhook bad", func(r *Rule) { r.Webhook = "https://exa mple.com/tok3n" }, "webhook: invalid URL"},
		{"webhook long", func(r *Rule) { r.Webhook = "https://example.com/" + strings.Repeat("a", 2029) }, "webhook: longer than 2048 bytes"},
		{"secret without webhook", func(r *Rule) { r.Secret = "s" }, "secret: requires a webhook"},
		{"secret long", func(r *Rule) { r.Webhook, r.Secret = "https://example.com", strings.Repeat("s", 257) }, "secret: longer than 256 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := valid()
			c.change(&r)
			err := r.Validate()
			switch {
			case c.frag == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case c.frag != "" && err == nil:
				t.Fatalf("Validate: nil, want an error with %q", c.frag)
			case c.frag != "" && !strings.Contains(err.Error(), c.frag):
				t.Fatalf("Validate: %v, want it to contain %q", err, c.frag)
			}
			if err != nil && strings.Contains(err.Error(), "tok3n") {
				t.Fatalf("Validate leaks the webhook URL: %v", err)
			}
		})
	}
	// Exactly at the limit is fine.
	r := valid()
	r.Webhook = "https://example.com/" + strings.Repeat("a", 2028)
	r.Secret = strings.Repeat("s", 256)
	if err := r.Validate(); err != nil {
		t.Fatalf("limits: %v", err)
	}
}

func TestRuleJSON(t *testing.T) {
	rules := []Rule{
		{ID: "r1", Tenant: "acme", App: "web", Metric: MetricMemory, Above: th(t, "512MiB"), For: Duration(90 * time.Second),
			Webhook: "https://hooks.example.com/x", Secret: "k"},
		{ID: "r2", Pool: "edge", Metric: MetricHostDown, Above: th(t, "0")},
		{ID: "r3", App: "web", Metric: MetricQPS, Below: th(t, "0.5"), For: Duration(time.Minute)},
	}
	for _, r := range rules {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back Rule
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip of %s: %+v, want %+v", b, back, r)
		}
	}
	b, _ := json.Marshal(rules[0])
	want := `{"id":"r1","tenant":"acme","app":"web","metric":"memory","above":"512MiB","for":"1m30s","webhook":"https://hooks.example.com/x","secret":"k"}`
	if string(b) != want {
		t.Fatalf("JSON:\n got %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(rules[1])
	if want := `{"id":"r2","pool":"edge","metric":"host_down","above":"0","for":"0s"}`; string(b) != want {
		t.Fatalf("JSON:\n got %s\nwant %s", b, want)
	}

	// Hand-written JSON: short durations are accepted.
	var r Rule
	if err := json.Unmarshal([]byte(`{"id":"r","app":"a","metric":"cpu","below":"5%","for":"1m"}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.For != Duration(time.Minute) || r.Below == nil || *r.Below != (Threshold{5, "%"}) || r.Validate() != nil {
		t.Fatalf("decoded %+v", r)
	}
	for _, bad := range []string{`{"for":"soon"}`, `{"for":60}`, `{"above":"200%"}`} {
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("unmarshal %s: no error", bad)
		}
	}
}

func TestRuleCopy(t *testing.T) {
	r := &Rule{ID: "r", App: "a", Metric: MetricCPU, Above: th(t, "80%")}
	c := r.Copy()
	c.Above.Value = 10
	if r.Above.Value != 80 {
		t.Fatal("Copy shares the threshold")
	}
	if got := r.Condition(); got != "above 80%" {
		t.Fatalf("Condition = %q", got)
	}
}
