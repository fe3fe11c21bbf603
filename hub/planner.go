package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/scheduler"
	"github.com/wharf-platform/wharf/hub/state"
)

// runPlanner keeps every app at its desired instances while this node
// leads: it watches apps, hosts and instances, builds a plan from a
// snapshot and commits it through Raft. A plan made stale by a concurrent
// change is refused by the FSM and simply planned again.
func (h *Hub) runPlanner(ctx context.Context) {
	for ctx.Err() == nil {
		ws := memdb.NewWatchSet()
		snap := h.store.Snapshot()
		req, err := buildPlan(snap, ws, time.Now().UTC(), newInstanceID)
		if err != nil {
			h.log.Warn("plan", "err", err)
		} else if req != nil {
			msg, err := state.Encode(state.PlanApplyType, req)
			if err == nil {
				actx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err = h.cluster.Apply(actx, msg)
				cancel()
			}
			switch {
			case err == nil:
				continue
			case errors.Is(err, state.ErrConflict):
				h.log.Debug("stale plan, planning again", "err", err)
				continue
			default:
				h.log.Warn("commit plan", "err", err)
			}
		}
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ws.WatchCtx(tctx)
		cancel()
	}
}

func newInstanceID(app string) string {
	b := make([]byte, 4)
	rand.Read(b)
	if len(app) > 40 {
		app = app[:40]
	}
	return app + "-" + hex.EncodeToString(b)
}

// buildPlan returns the plan that moves every app towards its desired
// state, or nil when nothing needs doing.
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
func buildPlan(snap *state.Snapshot, ws memdb.WatchSet, now time.Time, newID func(string) string) (*state.PlanApplyRequest, error) {
	apps, err := snap.Apps(ws, "")
	if err != nil {
		return nil, err
	}
	hosts, err := snap.Hosts(ws)
	if err != nil {
		return nil, err
	}
	all, err := snap.Instances(ws)
	if err != nil {
		return nil, err
	}
	byHost := make(map[string]*state.Host, len(hosts))
	for _, h := range hosts {
		byHost[h.ID] = h
	}
	byApp := map[string][]*state.Instance{}
	for _, i := range all {
		key := i.Tenant + "/" + i.App
		byApp[key] = append(byApp[key], i)
	}
	req := &state.PlanApplyRequest{Time: now}
	var toPlace []scheduler.App
	wanted := map[string]int{}
	current := map[string]*state.App{}
	for _, a := range apps {
		key := a.Tenant + "/" + a.Name
		tenant, err := snap.Tenant(nil, a.Tenant)
		if err != nil || tenant == nil {
			continue
		}
		firstStop := len(req.Stop)
		var cur, old []*state.Instance
		var failedOn []string // hosts where an instance of the app kept crashing
		for _, i := range byApp[key] {
			if i.Desired != state.DesiredRun {
				continue
			}
			h := byHost[i.Host]
			switch {
			case h == nil:
				req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: "its host is gone"})
				continue
			case h.State == state.HostDown:
				req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: "its host is down"})
				continue
			case i.State == state.InstanceFailed:
				req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: "it failed: " + i.Message})
				failedOn = append(failedOn, h.Name)
				continue
			}
			// Instances of older versions, and those on hosts an admin
			// drains, are replaced the way a rolling update replaces: a
			// new one first, the old one once the new one is ready.
			if i.Version == a.Version && h.State != state.HostDraining && h.State != state.HostDrained {
				cur = append(cur, i)
			} else {
				old = append(old, i)
			}
		}
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
				if i.Version == a.Version {
					reason = "its host is draining"
				}
				req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: reason})
			}
		}
		// Scale down: not ready first, then from the host with the most
		// instances of the app (the spread stays even), then the newest.
		perHost := map[string]int{}
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
		stoppedNow := map[string]bool{}
		for _, s := range req.Stop[firstStop:] {
			stoppedNow[s.ID] = true
		}
		have := 0
		for _, i := range byApp[key] {
			if i.Desired == state.DesiredRun && i.Live() && i.Version == a.Version && byHost[i.Host] != nil && byHost[i.Host].State != state.HostDown && !stoppedNow[i.ID] {
				have++
			}
		}
		// A replacement for an instance that kept crashing goes to another
		// host when the app has one to go to.
		if len(failedOn) > 0 && otherHost(hosts, a.Spec.Pools, failedOn) {
			cons = append(cons, scheduler.Constraint{Attr: "name", Op: scheduler.OpNotIn, Values: failedOn})
		}
		toPlace = append(toPlace, scheduler.App{Key: scheduler.AppKey{Tenant: a.Tenant, Name: a.Name}, Version: a.Version, CPU: a.Spec.CPU, Memory: a.Spec.Memory,
			Count: have + place, Pools: a.Spec.Pools, AllowedPools: tenant.Pools, Spread: a.Spec.Spread, Constraints: cons, FailoverPools: a.Spec.FailoverPools})
		wanted[key] = want
		current[key] = a
	}
	if len(toPlace) > 0 {
		stops := make(map[string]bool, len(req.Stop))
		for _, s := range req.Stop {
			stops[s.ID] = true
		}
		plan := scheduler.New().Plan(newSchedState(snap.LatestIndex(), hosts, all, stops), toPlace, func() string { return "" })
		for _, p := range plan.Place {
			req.Place = append(req.Place, state.Instance{ID: newID(p.App.Name), Tenant: p.App.Tenant, App: p.App.Name, Version: p.Version,
				Host: p.Host, CPU: p.CPU, Memory: p.Memory})
		}
		pending := map[string]string{}
		for _, p := range plan.Pending {
			key := p.App.String()
			pending[key] = fmt.Sprintf("%d of %d instances cannot be placed: %s", p.Count, wanted[key], p.Reason)
		}
		for key, a := range current {
			if pending[key] != a.Pending {
				req.Pending = append(req.Pending, state.AppPending{Tenant: a.Tenant, App: a.Name, Reason: pending[key]})
			}
		}
	}
	// A draining host with no instance left (the last ones have reported
	// stopped) and none placed there by this plan is drained.
	occupied := map[string]bool{}
	for _, i := range all {
		occupied[i.Host] = true
	}
	for _, p := range req.Place {
		occupied[p.Host] = true
	}
	for _, h := range hosts {
		if h.State == state.HostDraining && !occupied[h.ID] {
			req.Drained = append(req.Drained, h.ID)
		}
	}
	if len(req.Place) == 0 && len(req.Stop) == 0 && len(req.Pending) == 0 && len(req.Revert) == 0 && len(req.Drained) == 0 {
		return nil, nil
	}
	return req, nil
}

