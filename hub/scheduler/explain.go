package scheduler

import (
	"fmt"
	"strings"
)

// explain says, pool by pool, why the app's remaining instances found no
// host. It runs once per app that falls short, so it may scan its pools.
func (p *planner) explain(a *appCtx) string {
	parts := append([]string(nil), a.notes...)
	if len(a.prim)+len(a.fail) == 0 && len(parts) == 0 {
		return "no host is enrolled in any pool"
	}
	names := append(append([]string(nil), a.prim...), a.fail...)
	if a.runs != 0 {
		hosts, runs := 0, 0
		for _, name := range names {
			if pi, ok := p.poolIDs[name]; ok {
				for _, ni := range p.pools[pi].hosts {
					hosts++
					if p.nodes[ni].runs&a.runs != 0 {
						runs++
					}
				}
			}
		}
		if hosts > 0 && runs == 0 {
			parts = append(parts, fmt.Sprintf("no host in pools %v runs %s (%s)", names, need(a.app.Workload), needWhy(a.app.Workload)))
			return strings.Join(parts, "; ")
		}
	}
	all := append(p.matchers[:0:0], a.cellM...)
	all = append(all, a.hostM...)
	excluded := make([]int, len(all))
	for _, name := range names {
		pi, ok := p.poolIDs[name]
		if !ok {
			parts = append(parts, fmt.Sprintf("no host in pool %q", name))
			continue
		}
		pl := &p.pools[pi]
		if pl.ready == 0 {
			parts = append(parts, fmt.Sprintf("no ready host in pool %q", name))
			continue
		}
		clear(excluded)
		left, best, noDriver := 0, int32(-1), 0
		var bestScore float64
	hosts:
		for _, ni := range pl.hosts {
			n := &p.nodes[ni]
			if n.cell < 0 {
				continue
			}
			if a.runs != 0 && n.runs&a.runs == 0 {
				noDriver++
				continue
			}
			for i := range all {
				if !all[i].matchHost(n.host) {
					excluded[i]++
					continue hosts
				}
			}
			left++
			if s := a.closeness(n); best < 0 || s > bestScore {
				best, bestScore = ni, s
			}
		}
		if noDriver > 0 {
			parts = append(parts, fmt.Sprintf("%s in pool %q cannot run it (need %s)", plural(noDriver, "ready host"), name, need(a.app.Workload)))
		}
		for i, k := range excluded {
			if k > 0 {
				parts = append(parts, fmt.Sprintf("%s in pool %q excluded by constraint %s", plural(k, "host"), name, all[i].src))
			}
		}
		if left > 0 {
			n := &p.nodes[best]
			parts = append(parts, fmt.Sprintf("no capacity in pool %q: need %dm CPU/%d MB, best host has %dm/%d MB free",
				name, a.cpu, a.mem, max(n.freeCPU, 0), max(n.freeMem, 0)))
		}
	}
	return strings.Join(parts, "; ")
}

// closeness scores how near n comes to fitting the app's instance: the
// smaller of its free/needed ratios for CPU and memory.
func (a *appCtx) closeness(n *node) float64 {
	r := 1e18
	if a.cpu > 0 {
		r = min(r, float64(n.freeCPU)/float64(a.cpu))
	}
	if a.mem > 0 {
		r = min(r, float64(n.freeMem)/float64(a.mem))
	}
	return r
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
