package state

import (
	"fmt"
	"time"
)

// TableInstances names every instance the scheduler placed, in snapshots
// and in the tables' write indexes (Snapshot.Index). The instances are
// kept in rows per app and per host, found by id through rows of ids
// (instance_sets.go).
const TableInstances = "instances"

// Desired states of an instance.
const (
	DesiredRun  = "run"
	DesiredStop = "stop"
)

// Observed instance states, as the API spells them.
const (
	InstancePending  = "pending"
	InstanceStarting = "starting"
	InstanceRunning  = "running"
	InstanceStopping = "stopping"
	InstanceStopped  = "stopped"
	InstanceFailed   = "failed"
)

// Reasons an instance is not running or not ready (Instance.Reason),
// spelled as the API spells them.
const (
	ReasonImagePull   = "image_pull"
	ReasonStartFailed = "start_failed"
	ReasonCrashLoop   = "crash_loop"
	ReasonUnhealthy   = "unhealthy"
)

// validReason reports whether an agent may report r.
func validReason(r string) bool {
	switch r {
	case "", ReasonImagePull, ReasonStartFailed, ReasonCrashLoop, ReasonUnhealthy:
		return true
	}
	return false
}

// Instance is one placed copy of one app version on one host. The
// scheduler sets what is desired; the host's agent reports what it sees.
type Instance struct {
	ID      string
	Tenant  string
	App     string
	Version int
	Host    string
	CPU     int // millicores reserved on Host
	Memory  int // MB reserved on Host

	Desired    string // DesiredRun or DesiredStop
	StopReason string

	// Reported by the agent.
	State    string
	Ready    bool
	Address  string
	Restarts int
	Message  string
	// Reason is why the instance is not running or not ready (a Reason
	// constant; "" when nothing is wrong). An instance with a reason is
	// still the agent's to retry: it backs off on the same id.
	Reason string
	// RecentRestarts holds when (the reporting command's time, Unix ns)
	// the last restarts were reported, newest first, for alert rules on
	// restarts.
	RecentRestarts [8]int64

	CreatedAt time.Time
	UpdatedAt time.Time
	// MeteredSince is when (Unix seconds) the instance started counting
	// for metering; 0 while it does not count (see hub/billing).
	MeteredSince int64
	Meta
}

// Copy returns a copy.
func (i *Instance) Copy() *Instance { c := *i; return &c }

// RestartsSince counts the restarts reported at or after t (at most
// len(RecentRestarts)).
func (i *Instance) RestartsSince(t time.Time) int {
	n := 0
	for _, at := range i.RecentRestarts {
		if at != 0 && at >= t.UnixNano() {
			n++
		}
	}
	return n
}

// Live reports whether the instance holds resources and counts towards its
// app: desired to run and not failed for good.
func (i *Instance) Live() bool { return i.Desired == DesiredRun && i.State != InstanceFailed }

// PlanApplyRequest commits a scheduler plan. It is checked against the
// state it is applied to (optimistic concurrency): if any placement no
// longer fits its host (gone, not ready, not enough free CPU or memory), the
// whole plan is refused with a conflict and the planner plans again.
type PlanApplyRequest struct {
	Place   []Instance // ID, Tenant, App, Version, Host, CPU, Memory
	Stop    []InstanceStop
	Pending []AppPending // one per app planned: "" clears its explanation
	Revert  []AppRevert  // failed updates to undo
	Drained []string     // draining hosts with nothing left: now drained
	Time    time.Time
}

// AppRevert makes version To of an app current again if the app is still
// at version From (an update that failed, with auto_revert).
type AppRevert struct {
	Tenant, App string
	From, To    int
	Reason      string
}

// InstanceStop asks for an instance to be stopped.
type InstanceStop struct {
	ID     string
	Reason string
}

// AppPending records why an app has fewer instances than it wants.
type AppPending struct {
	Tenant, App string
	Reason      string
}

