package state

import (
	"fmt"
	"slices"
	"time"
)

// Autoscale is an app's autoscaling policy, normalized by the API (Min,
// Window and ScaleDownDelay set; schedules' time zones named).
type Autoscale struct {
	Min            int                 `json:"min"`
	Max            int                 `json:"max"`
	CPU            int                 `json:"cpu,omitempty"`    // percent of the app's cpu
	Memory         int                 `json:"memory,omitempty"` // percent of the app's memory
	QPS            int                 `json:"qps,omitempty"`    // requests per second per instance
	Window         Duration            `json:"window,omitempty"`
	ScaleDownDelay Duration            `json:"scale_down_delay,omitempty"`
	Schedules      []AutoscaleSchedule `json:"schedules,omitempty"`
}

// AutoscaleSchedule replaces the bounds from when Cron fires in Timezone
// until another schedule fires; Max 0 keeps the policy's.
type AutoscaleSchedule struct {
	Cron     string `json:"cron"`
	Timezone string `json:"timezone,omitempty"`
	Min      int    `json:"min"`
	Max      int    `json:"max,omitempty"`
}

// Copy returns a deep copy (nil for nil).
func (a *Autoscale) Copy() *Autoscale {
	if a == nil {
		return nil
	}
	c := *a
	c.Schedules = slices.Clone(a.Schedules)
	return &c
}

// FastMetrics reports whether the app's instances are to be sampled
// every second (not at their hosts' interval): its policy has a CPU or
// memory target. False for nil.
func (a *Autoscale) FastMetrics() bool { return a != nil && (a.CPU > 0 || a.Memory > 0) }

// bumpFastMetrics marks the assignments of the hosts that run app as
// changed when its policy starts or stops wanting fast samples, so their
// agents learn it (the flag travels with each instance's assignment).
func (w *writer) bumpFastMetrics(old, app *App) *Error {
	if old == nil || old.Spec.Autoscale.FastMetrics() == app.Spec.Autoscale.FastMetrics() {
		return nil
	}
	is, err := w.snap().AppInstances(nil, app.Tenant, app.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	hosts := map[string]bool{}
	for _, i := range is {
		if i.Desired == DesiredRun {
			hosts[i.Host] = true
		}
	}
	return w.bumpAssignments(hosts)
}

// DeployAutoscale is the history kind of the autoscaler's changes.
const DeployAutoscale = "autoscale"

// AutoscaleRequest is one decision of the autoscaler: the app's instance
// count and why. Not found without the app; conflict when the app has no
// policy (it was removed after the decision), so a late decision never
// overrides a manual count. The tenant's quota holds as for a scale.
type AutoscaleRequest struct {
	Tenant    string
	Name      string
	Instances int
	Reason    string
	Time      time.Time
}

// checkAutoscale refuses a policy the FSM cannot keep (the API validated
// it in full already).
func checkAutoscale(a *Autoscale) *Error {
	if a == nil {
		return nil
	}
	if a.Max < 1 || a.Max > MaxInstances || a.Min < 0 || a.Min > a.Max {
		return &Error{Kind: KindInvalid, Field: "autoscale", Msg: fmt.Sprintf("autoscale: min %d and max %d must satisfy 0 <= min <= max, 1 <= max <= %d", a.Min, a.Max, MaxInstances)}
	}
	return nil
}

// autoscaledCount is the count an app with policy a starts at, or keeps
// when its policy changes: the count it had, within the policy's bounds.
func autoscaledCount(a *Autoscale, n int) int {
	return min(max(n, a.Min), a.Max)
}

func (w *writer) autoscale(r *AutoscaleRequest) *Error {
	a, e := w.app(r.Tenant, r.Name)
	if e != nil {
		return e
	}
	if a == nil {
		return Errorf(KindNotFound, "app %s not found", r.Name)
	}
	if a.Spec.Autoscale == nil {
		return &Error{Kind: KindConflict, Field: "autoscale", Msg: fmt.Sprintf("app %s has no autoscale policy", r.Name)}
	}
	if r.Instances < 0 || r.Instances > MaxInstances {
		return &Error{Kind: KindInvalid, Field: "instances", Msg: "instances out of range"}
	}
	n := a.Copy()
	*n.Spec.Instances = r.Instances
	n.AutoscaleReason = r.Reason
	n.UpdatedAt = r.Time
	if e := w.replaceApp(a, n); e != nil {
		return e
	}
	if *a.Spec.Instances == r.Instances {
		return nil // a new reason only
	}
	msg := fmt.Sprintf("autoscaled from %d to %d instances: %s", *a.Spec.Instances, r.Instances, r.Reason)
	if e := w.record(n, DeployAutoscale, a.Version, msg, r.Time); e != nil {
		return e
	}
	return w.event(Event{Time: r.Time, Type: "app.autoscale", Subject: r.Tenant + "/" + r.Name, Message: msg})
}
