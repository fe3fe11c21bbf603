package scheduler

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestSpreadOverHosts(t *testing.T) {
	app := mkApp("web", 0, 500, 512, "eu")
	three := []Host{
		mkHost("h1", "eu", "dc1", "a", 4000, 8192),
		mkHost("h2", "eu", "dc1", "a", 4000, 8192),
		mkHost("h3", "eu", "dc1", "a", 4000, 8192),
	}
	tests := []struct {
		name     string
		hosts    []Host
		existing []Instance
		count    int
		want     map[string]int
	}{
		{"one per host before packing", three, nil, 3, map[string]int{"h1": 1, "h2": 1, "h3": 1}},
		{"hosts already running it come last", three, []Instance{
			{ID: "x1", App: app.Key, Version: 1, Host: "h1", CPU: 500, Memory: 512},
			{ID: "x2", App: app.Key, Version: 1, Host: "h1", CPU: 500, Memory: 512},
		}, 4, map[string]int{"h2": 1, "h3": 1}},
		{"more instances than hosts stay even", three[:2], nil, 5, map[string]int{"h1": 3, "h2": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.hosts...)
			for _, in := range tt.existing {
				h.addInstance(in)
			}
			a := app
			a.Count = tt.count
			p := h.plan(a)
			eqCounts(t, "placements", perHost(p), tt.want)
			if len(p.Pending) != 0 || len(p.Stop) != 0 {
				t.Errorf("unexpected pending %v / stops %v", p.Pending, p.Stop)
			}
		})
	}
}