// InstanceUpdateRequest carries what agents saw of their instances.
// Updates of unknown instances are ignored (they may have been removed
// meanwhile). An instance desired stopped that is reported stopped is
// removed.
type InstanceUpdateRequest struct {
	Host    string // the reporting host: updates of other hosts' instances are ignored
	Updates []InstanceUpdate
	Time    time.Time
}

// InstanceUpdate is one instance's observed state.
type InstanceUpdate struct {
	ID       string
	State    string
	Ready    bool
	Address  string
	Restarts int
	Message  string
	Reason   string // a Reason constant or ""
}

// capacity returns a host's schedulable CPU (millicores) and memory (MB).
func capacity(h *Host) (int, int) {
	return h.Inventory.CPU(), int(h.Inventory.MemoryBytes >> 20)
}

// Schedulable reports whether new instances may go to a host.
func Schedulable(h *Host) bool { return h.State == HostReady }

func (w *writer) planApply(r *PlanApplyRequest) *Error {
	snap := w.snap()
	type use struct{ cpu, mem int }
	used := map[string]*use{}
	touched := map[string]bool{}
	usage := func(host string) (*use, *Error) {
		if u := used[host]; u != nil {
			return u, nil
		}
		// The host's allocation as of the start of this command: flushAlloc
		// writes this command's changes only once it is done.
		h, err := snap.Host(nil, host)
		if err != nil {
			return nil, Errorf(KindInternal, "%v", err)
		}
		u := &use{}
		if h != nil {
			u.cpu, u.mem = h.AllocCPU, h.AllocMemory
		}
		used[host] = u
		return u, nil
	}
	stopping := map[string]bool{}
	for _, s := range r.Stop {
		stopping[s.ID] = true
	}
	for _, s := range r.Stop {
		i, err := snap.Instance(nil, s.ID)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		if i == nil || i.Desired == DesiredStop {
			continue
		}
		if u, e := usage(i.Host); e != nil {
			return e
		} else if i.Live() {
			u.cpu -= i.CPU
			u.mem -= i.Memory
		}
		n := i.Copy()
		n.Desired, n.StopReason, n.UpdatedAt = DesiredStop, s.Reason, r.Time
		if n.State == InstanceRunning || n.State == InstanceStarting {
			n.State = InstanceStopping
		}
		w.meta(&n.Meta, &i.Meta)
		if e := w.putInstance(i, n); e != nil {
			return e
		}
		touched[i.Host] = true
	}
	for _, p := range r.Place {
		if p.ID == "" || p.Host == "" || p.Tenant == "" || p.App == "" || p.Version < 1 {
			return Errorf(KindInvalid, "placement %+v lacks id, host, tenant, app or version", p)
		}
		if old, err := snap.Instance(nil, p.ID); err != nil {
			return Errorf(KindInternal, "%v", err)
		} else if old != nil {
			return Errorf(KindConflict, "stale plan: instance id %s is taken", p.ID)
		}
		h, err := snap.Host(nil, p.Host)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		if h == nil {
			return Errorf(KindConflict, "stale plan: host %s is gone", p.Host)
		}
		if !Schedulable(h) {
			return Errorf(KindConflict, "stale plan: host %s is %s", h.Name, h.State)
		}
		u, e := usage(p.Host)
		if e != nil {
			return e
		}
		cpu, mem := capacity(h)
		if u.cpu+p.CPU > cpu || u.mem+p.Memory > mem {
			return Errorf(KindConflict, "stale plan: host %s has %dm CPU and %d MB free, the placement needs %dm and %d MB",
				h.Name, cpu-u.cpu, mem-u.mem, p.CPU, p.Memory)
		}
		u.cpu += p.CPU
		u.mem += p.Memory
		n := p
		n.Desired, n.State, n.Ready, n.Address, n.Restarts, n.Message, n.Reason = DesiredRun, InstancePending, false, "", 0, "", ""
		n.CreatedAt, n.UpdatedAt = r.Time, r.Time
		w.meta(&n.Meta, nil)
		if e := w.putInstance(nil, &n); e != nil {
			return e
		}
		touched[p.Host] = true
	}
	for _, p := range r.Pending {
		a, e := w.app(p.Tenant, p.App)
		if e != nil {
			return e
		}
		if a == nil || a.Pending == p.Reason {
			continue
		}
		// Pending is status, not spec: it leaves the app's modify index
		// (its CAS token) alone; the table's index still moves, so
		// blocking queries see it.
		n := a.Copy()
		n.Pending = p.Reason
		if e := w.insert(TableApps, n); e != nil {
			return e
		}
		if e := w.noteAppStatus(a.Tenant, a.Name); e != nil {
			return e
		}
	}
	for _, rv := range r.Revert {
		if e := w.revert(rv, r.Time); e != nil {
			return e
		}
	}
	for _, id := range r.Drained {
		h, err := w.snap().Host(nil, id)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		if h == nil || h.State != HostDraining {
			continue
		}
		if e := w.hostState(&HostStateRequest{ID: id, State: HostDrained, Disconnected: h.Disconnected, Reason: "no instance left", Time: r.Time}); e != nil {
			return e
		}
	}
	return w.bumpAssignments(touched)
}

