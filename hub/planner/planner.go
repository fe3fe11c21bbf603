// Package planner is the leader's planner: round after round it turns the
// apps' desired state into plans (hub/scheduler decides where instances go)
// and commits them through Raft.
package planner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/scheduler"
	"github.com/wharf-platform/wharf/hub/state"
)

// Snapshotter hands out read-only views of the state store, adding to a
// watch set what fires when the store's database is replaced (a restore):
// the replaced database's watches never fire again.
type Snapshotter interface {
	Watch(ws memdb.WatchSet) *state.Snapshot
}

// PlanSubmitter commits a state command (a plan) through Raft.
type PlanSubmitter interface {
	Apply(ctx context.Context, msg []byte) (uint64, error)
}

// Leases tells when a host's lease was last renewed as this leader knows
// it (zero: not since it took office).
type Leases interface {
	LastHeartbeat(host string) time.Time
}

// Config is what a planner runner needs.
type Config struct {
	State  Snapshotter   // required
	Plans  PlanSubmitter // required
	Leases Leases        // nil: no renewal seen since taking office
	// Metrics counts rounds and plans; nil: a private set nobody reads.
	Metrics *Metrics
	// Logger: nil discards.
	Logger *slog.Logger
}

// Runner is the leader's planner loop.
type Runner struct {
	cfg Config
}

// New returns a planner runner; Run it while this node leads.
func New(cfg Config) *Runner {
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg}
}

// Run keeps every app at its desired instances until ctx ends: it watches
// apps, hosts and instances, builds a plan from a snapshot and commits it
// through Raft. A plan made stale by a concurrent change is refused by the
// FSM and simply planned again. Each round looks only at the apps that may
// need work (see planner); every fullEvery, and after a refused plan, it
// looks at all of them.
func (r *Runner) Run(ctx context.Context) error {
	p := newPlanner()
	p.tookOffice = time.Now()
	if r.cfg.Leases != nil {
		p.lastRenewal = r.cfg.Leases.LastHeartbeat
	}
	m, log := r.cfg.Metrics, r.cfg.Logger
	lastFull := time.Now()
	for ctx.Err() == nil {
		ws := memdb.NewWatchSet()
		snap := r.cfg.State.Watch(ws)
		full := time.Since(lastFull) >= fullEvery
		if full {
			lastFull = time.Now()
		}
		start := time.Now()
		req, err := p.build(snap, ws, time.Now().UTC(), newInstanceID, full)
		m.build.Observe(time.Since(start).Seconds())
		m.rounds.Add(1)
		if err != nil {
			log.Warn("plan", "err", err)
		} else if req != nil {
			msg, err := state.Encode(state.PlanApplyType, req)
			if err == nil {
				actx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err = r.cfg.Plans.Apply(actx, msg)
				cancel()
			}
			switch {
			case err == nil:
				m.commits.Add(1)
				m.placed.Add(uint64(len(req.Place)))
				m.stopped.Add(uint64(len(req.Stop)))
				continue
			case errors.Is(err, state.ErrConflict):
				log.Debug("stale plan, planning again", "err", err)
				m.conflicts.Add(1)
				p.invalidate()
				continue
			default:
				log.Warn("commit plan", "err", err)
				m.failures.Add(1)
				p.invalidate()
			}
		}
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ws.WatchCtx(tctx)
		cancel()
	}
	return nil
}

// fullEvery is how often the planner looks at every app, not only those
// that changed: a safety net for changes no round noticed (a tenant's
// pools, say).
const fullEvery = time.Minute

func newInstanceID(app string) string {
	b := make([]byte, 4)
	rand.Read(b)
	if len(app) > 40 {
		app = app[:40]
	}
	return app + "-" + hex.EncodeToString(b)
}

// planner builds plans round after round on the leader. It remembers what
// it saw, so that a round reads only what changed since the last one
// (Nomad queues evaluations for the same reason): apps written since,
// apps whose instances were written since, apps on hosts whose state,
// capacity or labels changed, apps still converging (an update in
// progress, instances not ready) and, when capacity was freed or added
// anywhere, apps with instances pending. Per-host allocation comes from
// the host records the FSM keeps, so a round never reads every instance.
type planner struct {
	// lastRenewal returns when a host's lease was last renewed as this
	// leader knows it (zero: not since it took office); nil: never.
	lastRenewal func(host string) time.Time
	tookOffice  time.Time
	fenceWait   map[appKey]bool      // apps waiting for a lease to run out, this round
	poolReady   map[string]time.Time // since when each pool has had a ready host
	sched       *scheduler.Scheduler
	index       uint64          // snapshot index of the last round; 0: none
	view        hostView        // the hosts as of the last round, and the scheduler's view of them
	unsettled   map[appKey]bool // apps to look at again next round
	// waiting holds the apps with instances pending or in failover pools
	// as the rounds last read them (an app deleted since may linger until
	// the next round that reads them all): the apps to look at when
	// capacity is added or freed, without reading every app.
	waiting  map[appKey]bool
	appsRead int // app records the last round read
	// scratch holds buffers a round fills and the next one reuses: a
	// round lists thousands of instances, and allocating them afresh
	// every round was most of the leader's garbage under churn.
	scratch struct {
		hosts    []*state.Host
		ids      []string
		changed  []*state.Host
		insts    []scheduler.Instance
		touched  []int
		listed   []*state.Instance
		cur, old []*state.Instance
		perHost  map[string]int
	}
}

