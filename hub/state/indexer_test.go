package state

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/hashicorp/go-memdb"
)

// TestStringsIndexMatchesMemdb: the reflection-free indexes make exactly
// the keys of memdb's StringFieldIndex and CompoundIndex over the same
// fields, so orders and prefix scans are unchanged.
func TestStringsIndexMatchesMemdb(t *testing.T) {
	values := []string{"", "a", "acme", "acme2", "web", "we", "x\x00y", "héllo"}
	type pair struct {
		ours   memdb.Indexer
		memdbs memdb.Indexer
		obj    func(a, b string) any
		n      int
	}
	pairs := []pair{
		{stringIndex(func(o *Tenant) string { return o.Name }), &memdb.StringFieldIndex{Field: "Name"},
			func(a, _ string) any { return &Tenant{Name: a} }, 1},
		{stringIndex(func(o *IndexEntry) string { return o.Table }), &memdb.StringFieldIndex{Field: "Table"},
			func(a, _ string) any { return &IndexEntry{Table: a} }, 1},
		{stringPairIndex(func(o *App) string { return o.Tenant }, func(o *App) string { return o.Name }),
			&memdb.CompoundIndex{Indexes: []memdb.Indexer{&memdb.StringFieldIndex{Field: "Tenant"}, &memdb.StringFieldIndex{Field: "Name"}}},
			func(a, b string) any { return &App{Tenant: a, Name: b} }, 2},
		{stringIndex(func(o *Instance) string { return o.ID }), &memdb.StringFieldIndex{Field: "ID"},
			func(a, _ string) any { return &Instance{ID: a} }, 1},
		{stringPairIndex(func(o *Instance) string { return o.Tenant }, func(o *Instance) string { return o.App }),
			&memdb.CompoundIndex{Indexes: []memdb.Indexer{&memdb.StringFieldIndex{Field: "Tenant"}, &memdb.StringFieldIndex{Field: "App"}}},
			func(a, b string) any { return &Instance{Tenant: a, App: b} }, 2},
		{stringPairIndex(func(o *Host) string { return o.Pool }, func(o *Host) string { return o.Name }),
			&memdb.CompoundIndex{Indexes: []memdb.Indexer{&memdb.StringFieldIndex{Field: "Pool"}, &memdb.StringFieldIndex{Field: "Name"}}},
			func(a, b string) any { return &Host{Pool: a, Name: b} }, 2},
		{stringIndex(func(o *watchEntry) string { return o.Key }), &memdb.StringFieldIndex{Field: "Key"},
			func(a, _ string) any { return &watchEntry{Key: a} }, 1},
	}
	same := func(t *testing.T, what string, b1 []byte, e1 error, b2 []byte, e2 error) {
		t.Helper()
		if (e1 == nil) != (e2 == nil) || !bytes.Equal(b1, b2) {
			t.Fatalf("%s: ours %q %v, memdb's %q %v", what, b1, e1, b2, e2)
		}
	}
	for i, p := range pairs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			for _, a := range values {
				for _, b := range values {
					ok1, k1, e1 := p.ours.(memdb.SingleIndexer).FromObject(p.obj(a, b))
					ok2, k2, e2 := p.memdbs.(memdb.SingleIndexer).FromObject(p.obj(a, b))
					if ok1 != ok2 {
						t.Fatalf("FromObject(%q, %q): indexed %v, memdb's %v", a, b, ok1, ok2)
					}
					same(t, fmt.Sprintf("FromObject(%q, %q)", a, b), k1, e1, k2, e2)
					args := []any{a, b}[:p.n]
					k1, e1 = p.ours.FromArgs(args...)
					k2, e2 = p.memdbs.FromArgs(args...)
					same(t, fmt.Sprintf("FromArgs%q", args), k1, e1, k2, e2)
					for n := 1; n <= p.n; n++ {
						k1, e1 = p.ours.(memdb.PrefixIndexer).PrefixFromArgs(args[:n]...)
						k2, e2 = p.memdbs.(memdb.PrefixIndexer).PrefixFromArgs(args[:n]...)
						same(t, fmt.Sprintf("PrefixFromArgs%q", args[:n]), k1, e1, k2, e2)
					}
				}
			}
			for _, bad := range [][]any{{}, {1, 2}, {"a", "b", "c"}, {1}} {
				if _, err := p.ours.FromArgs(bad...); err == nil && len(bad) != p.n {
					t.Fatalf("FromArgs%v accepted", bad)
				} else if err == nil {
					if _, err2 := p.memdbs.FromArgs(bad...); err2 != nil {
						t.Fatalf("FromArgs%v accepted, memdb refuses: %v", bad, err2)
					}
				}
			}
			if _, _, err := p.ours.(memdb.SingleIndexer).FromObject(&Token{}); err == nil {
				t.Fatal("an object of another type indexed")
			}
		})
	}
}

// TestUint64IndexMatchesMemdb: the same keys as memdb's UintFieldIndex
// over a uint64 field, and the same refusals of bad arguments.
func TestUint64IndexMatchesMemdb(t *testing.T) {
	ours := uint64Index[Instance]{func(o *Instance) uint64 { return o.ModifyIndex }}
	theirs := &memdb.UintFieldIndex{Field: "ModifyIndex"}
	for _, v := range []uint64{0, 1, 255, 256, 1 << 32, math.MaxUint64} {
		ok1, k1, e1 := ours.FromObject(&Instance{Meta: Meta{ModifyIndex: v}})
		ok2, k2, e2 := theirs.FromObject(&Instance{Meta: Meta{ModifyIndex: v}})
		if ok1 != ok2 || !bytes.Equal(k1, k2) || (e1 == nil) != (e2 == nil) {
			t.Fatalf("FromObject(%d): ours %v %x %v, memdb's %v %x %v", v, ok1, k1, e1, ok2, k2, e2)
		}
		a1, e1 := ours.FromArgs(v)
		a2, e2 := theirs.FromArgs(v)
		if !bytes.Equal(a1, a2) || (e1 == nil) != (e2 == nil) {
			t.Fatalf("FromArgs(%d): ours %x %v, memdb's %x %v", v, a1, e1, a2, e2)
		}
	}
	for _, bad := range [][]any{nil, {uint64(1), uint64(2)}, {"1"}, {-1}} {
		if _, err := ours.FromArgs(bad...); err == nil {
			t.Fatalf("FromArgs%v accepted", bad)
		}
		if _, err := theirs.FromArgs(bad...); err == nil {
			t.Fatalf("memdb's FromArgs%v accepted: the test's cases are wrong", bad)
		}
	}
}