func TestSpreadDomains(t *testing.T) {
	zone := func(h Host) string { return h.Zone }
	dc := func(h Host) string { return h.Datacenter }
	tests := []struct {
		name     string
		hosts    []Host
		existing []string // hosts already running one instance each
		app      App
		attr     func(Host) string
		want     map[string]int // placements per attribute value
		wantHost map[string]int // placements per host, when set
	}{
		{
			name: "zones even despite more hosts in one",
			hosts: []Host{
				mkHost("a1", "eu", "dc1", "a", 4000, 8192), mkHost("a2", "eu", "dc1", "a", 4000, 8192),
				mkHost("a3", "eu", "dc1", "a", 4000, 8192), mkHost("b1", "eu", "dc1", "b", 4000, 8192),
			},
			app:      App{Key: AppKey{"acme", "web"}, Version: 1, Count: 4, CPU: 100, Memory: 100, Pools: []string{"eu"}, Spread: SpreadZone},
			attr:     zone,
			want:     map[string]int{"a": 2, "b": 2},
			wantHost: map[string]int{"a1": 1, "a2": 1, "b1": 2},
		},
		{
			name: "host spread ignores zones",
			hosts: []Host{
				mkHost("a1", "eu", "dc1", "a", 4000, 8192), mkHost("a2", "eu", "dc1", "a", 4000, 8192),
				mkHost("a3", "eu", "dc1", "a", 4000, 8192), mkHost("b1", "eu", "dc1", "b", 4000, 8192),
			},
			app:  App{Key: AppKey{"acme", "web"}, Version: 1, Count: 4, CPU: 100, Memory: 100, Pools: []string{"eu"}, Spread: SpreadHost},
			attr: zone,
			want: map[string]int{"a": 3, "b": 1},
		},
		{
			name: "existing instances weigh on their zone",
			hosts: []Host{
				mkHost("a1", "eu", "dc1", "a", 4000, 8192), mkHost("a2", "eu", "dc1", "a", 4000, 8192),
				mkHost("b1", "eu", "dc1", "b", 4000, 8192), mkHost("b2", "eu", "dc1", "b", 4000, 8192),
			},
			existing: []string{"a1", "a2"},
			app:      App{Key: AppKey{"acme", "web"}, Version: 1, Count: 4, CPU: 100, Memory: 100, Pools: []string{"eu"}, Spread: SpreadZone},
			attr:     zone,
			want:     map[string]int{"b": 2},
			wantHost: map[string]int{"b1": 1, "b2": 1},
		},
		{
			name: "datacenters across the app's pools",
			hosts: []Host{
				mkHost("e1", "eu1", "dc1", "a", 4000, 8192), mkHost("e2", "eu1", "dc1", "b", 4000, 8192),
				mkHost("f1", "eu2", "dc2", "a", 4000, 8192), mkHost("f2", "eu2", "dc2", "b", 4000, 8192),
			},
			app:  App{Key: AppKey{"acme", "web"}, Version: 1, Count: 4, CPU: 100, Memory: 100, Pools: []string{"eu1", "eu2"}, Spread: SpreadDatacenter},
			attr: dc,
			want: map[string]int{"dc1": 2, "dc2": 2},
		},
		{
			name: "without datacenter spread the first pool wins",
			hosts: []Host{
				mkHost("e1", "eu1", "dc1", "a", 4000, 8192), mkHost("e2", "eu1", "dc1", "b", 4000, 8192),
				mkHost("f1", "eu2", "dc2", "a", 4000, 8192), mkHost("f2", "eu2", "dc2", "b", 4000, 8192),
			},
			app:  App{Key: AppKey{"acme", "web"}, Version: 1, Count: 4, CPU: 100, Memory: 100, Pools: []string{"eu1", "eu2"}},
			attr: dc,
			want: map[string]int{"dc1": 4},
		},
		{
			name: "within a domain the earlier pool comes first",
			hosts: []Host{
				mkHost("e1", "eu", "dc1", "a", 4000, 8192), mkHost("u1", "us", "dc1", "a", 4000, 4096),
			},
			app:      App{Key: AppKey{"acme", "web"}, Version: 1, Count: 1, CPU: 100, Memory: 100, Pools: []string{"eu", "us"}, Spread: SpreadZone},
			attr:     zone,
			want:     map[string]int{"a": 1},
			wantHost: map[string]int{"e1": 1},
		},
		{
			name: "on hosts already running the app the earlier pool comes first",
			hosts: []Host{
				mkHost("e1", "eu", "dc1", "a", 4000, 8192), mkHost("u1", "us", "dc1", "a", 4000, 4096),
			},
			app:      App{Key: AppKey{"acme", "web"}, Version: 1, Count: 3, CPU: 100, Memory: 100, Pools: []string{"eu", "us"}, Spread: SpreadZone},
			attr:     zone,
			want:     map[string]int{"a": 3},
			wantHost: map[string]int{"e1": 2, "u1": 1},
		},
		{
			name: "between even domains the earlier pool comes first",
			hosts: []Host{
				mkHost("a-u1", "us", "dc1", "a", 4000, 8192), mkHost("b-e1", "eu", "dc1", "b", 4000, 8192),
			},
			app:      App{Key: AppKey{"acme", "web"}, Version: 1, Count: 1, CPU: 100, Memory: 100, Pools: []string{"eu", "us"}, Spread: SpreadZone},
			attr:     zone,
			want:     map[string]int{"b": 1},
			wantHost: map[string]int{"b-e1": 1},
		},
		{
			name: "zone spread fills what is left when a zone is full",
			hosts: []Host{
				mkHost("a1", "eu", "dc1", "a", 4000, 8192), mkHost("b1", "eu", "dc1", "b", 4000, 150),
			},
			app:  App{Key: AppKey{"acme", "web"}, Version: 1, Count: 3, CPU: 100, Memory: 100, Pools: []string{"eu"}, Spread: SpreadZone},
			attr: zone,
			want: map[string]int{"a": 2, "b": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.hosts...)
			for i, host := range tt.existing {
				h.addInstance(Instance{ID: "old-" + string(rune('a'+i)), App: tt.app.Key, Version: 1, Host: host, CPU: 100, Memory: 100})
			}
			p := h.plan(tt.app)
			eqCounts(t, "placements per domain", perAttr(h, p, tt.attr), tt.want)
			if tt.wantHost != nil {
				eqCounts(t, "placements per host", perHost(p), tt.wantHost)
			}
			if len(p.Pending) != 0 {
				t.Errorf("pending: %v", p.Pending)
			}
		})
	}
}

