package state

import (
	"fmt"
	"slices"

	"github.com/wharf-platform/wharf/hub/scheduler"
)

func (w *writer) app(tenant, name string) (*App, *Error) {
	a, err := w.snap().App(nil, tenant, name)
	if err != nil {
		return nil, Errorf(KindInternal, "%v", err)
	}
	return a, nil
}

func casError(cas *uint64, a *App) *Error {
	if cas == nil {
		return nil
	}
	var have uint64
	if a != nil {
		have = a.ModifyIndex
	}
	if have != *cas {
		if *cas == 0 {
			return Errorf(KindConflict, "app %s already exists (cas=0)", a.Name)
		}
		return Errorf(KindConflict, "stale cas index %d: the app's modify index is %d", *cas, have)
	}
	return nil
}

func (w *writer) appUpsert(r *AppUpsertRequest) *Error {
	tenant, err := w.snap().Tenant(nil, r.Tenant)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if tenant == nil {
		return &Error{Kind: KindRefused, Msg: "tenant " + r.Tenant + " does not exist", Field: "tenant"}
	}
	old, e := w.app(r.Tenant, r.Spec.Name)
	if e != nil {
		return e
	}
	if e := casError(r.CAS, old); e != nil {
		return e
	}
	if r.Create && old != nil {
		return &Error{Kind: KindConflict, Msg: "app " + r.Spec.Name + " already exists", Field: "name"}
	}
	if r.Update && old == nil {
		return Errorf(KindNotFound, "app %s not found", r.Spec.Name)
	}
	if e := w.checkPools(tenant, "pools", r.Spec.Pools); e != nil {
		return e
	}
	if e := w.checkPools(tenant, "failover_pools", r.Spec.FailoverPools); e != nil {
		return e
	}

	if e := checkAutoscale(r.Spec.Autoscale); e != nil {
		return e
	}
	app := &App{Tenant: r.Tenant, Name: r.Spec.Name, Spec: copySpec(r.Spec), UpdatedAt: r.Time}
	app.Spec.Secrets = 0 // the store's, never the spec's
	newVersion := false
	if old == nil {
		if app.Spec.Instances == nil {
			n := 1
			app.Spec.Instances = &n
		}
		app.Version, app.LatestVersion, app.CreatedAt = 1, 1, r.Time
		newVersion = true
		// Its watch row from the start: a blocking query of its instances
		// watches the row itself, not the part of the table where a
		// missing row would be, which every other app's status and every
		// host's state change.
		if e := w.noteWatch(appWatchKey(r.Tenant, app.Name)); e != nil {
			return e
		}
	} else {
		// While a policy is set the count is the autoscaler's: a spec's
		// count is ignored (a re-applied manifest does not undo it).
		if app.Spec.Instances == nil || (app.Spec.Autoscale != nil && old.Spec.Autoscale != nil) {
			n := *old.Spec.Instances
			app.Spec.Instances = &n
			// A stopped app stays stopped unless the spec names a count.
			app.Stopped, app.StoppedInstances = old.Stopped, old.StoppedInstances
		}
		app.AutoscaleReason = old.AutoscaleReason
		// Status the spec does not say stays: the planner's explanation
		// (its next round, which a write always starts, corrects it, and
		// commits nothing when it still holds), the troubles already told
		// and a failback asked for by hand.
		app.Pending, app.Noticed, app.FailbackIndex = old.Pending, slices.Clone(old.Noticed), old.FailbackIndex
		// Secrets change only through their own commands.
		app.Secrets, app.SecretsRevision, app.Spec.Secrets = copySecrets(old.Secrets), old.SecretsRevision, old.Spec.Secrets
		app.CreatedAt = old.CreatedAt
		app.Version, app.LatestVersion = old.Version, old.LatestVersion
		app.CanaryFrom = old.CanaryFrom
		if !old.Spec.VersionFields().Equal(app.Spec.VersionFields()) {
			app.LatestVersion++
			app.Version = app.LatestVersion
			newVersion = true
			app.CanaryFrom = 0
			if st := app.Spec.Strategy; st != nil && st.Type == "canary" {
				app.CanaryFrom = old.Version
				if old.CanaryFrom != 0 { // a canary replacing a canary: the base stays
					app.CanaryFrom = old.CanaryFrom
				}
			}
		}
	}
	if as := app.Spec.Autoscale; as != nil {
		n := autoscaledCount(as, *app.Spec.Instances)
		if old == nil || old.Spec.Autoscale == nil || n != *app.Spec.Instances {
			app.AutoscaleReason = fmt.Sprintf("policy set: between %d and %d instances", as.Min, as.Max)
		}
		*app.Spec.Instances = n
	} else {
		app.AutoscaleReason = ""
	}
	// What could run it changes only with its version or its pools: a
	// scale or a strategy change of a running app is not judged again.
	if newVersion || !slices.Equal(old.Spec.Pools, app.Spec.Pools) || !slices.Equal(old.Spec.FailoverPools, app.Spec.FailoverPools) {
		if e := w.checkDrivers(tenant, app.Spec); e != nil {
			return e
		}
	}
	if e := w.checkQuota(tenant, app); e != nil {
		return e
	}
	if e := w.bumpFastMetrics(old, app); e != nil {
		return e
	}
	w.meta(&app.Meta, metaOf(old))
	if newVersion {
		v := &AppVersion{Tenant: app.Tenant, App: app.Name, Version: app.Version, Spec: app.Spec.VersionFields(), CreatedAt: r.Time, Index: w.index}
		if e := w.insert(TableAppVersions, v); e != nil {
			return e
		}
	}
	switch {
	case old == nil:
		e = w.record(app, DeployCreate, 0, fmt.Sprintf("version 1 created with %d instances", *app.Spec.Instances), r.Time)
	case newVersion && app.CanaryFrom != 0:
		e = w.record(app, DeployCanary, old.Version, fmt.Sprintf("version %d as canary beside version %d", app.Version, app.CanaryFrom), r.Time)
	case newVersion:
		e = w.record(app, DeployUpdate, old.Version, fmt.Sprintf("version %d replaces version %d", app.Version, old.Version), r.Time)
	case *app.Spec.Instances != *old.Spec.Instances:
		e = w.record(app, DeployScale, old.Version, fmt.Sprintf("scaled from %d to %d instances", *old.Spec.Instances, *app.Spec.Instances), r.Time)
	}
	if e != nil {
		return e
	}
	return w.insert(TableApps, app)
}

