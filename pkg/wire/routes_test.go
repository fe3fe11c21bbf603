package wire

import (
	"errors"
	"fmt"
	"strings"
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

// partsTable is a table of n apps, each with an HTTP route and every
// third with a TCP route, two certificates and, as a delta, a removed app.
func partsTable(n int) *RouteTable {
	t := &RouteTable{Version: 9, BaseVersion: 7, CertsChanged: true, RemovedApps: []string{"t/gone"},
		Certs: []*RouteCert{{Domain: "a.test", CertPem: make([]byte, 300)}, {Domain: "b.test", KeyPem: make([]byte, 200)}}}
	for i := range n {
		key := fmt.Sprintf("t/app-%03d", i)
		a := &RouteApp{Key: key, HoldMs: uint32(i)}
		for j := range i % 7 {
			a.Backends = append(a.Backends, &Backend{Instance: fmt.Sprintf("i-%d-%d", i, j), Addr: fmt.Sprintf("10.0.%d.%d:8080", i%250, j), Version: 1})
		}
		t.Apps = append(t.Apps, a)
		t.Http = append(t.Http, &HTTPRoute{Host: fmt.Sprintf("app-%03d.t.test", i), Path: "/", App: key})
		if i%3 == 0 {
			t.Tcp = append(t.Tcp, &TCPRoute{Port: uint32(30000 + i), App: key})
		}
	}
	SortRouteTable(t)
	return t
}

func TestSplitRouteTable(t *testing.T) {
	table := partsTable(200)
	whole := envelopeSize(table)
	if parts, err := SplitRouteTable(table, whole); err != nil || len(parts) != 1 || parts[0] != table {
		t.Fatalf("a table that fits: %d parts, %v", len(parts), err)
	}
	before := proto.Clone(table)
	limit := whole / 5
	parts, err := SplitRouteTable(table, limit)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(table, before) {
		t.Fatal("the table was changed")
	}
	if len(parts) < 5 || len(parts) > 7 {
		t.Fatalf("%d parts of at most %d bytes for a table of %d", len(parts), limit, whole)
	}
	var j RouteParts
	for i, p := range parts {
		if size := envelopeSize(p); size > limit {
			t.Fatalf("part %d encodes in %d bytes, limit %d", i, size, limit)
		}
		if p.More != (i < len(parts)-1) || p.Version != 9 || p.BaseVersion != 7 || !p.CertsChanged {
			t.Fatalf("part %d: more %v, version %d, base %d, certs_changed %v", i, p.More, p.Version, p.BaseVersion, p.CertsChanged)
		}
		apps := map[string]bool{}
		for _, a := range p.Apps {
			apps[a.Key] = true
		}
		for _, r := range p.Http {
			if !apps[r.App] {
				t.Fatalf("part %d has a route of %s without the app", i, r.App)
			}
		}
		got, err := j.Add(p)
		if err != nil || (got == nil) != p.More {
			t.Fatalf("join part %d: %v, %v", i, got != nil, err)
		}
		if got != nil && !proto.Equal(got, table) {
			t.Fatalf("joined:\n%v\nwant\n%v", got, table)
		}
	}
	if got, err := j.Add(&RouteTable{Version: 10}); err != nil || got.Version != 10 {
		t.Fatalf("a table after the parts: %v, %v", got, err)
	}

	big := partsTable(1)
	big.Apps[0].Backends = make([]*Backend, 500)
	for i := range big.Apps[0].Backends {
		big.Apps[0].Backends[i] = &Backend{Addr: "10.1.1.1:8080"}
	}
	if _, err := SplitRouteTable(big, 4096); err == nil || !strings.Contains(err.Error(), "app t/app-000") {
		t.Fatalf("an app larger than a part: %v", err)
	}
	if _, err := SplitRouteTable(table, 10); err == nil {
		t.Fatal("a limit below a part's header split")
	}
	if _, err := SplitRouteTable(table, whole/(MaxRouteParts+2)); err == nil || !strings.Contains(err.Error(), "more than 16 parts") {
		t.Fatalf("a table in more parts than an agent joins: %v", err)
	}
}

// TestRoutePartsRefusesMixedAndOversized: a part of another table among
// the parts, or parts past the bound, fail and drop what was gathered.
func TestRoutePartsRefusesMixedAndOversized(t *testing.T) {
	parts, err := SplitRouteTable(partsTable(100), envelopeSize(partsTable(100))/3)
	if err != nil || len(parts) < 3 {
		t.Fatalf("%d parts, %v", len(parts), err)
	}
	for _, other := range []*RouteTable{
		{Version: 10, BaseVersion: 7, More: true},
		{Version: 9, BaseVersion: 8},
		{Version: 9},
	} {
		var j RouteParts
		if _, err := j.Add(parts[0]); err != nil {
			t.Fatal(err)
		}
		if got, err := j.Add(other); !errors.Is(err, ErrCorrupt) || got != nil {
			t.Fatalf("version %d base %d among parts of 9 over 7: %v, %v", other.Version, other.BaseVersion, got, err)
		}
		// Nothing gathered is left: the next table is taken as it comes.
		if got, err := j.Add(&RouteTable{Version: 11}); err != nil || got.GetVersion() != 11 {
			t.Fatalf("after a refused part: %v, %v", got, err)
		}
	}
	j := RouteParts{Max: 2}
	for _, p := range parts[:2] {
		if _, err := j.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := j.Add(parts[2]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("parts past the bound: %v", err)
	}
}

// FuzzSplitRouteTable: any table either is refused or splits into parts
// that each fit the limit and join into the table, sorted.
func FuzzSplitRouteTable(f *testing.F) {
	seed, _ := proto.Marshal(partsTable(30))
	f.Add(seed, uint16(600))
	f.Fuzz(func(t *testing.T, b []byte, limit uint16) {
		var table RouteTable
		if proto.Unmarshal(b, &table) != nil {
			return
		}
		// What the table's own unknown fields were is not carried.
		table.More = false
		table.ProtoReflect().SetUnknown(nil)
		parts, err := SplitRouteTable(&table, int(limit))
		if err != nil {
			return
		}
		var j RouteParts
		for i, p := range parts {
			if len(parts) > 1 && envelopeSize(p) > int(limit) {
				t.Fatalf("part %d encodes in %d bytes, limit %d", i, envelopeSize(p), limit)
			}
			got, err := j.Add(p)
			if err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
			if (got == nil) != (i < len(parts)-1) {
				t.Fatalf("part %d of %d: joined %v", i, len(parts), got != nil)
			}
			if got != nil && len(parts) > 1 {
				want := proto.Clone(&table).(*RouteTable)
				SortRouteTable(want)
				SortRouteTable(got)
				if !proto.Equal(got, want) {
					t.Fatalf("joined:\n%v\nwant\n%v", got, want)
				}
			}
		}
	})
}
