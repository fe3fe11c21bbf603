package gateway

import (
	"fmt"
	"testing"

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