func TestPacking(t *testing.T) {
	other := AppKey{"acme", "other"}
	web := AppKey{"acme", "web"}
	tests := []struct {
		name     string
		hosts    []Host
		existing []Instance
		apps     []App
		want     map[string]int
	}{
		{
			name: "least free memory that still fits",
			hosts: []Host{
				mkHost("h1", "eu", "dc1", "a", 4000, 16384), mkHost("h2", "eu", "dc1", "a", 4000, 4096),
				mkHost("h3", "eu", "dc1", "a", 4000, 2048),
			},
			apps: []App{mkApp("web", 1, 100, 3000, "eu")},
			want: map[string]int{"h2": 1},
		},
		{
			name:  "cpu must fit too",
			hosts: []Host{mkHost("h1", "eu", "dc1", "a", 100, 4096), mkHost("h2", "eu", "dc1", "a", 4000, 8192)},
			apps:  []App{mkApp("web", 1, 500, 1000, "eu")},
			want:  map[string]int{"h2": 1},
		},
		{
			name:     "instances of other apps use capacity",
			hosts:    []Host{mkHost("h1", "eu", "dc1", "a", 4000, 8192), mkHost("h2", "eu", "dc1", "a", 4000, 8192)},
			existing: []Instance{{ID: "o1", App: other, Version: 1, Host: "h2", CPU: 100, Memory: 4096}},
			apps:     []App{mkApp("web", 1, 100, 1000, "eu")},
			want:     map[string]int{"h2": 1},
		},
		{
			name:  "terminal instances free their capacity",
			hosts: []Host{mkHost("h1", "eu", "dc1", "a", 4000, 8192), mkHost("h2", "eu", "dc1", "a", 4000, 8192)},
			existing: []Instance{
				{ID: "o1", App: other, Version: 1, Host: "h1", CPU: 100, Memory: 1000},
				{ID: "o2", App: other, Version: 1, Host: "h2", CPU: 100, Memory: 8000, Terminal: true},
			},
			apps: []App{mkApp("web", 1, 100, 7500, "eu")},
			want: map[string]int{"h2": 1},
		},
		{
			name:  "placements earlier in the plan use capacity",
			hosts: []Host{mkHost("h1", "eu", "dc1", "a", 4000, 8192), mkHost("h2", "eu", "dc1", "a", 4000, 8192)},
			apps:  []App{mkApp("a1", 1, 100, 5000, "eu"), mkApp("a2", 1, 100, 5000, "eu")},
			want:  map[string]int{"h1": 1, "h2": 1},
		},
		{
			name:     "older versions hold capacity but do not count",
			hosts:    []Host{mkHost("h1", "eu", "dc1", "a", 4000, 8192), mkHost("h2", "eu", "dc1", "a", 4000, 8192)},
			existing: []Instance{{ID: "w1", App: web, Version: 1, Host: "h1", CPU: 100, Memory: 6000}},
			apps:     []App{{Key: web, Version: 2, Count: 1, CPU: 100, Memory: 4000, Pools: []string{"eu"}}},
			want:     map[string]int{"h2": 1},
		},
		{
			name:  "free memory ties go to less free cpu",
			hosts: []Host{mkHost("h1", "eu", "dc1", "a", 8000, 8192), mkHost("h2", "eu", "dc1", "a", 2000, 8192)},
			apps:  []App{mkApp("web", 1, 100, 100, "eu")},
			want:  map[string]int{"h2": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.hosts...)
			for _, in := range tt.existing {
				h.addInstance(in)
			}
			p := h.plan(tt.apps...)
			eqCounts(t, "placements", perHost(p), tt.want)
			if len(p.Pending) != 0 {
				t.Errorf("pending: %v", p.Pending)
			}
		})
	}
}

