package apitypes

import (
	"strconv"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/pkg/cron"
)

// Autoscale is an app's autoscaling policy (the app spec's "autoscale").
// While it is set the app's instance count is the autoscaler's: the
// largest count any target asks for, within Min and Max (or a schedule's).
type Autoscale struct {
	// Min and Max bound the count. Min nil means 1; Min 0 lets an idle
	// app (no routed request for ScaleDownDelay) scale to zero.
	Min *int `json:"min,omitempty"`
	Max int  `json:"max"`
	// CPU and Memory are targets in percent of the app's cpu and memory
	// per instance; QPS is a target of routed requests per second per
	// instance. Zero: no such target.
	CPU    int `json:"cpu,omitempty"`
	Memory int `json:"memory,omitempty"`
	QPS    int `json:"qps,omitempty"`
	// Window is what the targets are averaged over. Zero: 10s.
	Window Duration `json:"window,omitempty"`
	// ScaleDownDelay: the count goes down only to the highest count
	// wanted over this long. Zero: 60s.
	ScaleDownDelay Duration `json:"scale_down_delay,omitempty"`
	// Schedules replace Min and Max from their cron's firing until
	// another schedule fires.
	Schedules []AutoscaleSchedule `json:"schedules,omitempty"`
}

// AutoscaleSchedule sets the bounds from the times Cron fires (in
// Timezone, UTC when empty). Max 0 keeps the policy's max.
type AutoscaleSchedule struct {
	Cron     string `json:"cron"`
	Timezone string `json:"timezone,omitempty"`
	Min      int    `json:"min"`
	Max      int    `json:"max,omitempty"`
}

// Autoscale defaults and limits.
const (
	DefaultAutoscaleWindow         = 10 * time.Second
	DefaultAutoscaleScaleDownDelay = 60 * time.Second
	maxAutoscaleSchedules          = 32
)

// Normalize fills in the defaults.
func (a *Autoscale) Normalize() {
	if a.Min == nil {
		one := 1
		a.Min = &one
	}
	if a.Window == 0 {
		a.Window = Duration(DefaultAutoscaleWindow)
	}
	if a.ScaleDownDelay == 0 {
		a.ScaleDownDelay = Duration(DefaultAutoscaleScaleDownDelay)
	}
	for i := range a.Schedules {
		if a.Schedules[i].Timezone == "" {
			a.Schedules[i].Timezone = "UTC"
		}
	}
}

// Validate checks the policy; errors name the field "autoscale".
func (a *Autoscale) Validate() error {
	bad := func(format string, args ...any) error { return FieldError("autoscale", "autoscale: "+format, args...) }
	lo := 1
	if a.Min != nil {
		lo = *a.Min
	}
	if a.Max < 1 || a.Max > MaxInstances {
		return bad("max must be between 1 and %d", MaxInstances)
	}
	if lo < 0 || lo > a.Max {
		return bad("min must be between 0 and max (%d)", a.Max)
	}
	if a.CPU < 0 || a.CPU > 1000 || a.Memory < 0 || a.Memory > 100 {
		return bad("cpu is a percent of the app's cpu (1 to 1000), memory of its memory (1 to 100)")
	}
	if a.QPS < 0 || a.QPS > 1_000_000 {
		return bad("qps is requests per second per instance, 1 to 1000000")
	}
	if a.CPU == 0 && a.Memory == 0 && a.QPS == 0 && len(a.Schedules) == 0 {
		return bad("needs a target (cpu, memory or qps) or a schedule")
	}
	if a.Window != 0 && (a.Window.D() < time.Second || a.Window.D() > time.Hour) {
		return bad("window must be between 1s and 1h")
	}
	if a.ScaleDownDelay < 0 || a.ScaleDownDelay.D() > 24*time.Hour {
		return bad("scale_down_delay must be between 0s and 24h")
	}
	if len(a.Schedules) > maxAutoscaleSchedules {
		return bad("at most %d schedules", maxAutoscaleSchedules)
	}
	for i, s := range a.Schedules {
		if _, err := cron.Parse(s.Cron); err != nil {
			return bad("schedules[%d]: %v", i, err)
		}
		if s.Timezone != "" {
			if _, err := time.LoadLocation(s.Timezone); err != nil {
				return bad("schedules[%d]: unknown timezone %q", i, s.Timezone)
			}
		}
		if s.Min < 0 || s.Min > MaxInstances || s.Max < 0 || s.Max > MaxInstances {
			return bad("schedules[%d]: min and max must be between 0 and %d", i, MaxInstances)
		}
		hi := a.Max
		if s.Max > 0 {
			hi = s.Max
		}
		if s.Min > hi {
			return bad("schedules[%d]: min %d is above its max %d", i, s.Min, hi)
		}
	}
	return nil
}

// ParseAutoscaleSchedule parses the CLI's schedule form
// "CRON[@TIMEZONE]=MIN:MAX" (MAX may be left out: the policy's max), for
// example "0 9 * * 1-5@Asia/Shanghai=5:10".
func ParseAutoscaleSchedule(s string) (AutoscaleSchedule, error) {
	var out AutoscaleSchedule
	i := strings.LastIndex(s, "=")
	if i < 0 {
		return out, FieldError("schedule", "schedule %q: want CRON[@TZ]=MIN:MAX", s)
	}
	spec, bounds := s[:i], s[i+1:]
	if j := strings.LastIndex(spec, "@"); j >= 0 {
		spec, out.Timezone = spec[:j], spec[j+1:]
	}
	out.Cron = strings.TrimSpace(spec)
	lo, hi, hasMax := strings.Cut(bounds, ":")
	n, err := strconv.Atoi(lo)
	if err != nil {
		return out, FieldError("schedule", "schedule %q: min %q is not a number", s, lo)
	}
	out.Min = n
	if hasMax && hi != "" {
		if out.Max, err = strconv.Atoi(hi); err != nil {
			return out, FieldError("schedule", "schedule %q: max %q is not a number", s, hi)
		}
	}
	return out, nil
}

// AutoscaleStatus is GET /v1/apps/{name}/autoscale: the policy, what the
// autoscaler sees now and what it last decided.
type AutoscaleStatus struct {
	App       string     `json:"app"`
	Policy    *Autoscale `json:"policy,omitempty"`
	Instances int        `json:"instances"`
	Reason    string     `json:"autoscale_reason,omitempty"`
	// What the leader's autoscaler saw in its last round (zero before
	// its first). Min and Max are the bounds now, after the schedules;
	// Bounds says where they come from.
	Min    int    `json:"min"`
	Max    int    `json:"max"`
	Bounds string `json:"bounds,omitempty"`
	Ready  int    `json:"ready"`
	// Inputs over the policy's window: routed requests per second (all
	// routers), and the ready instances' mean CPU and memory in percent
	// of the app's limits (absent when unknown).
	QPS         float64    `json:"qps"`
	CPU         *float64   `json:"cpu,omitempty"`
	Memory      *float64   `json:"memory,omitempty"`
	LastRequest *time.Time `json:"last_request,omitempty"`
	// Wanted is the count it wanted and why; Panic whether it panicked.
	Wanted       int    `json:"wanted"`
	WantedReason string `json:"wanted_reason,omitempty"`
	Panic        bool   `json:"panic,omitempty"`
	// Decisions are the autoscaler's last changes, oldest first.
	Decisions []Deployment `json:"decisions"`
}