func metaOf(a *App) *Meta {
	if a == nil {
		return nil
	}
	return &a.Meta
}

// checkPools refuses pools that do not exist or that the tenant may not use.
func (w *writer) checkPools(t *Tenant, field string, pools []string) *Error {
	for _, name := range pools {
		p, err := w.snap().Pool(nil, name)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		if p == nil {
			return &Error{Kind: KindRefused, Msg: fmt.Sprintf("pool %s does not exist", name), Field: field}
		}
		if len(t.Pools) > 0 && !contains(t.Pools, name) {
			return &Error{Kind: KindRefused, Msg: fmt.Sprintf("tenant %s may not use pool %s", t.Name, name), Field: field}
		}
	}
	return nil
}

// checkDrivers refuses an app that no pool it may use could ever run: a
// pool could run it if its declared drivers can, else if its provider's
// hosts can (scheduler.PoolRuns); a pool that says neither may, and the
// app waits there with an explanation if no host fits.
func (w *writer) checkDrivers(t *Tenant, spec AppSpec) *Error {
	names := append(slices.Clone(spec.Pools), spec.FailoverPools...)
	if len(spec.Pools) == 0 {
		names = append(slices.Clone(t.Pools), spec.FailoverPools...)
	}
	var pools []*Pool
	if len(spec.Pools) == 0 && len(t.Pools) == 0 { // every pool
		all, err := w.snap().Pools(nil)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		pools = all
	}
	for _, name := range names {
		p, err := w.snap().Pool(nil, name)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		if p != nil && !slices.ContainsFunc(pools, func(x *Pool) bool { return x.Name == name }) {
			pools = append(pools, p)
		}
	}
	if len(pools) == 0 {
		return nil // nowhere to run yet: pending, with its explanation
	}
	workload := scheduler.WorkloadOf(spec.Image)
	var refused []string
	var drivers [][]string
	for _, p := range pools {
		if scheduler.PoolRuns(p.Drivers, p.Provider, workload) != scheduler.No {
			return nil
		}
		refused = append(refused, p.Name)
		drivers = append(drivers, scheduler.PoolDrivers(p.Drivers, p.Provider))
	}
	field := "image"
	if workload == scheduler.WorkloadCommand {
		field = "command"
	}
	return &Error{Kind: KindRefused, Field: field, Msg: scheduler.NoPoolRuns(workload, refused, drivers)}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkQuota refuses app (new or changed) when the tenant's apps together
// would exceed its quota.
func (w *writer) checkQuota(t *Tenant, app *App) *Error {
	if e := w.checkBudget(t, app); e != nil {
		return e
	}
	q := t.Quota
	if q.Instances == 0 && q.CPU == 0 && q.Memory == 0 {
		return nil
	}
	apps, err := w.snap().Apps(nil, t.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	var inst, cpu, mem int
	add := func(a *App) {
		n := *a.Spec.Instances
		inst += n
		cpu += n * a.Spec.CPU
		mem += n * a.Spec.Memory
	}
	for _, a := range apps {
		if a.Name != app.Name {
			add(a)
		}
	}
	add(app)
	switch {
	case q.Instances > 0 && inst > q.Instances:
		return &Error{Kind: KindRefused, Field: "instances", Msg: fmt.Sprintf("quota exceeded: tenant %s would run %d instances, quota %d", t.Name, inst, q.Instances)}
	case q.CPU > 0 && cpu > q.CPU:
		return &Error{Kind: KindRefused, Field: "cpu", Msg: fmt.Sprintf("quota exceeded: tenant %s would use %d millicores, quota %d", t.Name, cpu, q.CPU)}
	case q.Memory > 0 && mem > q.Memory:
		return &Error{Kind: KindRefused, Field: "memory", Msg: fmt.Sprintf("quota exceeded: tenant %s would use %d MB, quota %d", t.Name, mem, q.Memory)}
	}
	return nil
}

func (w *writer) appDelete(r *AppDeleteRequest) *Error {
	a, e := w.app(r.Tenant, r.Name)
	if e != nil {
		return e
	}
	if a == nil {
		if r.CAS != nil && *r.CAS != 0 {
			return Errorf(KindConflict, "stale cas index %d: the app does not exist", *r.CAS)
		}
		return Errorf(KindNotFound, "app %s not found", r.Name)
	}
	if e := casError(r.CAS, a); e != nil {
		return e
	}
	versions, err := w.snap().AppVersions(nil, r.Tenant, r.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, v := range versions {
		if e := w.delete(TableAppVersions, v); e != nil {
			return e
		}
	}
	if e := w.stopAppInstances(r.Tenant, r.Name, r.Time); e != nil {
		return e
	}
	if e := w.dropHistory(r.Tenant, r.Name); e != nil {
		return e
	}
	if e := w.dropAppDrains(r.Tenant, r.Name); e != nil {
		return e
	}
	if e := w.dropAppAlerts(r.Tenant, r.Name); e != nil {
		return e
	}
	if e := w.dropAppRoutes(r.Tenant, r.Name); e != nil {
		return e
	}
	// Its status: gone. A watcher of its instances, which watches its
	// rows and not the app's record, learns it here when it had none.
	if e := w.noteAppStatus(r.Tenant, r.Name); e != nil {
		return e
	}
	return w.delete(TableApps, a)
}

func (w *writer) appScale(r *AppScaleRequest) *Error {
	a, e := w.app(r.Tenant, r.Name)
	if e != nil {
		return e
	}
	if a == nil {
		return Errorf(KindNotFound, "app %s not found", r.Name)
	}
	if r.Instances < 0 || r.Instances > MaxInstances {
		return &Error{Kind: KindInvalid, Field: "instances", Msg: "instances out of range"}
	}
	if as := a.Spec.Autoscale; as != nil {
		return &Error{Kind: KindConflict, Field: "instances", Msg: fmt.Sprintf(
			"app %s is autoscaled (between %d and %d instances): its count is the autoscaler's; change the policy, or remove it (wharf app autoscale %s --off) to scale by hand",
			r.Name, as.Min, as.Max, r.Name)}
	}
	n := a.Copy()
	*n.Spec.Instances = r.Instances
	n.Stopped, n.StoppedInstances = false, 0 // an explicit count ends a stop
	n.UpdatedAt = r.Time
	if e := w.replaceApp(a, n); e != nil {
		return e
	}
	return w.record(n, DeployScale, a.Version, fmt.Sprintf("scaled from %d to %d instances", *a.Spec.Instances, r.Instances), r.Time)
}

// replaceApp writes n, a changed copy of the stored app a, once the
// tenant's quota allows it.
func (w *writer) replaceApp(a, n *App) *Error {
	tenant, err := w.snap().Tenant(nil, a.Tenant)
	if err != nil || tenant == nil {
		return Errorf(KindInternal, "tenant %s of app %s is missing", a.Tenant, a.Name)
	}
	if e := w.checkQuota(tenant, n); e != nil {
		return e
	}
	w.meta(&n.Meta, &a.Meta)
	return w.insert(TableApps, n)
}

func (w *writer) appRollback(r *AppRollbackRequest) *Error {
	a, e := w.app(r.Tenant, r.Name)
	if e != nil {
		return e
	}
	if a == nil {
		return Errorf(KindNotFound, "app %s not found", r.Name)
	}
	v, err := w.snap().AppVersion(nil, r.Tenant, r.Name, r.Version)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if v == nil {
		return &Error{Kind: KindNotFound, Field: "version", Msg: fmt.Sprintf("app %s has no version %d", r.Name, r.Version)}
	}
	// Rolling back to the current version still writes (a new modify
	// index), so every successful command changes the store.
	n := a.Copy()
	setVersionFields(&n.Spec, v.Spec)
	n.Version = v.Version
	n.UpdatedAt = r.Time
	n.CanaryFrom = 0
	if e := w.replaceApp(a, n); e != nil {
		return e
	}
	return w.record(n, DeployRollback, a.Version, fmt.Sprintf("rolled back from version %d to version %d", a.Version, v.Version), r.Time)
}

func setVersionFields(s *AppSpec, v VersionSpec) {
	c := copySpec(AppSpec{Command: v.Command, Env: v.Env, Ports: v.Ports, Health: v.Health})
	s.Image, s.Command, s.Env, s.CPU, s.Memory, s.Ports, s.Health = v.Image, c.Command, c.Env, v.CPU, v.Memory, c.Ports, c.Health
	s.Secrets = v.Secrets
}

func (w *writer) appCanary(r *AppCanaryRequest) *Error {
	a, e := w.app(r.Tenant, r.Name)
	if e != nil {
		return e
	}
	if a == nil {
		return Errorf(KindNotFound, "app %s not found", r.Name)
	}
	if a.CanaryFrom == 0 {
		return Errorf(KindConflict, "app %s has no canary in progress", r.Name)
	}
	n := a.Copy()
	n.CanaryFrom, n.UpdatedAt = 0, r.Time
	msg := fmt.Sprintf("app %s: version %d promoted", a.Name, a.Version)
	if !r.Promote {
		v, err := w.snap().AppVersion(nil, r.Tenant, r.Name, a.CanaryFrom)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		if v == nil {
			return Errorf(KindNotFound, "app %s has no version %d", r.Name, a.CanaryFrom)
		}
		setVersionFields(&n.Spec, v.Spec)
		n.Version = v.Version
		msg = fmt.Sprintf("app %s: canary of version %d aborted; back to version %d", a.Name, a.Version, v.Version)
	}
	if e := w.replaceApp(a, n); e != nil {
		return e
	}
	kind := DeployPromote
	if !r.Promote {
		kind = DeployAbort
	}
	if e := w.record(n, kind, a.Version, msg, r.Time); e != nil {
		return e
	}
	return w.event(Event{Time: r.Time, Type: "app.canary", Subject: r.Tenant + "/" + r.Name, Message: msg})
}

func (w *writer) appFailback(r *AppFailbackRequest) *Error {
	a, e := w.app(r.Tenant, r.Name)
	if e != nil {
		return e
	}
	if a == nil {
		return Errorf(KindNotFound, "app %s not found", r.Name)
	}
	if len(a.Spec.FailoverPools) == 0 {
		return &Error{Kind: KindConflict, Field: "failover_pools", Msg: fmt.Sprintf("app %s has no failover pools to come back from", r.Name)}
	}
	n := a.Copy()
	n.FailbackIndex, n.UpdatedAt = w.index, r.Time
	if e := w.replaceApp(a, n); e != nil {
		return e
	}
	return w.record(n, DeployFailback, a.Version, "failback to pools "+fmt.Sprint(a.Spec.Pools)+" requested", r.Time)
}
