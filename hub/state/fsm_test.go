package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// harness applies commands to a real FSM with increasing Raft indexes.
type harness struct {
	t     testing.TB
	fsm   *FSM
	index uint64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	s, err := NewStore()
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, fsm: NewFSM(s, nil)}
}

func (h *harness) apply(mt MessageType, req any) error {
	h.t.Helper()
	b, err := Encode(mt, req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.index++
	if r := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: b}); r != nil {
		return r.(error)
	}
	return nil
}

func (h *harness) must(mt MessageType, req any) {
	h.t.Helper()
	if err := h.apply(mt, req); err != nil {
		h.t.Fatalf("apply %d: %v", mt, err)
	}
}

func (h *harness) snap() *Snapshot { return h.fsm.Store().Snapshot() }

func intp(n int) *int       { return &n }
func u64p(n uint64) *uint64 { return &n }
func spec(name, image string) AppSpec {
	// As the API stores it: normalized.
	return AppSpec{Name: name, Image: image, CPU: 100, Memory: 128}
}

// fill writes one of every kind of object.
func fill(h *harness) {
	h.must(BootstrapType, &BootstrapRequest{Token: Token{ID: "root", Role: RoleAdmin, SecretHash: "h0"}, Time: t0})
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "acme", Quota: Quota{Instances: 10}}, Time: t0})
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "beta", Pools: []string{"aws-bj"}}, Time: t0})
	h.must(TokenCreateType, &TokenCreateRequest{Token: Token{ID: "dev1", Role: RoleDeveloper, Tenant: "acme", SecretHash: "h1"}, Time: t0})
	h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "aws-bj", Datacenter: "dc1", Labels: map[string]string{"ssd": "yes"}}, Time: t0})
	h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "vs-sh", Datacenter: "dc2"}, Time: t0})
	s := spec("web", "web:1")
	s.Pools = []string{"aws-bj"}
	s.Instances = intp(3)
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, Create: true, Time: t0})
	s.Image = "web:2"
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, Time: t0.Add(time.Minute)})
	h.must(AgentCACreateType, &AgentCACreateRequest{CA: AgentCA{CertPEM: []byte("cert"), KeyPEM: []byte("key"), Fingerprint: "sha256:00"}, Time: t0})
	h.must(JoinTokenCreateType, &JoinTokenCreateRequest{Token: JoinToken{ID: "jt1", Pool: "aws-bj", SecretHash: "sh", ExpiresAt: t0.Add(time.Hour), MaxUses: 2}, Time: t0})
	h.must(HostEnrollType, &HostEnrollRequest{TokenID: "jt1", SecretHash: "sh", Host: Host{ID: "host1", Name: "n1", Inventory: Inventory{CPUs: 2, MemoryBytes: 4 << 30, Labels: map[string]string{"ssd": "yes"}}}, Time: t0})
	h.must(PlanApplyType, &PlanApplyRequest{Place: []Instance{{ID: "i-1", Tenant: "acme", App: "web", Version: 2, Host: "host1", CPU: 100, Memory: 128}}, Time: t0})
}

