package traffic

import (
	"context"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/cluster/clustertest"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// TestBurstReachesTheLeaderAtOnce: a router's signal taken on a follower
// reaches the leader's Bursts within moments, not with the next
// once-a-second relay round of counts; one taken on the leader goes
// straight there.
func TestBurstReachesTheLeaderAtOnce(t *testing.T) {
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
	now := time.Now().Unix()
	start := time.Now()
	follower.Signal(pki.AgentIdentity{HostID: "h1"}, &wire.RateSignal{Apps: []*wire.AppRate{{App: "acme/web", Unix: now, Requests: 26, ElapsedMs: 250, SignalRps: 40}}})
	select {
	case b := <-leader.Bursts():
		if took := time.Since(start); took > 900*time.Millisecond {
			t.Fatalf("the burst took %s: it waited for a relay round", took)
		}
		if b != (Burst{App: "acme/web", Host: "h1", Unix: now, Requests: 26, ElapsedMs: 250, SignalRps: 40}) || b.Rate() != 100 {
			t.Fatalf("burst %+v (rate %v)", b, b.Rate())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no burst on the leader")
	}
	leader.Signal(pki.AgentIdentity{HostID: "h2"}, &wire.RateSignal{Apps: []*wire.AppRate{{App: "acme/web", Unix: now, Requests: 3, ElapsedMs: 10, SignalRps: 1}}})
	select {
	case b := <-leader.Bursts():
		if b.Host != "h2" || b.Rate() != 8 { // 2 gaps over at least a quarter second
			t.Fatalf("burst %+v (rate %v)", b, b.Rate())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no burst from the leader's own router")
	}
}
