package scheduler

import (
	"cmp"
	"slices"
)

// cand is a cell an app may be placed in.
type cand struct {
	cell int32
	rank int32 // position of the cell's pool in the app's pool list
	dom  int32 // spread domain; -1 when the app spreads over hosts only
}

// group is a run of cands tried together: one pool, or one spread domain
// across all the app's pools. A group found full stays full for the rest
// of the app (capacity only shrinks while one app is placed), so it is
// marked dead and skipped.
type group struct {
	start, end int32
	dom        int32
	rank       int32 // lowest pool rank in the group
	dead       bool
}

// candSet is the cells one list of pools (the app's, or its failover
// pools) offers, grouped.
type candSet struct {
	cands  []cand
	groups []group
}

func (cs *candSet) build(p *planner, a *appCtx, names []string) {
	cs.cands, cs.groups = cs.cands[:0], cs.groups[:0]
	for rank, name := range names {
		pi, ok := p.poolIDs[name]
		if !ok {
			continue
		}
	cells:
		for _, ci := range p.pools[pi].cells {
			c := &p.cells[ci]
			for i := range a.cellM {
				if !a.cellM[i].matchCell(name, c.dc, c.zone) {
					continue cells
				}
			}
			dom := int32(-1)
			if a.level > 0 {
				dom = c.dom[a.level]
			}
			cs.cands = append(cs.cands, cand{cell: ci, rank: int32(rank), dom: dom})
		}
	}
	key := func(c cand) int32 { return c.rank }
	if a.level > 0 {
		slices.SortFunc(cs.cands, func(x, y cand) int {
			return cmp.Or(cmp.Compare(x.dom, y.dom), cmp.Compare(x.rank, y.rank), cmp.Compare(x.cell, y.cell))
		})
		key = func(c cand) int32 { return c.dom }
	}
	for i := 0; i < len(cs.cands); {
		j := i + 1
		for j < len(cs.cands) && key(cs.cands[j]) == key(cs.cands[i]) {
			j++
		}
		g := group{start: int32(i), end: int32(j), dom: cs.cands[i].dom, rank: cs.cands[i].rank}
		for _, c := range cs.cands[i:j] {
			g.rank = min(g.rank, c.rank)
		}
		cs.groups = append(cs.groups, g)
		i = j
	}
}

// pick returns the node for the app's next instance among cs, or -1.
//
// Spreading over hosts only, the pools are tried in order and the first
// with a feasible host wins. Spreading over zones or datacenters, the
// domains with the fewest instances of the app come first (ties: the
// domain of the earliest pool), whatever pool they are in.
func (p *planner) pick(a *appCtx, cs *candSet) int32 {
	if a.level == 0 {
		for gi := range cs.groups {
			g := &cs.groups[gi]
			if g.dead {
				continue
			}
			if ni := p.best(a, cs.cands[g.start:g.end]); ni >= 0 {
				return ni
			}
			g.dead = true
		}
		return -1
	}
	p.gorder = p.gorder[:0]
	for gi := range cs.groups {
		if !cs.groups[gi].dead {
			p.gorder = append(p.gorder, int32(gi))
		}
	}
	// Few domains: an insertion sort, without allocating.
	for i := 1; i < len(p.gorder); i++ {
		for j := i; j > 0 && p.groupBefore(cs, p.gorder[j], p.gorder[j-1]); j-- {
			p.gorder[j], p.gorder[j-1] = p.gorder[j-1], p.gorder[j]
		}
	}
	for _, gi := range p.gorder {
		g := &cs.groups[gi]
		if ni := p.best(a, cs.cands[g.start:g.end]); ni >= 0 {
			return ni
		}
		g.dead = true
	}
	return -1
}

func (p *planner) groupBefore(cs *candSet, x, y int32) bool {
	gx, gy := &cs.groups[x], &cs.groups[y]
	if cx, cy := p.domCount[gx.dom], p.domCount[gy.dom]; cx != cy {
		return cx < cy
	}
	if gx.rank != gy.rank {
		return gx.rank < gy.rank
	}
	return gx.dom < gy.dom
}

// best returns the best feasible node in cells cs, or -1. The order is:
// fewest instances of the app on the host, earliest pool, least free
// capacity (packing), host id.
//
// Hosts without the app are searched in each cell from the lower bound of
// the memory needed, so the first feasible one is the cell's best fit.
// Only when none is left are the hosts already running the app (few:
// at most the app's instance count) considered.
func (p *planner) best(a *appCtx, cs []cand) int32 {
	bestN, bestR := int32(-1), int32(0)
	for _, c := range cs {
		ni := p.firstFit(a, c.cell)
		if ni >= 0 && (bestN < 0 || c.rank < bestR || c.rank == bestR && p.less(ni, bestN)) {
			bestN, bestR = ni, c.rank
		}
	}
	if bestN >= 0 || len(p.touched) == 0 {
		return bestN
	}
	p.stamp++
	if p.stamp == 0 {
		clear(p.cellMark)
		p.stamp = 1
	}
	for _, c := range cs {
		p.cellMark[c.cell] = p.stamp
		p.cellRank[c.cell] = c.rank
	}
	var bestC int32
	for _, ni := range p.touched {
		n := &p.nodes[ni]
		if n.cell < 0 || p.cellMark[n.cell] != p.stamp || !fits(n.freeCPU, n.freeMem, a.cpu, a.mem) || !p.hostOK(a, n) {
			continue
		}
		r := p.cellRank[n.cell]
		if bestN < 0 || n.count < bestC || n.count == bestC && (r < bestR || r == bestR && p.less(ni, bestN)) {
			bestN, bestR, bestC = ni, r, n.count
		}
	}
	return bestN
}

// firstFit returns the best-fitting host of a cell that does not run the
// app yet, or -1.
func (p *planner) firstFit(a *appCtx, ci int32) int32 {
	hs := p.cells[ci].hosts
	for i := p.lowerBound(hs, a.mem); i < len(hs); i++ {
		ni := hs[i]
		n := &p.nodes[ni]
		if n.count != 0 || a.cpu > 0 && n.freeCPU < a.cpu || !p.hostOK(a, n) {
			continue
		}
		return ni
	}
	return -1
}

// hostOK reports whether n has a driver that runs the app and passes
// the app's host-level constraints, matching each host at most once per
// app.
func (p *planner) hostOK(a *appCtx, n *node) bool {
	if a.runs != 0 && n.runs&a.runs == 0 {
		return false
	}
	if len(a.hostM) == 0 {
		return true
	}
	if n.okStamp != p.appStamp {
		n.okStamp, n.ok = p.appStamp, true
		for i := range a.hostM {
			if !a.hostM[i].matchHost(n.host) {
				n.ok = false
				break
			}
		}
	}
	return n.ok
}

// fits reports whether cpu and mem fit into what is free. A zero request
// always fits, so that an overcommitted host does not refuse an instance
// that asks for nothing.
func fits(freeCPU, freeMem, cpu, mem int) bool {
	return (cpu <= 0 || freeCPU >= cpu) && (mem <= 0 || freeMem >= mem)
}
