package scheduler

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
)

// harness is an in-memory State: a few maps over slices, plus apply,
// which plays the FSM (Check, then write), so tests can run several
// planning rounds.
type harness struct {
	index  uint64
	hosts  []Host
	insts  []Instance
	hostAt map[string]int
	instAt map[string]int
	onHost map[string][]int
	nextID int
}

var _ State = (*harness)(nil)

func newHarness(tb testing.TB, hosts ...Host) *harness {
	tb.Helper()
	h := &harness{index: 1}
	for _, x := range hosts {
		h.addHost(x)
	}
	return h
}

func (h *harness) Index() uint64         { return h.index }
func (h *harness) Hosts() []Host         { return h.hosts }
func (h *harness) Instances() []Instance { return h.insts }

func (h *harness) Host(id string) (Host, bool) {
	i, ok := h.hostAt[id]
	if !ok {
		return Host{}, false
	}
	return h.hosts[i], true
}

func (h *harness) HostInstances(id string) []Instance {
	out := make([]Instance, 0, len(h.onHost[id]))
	for _, i := range h.onHost[id] {
		out = append(out, h.insts[i])
	}
	return out
}

func (h *harness) InstanceExists(id string) bool {
	_, ok := h.instAt[id]
	return ok
}

func (h *harness) addHost(x Host) {
	if h.hostAt == nil {
		h.hostAt, h.instAt, h.onHost = map[string]int{}, map[string]int{}, map[string][]int{}
	}
	h.index++
	if i, ok := h.hostAt[x.ID]; ok {
		h.hosts[i] = x
		return
	}
	h.hostAt[x.ID] = len(h.hosts)
	h.hosts = append(h.hosts, x)
}

// setHost changes a host in place.
func (h *harness) setHost(id string, f func(*Host)) {
	h.index++
	f(&h.hosts[h.hostAt[id]])
}

func (h *harness) removeHost(id string) {
	h.index++
	i := h.hostAt[id]
	h.hosts = slices.Delete(h.hosts, i, i+1)
	clear(h.hostAt)
	for j, x := range h.hosts {
		h.hostAt[x.ID] = j
	}
}

func (h *harness) addInstance(in Instance) {
	if h.hostAt == nil {
		h.hostAt, h.instAt, h.onHost = map[string]int{}, map[string]int{}, map[string][]int{}
	}
	h.index++
	h.instAt[in.ID] = len(h.insts)
	h.onHost[in.Host] = append(h.onHost[in.Host], len(h.insts))
	h.insts = append(h.insts, in)
}

// apply checks plan and writes it, as the FSM does.
func (h *harness) apply(plan Plan) error {
	if err := Check(h, plan); err != nil {
		return err
	}
	for _, p := range plan.Place {
		h.addInstance(Instance{ID: p.InstanceID, App: p.App, Version: p.Version, Host: p.Host, CPU: p.CPU, Memory: p.Memory})
	}
	for _, s := range plan.Stop {
		if i, ok := h.instAt[s.InstanceID]; ok {
			h.insts[i].Terminal = true
		}
	}
	h.index++
	return nil
}

// ids returns a deterministic id source.
func (h *harness) ids() func() string {
	return func() string {
		h.nextID++
		return fmt.Sprintf("i-%05d", h.nextID)
	}
}

// plan plans apps once with a fresh Scheduler.
func (h *harness) plan(apps ...App) Plan {
	return New().Plan(h, apps, h.ids())
}

// converge plans and applies until nothing changes, and returns the last
// (empty) plan's pending list.
func (h *harness) converge(tb testing.TB, apps ...App) []Pending {
	tb.Helper()
	s := New()
	for range 10 {
		p := s.Plan(h, apps, h.ids())
		if len(p.Place) == 0 && len(p.Stop) == 0 {
			return p.Pending
		}
		if err := h.apply(p); err != nil {
			tb.Fatalf("apply: %v", err)
		}
	}
	tb.Fatal("no convergence after 10 plans")
	return nil
}

// live returns the number of live instances of app per host id.
func (h *harness) live(app AppKey) map[string]int {
	out := map[string]int{}
	for _, in := range h.insts {
		if in.App == app && !in.Terminal {
			out[in.Host]++
		}
	}
	return out
}

// --- fixtures ---

func mkHost(id, pool, dc, zone string, cpu, mem int) Host {
	return Host{ID: id, Name: "n-" + id, Pool: pool, Datacenter: dc, Zone: zone, Ready: true, CPU: cpu, Memory: mem}
}

func withLabels(h Host, kv ...string) Host {
	h.Labels = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Labels[kv[i]] = kv[i+1]
	}
	return h
}

func mkApp(name string, count, cpu, mem int, pools ...string) App {
	return App{Key: AppKey{"acme", name}, Version: 1, Count: count, CPU: cpu, Memory: mem, Pools: pools}
}

// perHost counts a plan's placements per host id.
func perHost(p Plan) map[string]int {
	out := map[string]int{}
	for _, pl := range p.Place {
		out[pl.Host]++
	}
	return out
}

// perAttr counts a plan's placements per value of a host attribute.
func perAttr(h *harness, p Plan, attr func(Host) string) map[string]int {
	out := map[string]int{}
	for _, pl := range p.Place {
		x, _ := h.Host(pl.Host)
		out[attr(x)]++
	}
	return out
}

func stopIDs(p Plan) []string {
	var out []string
	for _, s := range p.Stop {
		out = append(out, s.InstanceID)
	}
	slices.Sort(out)
	return out
}

func eqCounts(tb testing.TB, what string, got, want map[string]int) {
	tb.Helper()
	if !maps.Equal(got, want) {
		tb.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func mustConflict(tb testing.TB, err error) *ConflictError {
	tb.Helper()
	var ce *ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrStalePlan) {
		tb.Fatalf("got %v, want a *ConflictError", err)
	}
	return ce
}
