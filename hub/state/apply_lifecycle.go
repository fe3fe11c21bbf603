package state

import (
	"fmt"
	"time"
)

// History kinds of the lifecycle verbs.
const (
	DeployRestart = "restart" // every instance replaced, the spec unchanged
	DeployStop    = "stop"    // zero instances, the count remembered
	DeployStart   = "start"   // back to the remembered count
)

// AppLifecycleRequest restarts (AppRestartType), stops (AppStopType) or
// starts (AppStartType) an app. Not found if the app is absent.
//
// Restart makes a new version with the current version's fields (so every
// instance is replaced the way the app's strategy replaces a new version);
// conflict during a canary or while the app is stopped. Stop sets the
// desired count to zero and remembers the count; conflict if already
// stopped. Start restores the remembered count (quota checked); conflict
// unless stopped.
type AppLifecycleRequest struct {
	Tenant string
	Name   string
	Time   time.Time
}

// AppRestartRequest, AppStopRequest and AppStartRequest are the
// AppLifecycleRequest of each verb (the message type picks the verb).
type (
	AppRestartRequest AppLifecycleRequest
	AppStopRequest    AppLifecycleRequest
	AppStartRequest   AppLifecycleRequest
)

func (w *writer) appLifecycle(t MessageType, r *AppLifecycleRequest) *Error {
	a, e := w.app(r.Tenant, r.Name)
	if e != nil {
		return e
	}
	if a == nil {
		return Errorf(KindNotFound, "app %s not found", r.Name)
	}
	n := a.Copy()
	n.UpdatedAt = r.Time
	switch t {
	case AppRestartType:
		if a.CanaryFrom != 0 {
			return Errorf(KindConflict, "app %s has a canary in progress: promote or abort it first", r.Name)
		}
		if a.Stopped {
			return Errorf(KindConflict, "app %s is stopped: start it instead", r.Name)
		}
		n.LatestVersion++
		n.Version = n.LatestVersion
		v := &AppVersion{Tenant: n.Tenant, App: n.Name, Version: n.Version, Spec: n.Spec.VersionFields(), CreatedAt: r.Time, Index: w.index}
		if e := w.insert(TableAppVersions, v); e != nil {
			return e
		}
		if e := w.replaceApp(a, n); e != nil {
			return e
		}
		return w.record(n, DeployRestart, a.Version, fmt.Sprintf("restart: version %d replaces version %d with the same spec", n.Version, a.Version), r.Time)
	case AppStopType:
		if a.Stopped {
			return Errorf(KindConflict, "app %s is already stopped", r.Name)
		}
		if a.Spec.Autoscale != nil {
			// The autoscaler owns the count: it would start the app again.
			return Errorf(KindConflict, "app %s scales automatically: remove its policy first (wharf app autoscale %s --off)", r.Name, r.Name)
		}
		n.Stopped, n.StoppedInstances = true, *a.Spec.Instances
		*n.Spec.Instances = 0
		if e := w.replaceApp(a, n); e != nil {
			return e
		}
		return w.record(n, DeployStop, a.Version, fmt.Sprintf("stopped (%d instances remembered)", n.StoppedInstances), r.Time)
	case AppStartType:
		if !a.Stopped {
			return Errorf(KindConflict, "app %s is not stopped", r.Name)
		}
		*n.Spec.Instances = a.StoppedInstances
		n.Stopped, n.StoppedInstances = false, 0
		if e := w.replaceApp(a, n); e != nil {
			return e
		}
		return w.record(n, DeployStart, a.Version, fmt.Sprintf("started with %d instances", *n.Spec.Instances), r.Time)
	}
	return Errorf(KindInternal, "app lifecycle: message type %d", t)
}
