package logs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/cluster/clustertest"
	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// memPeers joins services in memory: each address is one service's RPCs,
// served through the same handlers the cluster registers.
type memPeers struct {
	self  string
	nodes map[string]*Service
}

func (p memPeers) RaftAddr() string { return p.self }
func (p memPeers) Servers() []string {
	out := []string{}
	for a := range p.nodes {
		out = append(out, a)
	}
	return out
}
func (p memPeers) Members() []cluster.Member { return nil }
func (p memPeers) CallNode(ctx context.Context, addr, name string, body []byte) ([]byte, error) {
	return clustertest.Serve(ctx, p.nodes[addr].Handlers(), name, body)
}

type noEvents struct{}

// logBytes counts metered log bytes per "tenant/app".
type logBytes map[string]int64

func (b logBytes) LogBytes(tenant, app string, n int64) { b[tenant+"/"+app] += n }

func (noEvents) Record(context.Context, state.Event) {}

// TestAcceptKeepsReplicatesAndReads: a batch taken on node a is kept there
// as primary, copied to node b before the ack, lines of instances the agent
// may not speak for and invalid lines are refused, and a read through
// either node sees each line once.
func TestAcceptKeepsReplicatesAndReads(t *testing.T) {
	st := statetest.New(t)
	st.App(apitypes.AppSpec{Name: "web", Image: "i", Instances: new(int)})
	nodes := map[string]*Service{}
	stores := map[string]*logstore.Store{}
	metered := logBytes{}
	for _, a := range []string{"a", "b"} {
		s, err := logstore.Open(logstore.Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[a] = s
		nodes[a] = New(Config{State: st.Store(), Store: s, Peers: memPeers{self: a, nodes: nodes}, Events: noEvents{}, Usage: metered})
	}
	now := time.Now().UnixNano()
	b := &wire.LogBatch{Sources: []string{"acme/web/web-1", "acme/other/x-1", "bad"}, Lines: []*wire.LogLine{
		{Source: 0, Stream: "stdout", Seq: 1, UnixNano: now, Text: []byte("one")},
		{Source: 0, Stream: "stdout", Seq: 2, UnixNano: now + 1, Text: []byte("two")},
		{Source: 0, Stream: strings.Repeat("s", logstore.MaxNameBytes+1), Seq: 3, UnixNano: now + 2, Text: []byte("bad stream")},
		{Source: 1, Stream: "stdout", Seq: 1, UnixNano: now, Text: []byte("not this agent's")},
		{Source: 2, Stream: "stdout", Seq: 1, UnixNano: now, Text: []byte("no such source")},
	}}
	if err := nodes["a"].Accept(context.Background(), pki.AgentIdentity{HostID: "h1"}, b); err != nil {
		t.Fatal(err)
	}
	// The lines stored are metered once, on the node that took them: a
	// batch sent again stores (and meters) nothing more.
	if err := nodes["a"].Accept(context.Background(), pki.AgentIdentity{HostID: "h1"}, b); err != nil {
		t.Fatal(err)
	}
	if len(metered) != 1 || metered["acme/web"] != int64(len("one")+len("two")) {
		t.Fatalf("metered log bytes %v, want acme/web 6", metered)
	}
	for a, want := range map[string]bool{"a": true, "b": false} {
		recs, _, err := stores[a].Query(logstore.Query{Tenant: "acme", App: "web", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || recs[0].Line != "one" || recs[1].Line != "two" || recs[0].Primary != want {
			t.Fatalf("node %s holds %+v, want one and two (primary %v)", a, recs, want)
		}
	}
	for _, a := range []string{"a", "b"} {
		var got []string
		err := nodes[a].Read(context.Background(), apitypes.LogQuery{Tenant: "acme", App: "web"}, func(ls []apitypes.LogLine, _ bool) error {
			for _, l := range ls {
				got = append(got, l.Line)
			}
			return nil
		})
		if err != nil || strings.Join(got, ",") != "one,two" {
			t.Fatalf("read on %s: %v %v", a, got, err)
		}
	}
	// A copy whose source does not parse is the sender's fault.
	if _, err := replicateRPC.Call(context.Background(), memPeers{nodes: nodes}, "b", &wire.LogBatch{Sources: []string{"x/y"},
		Lines: []*wire.LogLine{{Source: 0, Seq: 1, UnixNano: now}}}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("bad copy: %v", err)
	}
}
