package scheduler

import (
	"slices"
	"strings"
)

// The planner indexes a snapshot once per plan so that placing an
// instance costs a binary search and a short scan, not a pass over every
// host:
//
//   - hosts are grouped into pools, and the schedulable hosts of a pool
//     into cells: one per (pool, datacenter, zone), the unit spread and
//     pool-level constraints work on;
//   - each cell keeps its hosts sorted by free memory, then free CPU, then
//     id. The first host from the lower bound of the memory an instance
//     needs is the best fit (bin packing); placing an instance moves its
//     host towards the front by a binary search and a memmove of at most
//     the cell's size, which for pools of thousands of hosts is cheaper
//     than keeping a heap or a tree balanced, and allocates nothing.
//
// We pack on memory because it is the resource a host cannot overcommit
// or throttle; CPU only breaks ties and filters.

// node is one host while a plan is built.
type node struct {
	host    *Host
	freeCPU int
	freeMem int
	pool    int32
	cell    int32    // the cell offering the host; -1 when it takes nothing new
	dom     [3]int32 // spread domains by level: [1] zone, [2] datacenter
	count   int32    // live instances of the app being scheduled (scratch)
	runs    uint8    // workloads the host's drivers run (workloadBit)
	// okStamp == planner.appStamp when ok holds whether the host passes
	// the current app's host-level constraints: each host is matched
	// once per app however often the scans pass it.
	okStamp uint32
	ok      bool
}

// cell is the schedulable hosts of one pool in one datacenter and zone.
type cell struct {
	pool     int32
	dc, zone string
	dom      [3]int32
	hosts    []int32 // by free memory, free CPU, id: best fit first
}

// pool is every host of one pool, schedulable or not.
type pool struct {
	name  string
	hosts []int32
	cells []int32
	ready int
}

type domKey struct {
	level    int
	dc, zone string
}

// planner holds the index of one snapshot and the scratch space of the
// app being scheduled. Its buffers are reused from plan to plan.
type planner struct {
	nodes    []node // by host id, so that node order is the id tie-break (and nodeOf a binary search)
	cells    []cell
	pools    []pool
	poolIDs  map[string]int32
	domIDs   map[domKey]int32
	insts    []Instance
	byApp    map[AppKey][]int32 // non-terminal instances by app
	allPools []string           // pool names, sorted; built on demand

	// Scratch for one app.
	touched  []int32 // nodes with count > 0
	domCount []int32
	cellMark []uint32
	cellRank []int32
	stamp    uint32
	appStamp uint32
	matchers []matcher
	prim     candSet
	fail     candSet
	gorder   []int32
	order    []int32 // reset's hosts in id order, kept for the next reset
	live     []int32
	ids      []int32
	names    []string
}

// reset indexes st.
func (p *planner) reset(st State) {
	hosts := st.Hosts()
	order := p.order[:0]
	for i := range hosts {
		// Only a host without an id is unusable; one with bad capacity
		// still holds its instances (it just has no room).
		if hosts[i].ID != "" {
			order = append(order, int32(i))
		}
	}
	// A State that lists its hosts in id order, each once, spares the
	// check and the duplicates' test below: they read every host's id,
	// thousands of cache misses a plan.
	s, ok := st.(interface{ HostsInIDOrder() bool })
	inOrder := ok && s.HostsInIDOrder()
	if !inOrder && !slices.IsSortedFunc(order, func(a, b int32) int { return strings.Compare(hosts[a].ID, hosts[b].ID) }) {
		slices.SortStableFunc(order, func(a, b int32) int { return strings.Compare(hosts[a].ID, hosts[b].ID) })
	}
	p.order = order

	p.nodes = p.nodes[:0]
	p.cells = p.cells[:0]
	p.pools = p.pools[:0]
	p.poolIDs = resetMap(p.poolIDs, 0)
	p.domIDs = resetMap(p.domIDs, 0)
	p.allPools = p.allPools[:0]

	// Hosts of one datacenter and zone share their spread domains: the
	// last pair's ids are kept, so that a run of such hosts costs no map
	// lookups.
	lastDC, lastZone, lastDom := "", "", [3]int32{-1, -1, -1}
	for _, hi := range order {
		h := &hosts[hi]
		if !inOrder && len(p.nodes) > 0 && p.nodes[len(p.nodes)-1].host.ID == h.ID {
			continue // a duplicate id: the first one listed counts
		}
		ni := int32(len(p.nodes))
		pi, ok := p.poolIDs[h.Pool]
		if !ok {
			pi = int32(len(p.pools))
			p.poolIDs[h.Pool] = pi
			p.pools = p.newPool(h.Pool)
		}
		p.pools[pi].hosts = append(p.pools[pi].hosts, ni)
		n := node{host: h, freeCPU: h.CPU - h.UsedCPU, freeMem: h.Memory - h.UsedMemory, pool: pi, cell: -1}
		for _, w := range []string{WorkloadImage, WorkloadCommand} {
			if hostRuns(h, w) {
				n.runs |= workloadBit(w)
			}
		}
		if lastDom[1] < 0 || h.Datacenter != lastDC || h.Zone != lastZone {
			lastDC, lastZone = h.Datacenter, h.Zone
			lastDom[1] = p.domain(domKey{1, h.Datacenter, h.Zone})
			lastDom[2] = p.domain(domKey{2, h.Datacenter, ""})
		}
		n.dom[1], n.dom[2] = lastDom[1], lastDom[2]
		p.nodes = append(p.nodes, n)
	}

	p.insts = st.Instances()
	// Keep the per-app slices of the last plan: the apps rarely change.
	if p.byApp == nil {
		p.byApp = make(map[AppKey][]int32)
	}
	for k, v := range p.byApp {
		p.byApp[k] = v[:0]
	}
	for i := range p.insts {
		in := &p.insts[i]
		if in.Terminal {
			continue
		}
		p.byApp[in.App] = append(p.byApp[in.App], int32(i))
		if ni, ok := p.nodeOf(in.Host); ok {
			p.nodes[ni].freeCPU -= in.CPU
			p.nodes[ni].freeMem -= in.Memory
		}
	}

	for k, v := range p.byApp {
		if len(v) == 0 {
			delete(p.byApp, k)
		}
	}

	for ni := range p.nodes {
		n := &p.nodes[ni]
		if !n.host.schedulable() {
			continue
		}
		// A pool has a cell or a few: a scan of them for the node's
		// zone domain (one per datacenter and zone) beats hashing a key
		// of strings per host.
		ci := int32(-1)
		for _, c := range p.pools[n.pool].cells {
			if p.cells[c].dom[1] == n.dom[1] {
				ci = c
				break
			}
		}
		if ci < 0 {
			ci = p.newCell(n.pool, n.host.Datacenter, n.host.Zone, n.dom)
			p.pools[n.pool].cells = append(p.pools[n.pool].cells, ci)
		}
		n.cell = ci
		p.cells[ci].hosts = append(p.cells[ci].hosts, int32(ni))
		p.pools[n.pool].ready++
	}
	for ci := range p.cells {
		slices.SortFunc(p.cells[ci].hosts, p.compare)
	}

	p.domCount = resize(p.domCount, len(p.domIDs))
	p.cellMark = resize(p.cellMark, len(p.cells))
	p.cellRank = resize(p.cellRank, len(p.cells))
	p.stamp, p.appStamp = 0, 0
	p.touched = p.touched[:0]
}

