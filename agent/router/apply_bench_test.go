package router

import (
	"fmt"
	"testing"
)

// BenchmarkApply: a router's new table after one app changed (an
// instance ready), at 1,000 apps of 50 instances and 20 certificates:
// what every agent of a pool pays for each table the hub sends.
//
//	go test -run '^$' -bench Apply -benchmem ./agent/router
func BenchmarkApply(b *testing.B) {
	r, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	t := &Table{}
	for a := range 1000 {
		app := App{Key: fmt.Sprintf("acme/app%04d", a)}
		for i := range 50 {
			app.Backends = append(app.Backends, Backend{Instance: fmt.Sprintf("app%04d-%d", a, i), Addr: fmt.Sprintf("10.%d.%d.%d:8080", i%200, a%200, i%250), Version: 1})
		}
		t.Apps = append(t.Apps, app)
		t.HTTP = append(t.HTTP, HTTPRoute{Host: fmt.Sprintf("app%04d.acme.apps.test", a), Path: "/", App: app.Key})
	}
	for c := range 20 {
		cert, key, _ := selfSigned(b, fmt.Sprintf("*.d%d.example.com", c))
		t.Certs = append(t.Certs, Cert{Domain: fmt.Sprintf("*.d%d.example.com", c), CertPEM: cert, KeyPEM: key})
	}
	if err := r.Apply(t); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		next := *t
		next.Version++
		next.Apps = append([]App(nil), t.Apps...)
		web := next.Apps[0]
		web.Backends = append([]Backend(nil), web.Backends...)
		web.Backends[0].Addr = fmt.Sprintf("10.255.0.%d:8080", next.Version%250)
		next.Apps[0] = web
		t = &next
		b.StartTimer()
		if err := r.Apply(t); err != nil {
			b.Fatal(err)
		}
	}
}
