// Package alert owns alert rules on app and pool metrics: their
// definition and validation (Rule, Threshold), their evaluation over time
// (Evaluator: pending, firing, resolved) and the signed webhook that
// reports a change (Notifier, Verify). It computes no metric itself: the
// hub feeds the evaluator each rule's current value.
package alert

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Metric is what a rule watches.
type Metric string

// Metrics.
const (
	// MetricCPU is the percent of the app's CPU limit (of one core when it
	// has none), averaged over its instances; for a pool, the percent of
	// the hosts' CPU.
	MetricCPU Metric = "cpu"
	// MetricMemory is the percent of the memory limit (of the hosts'
	// memory, for a pool), or bytes when the threshold is a size.
	MetricMemory Metric = "memory"
	// MetricQPS is the app's requests per second through the routers.
	MetricQPS Metric = "qps"
	// MetricRestarts is the app's instance restarts in the last For.
	MetricRestarts Metric = "restarts"
	// MetricHostDown is, for a pool, the number of its hosts that are down
	// ("above 0" means any).
	MetricHostDown Metric = "host_down"
)

var (
	metrics     = []Metric{MetricCPU, MetricMemory, MetricQPS, MetricRestarts, MetricHostDown}
	poolMetrics = []Metric{MetricCPU, MetricMemory, MetricHostDown}
)

// Limits of a rule.
const (
	MaxFor     = 24 * time.Hour
	MaxWebhook = 2048 // bytes
	MaxSecret  = 256  // bytes
	MaxID      = 128  // bytes
)

// Rule is an alert rule as stored. Exactly one of App and Pool, and
// exactly one of Above and Below, is set.
type Rule struct {
	ID     string     `json:"id"`
	Tenant string     `json:"tenant,omitempty"`
	App    string     `json:"app,omitempty"`
	Pool   string     `json:"pool,omitempty"`
	Metric Metric     `json:"metric"`
	Above  *Threshold `json:"above,omitempty"` // fires when the value is greater
	Below  *Threshold `json:"below,omitempty"` // fires when the value is smaller
	// For is how long the condition must hold before the rule fires (0:
	// at once). For restarts it is instead the window the restarts are
	// counted over, and the rule fires as soon as the count crosses.
	For     Duration `json:"for"`
	Webhook string   `json:"webhook,omitempty"` // http(s) URL; empty: no notification
	Secret  string   `json:"secret,omitempty"`  // HMAC-SHA256 key signing the webhook
}

// Copy returns a deep copy of the rule.
func (r *Rule) Copy() *Rule {
	c := *r
	if r.Above != nil {
		a := *r.Above
		c.Above = &a
	}
	if r.Below != nil {
		b := *r.Below
		c.Below = &b
	}
	return &c
}

// Threshold returns the rule's threshold and whether it is an Above one.
func (r Rule) Threshold() (t Threshold, above bool) {
	if r.Above != nil {
		return *r.Above, true
	}
	if r.Below != nil {
		return *r.Below, false
	}
	return Threshold{}, false
}

// Condition describes the rule's comparison: "above 80%", "below 512MiB".
func (r Rule) Condition() string {
	if r.Above == nil && r.Below == nil {
		return ""
	}
	t, above := r.Threshold()
	if above {
		return "above " + t.String()
	}
	return "below " + t.String()
}

// holds reports whether value meets the rule's condition.
func (r Rule) holds(value float64) bool {
	t, above := r.Threshold()
	if above {
		return value > t.Value
	}
	return value < t.Value
}

// Validate checks a rule; its error names the offending field first. An
// empty ID is allowed (the API validates before the hub assigns one), but
// the Evaluator needs it. Validate is deterministic, so the FSM may call it.
func (r Rule) Validate() error {
	switch {
	case len(r.ID) > MaxID:
		return fmt.Errorf("id: longer than %d bytes", MaxID)
	case r.App == "" && r.Pool == "":
		return errors.New("app, pool: one is required")
	case r.App != "" && r.Pool != "":
		return errors.New("app, pool: only one may be set")
	}
	if err := r.validateMetric(); err != nil {
		return err
	}
	switch {
	case r.Above == nil && r.Below == nil:
		return errors.New("above, below: one is required")
	case r.Above != nil && r.Below != nil:
		return errors.New("above, below: only one may be set")
	}
	field := "above"
	if r.Below != nil {
		field = "below"
	}
	t, _ := r.Threshold()
	if err := r.validateThreshold(t); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if d := time.Duration(r.For); d < 0 || d > MaxFor {
		return fmt.Errorf("for: %s is not between 0s and %s", d, MaxFor)
	}
	if r.Metric == MetricRestarts && r.For == 0 {
		return errors.New("for: restarts are counted over the for window, which must be above 0s")
	}
	if r.Webhook != "" {
		if err := validateWebhook(r.Webhook); err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
	}
	switch {
	case len(r.Secret) > MaxSecret:
		return fmt.Errorf("secret: longer than %d bytes", MaxSecret)
	case r.Secret != "" && r.Webhook == "":
		return errors.New("secret: requires a webhook")
	}
	return nil
}

func (r Rule) validateMetric() error {
	valid := func(list []Metric) string {
		s := make([]string, len(list))
		for i, m := range list {
			s[i] = string(m)
		}
		return strings.Join(s, ", ")
	}
	known := false
	for _, m := range metrics {
		known = known || m == r.Metric
	}
	switch {
	case r.Metric == "":
		return fmt.Errorf("metric: required (valid: %s)", valid(metrics))
	case !known:
		return fmt.Errorf("metric: unknown %q (valid: %s)", r.Metric, valid(metrics))
	case r.App != "" && r.Metric == MetricHostDown:
		return fmt.Errorf("metric: %s is for pool rules only", r.Metric)
	case r.Pool != "":
		for _, m := range poolMetrics {
			if m == r.Metric {
				return nil
			}
		}
		return fmt.Errorf("metric: %s is not for pool rules (valid: %s)", r.Metric, valid(poolMetrics))
	}
	return nil
}

// validateThreshold checks a threshold and that its unit suits the
// metric: cpu takes a percentage, memory a percentage or a size, the
// counts and rates a plain number. A plain cpu or memory threshold is
// refused rather than guessed at.
func (r Rule) validateThreshold(t Threshold) error {
	if err := t.check(); err != nil {
		return fmt.Errorf("%s: %w", t, err)
	}
	switch r.Metric {
	case MetricCPU:
		if t.Unit != UnitPercent {
			return fmt.Errorf("%s: cpu takes a percentage such as 80%%", t)
		}
	case MetricMemory:
		if t.Unit != UnitPercent && t.Unit != UnitBytes {
			return fmt.Errorf("%s: memory takes a percentage such as 80%% or a size such as 512MiB", t)
		}
	default:
		if t.Unit != UnitNone {
			return fmt.Errorf("%s: %s takes a plain number such as 5", t, r.Metric)
		}
	}
	return nil
}

// validateWebhook checks a webhook URL. Its errors leave the URL out:
// webhook URLs often carry a token.
func validateWebhook(raw string) error {
	if len(raw) > MaxWebhook {
		return fmt.Errorf("longer than %d bytes", MaxWebhook)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("invalid URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an absolute http or https URL")
	case u.Opaque != "" || u.Hostname() == "":
		return errors.New("host required")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("fragment not allowed")
	}
	return nil
}

// Duration is a time.Duration written as a Go duration string ("1m0s") in
// JSON; it reads any string time.ParseDuration accepts ("1m", "90s").
type Duration time.Duration

// String returns the Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}
