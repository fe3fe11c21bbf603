package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// nextTable waits for the table after pt and returns it.
func nextTable(t *testing.T, g *Gateway, f *poolFeed, pt *poolTable, what string) *poolTable {
	t.Helper()
	select {
	case <-pt.next:
		return g.current(f)
	case <-time.After(10 * time.Second):
		t.Fatalf("no new route table after %s", what)
		return nil
	}
}

// TestRouteFeedSharedPerPool: the agents of a pool share one feed, whose
// watcher publishes a table when it changes, not on every write to what
// it is built from (a host enrolled), and stops with the pool's last
// agent.
func TestRouteFeedSharedPerPool(t *testing.T) {
	st := statetest.New(t)
	st.Pool("p", "dc1")
	st.Pool("q", "dc1")
	st.Host("h1", "p", 2, 1024, nil)
	g, err := New(Config{Addr: "127.0.0.1:0", Store: st.Store(), Cluster: &flakyCluster{st: st}, AppsDomain: "apps.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	f, leave1 := g.joinRoutes("p")
	f2, leave2 := g.joinRoutes("p")
	fq, leaveQ := g.joinRoutes("q")
	if f != f2 || f == fq {
		t.Fatal("agents of one pool got different feeds, or two pools one")
	}
	first := g.current(f)
	if first.table == nil {
		first = nextTable(t, g, f, first, "the first build")
	}
	if first.table == nil || len(first.table.Apps) != 0 {
		t.Fatalf("first table %v, want an empty one", first.table)
	}

	// Writes to the tables it is built from that leave it unchanged.
	for i := range 20 {
		st.Host(fmt.Sprintf("h%d", i+2), "p", 2, 1024, nil)
	}
	st.App(apitypes.AppSpec{Name: "other", Image: "x:1", Pools: []string{"q"}})
	// Once the watcher has looked at the store as of these writes, the
	// table must still be the first one.
	latest := st.Store().Snapshot().WatchTables(memdb.NewWatchSet(), routeInputs...)
	checked := func() uint64 {
		g.routes.mu.Lock()
		defer g.routes.mu.Unlock()
		return f.latest.index
	}
	for deadline := time.Now().Add(10 * time.Second); checked() < latest; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the watcher checked the table at index %d, not at %d", checked(), latest)
		}
	}
	if cur := g.current(f); cur != first {
		t.Fatalf("a new table (version %d) after writes that do not change it", cur.table.Version)
	}
	// A change is published once, to every agent of the pool.
	st.App(apitypes.AppSpec{Name: "web", Image: "web:1"})
	got := nextTable(t, g, f, first, "an app was created")
	if len(got.table.Apps) != 1 || got.table.Apps[0].Key != "acme/web" || got.table.Version <= first.table.Version {
		t.Fatalf("table after the app: %v", got.table)
	}
	if g.routeVersionCached("p") != got.table.Version {
		t.Fatalf("cached version %d, want %d", g.routeVersionCached("p"), got.table.Version)
	}

	leave1()
	select {
	case <-f.done:
		t.Fatal("the watcher stopped while an agent of the pool remained")
	case <-time.After(50 * time.Millisecond):
	}
	leave2()
	leaveQ()
	for _, feed := range []*poolFeed{f, fq} {
		select {
		case <-feed.done:
		case <-time.After(10 * time.Second):
			t.Fatal("a pool's watcher runs on without agents")
		}
	}
	if n := len(g.routes.pools); n != 0 {
		t.Fatalf("%d feeds kept without agents", n)
	}
}