func TestPoolOrder(t *testing.T) {
	hosts := []Host{mkHost("e1", "eu", "dc1", "a", 4000, 2048), mkHost("u1", "us", "dc2", "a", 4000, 65536)}
	tests := []struct {
		name string
		app  App
		want map[string]int
	}{
		{"first pool with capacity wins over host spread", mkApp("web", 2, 100, 1024, "eu", "us"), map[string]int{"e1": 2}},
		{"second pool once the first is full", mkApp("web", 3, 100, 1024, "eu", "us"), map[string]int{"e1": 2, "u1": 1}},
		{"the app's order, not the names'", mkApp("web", 2, 100, 1024, "us", "eu"), map[string]int{"u1": 2}},
		{"no pools: the allowed pools in their order",
			App{Key: AppKey{"acme", "web"}, Version: 1, Count: 1, CPU: 100, Memory: 100, AllowedPools: []string{"us", "eu"}},
			map[string]int{"u1": 1}},
		{"no pools and no allowed list: every pool by name",
			App{Key: AppKey{"acme", "web"}, Version: 1, Count: 1, CPU: 100, Memory: 100},
			map[string]int{"e1": 1}},
		{"pools the tenant may not use are skipped",
			App{Key: AppKey{"acme", "web"}, Version: 1, Count: 1, CPU: 100, Memory: 100, Pools: []string{"eu", "us"}, AllowedPools: []string{"us"}},
			map[string]int{"u1": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newHarness(t, hosts...).plan(tt.app)
			eqCounts(t, "placements", perHost(p), tt.want)
		})
	}
}

func TestFailoverPools(t *testing.T) {
	down := func(h Host) Host { h.Ready, h.Down = false, true; return h }
	tests := []struct {
		name  string
		hosts []Host
		count int
		want  map[string]int
	}{
		{"primary pool preferred", []Host{
			mkHost("e1", "eu", "dc1", "a", 4000, 8192), mkHost("f1", "f1", "dc2", "a", 4000, 8192),
		}, 2, map[string]int{"e1": 2}},
		{"primary pool down", []Host{
			down(mkHost("e1", "eu", "dc1", "a", 4000, 8192)), mkHost("f1", "f1", "dc2", "a", 4000, 8192),
			mkHost("f2", "f2", "dc3", "a", 4000, 8192),
		}, 2, map[string]int{"f1": 2}},
		{"failover pools in order", []Host{
			mkHost("e1", "eu", "dc1", "a", 4000, 1024), mkHost("f1", "f1", "dc2", "a", 4000, 1024),
			mkHost("f2", "f2", "dc3", "a", 4000, 8192),
		}, 4, map[string]int{"e1": 1, "f1": 1, "f2": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := mkApp("web", tt.count, 100, 1024, "eu")
			app.FailoverPools = []string{"f1", "f2"}
			p := newHarness(t, tt.hosts...).plan(app)
			eqCounts(t, "placements", perHost(p), tt.want)
			if len(p.Pending) != 0 {
				t.Errorf("pending: %v", p.Pending)
			}
		})
	}
}

