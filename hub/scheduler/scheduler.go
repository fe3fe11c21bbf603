package scheduler

import (
	"fmt"
	"slices"
)

// Scheduler builds placement plans. Its zero value is ready to use. It
// keeps its index buffers from one plan to the next, so it must not plan
// concurrently; the hub's leader runs one.
type Scheduler struct {
	p planner
}

// New returns a Scheduler.
func New() *Scheduler { return &Scheduler{} }

// Plan returns the changes that move apps towards their desired state in
// st, giving each new instance an id from newID.
//
// Apps are handled in the order given (earlier apps get capacity first);
// an app listed twice counts once. For each app, only live instances of
// its current version count: those that are not terminal and whose host
// is not down. Instances on down or vanished hosts are stopped and
// replaced; missing instances are placed; surplus ones are stopped.
// Instances of other versions are left to the deployment logic but hold
// their resources. What cannot be placed is reported in Plan.Pending with
// the reason, pool by pool.
//
// Capacity freed by stops in the plan is not reused by the same plan: the
// old copy may still be stopping when the new one starts, so the next
// plan, built once the stop is applied, gets it.
func (s *Scheduler) Plan(st State, apps []App, newID func() string) Plan {
	p := &s.p
	plan := Plan{BaseIndex: st.Index()}
	p.reset(st)
	// A lower bound of the placements, so that the plan's slice is not
	// regrown tens of times in a large plan.
	want := 0
	for i := range apps {
		want += max(0, apps[i].Count-len(p.byApp[apps[i].Key]))
	}
	if want > 0 && len(p.nodes) > 0 { // with no hosts, nothing is placed
		plan.Place = make([]Placement, 0, want)
	}
	seen := make(map[AppKey]struct{}, len(apps))
	for i := range apps {
		a := &apps[i]
		if _, dup := seen[a.Key]; dup {
			continue
		}
		seen[a.Key] = struct{}{}
		p.schedule(a, newID, &plan)
	}
	p.release()
	return plan
}

// appCtx is the app being scheduled, compiled for the hot loop.
type appCtx struct {
	app      *App
	cpu, mem int
	level    int       // spread level (see App.spreadLevel)
	cellM    []matcher // constraints on pool, datacenter, zone
	hostM    []matcher // constraints on name and labels
	prim     []string  // pool names tried first, allowed ones only
	fail     []string  // failover pool names, allowed ones only
	notes    []string  // pools skipped because the tenant may not use them
	runs     uint8     // workloadBit of the app's workload; 0: any host
}

func (p *planner) schedule(app *App, newID func() string, plan *Plan) {
	if err := app.Validate(); err != nil {
		if app.Count > 0 {
			plan.Pending = append(plan.Pending, Pending{App: app.Key, Count: app.Count, Reason: "invalid app: " + err.Error()})
		}
		return
	}
	a := appCtx{app: app, cpu: app.CPU, mem: app.Memory, level: app.spreadLevel(), runs: workloadBit(app.Workload)}

	// Count live instances; stop those whose host is gone or down.
	p.live = p.live[:0]
	for _, ii := range p.byApp[app.Key] {
		in := &p.insts[ii]
		ni, ok := p.nodeOf(in.Host)
		switch {
		case !ok:
			plan.Stop = append(plan.Stop, StopRequest{InstanceID: in.ID, Reason: fmt.Sprintf("host %q is gone", in.Host)})
			continue
		case p.nodes[ni].host.Down:
			plan.Stop = append(plan.Stop, StopRequest{InstanceID: in.ID, Reason: fmt.Sprintf("host %q is down", p.nodes[ni].host.label())})
			continue
		case in.Version != app.Version:
			continue
		}
		p.live = append(p.live, ii)
		p.count(ni, 1)
	}

	switch n := len(p.live); {
	case n > app.Count:
		p.scaleDown(&a, n-app.Count, plan)
	case n < app.Count:
		p.compileApp(&a)
		p.placeAll(&a, app.Count-n, newID, plan)
	}

	for _, ni := range p.touched {
		p.nodes[ni].count = 0
	}
	p.touched = p.touched[:0]
	clear(p.domCount)
}

// count adds d live instances of the current app on node ni.
func (p *planner) count(ni int32, d int32) {
	n := &p.nodes[ni]
	if n.count == 0 && d > 0 {
		p.touched = append(p.touched, ni)
	}
	n.count += d
	p.domCount[n.dom[1]] += d
	p.domCount[n.dom[2]] += d
}