// revert undoes a failed update; a revert planned against an app that
// moved on since is skipped.
func (w *writer) revert(rv AppRevert, at time.Time) *Error {
	a, e := w.app(rv.Tenant, rv.App)
	if e != nil {
		return e
	}
	if a == nil || a.Version != rv.From {
		return nil
	}
	v, err := w.snap().AppVersion(nil, rv.Tenant, rv.App, rv.To)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if v == nil {
		return nil
	}
	n := a.Copy()
	setVersionFields(&n.Spec, v.Spec)
	n.Version, n.UpdatedAt, n.CanaryFrom = v.Version, at, 0
	if e := w.replaceApp(a, n); e != nil {
		return e
	}
	msg := fmt.Sprintf("app %s: version %d failed (%s); back to version %d", rv.App, rv.From, rv.Reason, rv.To)
	if e := w.record(n, DeployRevert, rv.From, msg, at); e != nil {
		return e
	}
	return w.event(Event{Time: at, Type: "app.reverted", Subject: rv.Tenant + "/" + rv.App, Message: msg})
}

// bumpAssignments marks the assignments of hosts as changed at this index,
// so their agents get the new set.
func (w *writer) bumpAssignments(hosts map[string]bool) *Error {
	// Written by flushAlloc at the end of the command, with the
	// allocation: one write of each host, not two.
	if w.bump == nil {
		w.bump = make(map[string]bool, len(hosts))
	}
	for id := range hosts {
		w.bump[id] = true
	}
	return nil
}

func (w *writer) instanceUpdate(r *InstanceUpdateRequest) *Error {
	snap := w.snap()
	for _, u := range r.Updates {
		switch u.State {
		case InstancePending, InstanceStarting, InstanceRunning, InstanceStopping, InstanceStopped, InstanceFailed:
		default:
			return &Error{Kind: KindInvalid, Field: "state", Msg: fmt.Sprintf("unknown instance state %q", u.State)}
		}
		if !validReason(u.Reason) {
			return &Error{Kind: KindInvalid, Field: "reason", Msg: fmt.Sprintf("unknown instance reason %q", u.Reason)}
		}
		// An agent reports the instances on its own host only.
		i, err := snap.instanceOn(nil, r.Host, u.ID)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		if i == nil {
			continue
		}
		if i.Desired == DesiredStop && u.State == InstanceStopped {
			if e := w.dropInstance(i); e != nil {
				return e
			}
			continue
		}
		n := i.Copy()
		for k := i.Restarts; k < u.Restarts && k < i.Restarts+len(n.RecentRestarts); k++ {
			copy(n.RecentRestarts[1:], n.RecentRestarts[:])
			n.RecentRestarts[0] = r.Time.UnixNano()
		}
		n.State, n.Ready, n.Address, n.Restarts, n.Message, n.Reason, n.UpdatedAt = u.State, u.Ready, u.Address, u.Restarts, u.Message, u.Reason, r.Time
		if n.Desired == DesiredStop && n.State == InstanceRunning {
			n.State = InstanceStopping
		}
		if *n == *i {
			continue
		}
		w.meta(&n.Meta, &i.Meta)
		if e := w.putInstance(i, n); e != nil {
			return e
		}
		if n.Reason != "" && n.Reason != i.Reason && n.Desired == DesiredRun {
			if e := w.notice(n, r.Time); e != nil {
				return e
			}
		}
		if u.State != i.State && (u.State == InstanceFailed || (i.State == InstanceRunning && u.State != InstanceStopping)) {
			msg := fmt.Sprintf("instance %s of %s v%d: %s -> %s", i.ID, i.App, i.Version, i.State, u.State)
			if u.Message != "" {
				msg += ": " + u.Message
			}
			if e := w.event(Event{Time: r.Time, Type: "instance.state", Subject: i.ID, Message: msg}); e != nil {
				return e
			}
		}
	}
	return nil
}

