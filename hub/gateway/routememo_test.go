package gateway

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestRouteBuildsReuseOnlyWhatHolds: through 400 random writes (apps
// placed, ready, not ready, stopped and deleted; apps' pools changed;
// hosts down and back; routes and certificates added and removed;
// cutoff drills), a table built from the last build's parts is, after
// each, the table built anew, on the pool's feed and on another pool's.
// A write of one app's instances rebuilds that app's part alone.
func TestRouteBuildsReuseOnlyWhatHolds(t *testing.T) {
	st := statetest.New(t)
	st.Pool("p", "dc1")
	st.Pool("q", "dc2")
	hosts := []string{"h1", "h2", "h3", "q1", "q2"}
	for _, h := range hosts {
		st.Host(h, map[bool]string{true: "q", false: "p"}[h[0] == 'q'], 64, 1<<16, nil)
	}
	apps := []string{"web", "api", "db", "jobs", "shop"}
	poolsOf := [][]string{nil, {"p"}, {"q"}, {"q"}, {"p"}}
	for i, a := range apps {
		st.App(apitypes.AppSpec{Name: a, Image: a + ":1", Pools: poolsOf[i]})
	}
	rnd := rand.New(rand.NewPCG(29, 7))
	// try applies a write the store may refuse (an instance already
	// stopped, a host already down): the test goes on either way.
	try := func(mt state.MessageType, req any) {
		msg, err := state.Encode(mt, req)
		if err != nil {
			t.Fatal(err)
		}
		st.Apply(context.Background(), msg) //nolint:errcheck // refusals are part of the walk
	}
	var ids []string // instances placed, by id
	n := 0
	memos := map[string]*routeMemo{}
	for step := range 400 {
		var what string
		switch op := rnd.IntN(11); op {
		case 0, 1:
			a, h := apps[rnd.IntN(len(apps))], hosts[rnd.IntN(len(hosts))]
			n++
			id := fmt.Sprintf("%s-%d", a, n)
			ids = append(ids, id)
			what = "place " + id + " on " + h
			try(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: id, Tenant: "acme", App: a, Version: 1, Host: h, CPU: 10, Memory: 16}}, Time: statetest.T0})
		case 2, 3:
			if len(ids) == 0 {
				continue
			}
			id := ids[rnd.IntN(len(ids))]
			i, _ := st.Store().Snapshot().Instance(nil, id)
			if i == nil {
				continue
			}
			ready := rnd.IntN(3) > 0
			what = fmt.Sprintf("%s ready %v", id, ready)
			try(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: i.Host, Time: statetest.T0, Updates: []state.InstanceUpdate{
				{ID: id, State: state.InstanceRunning, Ready: ready, Address: fmt.Sprintf("10.0.0.%d:80", rnd.IntN(250))}}})
		case 4:
			if len(ids) == 0 {
				continue
			}
			id := ids[rnd.IntN(len(ids))]
			what = "stop " + id
			try(state.PlanApplyType, &state.PlanApplyRequest{Stop: []state.InstanceStop{{ID: id}}, Time: statetest.T0})
		case 5:
			h := hosts[rnd.IntN(len(hosts))]
			s := []string{state.HostDown, state.HostReady}[rnd.IntN(2)]
			what = h + " " + s
			try(state.HostStateType, &state.HostStateRequest{ID: h, State: s, Time: statetest.T0})
		case 6:
			i := rnd.IntN(len(apps))
			pools := [][]string{nil, {"p"}, {"q"}, {"q"}, {"p", "q"}}[rnd.IntN(5)]
			what = fmt.Sprintf("%s on pools %v", apps[i], pools)
			spec := apitypes.AppSpec{Name: apps[i], Image: apps[i] + ":1", Pools: pools}
			spec.Normalize()
			try(state.AppUpsertType, &state.AppUpsertRequest{Tenant: "acme", Spec: statetest.Spec(t, spec), Time: statetest.T0})
		case 7:
			a := apps[rnd.IntN(len(apps))]
			id := fmt.Sprintf("r%d", rnd.IntN(4))
			if rnd.IntN(2) == 0 {
				what = "route " + id + " of " + a
				try(state.RouteAddType, &state.RouteAddRequest{Route: state.Route{ID: id, Tenant: "acme", App: a, Host: id + ".example.test", Path: "/"}, Time: statetest.T0})
			} else {
				what = "route " + id + " of " + a + " deleted"
				try(state.RouteDeleteType, &state.RouteDeleteRequest{Tenant: "acme", App: a, ID: id})
			}
		case 8:
			d := fmt.Sprintf("r%d.example.test", rnd.IntN(4))
			what = "certificate of " + d
			try(state.CertPutType, &state.CertPutRequest{Cert: state.Cert{Tenant: "acme", Domain: d, CertPEM: []byte(fmt.Sprint("cert", step)), KeyPEM: []byte("key"),
				Names: []string{d}, NotAfter: statetest.T0.Add(90 * 24 * time.Hour)}, Time: statetest.T0})
		case 9:
			a := apps[rnd.IntN(len(apps))]
			if rnd.IntN(3) == 0 {
				what = a + " deleted"
				try(state.AppDeleteType, &state.AppDeleteRequest{Tenant: "acme", Name: a, Time: statetest.T0})
			} else {
				what = a + " created"
				st.App(apitypes.AppSpec{Name: a, Image: a + ":2"})
			}
		case 10:
			id := fmt.Sprintf("d%d", step)
			what = "cutoff drill of q"
			try(state.DrillStartType, &state.DrillStartRequest{ID: id, Pool: "q", Mode: state.DrillCutoff, Time: statetest.T0})
			try(state.DrillEndType, &state.DrillEndRequest{ID: id, Time: statetest.T0})
		}
		snap := st.Store().Snapshot()
		for _, pool := range []string{"p", "q"} {
			got, memo, err := buildRoutes(snap, pool, "apps.test", memos[pool])
			if err != nil {
				t.Fatal(err)
			}
			want, err := buildRouteTable(snap, pool, "apps.test")
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("step %d (%s), pool %s: built from the last build\n%v\nwant\n%v", step, what, pool, got, want)
			}
			memos[pool] = memo
		}
	}

	// One app's instance ready: the other apps' parts are the same.
	st.App(apitypes.AppSpec{Name: "web", Image: "web:3"})
	st.Must(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: "web-last", Tenant: "acme", App: "web", Version: 1, Host: "h1", CPU: 10, Memory: 16}}, Time: statetest.T0})
	st.Must(state.HostStateType, &state.HostStateRequest{ID: "h1", State: state.HostReady, Time: statetest.T0})
	_, before, err := buildRoutes(st.Store().Snapshot(), "p", "apps.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "h1", Time: statetest.T0, Updates: []state.InstanceUpdate{
		{ID: "web-last", State: state.InstanceRunning, Ready: true, Address: "10.9.9.9:80"}}})
	_, after, err := buildRoutes(st.Store().Snapshot(), "p", "apps.test", before)
	if err != nil {
		t.Fatal(err)
	}
	for k, b := range after.apps {
		if same := before.apps[k] == b; same == (k == "acme/web") {
			t.Errorf("app %s: part reused %v", k, same)
		}
	}
}
