package scheduler

import (
	"errors"
	"fmt"
	"strings"
)

// ErrStalePlan is matched (with errors.Is) by the error Check returns: the
// plan was built on state that has changed under it.
var ErrStalePlan = errors.New("stale plan")

// ConflictError lists the placements of a plan that no longer fit the
// current state. The planner plans again from a fresh snapshot.
type ConflictError struct {
	BaseIndex, Index uint64 // the plan's and the state's
	Conflicts        []Conflict
}

// Conflict is one placement that no longer fits.
type Conflict struct {
	InstanceID string
	Host       string
	Reason     string
}

// Error lists the first few conflicts.
func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stale plan (built at index %d, state at %d): %s no longer fit", e.BaseIndex, e.Index, plural(len(e.Conflicts), "placement"))
	const shown = 5
	for i, c := range e.Conflicts {
		if i == shown {
			fmt.Fprintf(&b, "; and %d more", len(e.Conflicts)-shown)
			break
		}
		fmt.Fprintf(&b, "; %s on %s: %s", c.InstanceID, c.Host, c.Reason)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrStalePlan) true.
func (e *ConflictError) Is(target error) bool { return target == ErrStalePlan }

// Check verifies, at apply time, that every placement of plan still fits
// the current state st: its host exists and is ready, its id is unused,
// and the host's capacity holds it together with the plan's other
// placements there. It returns nil or a *ConflictError.
//
// This is the optimistic concurrency of the planner: plans are
// built on a snapshot and never applied blindly. Even when st.Index()
// equals plan.BaseIndex the placements are verified: the check costs a
// lookup per host and per placement, and a plan is only as good as the
// code that built it. Stops need no check: stopping what is already gone
// is harmless, and stops free no capacity for the same plan (see
// Scheduler.Plan).
func Check(st State, plan Plan) error {
	type hostUse struct {
		ok, down, ready  bool
		freeCPU, freeMem int
	}
	hosts := make(map[string]*hostUse)
	ids := make(map[string]struct{}, len(plan.Place))
	var conflicts []Conflict
	for _, pl := range plan.Place {
		bad := func(format string, args ...any) {
			conflicts = append(conflicts, Conflict{InstanceID: pl.InstanceID, Host: pl.Host, Reason: fmt.Sprintf(format, args...)})
		}
		if pl.InstanceID == "" {
			bad("empty instance id")
			continue
		}
		if _, dup := ids[pl.InstanceID]; dup {
			bad("instance id %q is used twice in the plan", pl.InstanceID)
			continue
		}
		ids[pl.InstanceID] = struct{}{}
		if st.InstanceExists(pl.InstanceID) {
			bad("instance id %q is taken", pl.InstanceID)
			continue
		}
		u := hosts[pl.Host]
		if u == nil {
			u = &hostUse{}
			if h, ok := st.Host(pl.Host); ok {
				u.ok, u.down, u.ready = true, h.Down, h.schedulable()
				u.freeCPU, u.freeMem = h.CPU-h.UsedCPU, h.Memory-h.UsedMemory
				for _, in := range st.HostInstances(pl.Host) {
					if !in.Terminal {
						u.freeCPU -= in.CPU
						u.freeMem -= in.Memory
					}
				}
			}
			hosts[pl.Host] = u
		}
		switch {
		case !u.ok:
			bad("host is gone")
		case u.down:
			bad("host is down")
		case !u.ready:
			bad("host is not ready")
		case !fits(u.freeCPU, u.freeMem, pl.CPU, pl.Memory):
			bad("no capacity: need %dm CPU/%d MB, %dm/%d MB free", pl.CPU, pl.Memory, max(u.freeCPU, 0), max(u.freeMem, 0))
		default:
			u.freeCPU -= pl.CPU
			u.freeMem -= pl.Memory
		}
	}
	if len(conflicts) > 0 {
		return &ConflictError{BaseIndex: plan.BaseIndex, Index: st.Index(), Conflicts: conflicts}
	}
	return nil
}
