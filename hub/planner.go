package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

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

// hostUse is a host as the planner sees it.
type hostUse struct {
	h        *state.Host
	cpu, mem int            // free
	perApp   map[string]int // live instances per tenant/app
}

// buildPlan returns the plan that moves every app towards its desired
// state, or nil when nothing needs doing.
//
// Per app, in availability mode: instances on hosts that are down or gone,
// and failed ones, are stopped and replaced. The current version gets its
// desired count; during a rolling update (older versions still live) at
// most max_surge extra instances run, and an old instance stops only when
// a new one is ready, so that at least the desired count minus
// max_unavailable stay ready. Placement: the app's pools in order (any
// pool the tenant may use when it names none); within a pool, the host with
// the fewest instances of the app, then the most free memory; ties by id.
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
	use := map[string]*hostUse{}
	for _, h := range hosts {
		use[h.ID] = &hostUse{h: h, cpu: h.Inventory.CPUs * 1000, mem: int(h.Inventory.MemoryBytes >> 20), perApp: map[string]int{}}
	}
	byApp := map[string][]*state.Instance{}
	for _, i := range all {
		key := i.Tenant + "/" + i.App
		byApp[key] = append(byApp[key], i)
		if u := use[i.Host]; u != nil && i.Live() {
			u.cpu -= i.CPU
			u.mem -= i.Memory
			u.perApp[key]++
		}
	}
	req := &state.PlanApplyRequest{Time: now}
	for _, a := range apps {
		key := a.Tenant + "/" + a.Name
		tenant, err := snap.Tenant(nil, a.Tenant)
		if err != nil || tenant == nil {
			continue
		}
		var cur, old []*state.Instance
		for _, i := range byApp[key] {
			if i.Desired != state.DesiredRun {
				continue
			}
			u := use[i.Host]
			switch {
			case u == nil:
				req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: "its host is gone"})
				continue
			case u.h.State == state.HostDown:
				req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: "its host is down"})
				continue
			case i.State == state.InstanceFailed:
				req.Stop = append(req.Stop, state.InstanceStop{ID: i.ID, Reason: "it failed: " + i.Message})
				continue
			}
			// Instances of older versions, and those on hosts an admin
			// drains, are replaced the way a rolling update replaces: a
			// new one first, the old one once the new one is ready.
			if i.Version == a.Version && u.h.State != state.HostDraining && u.h.State != state.HostDrained {
				cur = append(cur, i)
			} else {
				old = append(old, i)
			}
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
		place := want - len(cur)
		if len(old) > 0 {
			place = min(place, want+surge-len(cur)-len(old))
		}
		// Old instances go as new ones become ready.
		if len(old) > 0 {
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
				if u := use[i.Host]; u != nil {
					u.cpu += i.CPU
					u.mem += i.Memory
				}
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
		pending := ""
		if place > 0 {
			pools := a.Spec.Pools
			if len(pools) == 0 {
				pools = tenant.Pools
			}
			placed, why := placeInstances(a, key, pools, place, hosts, use)
			for _, host := range placed {
				req.Place = append(req.Place, state.Instance{ID: newID(a.Name), Tenant: a.Tenant, App: a.Name, Version: a.Version,
					Host: host, CPU: a.Spec.CPU, Memory: a.Spec.Memory})
			}
			if len(placed) < place {
				pending = fmt.Sprintf("%d of %d instances cannot be placed: %s", place-len(placed), want, why)
			}
		}
		if pending != a.Pending {
			req.Pending = append(req.Pending, state.AppPending{Tenant: a.Tenant, App: a.Name, Reason: pending})
		}
	}
	if len(req.Place) == 0 && len(req.Stop) == 0 && len(req.Pending) == 0 {
		return nil, nil
	}
	return req, nil
}

// placeInstances picks hosts for n instances of app, trying pools in
// order (all pools when pools is empty), and says why when it falls short.
func placeInstances(a *state.App, key string, pools []string, n int, hosts []*state.Host, use map[string]*hostUse) ([]string, string) {
	inPools := func(h *state.Host) bool { return len(pools) == 0 || slices.Contains(pools, h.Pool) }
	var placed []string
	var reasons []string
	order := pools
	if len(order) == 0 {
		order = []string{""}
	}
	for _, pool := range order {
		var cands []*hostUse
		seen, ready := 0, 0
		for _, h := range hosts {
			if (pool != "" && h.Pool != pool) || !inPools(h) {
				continue
			}
			seen++
			if !state.Schedulable(h) {
				continue
			}
			ready++
			cands = append(cands, use[h.ID])
		}
		name := pool
		if name == "" {
			name = "any pool"
		} else {
			name = fmt.Sprintf("pool %q", pool)
		}
		for len(placed) < n {
			var best *hostUse
			for _, u := range cands {
				if u.cpu < a.Spec.CPU || u.mem < a.Spec.Memory {
					continue
				}
				if best == nil || u.perApp[key] < best.perApp[key] ||
					(u.perApp[key] == best.perApp[key] && (u.mem > best.mem || (u.mem == best.mem && u.h.ID < best.h.ID))) {
					best = u
				}
			}
			if best == nil {
				break
			}
			best.cpu -= a.Spec.CPU
			best.mem -= a.Spec.Memory
			best.perApp[key]++
			placed = append(placed, best.h.ID)
		}
		if len(placed) == n {
			break
		}
		switch {
		case seen == 0:
			reasons = append(reasons, fmt.Sprintf("no host in %s", name))
		case ready == 0:
			reasons = append(reasons, fmt.Sprintf("no ready host in %s", name))
		default:
			freeCPU, freeMem := 0, 0
			for _, u := range cands {
				freeCPU, freeMem = max(freeCPU, u.cpu), max(freeMem, u.mem)
			}
			reasons = append(reasons, fmt.Sprintf("no capacity in %s: each instance needs %dm CPU and %d MB, the most free on one host is %dm and %d MB",
				name, a.Spec.CPU, a.Spec.Memory, freeCPU, freeMem))
		}
	}
	return placed, strings.Join(reasons, "; ")
}