// TestRouteTablePoolsAndPresence: a pool's table has the apps that name
// it (in pools or failover_pools), name no pool, or have an instance on
// one of its hosts; not the others.
func TestRouteTablePoolsAndPresence(t *testing.T) {
	st := statetest.New(t)
	st.Pool("p", "dc1")
	st.Pool("q", "dc1")
	st.Host("hp", "p", 2, 1024, nil)
	st.Host("hq", "q", 2, 1024, nil)
	st.App(apitypes.AppSpec{Name: "any", Image: "x:1"})
	st.App(apitypes.AppSpec{Name: "named", Image: "x:1", Pools: []string{"p"}})
	st.App(apitypes.AppSpec{Name: "failover", Image: "x:1", Pools: []string{"q"}, FailoverPools: []string{"p"}})
	st.App(apitypes.AppSpec{Name: "elsewhere", Image: "x:1", Pools: []string{"q"}})
	st.App(apitypes.AppSpec{Name: "moved", Image: "x:1", Pools: []string{"q"}})
	st.Must(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{
		{ID: "m-1", Tenant: "acme", App: "moved", Version: 1, Host: "hp", CPU: 100, Memory: 64},
		{ID: "e-1", Tenant: "acme", App: "elsewhere", Version: 1, Host: "hq", CPU: 100, Memory: 64},
	}, Time: statetest.T0})
	for pool, want := range map[string][]string{
		"p": {"acme/any", "acme/failover", "acme/moved", "acme/named"},
		"q": {"acme/any", "acme/elsewhere", "acme/failover", "acme/moved"},
	} {
		tb, err := buildRouteTable(st.Store().Snapshot(), pool, "apps.test")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range tb.Apps {
			got = append(got, a.Key)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pool %s: apps %v, want %v", pool, got, want)
		}
	}
}

// TestPushSendsAssignmentsAndRoutes: one goroutine per connection sends
// the agent both its assignments, when they change, and its pool's route
// table, when that changes.
// placeOn commits a plan placing instance id of acme/web on host h1 and
// returns the host's assignment index after it.
func placeOn(st *statetest.State, id string) uint64 {
	st.Must(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{
		{ID: id, Tenant: "acme", App: "web", Version: 1, Host: "h1", CPU: 100, Memory: 64}}, Time: statetest.T0})
	h, _ := st.Store().Snapshot().Host(nil, "h1")
	return h.AssignIndex
}

// pushTo pushes to host h1 of pool p, whose agent applied the set of
// version applied, over a pipe. It returns what the agent's end
// receives, and stop, which ends the push and checks that it did not
// fail.
func pushTo(t *testing.T, g *Gateway, applied uint64) (<-chan *wire.Envelope, func()) {
	t.Helper()
	got, failed, stop := pushToHost(t, g, "h1", applied)
	return got, func() {
		t.Helper()
		stop()
		select {
		case err := <-failed:
			t.Fatalf("push failed: %v", err)
		default:
		}
	}
}

// pushToHost pushes to host of pool p over a pipe. It returns what the
// agent's end receives, the error the push failed with (if it does), and
// stop, which ends the push.
func pushToHost(t *testing.T, g *Gateway, host string, applied uint64) (<-chan *wire.Envelope, <-chan error, func()) {
	t.Helper()
	hub, agent := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	failed := make(chan error, 1)
	end := g.startPush(ctx, wire.NewStream(hub, 0), pki.AgentIdentity{HostID: host, Pool: "p"}, wire.ProtocolMax, applied, func(err error) {
		failed <- err
		hub.Close()
	}).end
	t.Cleanup(func() { end(); cancel(); hub.Close(); agent.Close() }) // on a failure before stop
	got := make(chan *wire.Envelope, 16)
	go func() {
		in := wire.NewStream(agent, 0)
		for {
			env, err := in.Recv()
			if err != nil {
				close(got)
				return
			}
			got <- env
		}
	}()
	return got, failed, func() {
		end()
		cancel()
		hub.Close()
		agent.Close()
	}
}

