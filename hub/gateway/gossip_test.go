package gateway

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/pki"
)

// TestPoolPeers: the peers named to an agent are distinct gossiping hosts
// of its pool other than itself and not down; a pool's list is read again
// from the store once the hosts changed and it is a second old.
func TestPoolPeers(t *testing.T) {
	st := statetest.New(t)
	st.Pool("p", "dc1")
	st.Pool("q", "dc1")
	gossiping := func(id, pool string) {
		st.Host(id, pool, 4, 1024, nil)
		st.Must(state.HostInventoryType, &state.HostInventoryRequest{ID: id, Inventory: state.Inventory{CPUs: 4, MemoryBytes: 1 << 30, GossipAddr: id + ":7484"}})
	}
	var clock atomic.Int64
	now := func() time.Time { return statetest.T0.Add(time.Duration(clock.Load())) }
	g, err := New(Config{Addr: "127.0.0.1:0", Store: st.Store(), Cluster: &flakyCluster{st: st}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	self := pki.AgentIdentity{HostID: "p-self", Pool: "p"}
	st.Host("p-quiet", "p", 4, 1024, nil) // runs no gossip
	gossiping("q-1", "q")
	gossiping("p-down", "p")
	st.Must(state.HostStateType, &state.HostStateRequest{ID: "p-down", State: state.HostDown, Time: statetest.T0})
	if peers := g.poolPeers(self); peers != nil {
		t.Fatalf("an unknown host was named peers %v", peers)
	}
	gossiping("p-self", "p")
	check := func(eligible []string) {
		t.Helper()
		for range 50 {
			peers := g.poolPeers(self)
			if len(peers) != min(len(eligible), maxJoinPeers) {
				t.Fatalf("%d peers %v, want %d of %v", len(peers), peers, min(len(eligible), maxJoinPeers), eligible)
			}
			for i, p := range peers {
				if !slices.Contains(eligible, p) || slices.Contains(peers[:i], p) {
					t.Fatalf("peers %v: %s is not one of %v, or named twice", peers, p, eligible)
				}
			}
		}
	}
	check(nil)
	var eligible []string
	for i := range 3 {
		gossiping(fmt.Sprintf("p-%d", i), "p")
		eligible = append(eligible, fmt.Sprintf("p-%d:7484", i))
	}
	clock.Add(int64(time.Second))
	check(eligible) // a small pool
	for i := 3; i < 40; i++ {
		gossiping(fmt.Sprintf("p-%d", i), "p")
	}
	check(eligible) // the hosts changed, and the list is not a second old
	for i := 3; i < 40; i++ {
		eligible = append(eligible, fmt.Sprintf("p-%d:7484", i))
	}
	clock.Add(int64(time.Second))
	check(eligible) // a large one
	seen := map[string]bool{}
	for range 200 {
		for _, p := range g.poolPeers(self) {
			seen[p] = true
		}
	}
	if len(seen) < 30 {
		t.Fatalf("200 picks named %d of %d peers", len(seen), len(eligible))
	}
}
