package traffic

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// toLeader plays the cluster for a follower: it calls the leader's
// handlers as the internal RPC would.
type toLeader struct{ leader *Service }

func (toLeader) IsLeader() bool { return false }
func (c toLeader) CallLeader(ctx context.Context, name string, body []byte) ([]byte, error) {
	for _, h := range c.leader.Handlers() {
		if h.Name == name {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "POST", "/x/"+name, bytes.NewReader(body)))
			if rec.Code != 200 {
				return nil, fmt.Errorf("%s: %d %s", name, rec.Code, rec.Body)
			}
			return rec.Body.Bytes(), nil
		}
	}
	return nil, fmt.Errorf("no rpc %s", name)
}

type leading struct{}

func (leading) IsLeader() bool { return true }
func (leading) CallLeader(context.Context, string, []byte) ([]byte, error) {
	return nil, fmt.Errorf("the leader calls no one")
}

// TestRelaySumsOnTheLeader: a follower's routers' counts reach the
// leader's sums within a relay round, and a read on the follower is
// answered from the leader's.
func TestRelaySumsOnTheLeader(t *testing.T) {
	leader := NewService(leading{}, nil)
	follower := NewService(toLeader{leader}, nil)
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