func TestConstraints(t *testing.T) {
	// Each host fits exactly one instance, so the placements are the set
	// of hosts the constraints allow.
	hosts := []Host{
		withLabels(mkHost("h1", "eu", "dc1", "a", 1000, 1000), "gpu", "true", "disk", "ssd"),
		withLabels(mkHost("h2", "eu", "dc1", "b", 1000, 1000), "disk", "hdd"),
		mkHost("h3", "eu", "dc2", "c", 1000, 1000),
		withLabels(mkHost("h4", "us", "dc2", "c", 1000, 1000), "gpu", "false"),
	}
	tests := []struct {
		constraints []string
		want        []string
	}{
		{[]string{"label.gpu=true"}, []string{"h1"}},
		{[]string{"label.gpu!=true"}, []string{"h2", "h3", "h4"}},
		{[]string{"label.disk in ssd,hdd"}, []string{"h1", "h2"}},
		{[]string{"label.disk not_in ssd"}, []string{"h2", "h3", "h4"}},
		{[]string{"label.gpu exists"}, []string{"h1", "h4"}},
		{[]string{"zone=c"}, []string{"h3", "h4"}},
		{[]string{"zone!=a"}, []string{"h2", "h3", "h4"}},
		{[]string{"datacenter in (dc2)"}, []string{"h3", "h4"}},
		{[]string{"datacenter not_in dc2"}, []string{"h1", "h2"}},
		{[]string{"pool=us"}, []string{"h4"}},
		{[]string{"pool!=us"}, []string{"h1", "h2", "h3"}},
		{[]string{"name=n-h2"}, []string{"h2"}},
		{[]string{"name not_in n-h1,n-h2"}, []string{"h3", "h4"}},
		{[]string{"label.disk exists", "zone!=a"}, []string{"h2"}},
		{[]string{"label.gpu=true", "pool=us"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.constraints, " & "), func(t *testing.T) {
			cs, err := ParseConstraints(tt.constraints)
			if err != nil {
				t.Fatal(err)
			}
			app := mkApp("web", 4, 1000, 1000, "eu", "us")
			app.Constraints = cs
			p := newHarness(t, hosts...).plan(app)
			got := slices.Sorted(maps.Keys(perHost(p)))
			if !slices.Equal(got, tt.want) {
				t.Errorf("placed on %v, want %v", got, tt.want)
			}
			pending := 0
			for _, x := range p.Pending {
				pending += x.Count
			}
			if pending != 4-len(tt.want) {
				t.Errorf("pending %d, want %d", pending, 4-len(tt.want))
			}
		})
	}
}

func TestHostStates(t *testing.T) {
	web := AppKey{"acme", "web"}
	suspect := func(h Host) Host { h.Ready = false; return h }
	down := func(h Host) Host { h.Ready, h.Down = false, true; return h }
	inst := func(id, host string) Instance {
		return Instance{ID: id, App: web, Version: 1, Host: host, CPU: 100, Memory: 100}
	}
	tests := []struct {
		name      string
		hosts     []Host
		existing  []Instance
		count     int
		want      map[string]int
		wantStops map[string]string // instance id -> reason substring
	}{
		{"a host that is not ready takes nothing", []Host{
			suspect(mkHost("h1", "eu", "dc1", "a", 4000, 8192)), mkHost("h2", "eu", "dc1", "a", 4000, 8192),
		}, nil, 2, map[string]int{"h2": 2}, nil},
		{"a suspect host keeps its instances", []Host{
			suspect(mkHost("h1", "eu", "dc1", "a", 4000, 8192)), mkHost("h2", "eu", "dc1", "a", 4000, 8192),
		}, []Instance{inst("i1", "h1"), inst("i2", "h1")}, 2, map[string]int{}, nil},
		{"a down host's instances are stopped and replaced", []Host{
			down(mkHost("h1", "eu", "dc1", "a", 4000, 8192)), mkHost("h2", "eu", "dc1", "a", 4000, 8192),
		}, []Instance{inst("i1", "h1"), inst("i2", "h1")}, 2, map[string]int{"h2": 2},
			map[string]string{"i1": `host "n-h1" is down`, "i2": `host "n-h1" is down`}},
		{"a vanished host's instances are stopped and replaced", []Host{
			mkHost("h2", "eu", "dc1", "a", 4000, 8192),
		}, []Instance{inst("i1", "h9")}, 1, map[string]int{"h2": 1},
			map[string]string{"i1": `host "h9" is gone`}},
		{"terminal instances on a down host are left alone", []Host{
			down(mkHost("h1", "eu", "dc1", "a", 4000, 8192)), mkHost("h2", "eu", "dc1", "a", 4000, 8192),
		}, []Instance{{ID: "i1", App: web, Version: 1, Host: "h1", Terminal: true}}, 1, map[string]int{"h2": 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.hosts...)
			for _, in := range tt.existing {
				h.addInstance(in)
			}
			p := h.plan(mkApp("web", tt.count, 100, 100, "eu"))
			eqCounts(t, "placements", perHost(p), tt.want)
			if len(p.Stop) != len(tt.wantStops) {
				t.Fatalf("stops %v, want %v", p.Stop, tt.wantStops)
			}
			for _, s := range p.Stop {
				if want, ok := tt.wantStops[s.InstanceID]; !ok || !strings.Contains(s.Reason, want) {
					t.Errorf("stop %s (%q), want reason %q", s.InstanceID, s.Reason, want)
				}
			}
		})
	}
}

