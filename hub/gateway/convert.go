package gateway

import (
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// instanceState is the store's name of a state an agent reports; false for
// unspecified and for values this hub does not know (from a newer agent),
// which are not recorded.
func instanceState(s wire.InstanceState) (string, bool) {
	switch s {
	case wire.InstancePending:
		return state.InstancePending, true
	case wire.InstanceStarting:
		return state.InstanceStarting, true
	case wire.InstanceRunning:
		return state.InstanceRunning, true
	case wire.InstanceStopping:
		return state.InstanceStopping, true
	case wire.InstanceStopped:
		return state.InstanceStopped, true
	case wire.InstanceFailed:
		return state.InstanceFailed, true
	}
	return "", false
}
