package gateway

import (
	"fmt"
	"testing"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// BenchmarkPeerReport: what one agent's gossip report costs the hub node
// it is connected to, in a pool of 10,000 hosts, by the number of peers it
// vouches for: 4 (the ring an agent reports on now) or 512 (what every
// agent reported before). Multiply by agents / 2 s for a node's load.
//
//	go test -run '^$' -bench PeerReport ./hub/gateway
func BenchmarkPeerReport(b *testing.B) {
	const hosts = 10000
	st := statetest.New(b)
	st.Pool("p", "dc1")
	for i := range hosts {
		st.Host(fmt.Sprintf("h%05d", i), "p", 4, 16384, nil)
	}
	g, err := New(Config{Addr: "127.0.0.1:0", Store: st.Store(), Cluster: &flakyCluster{st: st}})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	from := pki.AgentIdentity{HostID: "h00000", Pool: "p"}
	for _, peers := range []int{4, 512} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) {
			r := &wire.GossipReport{}
			for i := 1; i <= peers; i++ {
				r.Peers = append(r.Peers, &wire.PeerView{HostId: fmt.Sprintf("h%05d", i*7%hosts), State: "alive"})
			}
			b.ReportAllocs()
			for b.Loop() {
				g.peerReport(from, r)
			}
			if len(g.peers) != peers {
				b.Fatalf("%d hosts vouched for, want %d", len(g.peers), peers)
			}
			clear(g.peers)
		})
	}
}

// BenchmarkPoolPeers: the pool peers a heartbeat ack names (an agent's
// first five, then every tenth), in pools of 1,000 and 10,000 hosts that
// all run gossip. Multiply by agents / 10 s for a node's load.
//
//	go test -run '^$' -bench PoolPeers ./hub/gateway
func BenchmarkPoolPeers(b *testing.B) {
	for _, hosts := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) {
			st := statetest.New(b)
			st.Pool("p", "dc1")
			for i := range hosts {
				id := fmt.Sprintf("h%05d", i)
				st.Host(id, "p", 4, 16384, nil)
				st.Must(state.HostInventoryType, &state.HostInventoryRequest{ID: id, Inventory: state.Inventory{CPUs: 4, MemoryBytes: 16 << 30,
					GossipAddr: fmt.Sprintf("10.0.%d.%d:7484", i/250, i%250)}})
			}
			g, err := New(Config{Addr: "127.0.0.1:0", Store: st.Store(), Cluster: &flakyCluster{st: st}})
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			from := pki.AgentIdentity{HostID: "h00007", Pool: "p"}
			b.ReportAllocs()
			for b.Loop() {
				if peers := g.poolPeers(from); len(peers) != maxJoinPeers {
					b.Fatalf("%d peers, want %d", len(peers), maxJoinPeers)
				}
			}
		})
	}
}