func TestCommands(t *testing.T) {
	h := newHarness(t)
	fill(h)
	web := spec("web", "web:2")
	tests := []struct {
		name string
		mt   MessageType
		req  any
		want error
	}{
		{"second bootstrap", BootstrapType, &BootstrapRequest{Token: Token{ID: "x", Role: RoleAdmin, SecretHash: "hx"}}, ErrConflict},
		{"tenant taken", TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "acme"}}, ErrConflict},
		{"delete missing tenant", TenantDeleteType, &TenantDeleteRequest{Name: "nope"}, ErrNotFound},
		{"delete tenant with apps", TenantDeleteType, &TenantDeleteRequest{Name: "acme"}, ErrConflict},
		{"token for missing tenant", TokenCreateType, &TokenCreateRequest{Token: Token{ID: "t9", Role: RoleViewer, Tenant: "nope", SecretHash: "h9"}}, ErrRefused},
		{"token id taken", TokenCreateType, &TokenCreateRequest{Token: Token{ID: "dev1", Role: RoleViewer, Tenant: "acme", SecretHash: "h8"}}, ErrConflict},
		{"revoke other tenant's token", TokenDeleteType, &TokenDeleteRequest{ID: "dev1", Tenant: "beta"}, ErrNotFound},
		{"pool taken", PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "aws-bj"}}, ErrConflict},
		{"delete used pool", PoolDeleteType, &PoolDeleteRequest{Name: "aws-bj"}, ErrConflict},
		{"delete missing pool", PoolDeleteType, &PoolDeleteRequest{Name: "nope"}, ErrNotFound},
		{"create taken app", AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: web, Create: true}, ErrConflict},
		{"update missing app", AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: spec("nope", "x"), Update: true}, ErrNotFound},
		{"app of missing tenant", AppUpsertType, &AppUpsertRequest{Tenant: "nope", Spec: web}, ErrRefused},
		{"unknown pool", AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: withPools(spec("db", "db:1"), "mars")}, ErrRefused},
		{"pool not allowed", AppUpsertType, &AppUpsertRequest{Tenant: "beta", Spec: withPools(spec("db", "db:1"), "vs-sh")}, ErrRefused},
		{"quota", AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: withInstances(spec("db", "db:1"), 8)}, ErrRefused},
		{"scale over quota", AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 11}, ErrRefused},
		{"stale cas", AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: web, CAS: u64p(1)}, ErrConflict},
		{"cas 0 on existing", AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: web, CAS: u64p(0)}, ErrConflict},
		{"rollback to missing version", AppRollbackType, &AppRollbackRequest{Tenant: "acme", Name: "web", Version: 7}, ErrNotFound},
		{"scale missing app", AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "nope", Instances: 1}, ErrNotFound},
		{"delete missing app", AppDeleteType, &AppDeleteRequest{Tenant: "acme", Name: "nope"}, ErrNotFound},
		{"delete stale cas", AppDeleteType, &AppDeleteRequest{Tenant: "acme", Name: "web", CAS: u64p(2)}, ErrConflict},
		{"ok: cas 0 creates", AppUpsertType, &AppUpsertRequest{Tenant: "beta", Spec: spec("api", "api:1"), CAS: u64p(0)}, nil},
		{"ok: scale", AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 10}, nil},
		{"ok: revoke", TokenDeleteType, &TokenDeleteRequest{ID: "dev1", Tenant: "acme"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.snap().LatestIndex()
			err := h.apply(tt.mt, tt.req)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want kind %v", err, tt.want.(*Error).Kind)
			}
			if after := h.snap().LatestIndex(); after != before {
				t.Fatalf("a refused command changed the store (index %d -> %d)", before, after)
			}
		})
	}
}

func withPools(s AppSpec, p ...string) AppSpec { s.Pools = p; return s }
func withInstances(s AppSpec, n int) AppSpec   { s.Instances = &n; return s }

func TestVersionsAndRollback(t *testing.T) {
	h := newHarness(t)
	fill(h)
	app, _ := h.snap().App(nil, "acme", "web")
	if app.Version != 2 || app.LatestVersion != 2 || *app.Spec.Instances != 3 {
		t.Fatalf("after image change: %+v", app)
	}
	// Changing only the instance count (nil keeps it) makes no new version.
	s := app.Spec
	s.Instances = nil
	s.Pools = nil
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, CAS: u64p(app.ModifyIndex)})
	app2, _ := h.snap().App(nil, "acme", "web")
	if app2.Version != 2 || *app2.Spec.Instances != 3 || app2.ModifyIndex <= app.ModifyIndex || app2.CreateIndex != app.CreateIndex {
		t.Fatalf("after placement change: %+v", app2)
	}
	h.must(AppRollbackType, &AppRollbackRequest{Tenant: "acme", Name: "web", Version: 1, Time: t0})
	app3, _ := h.snap().App(nil, "acme", "web")
	if app3.Version != 1 || app3.LatestVersion != 2 || app3.Spec.Image != "web:1" {
		t.Fatalf("after rollback: %+v", app3)
	}
	vs, _ := h.snap().AppVersions(nil, "acme", "web")
	if len(vs) != 2 || vs[0].Version != 1 || vs[1].Version != 2 || vs[1].Spec.Image != "web:2" {
		t.Fatalf("versions: %+v", vs)
	}
	// Deploying version 1's spec again after rollback is still version 1.
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: app3.Spec})
	if a, _ := h.snap().App(nil, "acme", "web"); a.Version != 1 || a.LatestVersion != 2 {
		t.Fatalf("redeploy of current spec: %+v", a)
	}
	h.must(AppDeleteType, &AppDeleteRequest{Tenant: "acme", Name: "web"})
	if vs, _ := h.snap().AppVersions(nil, "acme", "web"); len(vs) != 0 {
		t.Fatalf("versions survive app delete: %+v", vs)
	}
	h.must(TenantDeleteType, &TenantDeleteRequest{Name: "acme"})
	if toks, _ := h.snap().Tokens(nil, "acme"); len(toks) != 0 {
		t.Fatalf("tenant delete left tokens: %+v", toks)
	}
}

