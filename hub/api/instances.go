package api

import (
	"net/http"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// appInstances lists an app's instances. Its index is what the answer
// depends on, not the tables' indexes: the app's own record, the writes
// of its instances (state.AppInstancesIndex), the state of the hosts
// they are on (state.HostIndex) and the drills. So a watcher of one app
// is answered when that app's instances change, not on every write of
// any app's or every placement on a host, and an answer reads only the
// hosts of its own instances.
func (s *Server) appInstances(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, false)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		return s.instances.get(ws, snap, tenant, name, appInstancesAt)
	})
}

// appInstancesAt builds the answer of appInstances from one snapshot.
//
// It does not watch the app's record: the list does not show it (what
// an instance's host can run follows the instance's own version), and a
// write of the app alone (a new count, say, before anything is placed)
// would wake every watcher for an answer they hold. Its deletion moves
// its watch row, which is watched.
func appInstancesAt(ws memdb.WatchSet, snap *state.Snapshot, tenant, name string) ([]apitypes.Instance, uint64, error) {
	a, err := snap.App(nil, tenant, name)
	if err != nil {
		return nil, 0, err
	}
	if a == nil {
		return nil, 0, errNotFound("app", name)
	}
	idx := max(a.ModifyIndex, snap.AppInstancesIndex(ws, a.Tenant, a.Name))
	is, err := snap.AppInstances(ws, a.Tenant, a.Name)
	if err != nil {
		return nil, 0, err
	}
	cut, err := cutOff(ws, snap)
	if err != nil {
		return nil, 0, err
	}
	idx = max(idx, snap.Index(state.TableDrills))
	// One channel for every host's state, not one per host: an app on 50
	// hosts would otherwise wait on 50 channels.
	if err := snap.WatchHosts(ws); err != nil {
		return nil, 0, err
	}
	out := make([]apitypes.Instance, 0, len(is))
	for _, i := range is {
		name, reason, lost := "", i.Reason, cut[i.Host]
		// Not the host's record, which every placement on it
		// rewrites: its watch index, which moves with its state,
		// inventory and existence (watched above).
		idx = max(idx, snap.HostIndex(nil, i.Host))
		h, err := snap.Host(nil, i.Host)
		if err != nil {
			return nil, 0, err
		}
		if h != nil {
			name, lost = h.Name, lost || h.State == state.HostDown
			if reason == "" && i.Desired == state.DesiredRun && i.State == state.InstancePending && !hostRuns(snap, a, i, h) {
				reason = apitypes.ReasonNoDriver
			}
		}
		o := apitypes.Instance{ID: i.ID, Host: i.Host, HostName: name, Version: i.Version, State: i.State, Ready: i.Ready,
			Address: i.Address, Restarts: i.Restarts, Desired: i.Desired, Message: i.Message, Reason: reason, CreatedAt: i.CreatedAt}
		if lost && i.State != state.InstanceStopped {
			// What the agent last said no longer holds: its host is
			// down or cut off. Stopped stays stopped.
			o.State, o.Ready, o.Reason = apitypes.InstanceLost, false, apitypes.ReasonHostLost
		}
		out = append(out, o)
	}
	return out, idx, nil
}

// cutOff returns the hosts that a running cutoff drill cuts off (as
// state.Snapshot.LostHosts counts them, without reading every host).
func cutOff(ws memdb.WatchSet, snap *state.Snapshot) (map[string]bool, error) {
	ds, err := snap.Drills(ws)
	if err != nil {
		return nil, err
	}
	cut := map[string]bool{}
	for _, d := range ds {
		if d.State == state.DrillRunning && d.Mode == state.DrillCutoff {
			for _, h := range d.Hosts {
				cut[h] = true
			}
		}
	}
	return cut, nil
}
