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

// TestMeteredUsage: agents' usage reports are counted for metering, per
// tenant, app and hour, for apps that exist; a report committed through
// one node and sent again (its ack lost) through the same or another node
// counts once; log bytes are counted too.
func TestMeteredUsage(t *testing.T) {
	st := statetest.New(t)
	st.App(apitypes.AppSpec{Name: "web", Image: "web:1"})
	hour := time.Now().Unix() - time.Now().Unix()%3600
	ctx := context.Background()
	commit := &fsmApply{st: st}
	var nodes []*billing.Counter
	for _, name := range []string{"hub0", "hub1"} {
		c, err := billing.NewCounter(billing.CounterConfig{Node: name, State: st.Store(), Commit: commit})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, c)
	}
	report := &wire.UsageReport{Seq: 7, Counts: []*wire.UsageCount{
		{App: "acme/web", HourUnix: hour, Requests: 3, EgressBytes: 300},
		{App: "acme/web", HourUnix: hour + 1, Requests: 2, EgressBytes: 200}, // counts in the hour that holds it
		{App: "acme/nope", HourUnix: hour, Requests: 5, EgressBytes: 500},    // no such app
		{App: "garbage", HourUnix: hour, Requests: 5},
	}}
	// commit reports through node i and flushes its batch.
	commitVia := func(i int, r *wire.UsageReport) {
		t.Helper()
		errc := make(chan error, 1)
		go func() {
			errc <- meteredUsage{counter: nodes[i], state: st.Store()}.Commit(ctx, pki.AgentIdentity{HostID: "h1"}, r)
		}()
		waitPending(t, func() bool { return nodes[i].Pending() > 0 })
		if err := nodes[i].Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("commit via hub%d: %v", i, err)
		}
	}
	commitVia(0, report)
	commitVia(0, report) // the ack was lost: sent again to the same node
	commitVia(1, report) // and to another one
	meteredLogs{nodes[1]}.LogBytes("acme", "web", 42)
	if err := nodes[1].Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if seq, err := st.Store().Snapshot().UsageHostSeq("h1"); err != nil || seq != 7 {
		t.Fatalf("last report of h1: %d (%v), want 7", seq, err)
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
	// A report of nothing countable needs no commit.
	if err := (meteredUsage{counter: nodes[0], state: st.Store()}).Commit(ctx, pki.AgentIdentity{HostID: "h1"}, &wire.UsageReport{Seq: 8,
		Counts: []*wire.UsageCount{{App: "acme/nope", HourUnix: hour, Requests: 1}}}); err != nil {
		t.Fatal(err)
	}
}

// waitPending polls cond (a report reaching a counter) for up to 5 s.
func waitPending(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