func TestUnknownTypes(t *testing.T) {
	h := newHarness(t)
	idx := h.snap().LatestIndex()
	h.index++
	if r := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: []byte{byte(IgnoreUnknownTypeFlag | 99), '{', '}'}}); r != nil {
		t.Fatalf("ignorable unknown type: %v", r)
	}
	h.index++
	r := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: []byte{99, '{', '}'}})
	if !errors.Is(r.(error), &Error{Kind: KindInternal}) {
		t.Fatalf("unknown type: %v", r)
	}
	if h.snap().LatestIndex() != idx {
		t.Fatal("unknown types changed the store")
	}
}

func TestBlockingQuery(t *testing.T) {
	h := newHarness(t)
	fill(h)
	st := h.fsm.Store()
	idx := st.Snapshot().Index(TablePools)
	query := func(ws memdb.WatchSet, s *Snapshot) (uint64, error) {
		_, err := s.Pools(ws)
		return s.Index(TablePools), err
	}
	// Nothing changes: returns the current index when the context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	got, err := st.Blocking(ctx, idx, query)
	cancel()
	if err != nil || got != idx {
		t.Fatalf("timeout: %d %v, want %d", got, err, idx)
	}
	// A pool write wakes it with a higher index.
	done := make(chan uint64)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, _ := st.Blocking(ctx, idx, query)
		done <- got
	}()
	time.Sleep(20 * time.Millisecond)
	h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "new"}})
	select {
	case got := <-done:
		if got <= idx {
			t.Fatalf("woke with index %d, want > %d", got, idx)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query not woken by a write")
	}
	// A restore wakes blocked queries too.
	var buf bytes.Buffer
	snapshotTo(t, h.fsm, &buf)
	h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "newer"}})
	idx = st.Snapshot().Index(TablePools)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, _ := st.Blocking(ctx, idx-1, func(ws memdb.WatchSet, s *Snapshot) (uint64, error) {
			p, _ := s.Pool(ws, "newer")
			if p == nil {
				return idx, nil // gone: the restore happened
			}
			return idx - 1, nil
		})
		done <- got
	}()
	time.Sleep(20 * time.Millisecond)
	if err := h.fsm.Restore(nopCloser{&buf}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query not woken by a restore")
	}
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

type bufSink struct {
	*bytes.Buffer
	cancelled bool
}

func (s *bufSink) ID() string    { return "test" }
func (s *bufSink) Cancel() error { s.cancelled = true; return nil }
func (s *bufSink) Close() error  { return nil }

func snapshotTo(t testing.TB, f *FSM, buf *bytes.Buffer) {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(&bufSink{Buffer: buf}); err != nil {
		t.Fatal(err)
	}
	snap.Release()
}

// dump returns every record of every table (the audit log's entries one
// by one).
func dump(t testing.TB, s *Store) map[string][]any {
	t.Helper()
	db, _ := s.current()
	txn := db.Txn(false)
	out := map[string][]any{}
	for _, table := range snapshotTables {
		if err := eachRecord(txn, table, func(obj any) error {
			out[table] = append(out[table], obj)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	h := newHarness(t)
	fill(h)
	var buf bytes.Buffer
	snapshotTo(t, h.fsm, &buf)
	raw := append([]byte(nil), buf.Bytes()...)

	h2 := newHarness(t)
	h2.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "stale"}}) // replaced by the restore
	if err := h2.fsm.Restore(nopCloser{bytes.NewBuffer(raw)}); err != nil {
		t.Fatal(err)
	}
	a, b := dump(t, h.fsm.Store()), dump(t, h2.fsm.Store())
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("restored store differs:\n%v\n%v", a, b)
	}
	if len(a[TableAppVersions]) != 2 || len(a[tableMeta]) != 1 || len(a[TableHosts]) != 1 || len(a[TableAgentCA]) != 1 || len(a[TableEvents]) != 1 {
		t.Fatalf("fill did not write every table: %v", a)
	}
	// A snapshot of the restored store is byte for byte the same.
	var again bytes.Buffer
	snapshotTo(t, h2.fsm, &again)
	if !bytes.Equal(raw, again.Bytes()) {
		t.Fatal("snapshot of restored store differs from the original snapshot")
	}
	// Truncated or corrupt snapshots are refused and change nothing.
	for _, bad := range [][]byte{raw[:len(raw)/2], raw[:len(raw)-20], []byte(`{"format":2}`), []byte("garbage")} {
		if err := h2.fsm.Restore(nopCloser{bytes.NewBuffer(bad)}); err == nil {
			t.Fatalf("restore of %d bad bytes succeeded", len(bad))
		}
		if !reflect.DeepEqual(a, dump(t, h2.fsm.Store())) {
			t.Fatal("a failed restore changed the store")
		}
	}
}

