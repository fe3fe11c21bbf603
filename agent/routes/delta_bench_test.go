package routes

import (
	"context"
	"fmt"
	"testing"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// BenchmarkRouteDelta: an agent's handling of a delta of one app (an
// instance's address changed) over a table of 1,000 apps of 50 instances,
// through its router: what every agent of a pool pays for each change.
//
//	go test -run '^$' -bench RouteDelta -benchmem ./agent/routes
func BenchmarkRouteDelta(b *testing.B) {
	r, err := New(Config{HTTPAddr: "127.0.0.1:0", Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	c := control.New()
	r.Register(c)
	app := func(a int, v uint64) *wire.RouteApp {
		ra := &wire.RouteApp{Key: fmt.Sprintf("acme/app%04d", a)}
		for i := range 50 {
			ra.Backends = append(ra.Backends, &wire.Backend{Instance: fmt.Sprintf("app%04d-%d", a, i), Addr: fmt.Sprintf("10.%d.%d.%d:8080", i%200, a%200, i%250), Version: 1})
		}
		ra.Backends[0].Addr = fmt.Sprintf("10.255.%d.%d:8080", v%200, v%250)
		return ra
	}
	t := &wire.RouteTable{Version: 1}
	for a := range 1000 {
		t.Apps = append(t.Apps, app(a, 0))
		t.Http = append(t.Http, &wire.HTTPRoute{Host: fmt.Sprintf("app%04d.acme.apps.test", a), Path: "/", App: t.Apps[a].Key})
	}
	send := func(t *wire.RouteTable) {
		var ack *wire.RouteAck
		if err := c.Dispatch(context.Background(), control.Inbound{Env: &wire.Envelope{Msg: &wire.Envelope_RouteTable{RouteTable: t}},
			Reply: func(e *wire.Envelope) error { ack = e.GetRouteAck(); return nil }}); err != nil {
			b.Fatal(err)
		}
		if ack.GetVersion() != t.Version || ack.WantWhole {
			b.Fatalf("acknowledged %v", ack)
		}
	}
	send(t)
	v := uint64(1)
	b.ReportAllocs()
	for b.Loop() {
		v++
		send(&wire.RouteTable{Version: v, BaseVersion: v - 1, Apps: []*wire.RouteApp{app(int(v%1000), v)},
			Http: []*wire.HTTPRoute{{Host: fmt.Sprintf("app%04d.acme.apps.test", v%1000), Path: "/", App: fmt.Sprintf("acme/app%04d", v%1000)}}})
	}
}