func newPlanner() *planner {
	return &planner{sched: scheduler.New(), unsettled: map[appKey]bool{}, waiting: map[appKey]bool{}, fenceWait: map[appKey]bool{}, poolReady: map[string]time.Time{}}
}

// invalidate makes the next round look at every app.
func (p *planner) invalidate() { p.index = 0 }

// buildPlan looks at every app once, with a fresh planner.
func buildPlan(snap *state.Snapshot, ws memdb.WatchSet, now time.Time, newID func(string) string) (*state.PlanApplyRequest, error) {
	return newPlanner().build(snap, ws, now, newID, true)
}

// build returns the plan that moves the apps that may need work (every
// app when full) towards their desired state, or nil when nothing needs
// doing.
//
// Per app, in availability mode: instances on hosts that are down or gone,
// and failed ones, are stopped and replaced (a crash-looping one on another
// host when there is one). The current version gets its desired count;
// during a rolling update (older versions, or instances on draining hosts,
// still live) at most max_surge extra instances run, and an old instance
// stops only when a new one is ready, so that at least the desired count
// minus max_unavailable stay ready; canary and blue-green updates and
// auto_revert are decided here too. Where new instances go is the
// scheduler's choice (hub/scheduler): pools in order, spread, constraints,
// best fit.
func (p *planner) build(snap *state.Snapshot, ws memdb.WatchSet, now time.Time, newID func(string) string, full bool) (*state.PlanApplyRequest, error) {
	full = full || p.index == 0
	dirty, freed, known, err := p.changes(snap, ws, full)
	if err != nil {
		return nil, err
	}
	full = full || !known
	p.index = snap.LatestIndex()
	byHost := p.view.record
	hosts := p.view.from
	byApp := map[appKey][]*state.Instance{}
	var work []*state.App
	if full {
		if work, err = snap.Apps(ws, ""); err != nil {
			return nil, err
		}
		p.appsRead = len(work)
		clear(p.waiting)
	} else {
		if freed {
			// Capacity added or freed anywhere may let pending instances
			// in, or instances in failover pools go home.
			for key := range p.waiting {
				dirty[key] = true
			}
			clear(p.waiting) // each one that still waits is in work
		}
		if work, err = p.changedApps(snap, dirty); err != nil {
			return nil, err
		}
	}
	for _, a := range work {
		if key := (appKey{Tenant: a.Tenant, Name: a.Name}); a.Pending != "" || len(a.Spec.FailoverPools) > 0 {
			p.waiting[key] = true
		} else {
			delete(p.waiting, key)
		}
	}
	clear(p.unsettled)
	clear(p.fenceWait)
	p.trackPools(now)
	for _, a := range work {
		is, err := snap.AppInstances(nil, a.Tenant, a.Name)
		if err != nil {
			return nil, err
		}
		byApp[appKey{Tenant: a.Tenant, Name: a.Name}] = is
	}
	req := &state.PlanApplyRequest{Time: now}
	toPlace := make([]scheduler.App, 0, len(work))
	wanted := make(map[appKey]int, len(work))
	current := make(map[appKey]*state.App, len(work))
	for _, a := range work {
		key := appKey{Tenant: a.Tenant, Name: a.Name}
		tenant, err := snap.Tenant(nil, a.Tenant)
		if err != nil || tenant == nil {
			continue
		}
		firstStop := len(req.Stop)
		fenced, maxDisconnect := false, time.Duration(0)
		if f := a.Spec.Failover; f != nil && f.Mode == state.FailoverFenced {
			fenced, maxDisconnect = true, f.MaxDisconnect.D()
		}
		cur, old := p.scratch.cur[:0], p.scratch.old[:0]
		failback := false     // some instances move back from failover pools
		var failedOn []string // hosts where an instance of the app kept crashing
		for _, i := range byApp[key] {
			if i.Desired != state.DesiredRun {
				continue
			}
			h := byHost(i.Host)
			switch {
			case h == nil:
				req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: "its host is gone"})
				continue
			case fenced && h.State != state.HostReady && h.State != state.HostDraining && h.State != state.HostDrained:
				// A fenced instance is replaced only once its agent has
				// certainly stopped it: the lease has run out.
				if left := p.leaseLeft(h.ID, maxDisconnect, now); left > 0 {
					p.fenceWait[key] = true
					if i.Version == a.Version {
						cur = append(cur, i)
					} else {
						old = append(old, i)
					}
					continue
				}
				req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: "its host's lease expired"})
				continue
			case h.State == state.HostDown:
				req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: "its host is down"})
				continue
			case i.Version == a.Version && !scheduler.HostRuns(h.Inventory.Drivers, scheduler.WorkloadOf(a.Spec.Image)):
				// Its agent now runs another driver: it would back off forever.
				req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: "its host's drivers (" + strings.Join(h.Inventory.Drivers, ",") + ") cannot run it"})
				continue
			case i.State == state.InstanceFailed:
				req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: "it failed: " + i.Message})
				failedOn = append(failedOn, h.Name)
				continue
			}
			// Instances of older versions, those on hosts an admin drains
			// and those failing back from a failover pool are replaced the
			// way a rolling update replaces: a new one first, the old one
			// once the new one is ready.
			back := p.failingBack(a, i, h, now)
			failback = failback || back
			if i.Version == a.Version && h.State != state.HostDraining && h.State != state.HostDrained && !back {
				cur = append(cur, i)
			} else {
				old = append(old, i)
			}
		}
		p.scratch.cur, p.scratch.old = cur, old // grown: the next app reuses them
		if rv, ok := failedUpdate(a, byApp[key], old, now); ok {
			req.Revert = append(req.Revert, rv)
			continue
		}
		want := 1
		if a.Spec.Instances != nil {
			want = *a.Spec.Instances
		}
		surge, unavail := 1, 0
		if st := a.Spec.Strategy; st != nil {
			surge, unavail = max(st.MaxSurge, 0), max(st.MaxUnavailable, 0)
			if surge == 0 && unavail == 0 {
				surge = 1
			}
		}
		kind := "rolling"
		if st := a.Spec.Strategy; st != nil && st.Type != "" {
			kind = st.Type
		}
		place := want - len(cur)
		switch {
		case len(old) > 0 && a.CanaryFrom != 0:
			// Canary: a few instances of the new version beside the full
			// old set, until an operator promotes or aborts.
			canaries := 1
			if st := a.Spec.Strategy; st != nil && st.Canary > 0 {
				canaries = st.Canary
			}
			want = min(want, canaries)
			place = want - len(cur)
		case len(old) > 0 && kind == "blue-green":
			// Blue-green: the whole new set at once; the old one stops
			// when every new instance is ready.
		case len(old) > 0:
			place = min(place, want+surge-len(cur)-len(old))
		}
		// Old instances go as new ones become ready.
		if len(old) > 0 && a.CanaryFrom == 0 {
			ready := 0
			for _, i := range cur {
				if i.Ready {
					ready++
				}
			}
			readyOld := 0
			for _, i := range old {
				if i.Ready {
					readyOld++
				}
			}
			k := ready + readyOld + unavail - want
			if kind == "blue-green" {
				k = 0
			}
			if len(cur) >= want && ready >= want {
				k = len(old) // the new version is complete
			}
			sort.SliceStable(old, func(x, y int) bool { return !old[x].Ready && old[y].Ready })
			for _, i := range old[:max(0, min(k, len(old)))] {
				reason := fmt.Sprintf("replaced by version %d", a.Version)
				if h := byHost(i.Host); i.Version == a.Version && h != nil && (h.State == state.HostDraining || h.State == state.HostDrained) {
					reason = "its host is draining"
				} else if i.Version == a.Version {
					reason = "failing back to pools " + strings.Join(a.Spec.Pools, ",")
				}
				req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: reason})
			}
		}
		// Scale down: not ready first, then from the host with the most
		// instances of the app (the spread stays even), then the newest.
		if p.scratch.perHost == nil {
			p.scratch.perHost = map[string]int{}
		}
		perHost := p.scratch.perHost
		clear(perHost)
		for _, i := range cur {
			perHost[i.Host]++
		}
		for len(cur) > want {
			v := 0
			for x := 1; x < len(cur); x++ {
				a, b := cur[x], cur[v]
				switch {
				case a.Ready != b.Ready:
					if !a.Ready {
						v = x
					}
				case perHost[a.Host] != perHost[b.Host]:
					if perHost[a.Host] > perHost[b.Host] {
						v = x
					}
				case a.CreateIndex > b.CreateIndex || (a.CreateIndex == b.CreateIndex && a.ID > b.ID):
					v = x
				}
			}
			i := cur[v]
			req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: fmt.Sprintf("scaled to %d", want)})
			perHost[i.Host]--
			cur = append(cur[:v], cur[v+1:]...)
		}
		if place <= 0 {
			if a.Pending != "" {
				req.Pending = append(req.Pending, state.AppPending{Tenant: a.Tenant, App: a.Name})
			}
			continue
		}
		cons, err := scheduler.ParseConstraints(a.Spec.Constraints)
		if err != nil {
			if why := "invalid constraints: " + err.Error(); why != a.Pending {
				req.Pending = append(req.Pending, state.AppPending{Tenant: a.Tenant, App: a.Name, Reason: why})
			}
			continue
		}
		// The scheduler counts the app's live instances of this version
		// itself (those on draining hosts included): ask it for that many
		// plus what this round places.
		var stoppedNow map[string]bool // nil while the round stops none of its instances
		if len(req.Stop) > firstStop {
			stoppedNow = make(map[string]bool, len(req.Stop)-firstStop)
			for _, s := range req.Stop[firstStop:] {
				stoppedNow[s.ID] = true
			}
		}
		have := 0
		for _, i := range byApp[key] {
			if i.Desired == state.DesiredRun && i.Live() && i.Version == a.Version && byHost(i.Host) != nil && byHost(i.Host).State != state.HostDown && !stoppedNow[i.ID] {
				have++
			}
		}
		if failback { // only the app's own pools: no churn through failover pools
			cons = append(cons, scheduler.Constraint{Attr: "pool", Op: scheduler.OpIn, Values: a.Spec.Pools})
		}
		if p.fenceWait[key] {
			// The scheduler would count a fenced instance on a down host
			// as lost; it is not yet: place nothing more this round.
			continue
		}
		// A replacement for an instance that kept crashing goes to another
		// host when the app has one to go to.
		if len(failedOn) > 0 && otherHost(hosts, a.Spec.Pools, failedOn) {
			cons = append(cons, scheduler.Constraint{Attr: "name", Op: scheduler.OpNotIn, Values: failedOn})
		}
		toPlace = append(toPlace, scheduler.App{Key: scheduler.AppKey{Tenant: a.Tenant, Name: a.Name}, Version: a.Version, CPU: a.Spec.CPU, Memory: a.Spec.Memory,
			Count: have + place, Pools: a.Spec.Pools, AllowedPools: tenant.Pools, Spread: a.Spec.Spread, Constraints: cons, FailoverPools: a.Spec.FailoverPools,
			Workload: scheduler.WorkloadOf(a.Spec.Image)})
		wanted[key] = want
		current[key] = a
	}
	if len(toPlace) > 0 {
		stops := make(map[string]bool, len(req.Stop))
		for _, s := range req.Stop {
			stops[s.ID] = true
		}
		listed := p.scratch.listed[:0]
		for _, a := range toPlace {
			listed = append(listed, byApp[a.Key]...)
		}
		ss := newSchedState(snap.LatestIndex(), &p.view, listed, stops, p.scratch.insts[:0], p.scratch.touched[:0])
		plan := p.sched.Plan(ss, toPlace, func() string { return "" })
		ss.restore()
		clear(listed) // no instance kept alive by the buffer
		p.scratch.listed, p.scratch.insts, p.scratch.touched = listed[:0], ss.insts[:0], ss.touched[:0]
		for _, p := range plan.Place {
			req.Place = append(req.Place, state.Instance{ID: newID(p.App.Name), Tenant: p.App.Tenant, App: p.App.Name, Version: p.Version,
				Host: p.Host, CPU: p.CPU, Memory: p.Memory})
		}
		pending := map[appKey]string{}
		for _, p := range plan.Pending {
			key := p.App
			if wanted[key] == 1 {
				pending[key] = "the instance cannot be placed: " + p.Reason
			} else {
				pending[key] = fmt.Sprintf("%d of %d instances cannot be placed: %s", p.Count, wanted[key], p.Reason)
			}
		}
		for key, a := range current {
			if pending[key] != a.Pending {
				req.Pending = append(req.Pending, state.AppPending{Tenant: a.Tenant, App: a.Name, Reason: pending[key]})
			}
		}
	}
	// A draining host with no instance left (the last ones have reported
	// stopped) and none placed there by this plan is drained.
	placedOn := map[string]bool{}
	for _, p := range req.Place {
		placedOn[p.Host] = true
	}
	for _, h := range hosts {
		if p.view.draining == 0 {
			break // the view counts them: none to look for
		}
		if h.State != state.HostDraining || placedOn[h.ID] {
			continue
		}
		if is, err := snap.HostInstances(nil, h.ID); err != nil {
			return nil, err
		} else if len(is) == 0 {
			req.Drained = append(req.Drained, h.ID)
		}
	}
	p.remember(work, byApp)
	// The buffers keep no instance alive past the round.
	clear(p.scratch.cur[:cap(p.scratch.cur)])
	clear(p.scratch.old[:cap(p.scratch.old)])
	if len(req.Place) == 0 && len(req.Stop) == 0 && len(req.Pending) == 0 && len(req.Revert) == 0 && len(req.Drained) == 0 {
		return nil, nil
	}
	return req, nil
}