func TestDeterminism(t *testing.T) {
	h1, h2 := newHarness(t), newHarness(t)
	fill(h1)
	fill(h2)
	var b1, b2 bytes.Buffer
	snapshotTo(t, h1.fsm, &b1)
	snapshotTo(t, h2.fsm, &b2)
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Fatal("the same log gave different snapshots")
	}
}

// TestApplyBatch: entries applied in batches, however Raft groups them,
// give the results and the state of applying them one by one, failures
// included (each fails alone; the rest of its batch is applied).
func TestApplyBatch(t *testing.T) {
	var logs []*raft.Log
	add := func(mt MessageType, req any) {
		b, err := Encode(mt, req)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: uint64(len(logs) + 1), Type: raft.LogCommand, Data: b})
	}
	for i, c := range goldenCommands() {
		add(c.t, c.req)
		switch i % 7 { // failures and entries the FSM skips, between them
		case 1:
			add(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "acme"}, Time: t0}) // conflict once acme exists
		case 3:
			add(AppUpsertType, &AppUpsertRequest{Tenant: "nobody", Spec: spec("x", "x:1"), Time: t0})
		case 4:
			logs = append(logs, &raft.Log{Index: uint64(len(logs) + 1), Type: raft.LogCommand, Data: []byte{byte(AppUpsertType), '{'}})
		case 5:
			logs = append(logs, &raft.Log{Index: uint64(len(logs) + 1), Type: raft.LogNoop})
		case 6:
			logs = append(logs, &raft.Log{Index: uint64(len(logs) + 1), Type: raft.LogCommand, Data: []byte{byte(BinaryMarker), byte(AppScaleType | IgnoreUnknownTypeFlag)}})
		}
	}
	// A command that fails after it has written (it stops an instance, then
	// finds a bad placement), then one that succeeds in the same batch.
	add(PlanApplyType, &PlanApplyRequest{Stop: []InstanceStop{{ID: "i-2", Reason: "r"}}, Place: []Instance{{ID: "i-9"}}, Time: t0})
	add(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "late"}, Time: t0})
	one := newHarness(t)
	want := make([]interface{}, len(logs))
	failed := 0
	for i, l := range logs {
		want[i] = one.fsm.Apply(l)
		if want[i] != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no command failed: the test checks nothing about failures")
	}
	wantState := stateJSON(t, one.fsm.Store())
	for _, size := range []int{1, 2, 3, 7, 64, len(logs)} {
		t.Run(fmt.Sprintf("batches of %d", size), func(t *testing.T) {
			h := newHarness(t)
			var got []interface{}
			for i := 0; i < len(logs); i += size {
				got = append(got, h.fsm.ApplyBatch(logs[i:min(i+size, len(logs))])...)
			}
			for i := range logs {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("entry %d: %v in a batch, %v alone", i, got[i], want[i])
				}
			}
			if s := stateJSON(t, h.fsm.Store()); string(s) != string(wantState) {
				t.Fatalf("batches of %d end in another state:\n%s\nwant\n%s", size, s, wantState)
			}
		})
	}
}

// TestWatchTablesNeverWritten: the watch of a table that has no rows yet
// fires when it gets its first, not on every write to other tables.
func TestWatchTablesNeverWritten(t *testing.T) {
	h := newHarness(t)
	fill(h) // no routes
	ws := memdb.NewWatchSet()
	if idx := h.fsm.Store().Snapshot().WatchTables(ws, TableRoutes); idx != 0 {
		t.Fatalf("index of a table never written: %d", idx)
	}
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "other"}, Time: t0})
	h.must(AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 2, Time: t0})
	if !ws.Watch(time.After(50 * time.Millisecond)) {
		t.Fatal("the routes watch fired on writes to other tables")
	}
	h.must(RouteAddType, &RouteAddRequest{Route: Route{ID: "r1", Tenant: "acme", App: "web", Host: "www.acme.test", Path: "/"}, Time: t0})
	if ws.Watch(time.After(5 * time.Second)) {
		t.Fatal("the routes watch did not fire on the first route")
	}
}
