package wire

import (
	"fmt"
	"testing"
)

// BenchmarkRouteParts: a table of 5,000 apps of 50 ready instances, ~9
// MB, past one frame: the hub's split into parts and their encoding
// (once per table, for every agent of the pool), and an agent's join of
// the parts it reads.
//
//	go test -run '^$' -bench RouteParts -benchmem ./pkg/wire
func BenchmarkRouteParts(b *testing.B) {
	const apps, per = 5000, 50
	t := &RouteTable{Version: 1 << 40}
	for a := range apps {
		key := fmt.Sprintf("acme/app%04d", a)
		ra := &RouteApp{Key: key}
		for i := range per {
			ra.Backends = append(ra.Backends, &Backend{Instance: fmt.Sprintf("app%04d-%d", a, i), Addr: fmt.Sprintf("10.%d.%d.%d:8080", i%200, a%200, i%250), Version: 1})
		}
		t.Apps = append(t.Apps, ra)
		t.Http = append(t.Http, &HTTPRoute{Host: fmt.Sprintf("app%04d.acme.apps.test", a), Path: "/", App: key})
	}
	SortRouteTable(t)
	parts, err := SplitRouteTable(t, DefaultMaxFrame)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("split-and-encode", func(b *testing.B) {
		b.ReportAllocs()
		size := 0
		for b.Loop() {
			var err error
			if parts, err = SplitRouteTable(t, DefaultMaxFrame); err != nil {
				b.Fatal(err)
			}
			size = 0
			for _, p := range parts {
				frame, err := EncodeFrame(&Envelope{Msg: &Envelope_RouteTable{RouteTable: p}})
				if err != nil {
					b.Fatal(err)
				}
				size += len(frame)
			}
		}
		b.ReportMetric(float64(size), "table-bytes")
		b.ReportMetric(float64(len(parts)), "parts")
	})
	b.Run("join", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var j RouteParts
			var got *RouteTable
			for _, p := range parts {
				var err error
				if got, err = j.Add(p); err != nil {
					b.Fatal(err)
				}
			}
			if len(got.GetApps()) != apps {
				b.Fatalf("%d apps joined", len(got.GetApps()))
			}
		}
	})
}
