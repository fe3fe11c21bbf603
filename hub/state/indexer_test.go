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

// TestUint64IndexKeys: keys sort as their numbers do, every key byte is a
// 4-bit digit (at most 16 children per radix node), and bad arguments are
// refused as memdb's UintFieldIndex refuses them.
func TestUint64IndexKeys(t *testing.T) {
	ours := uint64Index[Instance]{func(o *Instance) uint64 { return o.ModifyIndex }}
	theirs := &memdb.UintFieldIndex{Field: "ModifyIndex"}
	vals := []uint64{0, 1, 15, 16, 255, 256, 4095, 4096, 1<<32 - 1, 1 << 32, math.MaxUint64 - 1, math.MaxUint64}
	var prev []byte
	for i, v := range vals {
		ok, k, err := ours.FromObject(&Instance{Meta: Meta{ModifyIndex: v}})
		if !ok || err != nil || len(k) != 16 {
			t.Fatalf("FromObject(%d): %v %x %v", v, ok, k, err)
		}
		for _, b := range k {
			if b > 0xf {
				t.Fatalf("FromObject(%d) = %x: a byte above 15", v, k)
			}
		}
		if a, err := ours.FromArgs(v); err != nil || !bytes.Equal(a, k) {
			t.Fatalf("FromArgs(%d) = %x %v, FromObject gave %x", v, a, err, k)
		}
		if i > 0 && bytes.Compare(prev, k) >= 0 {
			t.Fatalf("key of %d (%x) does not sort after that of %d (%x)", v, k, vals[i-1], prev)
		}
		prev = k
	}
	if _, _, err := ours.FromObject(&Host{}); err == nil {
		t.Fatal("FromObject accepted a host")
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
