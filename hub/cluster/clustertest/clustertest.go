// Package clustertest stands in for the cluster in tests of the services
// that call other nodes: a follower whose calls reach a leader's handlers
// in process, a leader that calls no one, and Serve, which answers a call
// through a node's handlers in memory.
package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/wharf-platform/wharf/hub/cluster"
)

// Follower is a follower whose CallLeader serves the call with the
// leader's handlers (Handlers), as the cluster's internal RPC would.
type Follower struct {
	Handlers func() []cluster.Handler
}

// IsLeader is false.
func (Follower) IsLeader() bool { return false }

// CallLeader serves name with the leader's handler of that name.
func (f Follower) CallLeader(ctx context.Context, name string, body []byte) ([]byte, error) {
	return Serve(ctx, f.Handlers(), name, body)
}

// Serve answers a call of the RPC name with body through the handler of
// that name among handlers, in memory, as the cluster's internal RPC
// would: its answer's body, or an error for a status other than 200 or
// an RPC none of them serves.
func Serve(ctx context.Context, handlers []cluster.Handler, name string, body []byte) ([]byte, error) {
	for _, h := range handlers {
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

// Leader is the leader: it has no one to call.
type Leader struct{}

// IsLeader is true.
func (Leader) IsLeader() bool { return true }

// CallLeader fails: the leader calls no one.
func (Leader) CallLeader(context.Context, string, []byte) ([]byte, error) {
	return nil, fmt.Errorf("the leader calls no one")
}