func TestScaleDown(t *testing.T) {
	web := AppKey{"acme", "web"}
	other := AppKey{"acme", "other"}
	inst := func(id, host string) Instance {
		return Instance{ID: id, App: web, Version: 1, Host: host, CPU: 100, Memory: 100}
	}
	suspect := func(h Host) Host { h.Ready = false; return h }
	tests := []struct {
		name     string
		hosts    []Host
		existing []Instance
		app      App
		want     []string
	}{
		{"not ready hosts first", []Host{
			mkHost("h1", "eu", "dc1", "a", 4000, 8192), suspect(mkHost("h2", "eu", "dc1", "a", 4000, 8192)),
		}, []Instance{inst("i1", "h2"), inst("i2", "h1")}, mkApp("web", 1, 100, 100, "eu"), []string{"i1"}},
		{"then the host with most instances of the app", []Host{
			mkHost("h1", "eu", "dc1", "a", 4000, 8192), mkHost("h2", "eu", "dc1", "a", 4000, 8192),
		}, []Instance{inst("i1", "h1"), inst("i2", "h1"), inst("i3", "h1"), inst("i4", "h2"),
			{ID: "o1", App: other, Version: 1, Host: "h2", CPU: 100, Memory: 4000}},
			mkApp("web", 2, 100, 100, "eu"), []string{"i2", "i3"}},
		{"then the host with least free capacity", []Host{
			mkHost("h1", "eu", "dc1", "a", 4000, 8192), mkHost("h2", "eu", "dc1", "a", 4000, 8192),
		}, []Instance{inst("i1", "h2"), inst("i2", "h1"),
			{ID: "o1", App: other, Version: 1, Host: "h2", Memory: 4000}},
			mkApp("web", 1, 100, 100, "eu"), []string{"i1"}},
		{"zone spread: the most crowded zone first", []Host{
			mkHost("a1", "eu", "dc1", "a", 4000, 8192), mkHost("a2", "eu", "dc1", "a", 4000, 8192),
			mkHost("b1", "eu", "dc1", "b", 4000, 8192),
		}, []Instance{inst("i1", "a1"), inst("i2", "a2"), inst("i3", "b1"),
			{ID: "o1", App: other, Version: 1, Host: "b1", CPU: 100, Memory: 4000}},
			App{Key: web, Version: 1, Count: 2, CPU: 100, Memory: 100, Pools: []string{"eu"}, Spread: SpreadZone}, []string{"i2"}},
		{"to zero", []Host{mkHost("h1", "eu", "dc1", "a", 4000, 8192)},
			[]Instance{inst("i1", "h1"), inst("i2", "h1")}, mkApp("web", 0, 100, 100, "eu"), []string{"i1", "i2"}},
		{"only the current version counts", []Host{mkHost("h1", "eu", "dc1", "a", 4000, 8192)},
			[]Instance{{ID: "v1", App: web, Version: 1, Host: "h1"}, {ID: "v2a", App: web, Version: 2, Host: "h1"}, {ID: "v2b", App: web, Version: 2, Host: "h1"}},
			App{Key: web, Version: 2, Count: 1, Pools: []string{"eu"}}, []string{"v2b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.hosts...)
			for _, in := range tt.existing {
				h.addInstance(in)
			}
			p := h.plan(tt.app)
			if got := stopIDs(p); !slices.Equal(got, tt.want) {
				t.Errorf("stopped %v, want %v", got, tt.want)
			}
			if len(p.Place) != 0 {
				t.Errorf("placed %v", p.Place)
			}
			for _, s := range p.Stop {
				if !strings.Contains(s.Reason, "scaled down to") {
					t.Errorf("reason %q", s.Reason)
				}
			}
		})
	}
}