// dropHostInstances removes the instances of a removed host.
func (w *writer) dropHostInstances(host string) *Error {
	is, err := w.snap().HostInstances(nil, host)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, i := range is {
		if e := w.dropInstance(i); e != nil {
			return e
		}
	}
	return nil
}

// stopAppInstances asks every instance of a deleted app to stop.
func (w *writer) stopAppInstances(tenant, app string, at time.Time) *Error {
	is, err := w.snap().AppInstances(nil, tenant, app)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	touched := map[string]bool{}
	for _, i := range is {
		if i.Desired == DesiredStop {
			continue
		}
		n := i.Copy()
		n.Desired, n.StopReason, n.UpdatedAt = DesiredStop, "app deleted", at
		w.meta(&n.Meta, &i.Meta)
		if e := w.putInstance(i, n); e != nil {
			return e
		}
		touched[i.Host] = true
	}
	return w.bumpAssignments(touched)
}

// putInstance writes n over old (nil for a new instance) and counts the
// change in its host's allocation.
func (w *writer) putInstance(old, n *Instance) *Error {
	w.allocate(old, -1)
	w.allocate(n, 1)
	if e := w.meter(old, n); e != nil {
		return e
	}
	w.noteAppChange(n.Tenant, n.App)
	return w.setInstance(old, n)
}

// dropInstance deletes an instance and releases what it held.
func (w *writer) dropInstance(old *Instance) *Error {
	w.allocate(old, -1)
	if e := w.meter(old, nil); e != nil {
		return e
	}
	w.noteAppChange(old.Tenant, old.App)
	return w.setInstance(old, nil)
}

// allocate adds (sign 1) or removes (sign -1) what a live instance holds
// to its host's allocation, as a delta flushAlloc writes at the end of the
// command.
func (w *writer) allocate(i *Instance, sign int) {
	if i == nil || !i.Live() {
		return
	}
	if w.alloc == nil {
		w.alloc = map[string][2]int{}
	}
	d := w.alloc[i.Host]
	d[0] += sign * i.CPU
	d[1] += sign * i.Memory
	w.alloc[i.Host] = d
}

// flushAlloc writes the command's allocation changes and assignment
// bumps into the hosts, each host once. Allocation is status, not spec:
// a host's modify index moves with a bump only.
func (w *writer) flushAlloc() *Error {
	for id, d := range w.alloc {
		if d == [2]int{} && !w.bump[id] {
			continue
		}
		if e := w.writeHostAlloc(id, d, w.bump[id]); e != nil {
			return e
		}
	}
	for id := range w.bump {
		if _, done := w.alloc[id]; !done {
			if e := w.writeHostAlloc(id, [2]int{}, true); e != nil {
				return e
			}
		}
	}
	return nil
}

// writeHostAlloc adds d to a host's allocation and, when bump is set,
// marks its assignments as changed at this index.
func (w *writer) writeHostAlloc(id string, d [2]int, bump bool) *Error {
	h, err := w.snap().Host(nil, id)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if h == nil {
		return nil
	}
	n := h.Copy()
	n.AllocCPU += d[0]
	n.AllocMemory += d[1]
	if bump {
		n.AssignIndex = w.index
		w.meta(&n.Meta, &h.Meta)
	}
	return w.insert(TableHosts, n)
}
