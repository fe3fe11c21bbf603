package traffic

import (
	"context"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/cluster/clustertest"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// TestRelaySumsOnTheLeader: a follower's routers' counts reach the
// leader's sums within a relay round, and a read on the follower is
// answered from the leader's.
func TestRelaySumsOnTheLeader(t *testing.T) {
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
	follower.Report(pki.AgentIdentity{HostID: "h1"}, &wire.AccessStats{Seconds: []*wire.AppSecond{{App: "acme/web", Unix: now, Requests: 7}}})
	leader.Report(pki.AgentIdentity{HostID: "h2"}, &wire.AccessStats{Seconds: []*wire.AppSecond{{App: "acme/web", Unix: now, Requests: 5}}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		secs, err := follower.Since(context.Background(), "acme/web", time.Unix(now-1, 0))
		if err != nil {
			t.Fatal(err)
		}
		if len(secs) == 1 && secs[0].Requests == 12 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower reads %+v, want 12 requests", secs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