func TestPushSendsAssignmentsAndRoutes(t *testing.T) {
	st := statetest.New(t)
	st.Pool("p", "dc1")
	st.Host("h1", "p", 2, 1024, nil)
	st.App(apitypes.AppSpec{Name: "web", Image: "web:1"})
	placeOn(st, "w-1")
	g, err := New(Config{Addr: "127.0.0.1:0", Store: st.Store(), Cluster: &flakyCluster{st: st}, AppsDomain: "apps.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got, stop := pushTo(t, g, 0)
	var held *wire.RouteTable // what the agent's router serves
	expect := func(instances, apps int) { t.Helper(); held = expectPushed(t, got, held, instances, apps) }
	expect(1, 1)
	placeOn(st, "w-2")
	st.App(apitypes.AppSpec{Name: "api", Image: "api:1"})
	expect(2, 2)
	stop()
}

// TestPushNeverSendsAnOlderSet: an agent that applied a newer set than
// this replica holds (this node is behind the cluster) is sent nothing
// until the replica's set is newer than the agent's.
func TestPushNeverSendsAnOlderSet(t *testing.T) {
	st := statetest.New(t)
	st.Pool("p", "dc1")
	st.Host("h1", "p", 4, 1024, nil)
	st.App(apitypes.AppSpec{Name: "web", Image: "web:1"})
	held := placeOn(st, "w-1")
	g, err := New(Config{Addr: "127.0.0.1:0", Store: st.Store(), Cluster: &flakyCluster{st: st}, AppsDomain: "apps.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	applied := held + 2 // the agent's set came from a node two entries ahead
	envs, stop := pushTo(t, g, applied)
	got := make(chan *wire.Assignments, 16)
	go func() {
		for env := range envs {
			if a := env.GetAssignments(); a != nil {
				got <- a
			}
		}
	}()
	// One write that leaves the replica still behind the agent, then one
	// that brings it past: only the second set is sent.
	if idx := placeOn(st, "w-2"); idx >= applied {
		t.Fatalf("test setup: the host's index %d already reached the agent's %d", idx, applied)
	}
	if idx := placeOn(st, "w-3"); idx != applied {
		t.Fatalf("test setup: the host's index %d, want the agent's %d", idx, applied)
	}
	placeOn(st, "w-4")
	select {
	case a := <-got:
		if a.Version <= applied || len(a.Instances) != 4 {
			t.Fatalf("sent version %d with %d instances to an agent at %d, want a newer set of 4", a.Version, len(a.Instances), applied)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no set sent once the replica passed the agent")
	}
	stop()
}

// TestRouteTablePastTheFrameLimit: a table larger than the agents' frame
// limit (they would refuse it and reconnect, again and again) is sent in
// parts, each within the limit, that join into the table; a table one of
// whose apps passes the limit alone is not sent, and the pool's agents
// keep the last one. A table goes out as frames encoded once for all of
// them.
func TestRouteTablePastTheFrameLimit(t *testing.T) {
	// The limit: the table of 21 apps fits, with one more it does not.
	st, g := onePool(t, 21)
	snap := st.Store().Snapshot()
	t0, err := buildRouteTable(snap, "p", "apps.test")
	if err != nil {
		t.Fatal(err)
	}
	t0.Version = snap.LatestIndex()
	frame, err := wire.EncodeFrame(&wire.Envelope{Msg: &wire.Envelope_RouteTable{RouteTable: t0}})
	if err != nil {
		t.Fatal(err)
	}
	g.maxTableFrame = len(frame) + 10
	f, leave := g.joinRoutes("p")
	defer leave()
	first := g.current(f)
	if first.table == nil {
		first = nextTable(t, g, f, first, "the first build")
	}
	// joined reads a table's frames as an agent does.
	joined := func(pt *poolTable) (*wire.RouteTable, int) {
		t.Helper()
		frames, err := pt.wholeFrames(g, "p")
		if err != nil {
			t.Fatal(err)
		}
		var parts wire.RouteParts
		var out *wire.RouteTable
		for i, frame := range frames {
			var back wire.Envelope
			if err := wire.ReadFrame(bufio.NewReader(bytes.NewReader(frame)), g.maxTableFrame, &back); err != nil {
				t.Fatalf("frame %d of %d: %v", i, len(frames), err)
			}
			rt, err := parts.Add(back.GetRouteTable())
			if err != nil || (rt != nil) != (i == len(frames)-1) {
				t.Fatalf("frame %d of %d joined: %v, %v", i, len(frames), rt != nil, err)
			}
			out = rt
		}
		return out, len(frames)
	}
	if back, n := joined(first); n != 1 || back.GetVersion() != first.table.Version || len(back.GetApps()) != 21 {
		t.Fatalf("the table's frames: %d, %v; want one of version %d with 21 apps", n, back, first.table.Version)
	}
	st.App(apitypes.AppSpec{Name: "one-more", Image: "x:1"})
	second := nextTable(t, g, f, first, "a table past the limit")
	if back, n := joined(second); n < 2 || !proto.Equal(back, second.table) {
		t.Fatalf("a table past the limit: %d frames joined into\n%v\nwant\n%v", n, back, second.table)
	}

	// An app's routes past the limit alone: an agent that needs the
	// table whole is sent nothing, and keeps the one it holds.
	got, stop := pushTo(t, g, 0)
	defer stop()
	for more := true; more; {
		select {
		case env := <-got:
			if rt := env.GetRouteTable(); rt != nil {
				if rt.Version != second.table.Version {
					t.Fatalf("sent %v, want the parts of version %d", rt, second.table.Version)
				}
				more = rt.More
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("not every part of version %d sent", second.table.Version)
		}
	}
	g.maxTableFrame = 60
	st.App(apitypes.AppSpec{Name: "two-more", Image: "x:1"})
	third := nextTable(t, g, f, second, "an app past the limit")
	if _, err := third.wholeFrames(g, "p"); err == nil || !strings.Contains(err.Error(), "more than a part") {
		t.Fatalf("an app past the limit alone: %v", err)
	}
	if d := third.deltaFrom(second.table.Version, g.maxTableFrame); d != nil {
		t.Fatal("a delta with an app past the limit alone")
	}
	for deadline := time.After(200 * time.Millisecond); ; {
		select {
		case env := <-got:
			if env.GetRouteTable() != nil {
				t.Fatalf("sent a table that cannot be sent: %v", env)
			}
			continue
		case <-deadline:
		}
		break
	}
}

// TestRouteFeedPacesItsBuilds: under a stream of changes, a feed whose
// builds are slow starts the next no sooner than the last one took (half
// the builds of a feed that rebuilds back to back), and still publishes
// the last change.
func TestRouteFeedPacesItsBuilds(t *testing.T) {
	const build = 40 * time.Millisecond
	st, g := onePool(t, 0)
	var builds atomic.Int32
	g.buildRoutes = func(snap *state.Snapshot, pool, appsDomain string, prev *routeMemo) (*wire.RouteTable, *routeMemo, error) {
		builds.Add(1)
		time.Sleep(build)
		return buildRoutes(snap, pool, appsDomain, prev)
	}
	f, leave := g.joinRoutes("p")
	defer leave()
	first := g.current(f)
	if first.table == nil {
		first = nextTable(t, g, f, first, "the first build")
	}
	builds.Store(0)
	const apps = 160 // one every 5 ms: 800 ms of changes
	start := time.Now()
	for i := range apps {
		st.App(apitypes.AppSpec{Name: fmt.Sprintf("app%d", i), Image: "x:1"})
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if cur := g.current(f); cur.table != nil && len(cur.table.Apps) == apps {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last change was never published: %d apps in the table", len(g.current(f).table.Apps))
		}
	}
	// Back to back, a build every 40 ms; paced, one every 80 ms at most.
	if n, most := int(builds.Load()), int(took/(2*build))+3; n > most {
		t.Fatalf("%d builds in %v of changes, want at most %d", n, took.Round(time.Millisecond), most)
	}
}

// agentTable is what an agent serving held serves after it is sent r: r
// itself, or what r makes of held when it is a delta.
func agentTable(t *testing.T, held, r *wire.RouteTable) *wire.RouteTable {
	t.Helper()
	if r.BaseVersion == 0 {
		return r
	}
	whole, err := wire.ApplyRouteDelta(held, r)
	if err != nil {
		t.Fatalf("a delta the agent cannot apply: %v", err)
	}
	return whole
}

// expectPushed waits for an assignment set of instances and a route table
// of apps to reach an agent serving held, in either order, and returns
// the table it then serves.
func expectPushed(t *testing.T, got <-chan *wire.Envelope, held *wire.RouteTable, instances, apps int) *wire.RouteTable {
	t.Helper()
	var sawA, sawR bool
	for deadline := time.After(10 * time.Second); !sawA || !sawR; {
		select {
		case env := <-got:
			if a := env.GetAssignments(); a != nil && len(a.Instances) == instances {
				sawA = true
			}
			if r := env.GetRouteTable(); r != nil {
				held = agentTable(t, held, r)
				sawR = len(held.Apps) == apps
			}
		case <-deadline:
			t.Fatalf("want %d instances and %d apps: assignments seen %v, route table seen %v", instances, apps, sawA, sawR)
		}
	}
	return held
}