// schedState adapts a planner's view of the state store to the
// scheduler's read-only State.
type schedState struct {
	index  uint64
	hosts  []scheduler.Host
	byID   map[string]scheduler.Host
	insts  []scheduler.Instance
	onHost map[string][]scheduler.Instance
	all    []*state.Instance
}

func (s *schedState) Index() uint64                   { return s.index }
func (s *schedState) Hosts() []scheduler.Host         { return s.hosts }
func (s *schedState) Instances() []scheduler.Instance { return s.insts }
func (s *schedState) Host(id string) (scheduler.Host, bool) {
	h, ok := s.byID[id]
	return h, ok
}
func (s *schedState) HostInstances(host string) []scheduler.Instance { return s.onHost[host] }

// InstanceExists serves scheduler.Check only, which the planner does not
// call (the FSM re-checks plans itself): a scan, not a map built per plan.
func (s *schedState) InstanceExists(id string) bool {
	for _, i := range s.all {
		if i.ID == id {
			return true
		}
	}
	return false
}

func schedHost(h *state.Host) scheduler.Host {
	return scheduler.Host{ID: h.ID, Name: h.Name, Pool: h.Pool, Datacenter: h.Datacenter, Zone: h.Inventory.Zone,
		Ready: state.Schedulable(h), Down: h.State == state.HostDown, Labels: h.Inventory.Labels,
		CPU: h.Inventory.CPUs * 1000, Memory: int(h.Inventory.MemoryBytes >> 20)}
}

// newSchedState builds the scheduler's view: every host, and every
// instance that holds resources except those this plan stops.
func newSchedState(index uint64, hosts []*state.Host, all []*state.Instance, stopping map[string]bool) *schedState {
	s := &schedState{index: index, byID: make(map[string]scheduler.Host, len(hosts)), onHost: map[string][]scheduler.Instance{}, all: all}
	for _, h := range hosts {
		sh := schedHost(h)
		s.hosts = append(s.hosts, sh)
		s.byID[h.ID] = sh
	}
	for _, i := range all {
		if stopping[i.ID] || !i.Live() {
			continue
		}
		si := scheduler.Instance{ID: i.ID, App: scheduler.AppKey{Tenant: i.Tenant, Name: i.App}, Version: i.Version, Host: i.Host, CPU: i.CPU, Memory: i.Memory}
		s.insts = append(s.insts, si)
		s.onHost[i.Host] = append(s.onHost[i.Host], si)
	}
	return s
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
