package series

import (
	"context"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/cluster/clustertest"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// TestRelayKeepsSeriesOnTheLeader: a follower's agents' samples reach
// the leader's series within a relay round, and a read on the follower is
// answered from the leader's.
func TestRelayKeepsSeriesOnTheLeader(t *testing.T) {
	leader := NewService(clustertest.Leader{}, nil)
	follower := NewService(clustertest.Follower{Handlers: leader.Handlers}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- leader.Run(ctx) }()
	go func() { done <- follower.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		<-done
	}()
	now := time.Now()
	follower.Report(pki.AgentIdentity{HostID: "h1"}, &wire.MetricsReport{UnixMs: now.UnixMilli(),
		Instances: []*wire.InstanceMetrics{{Tenant: "acme", App: "web", Instance: "web-1", MemoryWorkingSet: 64 << 20}}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		ss, err := follower.Query(context.Background(), "acme/web", "", now.Add(-time.Minute), now.Add(time.Minute), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) == 1 && ss[0].ID == "web-1" && ss[0].Host == "h1" && len(ss[0].Metrics[MemoryWorkingSet]) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower reads %+v, want web-1 on h1", ss)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
