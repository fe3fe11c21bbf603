package gateway

import (
	"fmt"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// BenchmarkBuildRouteTable: one pool's route table, built again after a
// change, at the size of the churn benchmark: 5 pools of 1,000 hosts,
// 1,000 apps of 50 running instances spread over them. A pool's feed
// builds one after each batch of writes to what tables are made of
// (apps, instances, routes, certificates, hosts, drills) while an agent
// of the pool is connected to the node.
//
//	go test -run '^$' -bench BuildRouteTable ./hub/gateway
func BenchmarkBuildRouteTable(b *testing.B) {
	const pools, perPool, apps, per = 5, 1000, 1000, 50
	st := statetest.New(b)
	for p := range pools {
		st.Pool(fmt.Sprintf("p%d", p), "dc1")
		for h := range perPool {
			st.Host(fmt.Sprintf("h%d-%04d", p, h), fmt.Sprintf("p%d", p), 64, 1<<20, nil)
		}
	}
	n := 0
	for a := range apps {
		name := fmt.Sprintf("app%04d", a)
		st.App(apitypes.AppSpec{Name: name, Image: "web:1"})
		var place []state.Instance
		for i := range per {
			host := fmt.Sprintf("h%d-%04d", n%pools, (n/pools)%perPool)
			n++
			place = append(place, state.Instance{ID: fmt.Sprintf("%s-%d", name, i), Tenant: "acme", App: name, Version: 1, Host: host, CPU: 10, Memory: 16})
		}
		st.Must(state.PlanApplyType, &state.PlanApplyRequest{Place: place, Time: statetest.T0})
		byHost := map[string][]state.InstanceUpdate{}
		for i, in := range place {
			byHost[in.Host] = append(byHost[in.Host], state.InstanceUpdate{ID: in.ID, State: state.InstanceRunning, Ready: true, Address: fmt.Sprintf("10.%d.%d.%d:8080", i%200, a%200, i%250)})
		}
		for h, ups := range byHost {
			st.Must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: h, Updates: ups, Time: statetest.T0})
		}
	}
	snap := st.Store().Snapshot()
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		var size int
		for b.Loop() {
			t, err := buildRouteTable(snap, "p0", "apps.test")
			if err != nil {
				b.Fatal(err)
			}
			if len(t.Apps) != apps {
				b.Fatalf("%d apps routed, want %d", len(t.Apps), apps)
			}
			size = proto.Size(t)
		}
		b.ReportMetric(float64(size), "table-bytes")
	})
	// A change of one app (an instance no longer ready, then ready again):
	// the feed's rebuild, and the delta an agent of the pool is sent,
	// against the whole table.
	b.Run("refresh-one-app-changed", func(b *testing.B) {
		g, err := New(Config{Addr: "127.0.0.1:0", Store: st.Store(), Cluster: &flakyCluster{st: st}, AppsDomain: "apps.test"})
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		f := &poolFeed{latest: &poolTable{next: make(chan struct{})}}
		s := st.Store().Snapshot()
		if err := g.refreshRoutes(f, s, s.LatestIndex(), "p0"); err != nil {
			b.Fatal(err)
		}
		var whole, delta int
		ready := false
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			// app0000's first instance is on p0's first host.
			st.Must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "h0-0000", Updates: []state.InstanceUpdate{
				{ID: "app0000-0", State: state.InstanceRunning, Ready: ready, Address: "10.0.0.0:8080"}}, Time: statetest.T0})
			ready = !ready
			s := st.Store().Snapshot()
			base := f.latest.table.Version
			b.StartTimer()
			if err := g.refreshRoutes(f, s, s.LatestIndex(), "p0"); err != nil {
				b.Fatal(err)
			}
			d := f.latest.deltaFrom(base, g.maxTableFrame)
			if d == nil {
				b.Fatal("no delta")
			}
			whole, delta = f.latest.size, framesSize(d)
		}
		b.ReportMetric(float64(whole), "whole-bytes")
		b.ReportMetric(float64(delta), "delta-bytes")
	})
	// What sending a table costs per agent of the pool: encoded for each
	// (Send), or the frame encoded once (SendFrame).
	t, err := buildRouteTable(snap, "p0", "apps.test")
	if err != nil {
		b.Fatal(err)
	}
	s := wire.NewStream(struct {
		io.Reader
		io.Writer
	}{nil, io.Discard}, 0)
	env := &wire.Envelope{Msg: &wire.Envelope_RouteTable{RouteTable: t}}
	b.Run("send-encoded-per-agent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Send(env); err != nil {
				b.Fatal(err)
			}
		}
	})
	frame, err := wire.EncodeFrame(env)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("send-frame-per-agent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.SendFrame(frame); err != nil {
				b.Fatal(err)
			}
		}
	})
}
