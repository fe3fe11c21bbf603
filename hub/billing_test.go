package hub

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wharf-platform/wharf/hub/billing"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

type sinkFunc func(*wire.AccessStats)

func (f sinkFunc) Report(_ pki.AgentIdentity, s *wire.AccessStats) { f(s) }

// fsmApply commits straight into a statetest store.
type fsmApply struct {
	st    *statetest.State
	index uint64
}

func (a *fsmApply) Apply(_ context.Context, msg []byte) (uint64, error) {
	a.index += 1000
	if r := a.st.FSM.Apply(&raft.Log{Index: a.index, Type: raft.LogCommand, Data: msg}); r != nil {
		return a.index, r.(error)
	}
	return a.index, nil
}

// TestMeteredAccess: routers' reports reach the traffic relay as they
// are and are counted for metering, per tenant and app, for apps that
// exist; log bytes are counted too.
func TestMeteredAccess(t *testing.T) {
	st := statetest.New(t)
	st.App(apitypes.AppSpec{Name: "web", Image: "web:1"})
	now := time.Now()
	counter, err := billing.NewCounter(billing.CounterConfig{Node: "hub0", State: st.Store(), Commit: &fsmApply{st: st}})
	if err != nil {
		t.Fatal(err)
	}
	relayed := 0
	m := meteredAccess{traffic: sinkFunc(func(s *wire.AccessStats) { relayed += len(s.Seconds) }), counter: counter, state: st.Store()}
	m.Report(pki.AgentIdentity{HostID: "h1"}, &wire.AccessStats{Seconds: []*wire.AppSecond{
		{App: "acme/web", Unix: now.Unix(), Requests: 3, BytesOut: 300},
		{App: "acme/web", Unix: now.Unix() + 1, Requests: 2, BytesOut: 200},
		{App: "acme/nope", Unix: now.Unix(), Requests: 5, BytesOut: 500}, // no such app
		{App: "garbage", Unix: now.Unix(), Requests: 5},
	}})
	meteredLogs{counter}.LogBytes("acme", "web", 42)
	if relayed != 4 {
		t.Fatalf("%d seconds relayed, want all 4", relayed)
	}
	if err := counter.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := st.Store().Snapshot().OpenUsage("", time.Now().Unix(), 3600)
	if err != nil {
		t.Fatal(err)
	}
	var got state.UsageRow
	for _, r := range rows {
		if r.Tenant != "acme" || r.App != "web" {
			t.Fatalf("usage of %s/%s counted", r.Tenant, r.App)
		}
		got.Requests += r.Requests
		got.EgressBytes += r.EgressBytes
		got.LogBytes += r.LogBytes
	}
	if got.Requests != 5 || got.EgressBytes != 500 || got.LogBytes != 42 {
		t.Fatalf("counted %+v, want 5 requests, 500 egress bytes, 42 log bytes", got)
	}
}
