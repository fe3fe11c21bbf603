package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// TestRouteDeltasRebuildTheWholeTable: through apps created, placed,
// made ready, stopped and deleted, routes and certificates added and
// removed, an agent of protocol 5 and up that applies what it is sent
// serves, after each change, exactly the pool's whole table; after the
// first table it is sent deltas, each smaller than the whole table. An
// agent of protocol 4 is sent whole tables only.
//
// With a frame limit that most tables and some deltas pass, they go in
// parts: an agent of protocol 6 joins them and still serves exactly the
// whole table after each change; older agents are sent no part.
func TestRouteDeltasRebuildTheWholeTable(t *testing.T) {
	t.Run("one frame", func(t *testing.T) {
		followTables(t, 0, []uint32{wire.ProtocolRouteParts, wire.ProtocolRouteDeltas, wire.ProtocolRouteDeltas - 1})
	})
	t.Run("in parts", func(t *testing.T) {
		followTables(t, 400, []uint32{wire.ProtocolRouteParts})
	})
}

// followTables runs the changes of TestRouteDeltasRebuildTheWholeTable
// with the agents' frame limit at limit (0: the default), checking that
// agents of the exact protocols serve the pool's table after each.
func followTables(t *testing.T, limit int, exact []uint32) {
	st, g := tenApps(t)
	if limit > 0 {
		g.maxTableFrame = limit
	}
	st.Host("h2", "p", 64, 1<<16, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fail := func(err error) { t.Errorf("push failed: %v", err) }
	recs := map[uint32]*recorder{}
	for _, protocol := range []uint32{wire.ProtocolRouteParts, wire.ProtocolRouteDeltas, wire.ProtocolRouteDeltas - 1} {
		recs[protocol] = &recorder{}
		defer g.startPush(ctx, wire.NewStream(recs[protocol], 0), pki.AgentIdentity{HostID: "h1", Pool: "p"}, protocol, 0, fail).end()
	}
	f, leave := g.joinRoutes("p")
	defer leave()

	// served replays what an agent was sent; it also returns how many
	// tables were deltas, how many came in parts, and the largest delta's
	// size over the whole table's.
	served := func(r *recorder) (held *wire.RouteTable, deltas, inParts int, worst float64) {
		var parts wire.RouteParts
		for _, env := range r.envelopes(t) {
			part := env.GetRouteTable()
			if part == nil {
				continue
			}
			if part.More {
				inParts++
			}
			if size := proto.Size(env); size > g.maxTableFrame {
				t.Fatalf("a frame of %d bytes, past the limit of %d", size, g.maxTableFrame)
			}
			rt, err := parts.Add(part)
			if err != nil {
				t.Fatal(err)
			}
			if rt == nil {
				continue
			}
			if rt.BaseVersion != 0 {
				deltas++
				whole, err := wire.ApplyRouteDelta(held, rt)
				if err != nil {
					t.Fatalf("a delta the agent cannot apply: %v", err)
				}
				worst = max(worst, float64(proto.Size(rt))/float64(proto.Size(whole)))
				held = whole
				continue
			}
			held = rt
		}
		return held, deltas, inParts, worst
	}
	var last *wire.RouteTable
	check := func(step string) {
		t.Helper()
		// The feed has looked at the store as of the step.
		idx := st.Store().Snapshot().LatestIndex()
		waitFor(t, step+": the feed's look", func() bool {
			g.routes.mu.Lock()
			defer g.routes.mu.Unlock()
			return f.latest.table != nil && f.latest.index >= idx
		})
		want := g.current(f).table
		if last != nil && want.Version == last.Version {
			t.Fatalf("%s: the table did not change", step)
		}
		// The feed's table, built from the last one's parts, is the
		// table built anew.
		full, err := buildRouteTable(st.Store().Snapshot(), "p", "apps.test")
		if err != nil {
			t.Fatal(err)
		}
		if full.Version = want.Version; !proto.Equal(full, want) {
			t.Fatalf("%s: the feed's table\n%v\nwant, built anew,\n%v", step, want, full)
		}
		last = want
		for _, protocol := range exact {
			r := recs[protocol]
			waitFor(t, fmt.Sprintf("%s: protocol %d agent's table", step, protocol), func() bool {
				held, _, _, _ := served(r)
				return held != nil && held.Version == want.Version
			})
			if held, _, _, _ := served(r); !proto.Equal(held, want) {
				t.Fatalf("%s: protocol %d agent serves\n%v\nwant\n%v", step, protocol, held, want)
			}
		}
	}
	check("first table")

	ready := func(host string, ids ...string) {
		var ups []state.InstanceUpdate
		for i, id := range ids {
			ups = append(ups, state.InstanceUpdate{ID: id, State: state.InstanceRunning, Ready: true, Address: fmt.Sprintf("10.0.0.%d:80", i+1)})
		}
		st.Must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: host, Updates: ups, Time: statetest.T0})
	}
	place := func(app, host string, ids ...string) {
		var in []state.Instance
		for _, id := range ids {
			in = append(in, state.Instance{ID: id, Tenant: "acme", App: app, Version: 1, Host: host, CPU: 10, Memory: 16})
		}
		st.Must(state.PlanApplyType, &state.PlanApplyRequest{Place: in, Time: statetest.T0})
	}
	place("app1", "h1", "a1-1", "a1-2")
	place("app2", "h2", "a2-1")
	ready("h1", "a1-1", "a1-2")
	check("instances of app1 ready")
	ready("h2", "a2-1")
	check("an instance of app2 ready")
	st.Must(state.RouteAddType, &state.RouteAddRequest{Route: state.Route{ID: "r1", Tenant: "acme", App: "app3", Host: "shop.example.test", Path: "/"}, Time: statetest.T0})
	check("an HTTP route")
	st.Must(state.RouteAddType, &state.RouteAddRequest{Route: state.Route{ID: "r2", Tenant: "acme", App: "app3", TCP: true, Port: 30432}, Time: statetest.T0})
	check("a TCP route")
	st.Must(state.CertPutType, &state.CertPutRequest{Cert: state.Cert{Tenant: "acme", Domain: "shop.example.test", CertPEM: []byte("cert"), KeyPEM: []byte("key"),
		Names: []string{"shop.example.test"}, NotAfter: statetest.T0.Add(90 * 24 * time.Hour)}, Time: statetest.T0})
	check("a certificate")
	st.Must(state.PlanApplyType, &state.PlanApplyRequest{Stop: []state.InstanceStop{{ID: "a1-2"}}, Time: statetest.T0})
	check("an instance stopped")
	st.Must(state.AppDeleteType, &state.AppDeleteRequest{Tenant: "acme", Name: "app4", Time: statetest.T0})
	check("an app deleted")
	st.Must(state.RouteDeleteType, &state.RouteDeleteRequest{Tenant: "acme", App: "app3", ID: "r1"})
	check("a route deleted")
	st.App(apitypes.AppSpec{Name: "app10", Image: "x:1"})
	check("an app created")

	for _, protocol := range exact {
		if protocol < wire.ProtocolRouteDeltas {
			continue
		}
		if _, deltas, _, worst := served(recs[protocol]); deltas == 0 || worst >= 1 {
			t.Fatalf("protocol %d: %d deltas, the largest %.2f of its whole table", protocol, deltas, worst)
		}
	}
	if _, deltas, _, _ := served(recs[wire.ProtocolRouteDeltas-1]); deltas != 0 {
		t.Fatalf("protocol 4: %d deltas", deltas)
	}
	_, _, inParts, _ := served(recs[wire.ProtocolRouteParts])
	if limit > 0 && inParts == 0 {
		t.Fatalf("no table went in parts at a frame limit of %d bytes", limit)
	}
	if limit == 0 && inParts != 0 {
		t.Fatalf("%d parts at the default frame limit", inParts)
	}
	for _, protocol := range []uint32{wire.ProtocolRouteDeltas, wire.ProtocolRouteDeltas - 1} {
		if _, _, inParts, _ := served(recs[protocol]); inParts != 0 {
			t.Fatalf("protocol %d was sent %d parts", protocol, inParts)
		}
	}
}