func TestPending(t *testing.T) {
	down := func(h Host) Host { h.Ready, h.Down = false, true; return h }
	gpuless := []Host{mkHost("e1", "eu", "dc1", "a", 4000, 8192), mkHost("e2", "eu", "dc1", "a", 4000, 8192)}
	tests := []struct {
		name      string
		hosts     []Host
		app       App
		wantCount int
		want      []string // substrings of the reason, in order
	}{
		{"no ready host", []Host{down(mkHost("e1", "eu", "dc1", "a", 4000, 8192))},
			mkApp("web", 2, 100, 100, "eu"), 2, []string{`no ready host in pool "eu"`}},
		{"no capacity", []Host{mkHost("e1", "eu", "dc1", "a", 200, 1024), mkHost("e2", "eu", "dc1", "a", 100, 128)},
			mkApp("web", 1, 500, 256, "eu"), 1,
			[]string{`no capacity in pool "eu": need 500m CPU/256 MB, best host has 200m/1024 MB free`}},
		{"excluded by constraint", gpuless,
			App{Key: AppKey{"acme", "web"}, Version: 1, Count: 1, Pools: []string{"eu"}, Constraints: []Constraint{{Attr: "label.gpu", Op: OpEqual, Values: []string{"true"}}}},
			1, []string{`2 hosts in pool "eu" excluded by constraint label.gpu=true`}},
		{"unknown pool", gpuless, mkApp("web", 1, 100, 100, "mars"), 1, []string{`no host in pool "mars"`}},
		{"pool not allowed",
			gpuless, App{Key: AppKey{"acme", "web"}, Version: 1, Count: 1, Pools: []string{"eu"}, AllowedPools: []string{"us"}},
			1, []string{`pool "eu" is not allowed for tenant "acme"`}},
		{"some fit, the rest pending", []Host{mkHost("e1", "eu", "dc1", "a", 4000, 2048)},
			mkApp("web", 3, 100, 1024, "eu"), 1, []string{`no capacity in pool "eu": need 100m CPU/1024 MB, best host has 3800m/0 MB free`}},
		{"every pool explained, failover included",
			[]Host{down(mkHost("e1", "eu", "dc1", "a", 4000, 8192)), mkHost("u1", "us", "dc2", "a", 100, 8192)},
			App{Key: AppKey{"acme", "web"}, Version: 1, Count: 1, CPU: 500, Memory: 100, Pools: []string{"eu"}, FailoverPools: []string{"us", "ap"}},
			1, []string{`no ready host in pool "eu"`, `; no capacity in pool "us": need 500m CPU/100 MB, best host has 100m/8192 MB free`, `; no host in pool "ap"`}},
		{"constraints and capacity in one pool",
			[]Host{withLabels(mkHost("e1", "eu", "dc1", "a", 4000, 512), "gpu", "true"), mkHost("e2", "eu", "dc1", "a", 4000, 8192)},
			App{Key: AppKey{"acme", "web"}, Version: 1, Count: 1, Memory: 1024, Pools: []string{"eu"}, Constraints: []Constraint{{Attr: "label.gpu", Op: OpExists}}},
			1, []string{`1 host in pool "eu" excluded by constraint label.gpu exists`, `no capacity in pool "eu": need 0m CPU/1024 MB, best host has 4000m/512 MB free`}},
		{"invalid app", gpuless, App{Key: AppKey{"acme", "web"}, Version: 1, Count: 1, Spread: "rack"}, 1, []string{`invalid app: spread "rack"`}},
		{"no hosts at all", nil, mkApp("web", 1, 100, 100), 1, []string{"no host is enrolled in any pool"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newHarness(t, tt.hosts...).plan(tt.app)
			if len(p.Pending) != 1 {
				t.Fatalf("pending %v, want one entry", p.Pending)
			}
			got := p.Pending[0]
			if got.App != tt.app.Key || got.Count != tt.wantCount {
				t.Errorf("pending %s ×%d, want %s ×%d", got.App, got.Count, tt.app.Key, tt.wantCount)
			}
			rest := got.Reason
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("reason %q lacks %q (in order)", got.Reason, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestPlanIsDeterministic(t *testing.T) {
	var hosts []Host
	for i := range 40 {
		hosts = append(hosts, withLabels(mkHost(string(rune('A'+i%26))+string(rune('a'+i/26)), []string{"eu", "us"}[i%2], "dc1", []string{"a", "b", "c"}[i%3], 4000, 8192), "n", string(rune('0'+i%4))))
	}
	apps := []App{
		mkApp("a", 30, 300, 700, "eu", "us"),
		{Key: AppKey{"acme", "b"}, Version: 1, Count: 20, CPU: 200, Memory: 900, Pools: []string{"us", "eu"}, Spread: SpreadZone},
		{Key: AppKey{"acme", "c"}, Version: 1, Count: 50, CPU: 100, Memory: 300, Constraints: []Constraint{{Attr: "label.n", Op: OpIn, Values: []string{"1", "2"}}}},
	}
	first := newHarness(t, hosts...).plan(apps...)
	for range 3 {
		// Host order in the state must not matter.
		shuffled := slices.Clone(hosts)
		slices.Reverse(shuffled)
		if got := newHarness(t, shuffled...).plan(apps...); !reflect.DeepEqual(got, first) {
			t.Fatal("same input, different plan")
		}
	}
	// A reused Scheduler gives the same plan as a new one.
	h := newHarness(t, hosts...)
	s := New()
	s.Plan(h, apps, h.ids())
	h.nextID = 0
	if got := s.Plan(h, apps, h.ids()); !reflect.DeepEqual(got, first) {
		t.Fatal("reused scheduler planned differently")
	}
}

func TestDuplicateAppsCountOnce(t *testing.T) {
	h := newHarness(t, mkHost("h1", "eu", "dc1", "a", 4000, 8192))
	app := mkApp("web", 2, 100, 100, "eu")
	if p := h.plan(app, app); len(p.Place) != 2 {
		t.Fatalf("placed %d, want 2", len(p.Place))
	}
}

// TestConverge runs the plan/apply loop through a zone outage.
func TestConverge(t *testing.T) {
	var hosts []Host
	for _, z := range []string{"a", "b", "c"} {
		for i := range 2 {
			hosts = append(hosts, mkHost(z+string(rune('1'+i)), "eu", "dc1", z, 4000, 8192))
		}
	}
	h := newHarness(t, hosts...)
	app := App{Key: AppKey{"acme", "web"}, Version: 1, Count: 6, CPU: 500, Memory: 512, Pools: []string{"eu"}, Spread: SpreadZone}
	if p := h.converge(t, app); len(p) != 0 {
		t.Fatalf("pending %v", p)
	}
	eqCounts(t, "initial", h.live(app.Key), map[string]int{"a1": 1, "a2": 1, "b1": 1, "b2": 1, "c1": 1, "c2": 1})

	h.setHost("c1", func(x *Host) { x.Ready, x.Down = false, true })
	h.setHost("c2", func(x *Host) { x.Ready, x.Down = false, true })
	if p := h.converge(t, app); len(p) != 0 {
		t.Fatalf("pending %v", p)
	}
	eqCounts(t, "after zone c went down", h.live(app.Key), map[string]int{"a1": 2, "a2": 1, "b1": 2, "b2": 1})

	app.Count = 4
	h.converge(t, app)
	eqCounts(t, "after scaling down", h.live(app.Key), map[string]int{"a1": 1, "a2": 1, "b1": 1, "b2": 1})
}
