package provision

import (
	"context"
	"fmt"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

// machine moves one machine along its life: creating → booting → ready →
// draining → deleting → removed, or failed. Store writes happen here;
// cloud calls are started in the background.
func (p *Provisioner) machine(ctx context.Context, x *index, m *state.Machine, now time.Time) {
	pool := x.pools[m.Pool]
	enrolled := m.Host != "" || x.hostOf[m.ID] != nil
	switch m.State {
	case state.MachineCreating, state.MachineBooting:
		switch {
		case enrolled:
			p.set(ctx, m, state.MachineReady, "", now)
		case pool == nil:
			p.set(ctx, m, state.MachineDeleting, "its pool was deleted", now)
		case pool.Provision == nil && m.State == state.MachineCreating:
			p.set(ctx, m, state.MachineDeleting, "its pool no longer provisions machines", now)
		case m.State == state.MachineCreating:
			if err := p.refused(m.Provider, now); err != nil {
				p.set(ctx, m, state.MachineFailed, err.Error(), now)
				return
			}
			p.startCreate(ctx, x, m, pool)
		case now.Sub(m.StateSince) >= p.bootTimeout(pool):
			why := fmt.Sprintf("its agent did not enroll within %v", p.bootTimeout(pool))
			if p.set(ctx, m, state.MachineDeleting, why, now) {
				p.tell(ctx, pool.Name, pool.Name, "boot-timeout", "provision.failed",
					fmt.Sprintf("pool %s: machine %s (%s) is replaced: %s", pool.Name, m.ID, m.ProviderID, why))
			}
		}
	case state.MachineReady:
		switch {
		case pool == nil:
			p.set(ctx, m, state.MachineDraining, "its pool was deleted", now)
		case x.hostOf[m.ID] == nil:
			// Its host was removed: the machine has no use left.
			p.set(ctx, m, state.MachineDeleting, "its host was removed", now)
		}
	case state.MachineDraining:
		p.drain(ctx, x, m, now)
	case state.MachineDeleting:
		p.startDelete(ctx, x, m)
	case state.MachineFailed:
		if pool == nil {
			p.set(ctx, m, state.MachineDeleting, m.Error, now)
		}
	}
}

// drain waits for a draining machine's host to be drained (an admin's
// DELETE of the host, or a scale-down), then has the machine deleted.
func (p *Provisioner) drain(ctx context.Context, x *index, m *state.Machine, now time.Time) {
	h := x.hostOf[m.ID]
	switch {
	case h == nil || h.State == state.HostDrained || h.State == state.HostDown:
		p.set(ctx, m, state.MachineDeleting, m.Error, now)
	case now.Sub(m.StateSince) >= p.cfg.DrainTimeout:
		p.set(ctx, m, state.MachineDeleting, fmt.Sprintf("its host did not drain within %v", p.cfg.DrainTimeout), now)
	case h.State != state.HostDraining:
		p.write(ctx, "drain host "+h.ID, func(ctx context.Context) error { return p.cfg.Store.DrainHost(ctx, h.ID) })
	}
}

func (p *Provisioner) bootTimeout(pool *state.Pool) time.Duration {
	if pool.Provision != nil && pool.Provision.BootTimeout > 0 {
		return pool.Provision.BootTimeout.D()
	}
	return p.cfg.DefaultBootTimeout
}

func (p *Provisioner) scaleDownAfter(pool *state.Pool) time.Duration {
	if pool.Provision.ScaleDownAfter > 0 {
		return pool.Provision.ScaleDownAfter.D()
	}
	return p.cfg.DefaultScaleDownAfter
}

// live reports whether a machine is, or is becoming, a host of its pool.
func live(m *state.Machine) bool {
	switch m.State {
	case state.MachineCreating, state.MachineBooting, state.MachineReady:
		return true
	}
	return false
}

// failurePaused reports whether a failed machine still pauses its pool's
// growth: it failed after the pool's and the account's last change, less
// than FailurePause ago. The machine's ModifyIndex is the index that
// failed it (nothing changes a failed machine but its removal).
func (p *Provisioner) failurePaused(m *state.Machine, pool *state.Pool, acct *state.ProviderAccount, now time.Time) bool {
	if m.State != state.MachineFailed {
		return false
	}
	if m.ModifyIndex <= pool.ModifyIndex || acct != nil && m.ModifyIndex <= acct.ModifyIndex {
		return false
	}
	return now.Sub(m.StateSince) < p.cfg.FailurePause
}
