package provision

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/providers"
)

// pool keeps one provisioned pool between its min_hosts and max_hosts:
// it shrinks a pool above max, grows it to min and for pending instances
// (one decision per burst: machines on their way count as capacity), and
// drains idle machines above min.
func (p *Provisioner) pool(ctx context.Context, x *index, pool *state.Pool, now time.Time) {
	prov := pool.Provision
	acct := x.accounts[prov.Provider]
	var alive, failed []*state.Machine
	paused := false
	for _, m := range x.byPool[pool.Name] {
		switch {
		case live(m):
			alive = append(alive, m)
		case m.State == state.MachineFailed:
			failed = append(failed, m)
			paused = paused || p.failurePaused(m, pool, acct, now)
		}
	}
	if len(alive) > prov.MaxHosts {
		p.shrink(ctx, x, alive, len(alive)-prov.MaxHosts, now)
		return
	}
	pending := x.v.Pending[pool.Name]
	need, decided := 0, true
	if len(pending) > 0 {
		need, decided = p.demand(ctx, x, pool, alive, pending)
	}
	target := min(max(prov.MinHosts, len(alive)+need), prov.MaxHosts)
	add := target - len(alive)
	// A failed machine stays listed while it pauses a pool that still
	// wants more; otherwise it is replaced, or the pool shrank past it.
	if !paused || add <= 0 {
		for _, m := range failed {
			p.set(ctx, m, state.MachineDeleting, m.Error, now)
		}
	} else {
		add = 0
	}
	switch {
	case add > 0:
		p.grow(ctx, x, pool, add, len(alive), pending, now)
	case decided && len(pending) == 0 && len(alive) > prov.MinHosts:
		p.scaleDown(ctx, x, pool, alive, len(alive)-prov.MinHosts, now)
	}
}

// grow writes add new machines, in state creating: their creates start
// from the next round's view of them.
func (p *Provisioner) grow(ctx context.Context, x *index, pool *state.Pool, add, have int, pending []Demand, now time.Time) {
	if x.v.CAFingerprint == "" {
		p.log.Debug("no agent CA yet: machines wait", "pool", pool.Name)
		return
	}
	if x.accounts[pool.Provision.Provider] == nil {
		p.tell(ctx, pool.Name, pool.Name, "no-account", "provision.failed",
			fmt.Sprintf("pool %s: provider account %s does not exist", pool.Name, pool.Provision.Provider))
		return
	}
	made := 0
	for range add {
		m := state.Machine{ID: newMachineID(pool.Name), Pool: pool.Name, Provider: pool.Provision.Provider,
			State: state.MachineCreating, JoinToken: randomHex(8), CreatedAt: now, StateSince: now}
		if !p.write(ctx, "add machine "+m.ID, func(ctx context.Context) error { return p.cfg.Store.AddMachine(ctx, m) }) {
			break
		}
		made++
	}
	if made == 0 {
		return
	}
	why := fmt.Sprintf("min_hosts %d", pool.Provision.MinHosts)
	if n := count(pending); n > 0 {
		why = fmt.Sprintf("%d pending instances", n)
	}
	msg := fmt.Sprintf("pool %s: adding %d machines to %d (%s)", pool.Name, made, have, why)
	p.log.Info("grow", "pool", pool.Name, "add", made, "have", have, "why", why)
	p.record(ctx, state.Event{Time: now, Type: "provision.scale", Subject: pool.Name, Pool: pool.Name, Message: msg})
	p.Wake()
}

// shrink takes n live machines out of a pool above max_hosts: those not
// yet hosts first, then idle hosts, then the least loaded.
func (p *Provisioner) shrink(ctx context.Context, x *index, alive []*state.Machine, n int, now time.Time) {
	rank := func(m *state.Machine) (int, int) {
		if m.State != state.MachineReady {
			return 0, 0
		}
		h := x.hostOf[m.ID]
		if h == nil || h.AllocCPU == 0 && h.AllocMemory == 0 {
			return 1, 0
		}
		return 2, h.AllocCPU
	}
	sorted := append([]*state.Machine(nil), alive...)
	sort.SliceStable(sorted, func(i, j int) bool {
		ai, bi := rank(sorted[i])
		aj, bj := rank(sorted[j])
		return ai < aj || ai == aj && bi < bj
	})
	for _, m := range sorted[:n] {
		if m.State == state.MachineReady {
			p.set(ctx, m, state.MachineDraining, "", now)
		} else {
			p.set(ctx, m, state.MachineDeleting, "", now)
		}
	}
}