// TestRouteDeltaFallsBackToWhole: an agent that asks for a whole table
// gets one, and deltas again after it; a base older than the kept
// changes gets none.
func TestRouteDeltaFallsBackToWhole(t *testing.T) {
	st, g := tenApps(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &recorder{}
	p := g.startPush(ctx, wire.NewStream(r, 0), pki.AgentIdentity{HostID: "h1", Pool: "p"}, wire.ProtocolMax, 0, func(err error) { t.Errorf("push failed: %v", err) })
	defer p.end()
	// kinds returns, for each table sent, whether it was a delta.
	kinds := func() (out []bool) {
		for _, env := range r.envelopes(t) {
			if rt := env.GetRouteTable(); rt != nil {
				out = append(out, rt.BaseVersion != 0)
			}
		}
		return out
	}
	sent := func(n int) []bool {
		t.Helper()
		waitFor(t, fmt.Sprintf("%d tables", n), func() bool { return len(kinds()) >= n })
		return kinds()
	}
	sent(1)
	st.App(apitypes.AppSpec{Name: "web", Image: "x:1"})
	if k := sent(2); !k[1] {
		t.Fatalf("the second table was whole: %v", k)
	}
	p.sendWhole()
	st.App(apitypes.AppSpec{Name: "api", Image: "x:1"})
	if k := sent(3); k[2] {
		t.Fatalf("a delta after the agent asked for a whole table: %v", k)
	}
	st.App(apitypes.AppSpec{Name: "db", Image: "x:1"})
	if k := sent(4); !k[3] {
		t.Fatalf("no delta after the whole table: %v", k)
	}
	f, leave := g.joinRoutes("p")
	defer leave()
	if d := g.current(f).deltaFrom(1, g.maxTableFrame); d != nil {
		t.Fatal("a delta from a version the history does not hold")
	}
}

// tenApps returns a state of pool p, host h1 and ten apps (a table that a
// delta of one app is smaller than), and a gateway on it.
func tenApps(t *testing.T) (*statetest.State, *Gateway) {
	t.Helper()
	return onePool(t, 10)
}

// onePool returns a state of pool p, host h1 and apps app0..app(n-1),
// and a gateway on it, closed with the test.
func onePool(t *testing.T, apps int) (*statetest.State, *Gateway) {
	t.Helper()
	st := statetest.New(t)
	st.Pool("p", "dc1")
	st.Host("h1", "p", 64, 1<<16, nil)
	for i := range apps {
		st.App(apitypes.AppSpec{Name: fmt.Sprintf("app%d", i), Image: "x:1"})
	}
	g, err := New(Config{Addr: "127.0.0.1:0", Store: st.Store(), Cluster: &flakyCluster{st: st}, AppsDomain: "apps.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return st, g
}
