package liveness

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/gateway"
)

type fixedObserver struct{ o gateway.Observations }

func (f fixedObserver) Observe() gateway.Observations { return f.o }

// fakeCluster leads or not, and delivers the reports it is given to the
// leader's tracker through the RPC's encoding, counting them.
type fakeCluster struct {
	leader bool
	to     *Tracker
	mu     sync.Mutex
	calls  int
}

func (c *fakeCluster) IsLeader() bool { return c.leader }

func (c *fakeCluster) CallLeader(_ context.Context, name string, body []byte) ([]byte, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	var r Report
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	c.to.Observe(r)
	return []byte("{}"), nil
}

// TestReporterLocalWhileLeading: a node that leads gives its own
// observations to its tracker directly; a follower sends them to the
// leader's over the RPC. Either way the leader's tracker learns the
// heartbeat.
func TestReporterLocalWhileLeading(t *testing.T) {
	for _, leading := range []bool{true, false} {
		tr := New(Config{SuspectAfter: time.Second, DownAfter: time.Hour})
		cl := &fakeCluster{leader: leading, to: tr}
		r := &Reporter{Node: "n1", Gateway: fixedObserver{gateway.Observations{HeartbeatAges: map[string]int64{"h1": 100}}},
			Cluster: cl, Tracker: tr, Interval: 5 * time.Millisecond}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		deadline := time.Now().Add(5 * time.Second)
		for tr.Info("h1").HubNode != "n1" && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if tr.Info("h1").HubNode != "n1" {
			t.Fatalf("leading=%v: the tracker never heard of h1", leading)
		}
		if cl.calls != 0 && leading || cl.calls == 0 && !leading {
			t.Fatalf("leading=%v: %d reports through the RPC", leading, cl.calls)
		}
	}
}