// scaleDown stops k of the live instances, one at a time so that each
// choice sees the previous ones: first those on hosts that are not ready,
// then those in the most crowded spread domain, on the host with the most
// instances of the app, on the host with the least free capacity; the
// highest instance id breaks ties.
func (p *planner) scaleDown(a *appCtx, k int, plan *Plan) {
	reason := fmt.Sprintf("scaled down to %d", a.app.Count)
	for ; k > 0; k-- {
		v := 0
		for j := 1; j < len(p.live); j++ {
			if p.victimBefore(a, p.live[j], p.live[v]) {
				v = j
			}
		}
		in := &p.insts[p.live[v]]
		plan.Stop = append(plan.Stop, StopRequest{InstanceID: in.ID, Reason: reason})
		ni, _ := p.nodeOf(in.Host) // a live instance's host has a node
		p.count(ni, -1)
		p.live = slices.Delete(p.live, v, v+1)
	}
}

func (p *planner) victimBefore(a *appCtx, x, y int32) bool {
	ix, iy := &p.insts[x], &p.insts[y]
	xi, _ := p.nodeOf(ix.Host) // live instances' hosts have nodes
	yi, _ := p.nodeOf(iy.Host)
	nx, ny := &p.nodes[xi], &p.nodes[yi]
	if rx, ry := nx.host.schedulable(), ny.host.schedulable(); rx != ry {
		return !rx
	}
	if a.level > 0 {
		if dx, dy := p.domCount[nx.dom[a.level]], p.domCount[ny.dom[a.level]]; dx != dy {
			return dx > dy
		}
	}
	if nx.count != ny.count {
		return nx.count > ny.count
	}
	if nx.freeMem != ny.freeMem {
		return nx.freeMem < ny.freeMem
	}
	if nx.freeCPU != ny.freeCPU {
		return nx.freeCPU < ny.freeCPU
	}
	return ix.ID > iy.ID
}

// compileApp resolves the app's pools and compiles its constraints.
func (p *planner) compileApp(a *appCtx) {
	app := a.app
	p.appStamp++
	if p.appStamp == 0 {
		for i := range p.nodes {
			p.nodes[i].okStamp = 0
		}
		p.appStamp = 1
	}
	p.matchers = p.matchers[:0]
	for i := range app.Constraints {
		p.matchers = append(p.matchers, compile(&app.Constraints[i]))
	}
	// Cell-level constraints first, then host-level ones.
	slices.SortStableFunc(p.matchers, func(x, y matcher) int {
		return cmpBool(!x.cellLevel(), !y.cellLevel())
	})
	split := len(p.matchers)
	for i := range p.matchers {
		if !p.matchers[i].cellLevel() {
			split = i
			break
		}
	}
	a.cellM, a.hostM = p.matchers[:split], p.matchers[split:]

	allowed := func(name string) bool {
		return len(app.AllowedPools) == 0 || slices.Contains(app.AllowedPools, name)
	}
	p.names = p.names[:0]
	prim := app.Pools
	if len(prim) == 0 {
		prim = app.AllowedPools
	}
	if len(prim) == 0 {
		prim = p.poolNames()
	}
	for _, name := range prim {
		if !allowed(name) {
			a.notes = append(a.notes, fmt.Sprintf("pool %q is not allowed for tenant %q", name, app.Key.Tenant))
		} else if !slices.Contains(p.names, name) {
			p.names = append(p.names, name)
		}
	}
	n := len(p.names)
	for _, name := range app.FailoverPools {
		if !allowed(name) {
			a.notes = append(a.notes, fmt.Sprintf("failover pool %q is not allowed for tenant %q", name, app.Key.Tenant))
		} else if !slices.Contains(p.names, name) {
			p.names = append(p.names, name)
		}
	}
	a.prim, a.fail = p.names[:n:n], p.names[n:]
	p.prim.build(p, a, a.prim)
	p.fail.build(p, a, a.fail)
}

// placeAll places up to k instances of the app and reports the rest as
// pending.
func (p *planner) placeAll(a *appCtx, k int, newID func() string, plan *Plan) {
	placed := 0
	for ; placed < k; placed++ {
		ni := p.pick(a, &p.prim)
		if ni < 0 {
			ni = p.pick(a, &p.fail)
		}
		if ni < 0 {
			break
		}
		h := p.nodes[ni].host
		plan.Place = append(plan.Place, Placement{
			InstanceID: newID(), App: a.app.Key, Version: a.app.Version,
			Host: h.ID, CPU: a.cpu, Memory: a.mem,
		})
		p.count(ni, 1)
		p.take(ni, a.cpu, a.mem)
	}
	if placed < k {
		plan.Pending = append(plan.Pending, Pending{App: a.app.Key, Count: k - placed, Reason: p.explain(a)})
	}
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