// workloadBit is a workload's bit in node.runs; 0 for "" (any host).
func workloadBit(w string) uint8 {
	switch w {
	case WorkloadImage:
		return 1
	case WorkloadCommand:
		return 2
	}
	return 0
}

// nodeOf returns the node of host id: a binary search of the nodes,
// which are in id order. A map from ids would cost every plan an insert
// per host, where a plan looks up only the instances of the apps it
// plans.
func (p *planner) nodeOf(id string) (int32, bool) {
	lo, hi := 0, len(p.nodes)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p.nodes[m].host.ID < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return int32(lo), lo < len(p.nodes) && p.nodes[lo].host.ID == id
}

// release drops the references into the State's data once a plan is
// built, keeping only the buffers.
func (p *planner) release() {
	for i := range p.nodes {
		p.nodes[i].host = nil
	}
	p.insts = nil
}

// newPool returns p.pools with a new pool at its end, reusing the lists
// of the pool the last reset had there.
func (p *planner) newPool(name string) []pool {
	pi := len(p.pools)
	if pi < cap(p.pools) {
		old := p.pools[:pi+1][pi]
		return append(p.pools, pool{name: name, hosts: old.hosts[:0], cells: old.cells[:0]})
	}
	return append(p.pools, pool{name: name})
}

// newCell adds a cell, reusing the host buffer of an earlier plan's cell.
func (p *planner) newCell(pool int32, dc, zone string, dom [3]int32) int32 {
	ci := len(p.cells)
	if ci < cap(p.cells) {
		p.cells = p.cells[:ci+1]
		p.cells[ci] = cell{hosts: p.cells[ci].hosts[:0]}
	} else {
		p.cells = append(p.cells, cell{})
	}
	c := &p.cells[ci]
	c.pool, c.dc, c.zone, c.dom = pool, dc, zone, dom
	return int32(ci)
}

func (p *planner) domain(k domKey) int32 {
	id, ok := p.domIDs[k]
	if !ok {
		id = int32(len(p.domIDs))
		p.domIDs[k] = id
	}
	return id
}

// poolNames returns every pool's name, sorted.
func (p *planner) poolNames() []string {
	if len(p.allPools) == 0 {
		for _, pl := range p.pools {
			p.allPools = append(p.allPools, pl.name)
		}
		slices.Sort(p.allPools)
	}
	return p.allPools
}

// less orders nodes for packing: least free memory, then least free CPU,
// then host id.
func (p *planner) less(a, b int32) bool {
	na, nb := &p.nodes[a], &p.nodes[b]
	if na.freeMem != nb.freeMem {
		return na.freeMem < nb.freeMem
	}
	if na.freeCPU != nb.freeCPU {
		return na.freeCPU < nb.freeCPU
	}
	return a < b
}

func (p *planner) compare(a, b int32) int {
	switch {
	case a == b:
		return 0
	case p.less(a, b):
		return -1
	}
	return 1
}

// lowerBound returns the first position in hs whose host has at least mem
// MB free.
func (p *planner) lowerBound(hs []int32, mem int) int {
	if mem <= 0 {
		return 0
	}
	lo, hi := 0, len(hs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p.nodes[hs[m]].freeMem < mem {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// take reserves cpu and mem on a schedulable node and moves it to its
// new place in its cell.
func (p *planner) take(ni int32, cpu, mem int) {
	n := &p.nodes[ni]
	hs := p.cells[n.cell].hosts
	pos := p.search(hs, len(hs), ni) // hs[pos] == ni
	n.freeCPU -= cpu
	n.freeMem -= mem
	to := p.search(hs, pos, ni)
	copy(hs[to+1:pos+1], hs[to:pos])
	hs[to] = ni
}

// search returns the first position in hs[:end] not ordered before ni.
func (p *planner) search(hs []int32, end int, ni int32) int {
	lo, hi := 0, end
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p.less(hs[m], ni) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func resetMap[K comparable, V any](m map[K]V, size int) map[K]V {
	if m == nil {
		return make(map[K]V, size)
	}
	clear(m)
	return m
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}
