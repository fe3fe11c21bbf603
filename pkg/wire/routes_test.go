package wire

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestApplyRouteDelta(t *testing.T) {
	cur := &RouteTable{Version: 4,
		Apps:  []*RouteApp{{Key: "t/a"}, {Key: "t/b"}, {Key: "t/c"}},
		Http:  []*HTTPRoute{{Host: "a.test", Path: "/", App: "t/a"}, {Host: "b.test", Path: "/", App: "t/b"}, {Host: "c.test", Path: "/", App: "t/c"}},
		Tcp:   []*TCPRoute{{Port: 30001, App: "t/b"}},
		Certs: []*RouteCert{{Domain: "a.test"}},
	}
	d := &RouteTable{Version: 6, BaseVersion: 4,
		Apps:        []*RouteApp{{Key: "t/aa", HoldMs: 1}, {Key: "t/c", SignalRps: 3}},
		Http:        []*HTTPRoute{{Host: "aa.test", Path: "/", App: "t/aa"}, {Host: "c.test", Path: "/v2", App: "t/c"}},
		RemovedApps: []string{"t/b"},
	}
	want := &RouteTable{Version: 6,
		Apps:  []*RouteApp{{Key: "t/a"}, {Key: "t/aa", HoldMs: 1}, {Key: "t/c", SignalRps: 3}},
		Http:  []*HTTPRoute{{Host: "a.test", Path: "/", App: "t/a"}, {Host: "aa.test", Path: "/", App: "t/aa"}, {Host: "c.test", Path: "/v2", App: "t/c"}},
		Certs: []*RouteCert{{Domain: "a.test"}},
	}
	before := proto.Clone(cur)
	got, err := ApplyRouteDelta(cur, d)
	if err != nil || !proto.Equal(got, want) {
		t.Fatalf("ApplyRouteDelta = %v, %v\nwant %v", got, err, want)
	}
	if !proto.Equal(cur, before) {
		t.Fatal("the table held was changed")
	}
	d.CertsChanged, d.Certs = true, nil
	if got, err := ApplyRouteDelta(cur, d); err != nil || len(got.Certs) != 0 {
		t.Fatalf("certificates replaced by none: %v, %v", got.GetCerts(), err)
	}
	for _, tc := range []struct {
		name     string
		cur, d   *RouteTable
		baseErr  bool
		anyError bool
	}{
		{"nothing held", nil, d, true, true},
		{"another base", &RouteTable{Version: 5}, d, true, true},
		{"a delta held", &RouteTable{Version: 4, BaseVersion: 2}, d, true, true},
		{"not a delta", cur, &RouteTable{Version: 6}, false, true},
	} {
		_, err := ApplyRouteDelta(tc.cur, tc.d)
		if (err != nil) != tc.anyError || errors.Is(err, ErrRouteBase) != tc.baseErr {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// FuzzApplyRouteDelta: any table and any delta the agent is sent either
// are refused or make a table of the delta's version, with every app the
// delta does not name kept as it was.
func FuzzApplyRouteDelta(f *testing.F) {
	cur, _ := proto.Marshal(&RouteTable{Version: 4, Apps: []*RouteApp{{Key: "t/a"}, {Key: "t/b"}}, Http: []*HTTPRoute{{Host: "a.test", App: "t/a"}}})
	d, _ := proto.Marshal(&RouteTable{Version: 5, BaseVersion: 4, Apps: []*RouteApp{{Key: "t/c"}}, RemovedApps: []string{"t/b"}})
	f.Add(cur, d)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var cur, d RouteTable
		if proto.Unmarshal(a, &cur) != nil || proto.Unmarshal(b, &d) != nil {
			return
		}
		before := proto.Clone(&cur)
		got, err := ApplyRouteDelta(&cur, &d)
		if !proto.Equal(&cur, before) {
			t.Fatal("the table held was changed")
		}
		if err != nil {
			return
		}
		if got.Version != d.Version || got.BaseVersion != 0 {
			t.Fatalf("version %d base %d, want %d and 0", got.Version, got.BaseVersion, d.Version)
		}
		named := map[string]bool{}
		for _, a := range d.Apps {
			named[a.Key] = true
		}
		for _, k := range d.RemovedApps {
			named[k] = true
		}
		kept := map[string]int{}
		for _, a := range got.Apps {
			kept[a.Key]++
		}
		for _, a := range cur.Apps {
			if !named[a.Key] && kept[a.Key] == 0 {
				t.Fatalf("app %s, not in the delta, is gone", a.Key)
			}
		}
	})
}
