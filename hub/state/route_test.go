package state

import (
	"testing"
)

func TestRoutesAndDomainOwnership(t *testing.T) {
	h := newHarness(t)
	fill(h) // tenants acme (app web) and beta
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "beta", Spec: spec("shop", "shop:1"), Time: t0})
	add := func(r Route) error { return h.apply(RouteAddType, &RouteAddRequest{Route: r, Time: t0}) }
	kind := func(err error) Kind {
		if e, ok := err.(*Error); ok {
			return e.Kind
		}
		return 255
	}
	if err := add(Route{ID: "r1", Tenant: "acme", App: "web", Host: "www.example.com", Path: "/"}); err != nil {
		t.Fatal(err)
	}
	if err := add(Route{ID: "r2", Tenant: "acme", App: "web", Host: "www.example.com", Path: "/api"}); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		r    Route
		want Kind
	}{
		"same domain and path":           {Route{ID: "x1", Tenant: "acme", App: "web", Host: "www.example.com", Path: "/api"}, KindConflict},
		"another tenant's domain":        {Route{ID: "x2", Tenant: "beta", App: "shop", Host: "www.example.com", Path: "/shop"}, KindConflict},
		"unknown app":                    {Route{ID: "x3", Tenant: "beta", App: "nope", Host: "shop.example.org", Path: "/"}, KindNotFound},
		"wildcard route":                 {Route{ID: "x4", Tenant: "beta", App: "shop", Host: "*.example.org", Path: "/"}, KindInvalid},
		"tcp port out of range":          {Route{ID: "x5", Tenant: "beta", App: "shop", TCP: true, Port: 80}, KindInvalid},
		"id taken":                       {Route{ID: "r1", Tenant: "beta", App: "shop", Host: "b.example.org", Path: "/"}, KindConflict},
		"another tenant's wildcard zone": {Route{ID: "x6", Tenant: "acme", App: "web", Host: "a.wild.test", Path: "/"}, KindConflict},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "another tenant's wildcard zone" {
				h.must(CertPutType, &CertPutRequest{Cert: Cert{Tenant: "beta", Domain: "*.wild.test", CertPEM: []byte("c"), KeyPEM: []byte("k")}, Time: t0})
			}
			before := h.snap().LatestIndex()
			if err := add(tc.r); kind(err) != tc.want {
				t.Fatalf("got %v, want kind %v", err, tc.want)
			}
			if h.snap().LatestIndex() != before {
				t.Fatal("a refused route changed the store")
			}
		})
	}
	// TCP: the lowest free port, then an explicit one; a taken port is refused.
	if err := add(Route{ID: "t1", Tenant: "beta", App: "shop", TCP: true, TargetPort: 5432}); err != nil {
		t.Fatal(err)
	}
	if err := add(Route{ID: "t2", Tenant: "beta", App: "shop", TCP: true, Port: TCPPortMin}); kind(err) != KindConflict {
		t.Fatalf("taken port: %v", err)
	}
	if err := add(Route{ID: "t3", Tenant: "beta", App: "shop", TCP: true}); err != nil {
		t.Fatal(err)
	}
	rs, _ := h.snap().AppRoutes(nil, "beta", "shop")
	if len(rs) != 2 || rs[0].Port != TCPPortMin || rs[1].Port != TCPPortMin+1 || rs[0].TargetPort != 5432 {
		t.Fatalf("tcp routes: %+v %+v", rs[0], rs[1])
	}
	// A certificate for another tenant's domain is refused; a wildcard
	// over another tenant's routed domain too.
	if err := h.apply(CertPutType, &CertPutRequest{Cert: Cert{Tenant: "beta", Domain: "www.example.com", CertPEM: []byte("c"), KeyPEM: []byte("k")}, Time: t0}); kind(err) != KindConflict {
		t.Fatalf("cert for another tenant's domain: %v", err)
	}
	if err := h.apply(CertPutType, &CertPutRequest{Cert: Cert{Tenant: "beta", Domain: "*.example.com", CertPEM: []byte("c"), KeyPEM: []byte("k")}, Time: t0}); kind(err) != KindConflict {
		t.Fatalf("wildcard over another tenant's domain: %v", err)
	}
	h.must(CertPutType, &CertPutRequest{Cert: Cert{Tenant: "acme", Domain: "www.example.com", CertPEM: []byte("c"), KeyPEM: []byte("k")}, Time: t0})
	// Deleting: only the owner; the app's routes go with the app, and the
	// domain is free again once neither a route nor a cert holds it.
	if err := h.apply(RouteDeleteType, &RouteDeleteRequest{Tenant: "beta", ID: "r1"}); kind(err) != KindNotFound {
		t.Fatalf("delete another tenant's route: %v", err)
	}
	h.must(AppDeleteType, &AppDeleteRequest{Tenant: "acme", Name: "web"})
	if rs, _ := h.snap().AppRoutes(nil, "acme", "web"); len(rs) != 0 {
		t.Fatalf("routes survive their app: %+v", rs)
	}
	if err := add(Route{ID: "b1", Tenant: "beta", App: "shop", Host: "www.example.com", Path: "/"}); kind(err) != KindConflict {
		t.Fatalf("the cert still holds the domain: %v", err)
	}
	h.must(CertDeleteType, &CertDeleteRequest{Tenant: "acme", Domain: "www.example.com"})
	if err := add(Route{ID: "b1", Tenant: "beta", App: "shop", Host: "www.example.com", Path: "/"}); err != nil {
		t.Fatalf("a free domain: %v", err)
	}
}