// scaleDown drains up to n ready machines whose hosts have run nothing for
// the pool's scale_down_after, the longest idle first.
func (p *Provisioner) scaleDown(ctx context.Context, x *index, pool *state.Pool, alive []*state.Machine, n int, now time.Time) {
	after := p.scaleDownAfter(pool)
	type idle struct {
		m     *state.Machine
		since time.Time
	}
	var cands []idle
	for _, m := range alive {
		h := x.hostOf[m.ID]
		if m.State != state.MachineReady || h == nil || h.State != state.HostReady {
			continue
		}
		since := x.v.IdleSince[h.ID]
		if since.IsZero() || now.Sub(since) < after || h.AllocCPU > 0 || h.AllocMemory > 0 {
			continue
		}
		cands = append(cands, idle{m, since})
	}
	sort.Slice(cands, func(i, j int) bool {
		return cands[i].since.Before(cands[j].since) || cands[i].since.Equal(cands[j].since) && cands[i].m.ID < cands[j].m.ID
	})
	for _, c := range cands[:min(n, len(cands))] {
		if p.set(ctx, c.m, state.MachineDraining, "", now) {
			p.record(ctx, state.Event{Time: now, Type: "provision.scale", Subject: pool.Name, Pool: pool.Name,
				Message: fmt.Sprintf("pool %s: draining machine %s, idle for %v", pool.Name, c.m.ID, now.Sub(c.since).Round(time.Second))})
		}
	}
}

// demand is how many machines the pool's pending instances need beyond
// its free capacity and the machines on their way; decided is false while
// the template's shape is being asked (the decision waits for it).
func (p *Provisioner) demand(ctx context.Context, x *index, pool *state.Pool, alive []*state.Machine, pending []Demand) (need int, decided bool) {
	shape, known, decided := p.shapeOf(ctx, x, pool)
	if !decided {
		return 0, false
	}
	var free []providers.Resources
	for _, h := range x.v.Hosts {
		if h.Pool == pool.Name && h.State == state.HostReady {
			cpu, mem := capacity(h)
			free = append(free, providers.Resources{CPUMillis: cpu - int64(h.AllocCPU), MemoryBytes: mem - int64(h.AllocMemory)<<20})
		}
	}
	coming := 0
	for _, m := range alive {
		if m.State != state.MachineReady && m.Host == "" && x.hostOf[m.ID] == nil { // an enrolled one is in free
			coming++
		}
	}
	return machinesFor(pending, free, coming, shape, known), true
}

// shapeOf is one machine's capacity for the pool's template: the cloud's
// answer when it can tell (asked once per template and account version),
// else the largest host of the pool. decided is false while the cloud is
// being asked.
func (p *Provisioner) shapeOf(ctx context.Context, x *index, pool *state.Pool) (r providers.Resources, known, decided bool) {
	acct := x.accounts[pool.Provision.Provider]
	if acct != nil {
		key := fmt.Sprintf("%d/%d", pool.ModifyIndex, acct.ModifyIndex)
		p.mu.Lock()
		e, have := p.shapes[pool.Name]
		p.mu.Unlock()
		if !have || e.key != key {
			p.startShape(ctx, x, pool, acct, key)
			if !have {
				return r, false, false
			}
		}
		if e.ok {
			return e.r, true, true
		}
	}
	for _, h := range x.v.Hosts {
		if h.Pool != pool.Name {
			continue
		}
		cpu, mem := capacity(h)
		r.CPUMillis, r.MemoryBytes = max(r.CPUMillis, cpu), max(r.MemoryBytes, mem)
	}
	return r, r.CPUMillis > 0 && r.MemoryBytes > 0, true
}

func capacity(h *state.Host) (cpuMillis, memBytes int64) {
	return int64(h.Inventory.CPUs) * 1000, int64(h.Inventory.MemoryBytes)
}

// machinesFor sizes one growth step: it packs the pending instances,
// largest first, into the free capacity of the pool's hosts, then into
// the machines on their way (coming, each of shape), then into as many new
// machines of shape as it takes. An instance larger than shape is left
// out (no machine of the template could run it). Without a known shape,
// machines on their way absorb everything, and a step is one machine.
func machinesFor(pending []Demand, free []providers.Resources, coming int, shape providers.Resources, known bool) int {
	var want []providers.Resources
	for _, d := range pending {
		for range d.Count {
			want = append(want, providers.Resources{CPUMillis: int64(d.CPU), MemoryBytes: int64(d.Memory) << 20})
		}
	}
	sort.SliceStable(want, func(i, j int) bool {
		return want[i].CPUMillis > want[j].CPUMillis || want[i].CPUMillis == want[j].CPUMillis && want[i].MemoryBytes > want[j].MemoryBytes
	})
	bins := append([]providers.Resources(nil), free...)
	fits := func(r, in providers.Resources) bool {
		return r.CPUMillis <= in.CPUMillis && r.MemoryBytes <= in.MemoryBytes
	}
	place := func(r providers.Resources) bool {
		for i := range bins {
			if fits(r, bins[i]) {
				bins[i].CPUMillis -= r.CPUMillis
				bins[i].MemoryBytes -= r.MemoryBytes
				return true
			}
		}
		return false
	}
	if !known {
		if coming > 0 {
			return 0
		}
		for _, r := range want {
			if !place(r) {
				return 1
			}
		}
		return 0
	}
	for range coming {
		bins = append(bins, shape)
	}
	added := 0
	for _, r := range want {
		if place(r) || !fits(r, shape) {
			continue
		}
		bins = append(bins, shape)
		added++
		place(r)
	}
	return added
}

func count(ds []Demand) int {
	n := 0
	for _, d := range ds {
		n += d.Count
	}
	return n
}