// changedApps returns, in id order as Snapshot.Apps lists them, the apps
// a round that knows what changed looks at: those dirty (written since
// the last round, their record or instances, as the store's log of
// changes says, or on hosts that changed) or unsettled, that still exist.
// Only these are read: with thousands of apps and a write or two per
// round, listing every app was most of a round.
func (p *planner) changedApps(snap *state.Snapshot, dirty map[appKey]bool) ([]*state.App, error) {
	work := make([]*state.App, 0, len(dirty)+len(p.unsettled))
	seen := make(map[appKey]bool, len(dirty)+len(p.unsettled))
	add := func(keys map[appKey]bool) error {
		for key := range keys {
			if seen[key] {
				continue
			}
			seen[key] = true
			a, err := snap.App(nil, key.Tenant, key.Name)
			if err != nil {
				return err
			}
			if a != nil {
				work = append(work, a)
			}
		}
		return nil
	}
	if err := add(dirty); err != nil {
		return nil, err
	}
	if err := add(p.unsettled); err != nil {
		return nil, err
	}
	p.appsRead = len(seen)
	slices.SortFunc(work, func(a, b *state.App) int {
		if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return work, nil
}

// changes updates the planner's view of the hosts and returns the apps
// that changes since its last round may concern, whether capacity was
// added or freed anywhere (pending apps may fit now), and whether the
// apps are known: false when the store's log of changes no longer
// reaches back to the last round, and every app must be looked at.
//
// The log names the hosts written since the last round, and only those
// are read: a round that lists every host costs as much as the rest of
// it at thousands of hosts. A host that came or went (rare: the view's
// order changes) and a full round list them all.
func (p *planner) changes(snap *state.Snapshot, ws memdb.WatchSet, full bool) (map[appKey]bool, bool, bool, error) {
	dirty := map[appKey]bool{}
	freed := full
	onHost := func(id string) error {
		is, err := snap.HostInstances(nil, id)
		for _, i := range is {
			dirty[appKey{Tenant: i.Tenant, Name: i.App}] = true
		}
		return err
	}
	walk, known := full, true
	if !full {
		// One pass through the log: the apps it names are dirty, the
		// hosts are read below.
		ids := p.scratch.ids[:0]
		var err error
		known, err = snap.ChangedSince(ws, p.index, func(tenant, app string) {
			dirty[appKey{Tenant: tenant, Name: app}] = true
		}, func(id string) { ids = append(ids, id) })
		if err != nil {
			return nil, false, false, err
		}
		p.scratch.ids = ids
		walk = !known
		changed := p.scratch.changed[:0]
		for _, id := range ids {
			h, err := snap.Host(nil, id)
			if err != nil {
				return nil, false, false, err
			}
			old := p.view.record(id)
			if (h == nil) != (old == nil) { // came or went
				walk = true
				break
			}
			if h != old {
				changed = append(changed, h)
			}
		}
		if !walk {
			for _, h := range changed {
				x := p.view.byID[h.ID]
				f, err := p.compare(p.view.from[x], h, onHost)
				if err != nil {
					return nil, false, false, err
				}
				freed = freed || f
				p.view.set(x, h)
			}
		}
		clear(changed)
		p.scratch.changed = changed[:0]
	}
	if walk {
		hosts, err := snap.AppendHosts(ws, p.scratch.hosts[:0])
		if err != nil {
			return nil, false, false, err
		}
		f, err := p.walkHosts(hosts, full, onHost)
		clear(hosts)
		p.scratch.hosts = hosts[:0]
		if err != nil {
			return nil, false, false, err
		}
		freed = freed || f
	}
	if full {
		// Every app is read anyway; the next change of an app's
		// instances must still wake the planner.
		return dirty, freed, true, snap.WatchChanges(ws)
	}
	return dirty, freed, known, nil
}

// walkHosts compares hosts, the store's list of every host, with the
// view, marks the apps on hosts that went or changed in a way that
// concerns them (onHost), brings the view up to hosts and reports
// whether capacity was added or freed. hosts and the view are both in id
// order: one walk through the two finds what came, went or changed,
// comparing pointers (store objects are immutable: the same pointer is
// the same record), with no lookup per host.
func (p *planner) walkHosts(hosts []*state.Host, full bool, onHost func(string) error) (bool, error) {
	freed := false
	prev := p.view.from
	for i, j := 0, 0; i < len(hosts) || j < len(prev); {
		switch {
		case j == len(prev) || (i < len(hosts) && hosts[i].ID < prev[j].ID): // came
			freed = true
			i++
		case i == len(hosts) || prev[j].ID < hosts[i].ID: // went
			id := prev[j].ID
			j++
			freed = true
			if err := onHost(id); err != nil {
				return false, err
			}
		default:
			h, old := hosts[i], prev[j]
			i, j = i+1, j+1
			if old == h || full {
				continue
			}
			f, err := p.compare(old, h, onHost)
			if err != nil {
				return false, err
			}
			freed = freed || f
		}
	}
	// The view follows once the walk is done (a rebuild reuses the list
	// the walk reads).
	p.view.sync(hosts)
	return freed, nil
}

// compare looks at what changed from a host's old record to h: a change
// of state, place or capacity concerns the apps on it (onHost) and may
// add capacity; a smaller allocation frees some. It reports whether
// capacity was added or freed.
func (p *planner) compare(old, h *state.Host, onHost func(string) error) (bool, error) {
	switch {
	case old.State != h.State || old.Pool != h.Pool || old.Datacenter != h.Datacenter ||
		old.Inventory.CPU() != h.Inventory.CPU() || old.Inventory.MemoryBytes != h.Inventory.MemoryBytes ||
		old.Inventory.Zone != h.Inventory.Zone || !maps.Equal(old.Inventory.Labels, h.Inventory.Labels) ||
		!slices.Equal(old.Inventory.Drivers, h.Inventory.Drivers):
		return true, onHost(h.ID)
	case h.AllocCPU < old.AllocCPU || h.AllocMemory < old.AllocMemory:
		return true, nil
	}
	return false, nil
}

// remember marks the apps of this round that must be looked at again even
// if nothing they depend on changes: updates in progress with auto_revert,
// whose health deadline passes with time. Everything else a round decides
// waits for a write (an instance reported ready or failed, an app or host
// changed, capacity freed), and the next round sees those.
func (p *planner) remember(work []*state.App, byApp map[appKey][]*state.Instance) {
	for key := range p.fenceWait {
		p.unsettled[key] = true
	}
	for _, a := range work {
		if st := a.Spec.Strategy; st == nil || !st.AutoRevert {
			continue
		}
		key := appKey{Tenant: a.Tenant, Name: a.Name}
		for _, i := range byApp[key] {
			if i.Desired != state.DesiredRun {
				continue
			}
			if h := p.view.record(i.Host); i.Version != a.Version || h == nil || h.State != state.HostReady {
				p.unsettled[key] = true
				break
			}
		}
	}
}

// appKey names an app in the planner's maps (no string built per app per
// round).
type appKey = scheduler.AppKey

// schedState adapts a planner's view of the state store to the
// scheduler's read-only State: every host, with what instances the planner
// does not list hold in Used, and the instances of the apps it plans. Its
// hosts are the planner's hostView, adjusted in place for the listed
// instances: restore undoes that once the scheduler is done.
type schedState struct {
	index   uint64
	view    *hostView
	hosts   []scheduler.Host
	byID    map[string]int
	insts   []scheduler.Instance
	onHost  map[string][]scheduler.Instance // built on first use: only Check asks
	touched []int                           // host entries whose Used was adjusted
}

// hostView is every host as of the planner's last round: the records, in
// id order, and the scheduler's view of them (schedHost). It is kept
// from round to round so that a round does not rebuild thousands of
// entries and an index of them when a few hosts changed: it is rebuilt
// when the set of hosts changes, and an entry when its host's record does
// (store records are immutable: a changed host is a new pointer).
type hostView struct {
	from  []*state.Host // the records the entries were built from, in id order as the store lists them
	hosts []scheduler.Host
	byID  map[string]int
	// ready counts each pool's ready hosts, draining the hosts being
	// drained: kept with the entries, so that a round need not look at
	// every host to know either.
	ready    map[string]int
	draining int
}

// record returns host id's record as of the last sync; nil when it had
// none.
func (v *hostView) record(id string) *state.Host {
	if i, ok := v.byID[id]; ok {
		return v.from[i]
	}
	return nil
}

// sync brings the view up to hosts, the store's list of every host.
func (v *hostView) sync(hosts []*state.Host) {
	if len(hosts) != len(v.from) {
		v.rebuild(hosts)
		return
	}
	for i, h := range hosts {
		if h == v.from[i] {
			continue
		}
		if h.ID != v.from[i].ID {
			v.rebuild(hosts)
			return
		}
		v.set(i, h)
	}
}

// set makes h, a new record of the host at i, that entry's.
func (v *hostView) set(i int, h *state.Host) {
	v.count(v.from[i], -1)
	v.from[i], v.hosts[i] = h, schedHost(h)
	v.count(h, 1)
}

// count adds d to the counts h is in.
func (v *hostView) count(h *state.Host, d int) {
	switch h.State {
	case state.HostReady:
		if v.ready[h.Pool] += d; v.ready[h.Pool] == 0 {
			delete(v.ready, h.Pool)
		}
	case state.HostDraining:
		v.draining += d
	}
}

func (v *hostView) rebuild(hosts []*state.Host) {
	v.from = append(v.from[:0], hosts...)
	v.hosts = v.hosts[:0]
	v.byID = make(map[string]int, len(hosts))
	v.ready, v.draining = map[string]int{}, 0
	for i, h := range hosts {
		v.byID[h.ID] = i
		v.hosts = append(v.hosts, schedHost(h))
		v.count(h, 1)
	}
}

func (s *schedState) Index() uint64           { return s.index }
func (s *schedState) Hosts() []scheduler.Host { return s.hosts }

// HostsInIDOrder tells the scheduler that Hosts are in id order, each
// once, as the store lists them: it need not check.
func (s *schedState) HostsInIDOrder() bool            { return true }
func (s *schedState) Instances() []scheduler.Instance { return s.insts }
func (s *schedState) Host(id string) (scheduler.Host, bool) {
	i, ok := s.byID[id]
	if !ok {
		return scheduler.Host{}, false
	}
	return s.hosts[i], true
}
func (s *schedState) HostInstances(host string) []scheduler.Instance {
	if s.onHost == nil {
		s.onHost = map[string][]scheduler.Instance{}
		for _, i := range s.insts {
			s.onHost[i.Host] = append(s.onHost[i.Host], i)
		}
	}
	return s.onHost[host]
}

// InstanceExists serves scheduler.Check only, which the planner does not
// call (the FSM re-checks plans itself): a scan of the listed instances.
func (s *schedState) InstanceExists(id string) bool {
	for _, i := range s.insts {
		if i.ID == id {
			return true
		}
	}
	return false
}

func schedHost(h *state.Host) scheduler.Host {
	return scheduler.Host{ID: h.ID, Name: h.Name, Pool: h.Pool, Datacenter: h.Datacenter, Zone: h.Inventory.Zone,
		Ready: state.Schedulable(h), Down: h.State == state.HostDown, Labels: h.Inventory.Labels, Drivers: h.Inventory.Drivers,
		CPU: h.Inventory.CPU(), Memory: int(h.Inventory.MemoryBytes >> 20), UsedCPU: h.AllocCPU, UsedMemory: h.AllocMemory}
}

// newSchedState builds the scheduler's view from every host (v, synced
// to this round's hosts) and the instances of the apps being planned,
// leaving out those this plan stops: their resources are free to this
// plan, as the FSM, which applies the stops first, agrees. The caller
// restores v once the scheduler is done with it.
//
// insts and touched are buffers to fill (empty, their capacity reused).
func newSchedState(index uint64, v *hostView, listed []*state.Instance, stopping map[string]bool, insts []scheduler.Instance, touched []int) *schedState {
	s := &schedState{index: index, view: v, hosts: v.hosts, byID: v.byID, insts: insts, touched: touched}
	for _, i := range listed {
		if !i.Live() {
			continue
		}
		if x, ok := s.byID[i.Host]; ok { // listed: out of Used, counted by the scheduler
			s.hosts[x].UsedCPU -= i.CPU
			s.hosts[x].UsedMemory -= i.Memory
			s.touched = append(s.touched, x)
		}
		if stopping[i.ID] {
			continue
		}
		si := scheduler.Instance{ID: i.ID, App: scheduler.AppKey{Tenant: i.Tenant, Name: i.App}, Version: i.Version, Host: i.Host, CPU: i.CPU, Memory: i.Memory}
		s.insts = append(s.insts, si)
	}
	return s
}

// restore puts back what newSchedState changed in the planner's view:
// Used as the host's record has it.
func (s *schedState) restore() {
	for _, x := range s.touched {
		h := s.view.from[x]
		s.hosts[x].UsedCPU, s.hosts[x].UsedMemory = h.AllocCPU, h.AllocMemory
	}
	s.touched = s.touched[:0]
}

// Fencing (failover.mode fenced). An agent stops a
// fenced instance once max_disconnect has passed since the sending of its
// last heartbeat acknowledged by a hub node in touch with the leader
// (QuorumWindow); the leader replaces it only after its own view of that
// renewal (never earlier than when it took office) plus max_disconnect,
// the agent's stop grace, the quorum window (a node cut off from the
// leader may have renewed that much later) and a margin for clock drift.
const (
	// QuorumWindow: a hub node acks heartbeats as lease renewals only
	// while it has heard from the leader within this.
	QuorumWindow = 3 * time.Second
	// FenceStopGrace is how long an agent's stop of a fenced instance may
	// take (the drivers' stop grace).
	FenceStopGrace = 10 * time.Second
	fenceMargin    = 2 * time.Second
)

// failingBack reports whether instance i, on host h, is in one of app a's
// failover pools and should move back to its own pools: asked for by hand
// after it was placed, or (failback auto) once one of the app's pools has
// had ready hosts for the hold time.
func (p *planner) failingBack(a *state.App, i *state.Instance, h *state.Host, now time.Time) bool {
	if len(a.Spec.FailoverPools) == 0 || len(a.Spec.Pools) == 0 || !slices.Contains(a.Spec.FailoverPools, h.Pool) || slices.Contains(a.Spec.Pools, h.Pool) {
		return false
	}
	if a.FailbackIndex > i.CreateIndex {
		return true
	}
	f := a.Spec.Failover
	if f == nil || f.Failback != "auto" {
		return false
	}
	hold := f.FailbackHold.D()
	if hold <= 0 {
		hold = state.DefaultFailbackHold
	}
	for _, pool := range a.Spec.Pools {
		if since, ok := p.poolReady[pool]; ok && now.Sub(since) >= hold {
			return true
		}
	}
	p.unsettled[appKey{Tenant: a.Tenant, Name: a.Name}] = true // the hold time runs
	return false
}

// trackPools notes since when each pool has had a ready host.
func (p *planner) trackPools(now time.Time) {
	ready := p.view.ready
	for pool := range p.poolReady {
		if ready[pool] == 0 {
			delete(p.poolReady, pool)
		}
	}
	for pool := range ready {
		if _, ok := p.poolReady[pool]; !ok {
			p.poolReady[pool] = now
		}
	}
}

// leaseLeft returns how long until a host's fenced instances are certainly
// stopped, as this leader sees it.
func (p *planner) leaseLeft(host string, maxDisconnect time.Duration, now time.Time) time.Duration {
	last := p.tookOffice
	if p.lastRenewal != nil {
		if t := p.lastRenewal(host); t.After(last) {
			last = t
		}
	}
	return last.Add(maxDisconnect + FenceStopGrace + QuorumWindow + fenceMargin).Sub(now)
}

// defaultHealthDeadline is how long a new version's instance may take to
// get ready before an auto_revert update counts as failed.
const defaultHealthDeadline = time.Minute

// failedUpdate decides whether an update in progress (old versions still
// live) with auto_revert has failed: an instance of the new version failed,
// or was not ready within the health deadline of its placement. It returns
// the revert to the newest old version.
func failedUpdate(a *state.App, insts, old []*state.Instance, now time.Time) (state.AppRevert, bool) {
	st := a.Spec.Strategy
	if st == nil || !st.AutoRevert || len(old) == 0 {
		return state.AppRevert{}, false
	}
	deadline := st.HealthDeadline.D()
	if deadline <= 0 {
		deadline = defaultHealthDeadline
	}
	reason := ""
	for _, i := range insts {
		if i.Version != a.Version || i.Desired != state.DesiredRun {
			continue
		}
		if i.State == state.InstanceFailed {
			reason = fmt.Sprintf("instance %s failed: %s", i.ID, i.Message)
			break
		}
		if i.Reason != "" && i.Reason != state.ReasonUnhealthy { // its agent backs off: no use waiting
			reason = fmt.Sprintf("instance %s cannot run (%s): %s", i.ID, i.Reason, i.Message)
			break
		}
		if !i.Ready && now.Sub(i.CreatedAt) > deadline {
			reason = fmt.Sprintf("instance %s not ready %s after its placement", i.ID, deadline)
			break
		}
	}
	if reason == "" {
		return state.AppRevert{}, false
	}
	to := 0
	for _, i := range old {
		to = max(to, i.Version)
	}
	return state.AppRevert{Tenant: a.Tenant, App: a.Name, From: a.Version, To: to, Reason: reason}, true
}

// otherHost reports whether a schedulable host outside avoid exists in
// pools (any pool when empty).
func otherHost(hosts []*state.Host, pools, avoid []string) bool {
	for _, h := range hosts {
		if state.Schedulable(h) && (len(pools) == 0 || slices.Contains(pools, h.Pool)) && !slices.Contains(avoid, h.Name) {
			return true
		}
	}
	return false
}