func TestDrills(t *testing.T) {
	h := newHarness(t)
	fill(h) // host1 in pool aws-bj runs i-1 of acme/web
	start := func(id, pool, mode string) error {
		return h.apply(DrillStartType, &DrillStartRequest{ID: id, Pool: pool, Mode: mode, Time: t0})
	}
	if err := start("d0", "vs-sh", DrillEvacuate); err == nil {
		t.Fatal("a drill of a pool without hosts started")
	}
	if err := start("d1", "aws-bj", DrillEvacuate); err != nil {
		t.Fatal(err)
	}
	d, _ := h.snap().Drill(nil, "d1")
	if d.State != DrillRunning || len(d.Hosts) != 1 || d.Instances["acme/web"] != 1 || d.DetectedMs != -1 {
		t.Fatalf("drill: %+v", d)
	}
	if hst, _ := h.snap().Host(nil, "host1"); hst.State != HostDraining {
		t.Fatalf("evacuated host is %s", hst.State)
	}
	if err := start("d2", "aws-bj", DrillCutoff); err == nil {
		t.Fatal("a second drill started while one runs")
	}
	h.must(DrillReportType, &DrillReportRequest{ID: "d1", DetectedMs: 0, ScheduledMs: 120, ReadyMs: 900, RoutedMs: 950, FailedRequests: 0})
	h.must(DrillEndType, &DrillEndRequest{ID: "d1", Time: t0})
	d, _ = h.snap().Drill(nil, "d1")
	if d.State != DrillEnded || d.ReadyMs != 900 {
		t.Fatalf("ended drill: %+v", d)
	}
	if hst, _ := h.snap().Host(nil, "host1"); hst.State != HostReady {
		t.Fatalf("host after the evacuation drill ended: %s", hst.State)
	}
	if err := h.apply(DrillEndType, &DrillEndRequest{ID: "d1", Time: t0}); err == nil {
		t.Fatal("a drill ended twice")
	}
	if err := start("d3", "aws-bj", DrillCutoff); err != nil {
		t.Fatal(err)
	}
	if !h.snap().CutOff(nil, "host1") {
		t.Fatal("a cutoff drill does not cut its host off")
	}
	if lost, err := h.snap().LostHosts(nil); err != nil || !lost["host1"] {
		t.Fatalf("a cut-off host is not lost: %v %v", lost, err)
	}
	h.must(DrillEndType, &DrillEndRequest{ID: "d3", Time: t0})
	if h.snap().CutOff(nil, "host1") {
		t.Fatal("an ended cutoff drill still cuts its host off")
	}
	if lost, _ := h.snap().LostHosts(nil); lost["host1"] {
		t.Fatal("a host is lost after its cutoff drill ended")
	}
	h.must(HostStateType, &HostStateRequest{ID: "host1", State: HostDown, Time: t0})
	if lost, _ := h.snap().LostHosts(nil); !lost["host1"] {
		t.Fatal("a down host is not lost")
	}
	h.must(HostStateType, &HostStateRequest{ID: "host1", State: HostReady, Time: t0})
	if lost, _ := h.snap().LostHosts(nil); len(lost) != 0 {
		t.Fatalf("lost hosts after the host reported again: %v", lost)
	}
}
