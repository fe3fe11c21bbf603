package hub

import (
	"testing"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/planner"
)

// TestLeaderLeaseFitsTheFencing checks the production Raft timings
// against what fenced failover assumes. A leader acks heartbeats as lease
// renewals until it steps down, which it does once it has not heard from
// a quorum for the leader lease, checked about once a lease: so a leader
// cut off from the others may renew up to about two leases after the
// cut, and QuorumWindow, the time the replacement waits for such late
// renewals, must cover that. Raft also refuses a lease longer than its
// heartbeat timeout. And the lease must not be shorter than the time a
// saturated node's goroutines wait for a CPU (hundreds of milliseconds in
// the churn benchmark), or a busy leader steps down with no one else
// asking for the office.
func TestLeaderLeaseFitsTheFencing(t *testing.T) {
	d := cluster.DefaultConfig()
	if 2*d.LeaderLeaseTimeout >= planner.QuorumWindow {
		t.Errorf("leader lease %s: a cut-off leader may renew for ~%s, past the fencing's quorum window %s", d.LeaderLeaseTimeout, 2*d.LeaderLeaseTimeout, planner.QuorumWindow)
	}
	if d.LeaderLeaseTimeout > d.HeartbeatTimeout {
		t.Errorf("leader lease %s is longer than the heartbeat timeout %s (Raft refuses it)", d.LeaderLeaseTimeout, d.HeartbeatTimeout)
	}
	if d.LeaderLeaseTimeout < d.HeartbeatTimeout {
		t.Errorf("leader lease %s is shorter than the heartbeat timeout %s: a leader waiting for a CPU that long steps down", d.LeaderLeaseTimeout, d.HeartbeatTimeout)
	}
}
