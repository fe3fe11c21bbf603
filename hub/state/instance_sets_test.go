package state

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// checkInstanceSets fails unless every app's and host's row lists exactly
// the instances the instances table holds for it, in id order, and no row
// is left empty or names an app or host with no instance.
func checkInstanceSets(t *testing.T, s *Snapshot, when string) {
	t.Helper()
	all, err := s.Instances(nil)
	if err != nil {
		t.Fatal(err)
	}
	apps := map[[2]string][]*Instance{}
	hosts := map[string][]*Instance{}
	for _, i := range all {
		apps[[2]string{i.Tenant, i.App}] = append(apps[[2]string{i.Tenant, i.App}], i)
		hosts[i.Host] = append(hosts[i.Host], i)
	}
	rows := 0
	for _, table := range []string{tableAppInstances, tableHostInstances} {
		it, err := s.txn.Get(table, "id")
		if err != nil {
			t.Fatal(err)
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			rows++
			row := obj.(*instanceSet)
			want := hosts[row.Host]
			if table == tableAppInstances {
				want = apps[[2]string{row.Tenant, row.App}]
			}
			if len(want) == 0 {
				t.Fatalf("%s: %s row %+v names nothing the instances table holds", when, table, row)
			}
		}
	}
	if rows != len(apps)+len(hosts) {
		t.Fatalf("%s: %d rows, want %d apps and %d hosts", when, rows, len(apps), len(hosts))
	}
	for k, want := range apps {
		got, err := s.AppInstances(nil, k[0], k[1])
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s: app %s/%s: %v %v, want %v", when, k[0], k[1], ids(got), err, ids(want))
		}
	}
	for h, want := range hosts {
		got, err := s.HostInstances(nil, h)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s: host %s: %v %v, want %v", when, h, ids(got), err, ids(want))
		}
	}
	// The ids' chunks: in order, apart, none empty or over the limit,
	// each keyed by its first id, and every instance found by its id.
	it, err := s.txn.Get(tableInstanceIDs, "id")
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for obj := it.Next(); obj != nil; obj = it.Next() {
		c := obj.(*idChunk)
		if len(c.IDs) == 0 || len(c.IDs) > idChunkMax || len(c.Hosts) != len(c.IDs) || c.First != c.IDs[0] {
			t.Fatalf("%s: chunk %q holds %d ids, %d hosts, first %q", when, c.First, len(c.IDs), len(c.Hosts), c.IDs[0])
		}
		seen = append(seen, c.IDs...)
	}
	if !slices.Equal(seen, ids(all)) {
		t.Fatalf("%s: the ids' chunks hold %d ids, the instances are %d", when, len(seen), len(all))
	}
	for _, i := range all {
		if got, err := s.Instance(nil, i.ID); err != nil || got != i {
			t.Fatalf("%s: instance %s by id: %v %v", when, i.ID, got, err)
		}
	}
	if got, err := s.Instance(nil, "nope"); err != nil || got != nil {
		t.Fatalf("%s: an unknown id found %v %v", when, got, err)
	}
	for _, tenant := range []string{"acme", "beta", "acm"} {
		got, err := s.tenantInstances(tenant)
		if err != nil {
			t.Fatal(err)
		}
		var want []*Instance
		keys := slices.SortedFunc(maps.Keys(apps), func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
		for _, k := range keys {
			if k[0] == tenant {
				want = append(want, apps[k]...)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: tenant %s: %v, want %v", when, tenant, ids(got), ids(want))
		}
	}
}

func ids(is []*Instance) []string {
	out := make([]string, len(is))
	for n, i := range is {
		out[n] = i.ID
	}
	return out
}

// TestInstanceSetsFollowInstances drives random placements, reports,
// stops, removals, a host's loss and removal and an app's deletion
// through the FSM, some in one batch, one batch failing halfway, and
// checks after each that the app and host rows hold what the instances
// table does; that a state read before a write keeps the lists it had;
// and that a restore builds the same rows.
func TestInstanceSetsFollowInstances(t *testing.T) {
	h := newHarness(t)
	fill(h)
	for n := 2; n <= 4; n++ {
		jt := fmt.Sprintf("jt%d", n)
		h.must(JoinTokenCreateType, &JoinTokenCreateRequest{Token: JoinToken{ID: jt, Pool: "aws-bj", SecretHash: "sh", ExpiresAt: t0.Add(time.Hour), MaxUses: 1}, Time: t0})
		h.must(HostEnrollType, &HostEnrollRequest{TokenID: jt, SecretHash: "sh", Host: Host{ID: fmt.Sprintf("host%d", n), Name: fmt.Sprintf("n%d", n), Inventory: Inventory{CPUs: 64, MemoryBytes: 64 << 30}}, Time: t0})
	}
	for _, app := range []string{"api", "db"} {
		s := spec(app, app+":1")
		s.Pools = []string{"aws-bj"}
		h.must(AppUpsertType, &AppUpsertRequest{Tenant: "beta", Spec: s, Create: true, Time: t0})
	}
	checkInstanceSets(t, h.snap(), "filled")

	rng := rand.New(rand.NewSource(1))
	apps := [][2]string{{"acme", "web"}, {"beta", "api"}, {"beta", "db"}}
	hosts := []string{"host2", "host3", "host4"}
	next := 0
	live := func() []*Instance {
		all, err := h.snap().Instances(nil)
		if err != nil {
			t.Fatal(err)
		}
		return all
	}
	for step := 0; step < 300; step++ {
		before := h.snap()
		beforeWeb, _ := before.AppInstances(nil, "acme", "web")
		beforeHost, _ := before.HostInstances(nil, "host2")
		kept := [2][]*Instance{slices.Clone(beforeWeb), slices.Clone(beforeHost)}

		all := live()
		switch op := rng.Intn(10); {
		case op < 4 || len(all) == 0:
			// Place one to three instances, in one plan.
			var p []Instance
			for range 1 + rng.Intn(3) {
				a := apps[rng.Intn(len(apps))]
				next++
				// Ids out of order, so that a list is not only appended.
				id := fmt.Sprintf("%s-%04d", a[1], rng.Intn(10000)*10+next%10)
				p = append(p, Instance{ID: id, Tenant: a[0], App: a[1], Version: 1, Host: hosts[rng.Intn(len(hosts))], CPU: 1, Memory: 1})
			}
			if err := h.apply(PlanApplyType, &PlanApplyRequest{Place: p, Time: t0}); err != nil {
				t.Logf("step %d: plan refused: %v", step, err)
			}
		case op < 6:
			i := all[rng.Intn(len(all))]
			h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: i.Host, Updates: []InstanceUpdate{{ID: i.ID, State: InstanceRunning, Ready: true}}, Time: t0})
		case op < 8:
			i := all[rng.Intn(len(all))]
			h.must(PlanApplyType, &PlanApplyRequest{Stop: []InstanceStop{{ID: i.ID, Reason: "test"}}, Time: t0})
		default:
			// Removed: reported stopped after a stop.
			i := all[rng.Intn(len(all))]
			h.must(PlanApplyType, &PlanApplyRequest{Stop: []InstanceStop{{ID: i.ID, Reason: "test"}}, Time: t0})
			h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: i.Host, Updates: []InstanceUpdate{{ID: i.ID, State: InstanceStopped}}, Time: t0})
		}
		checkInstanceSets(t, h.snap(), fmt.Sprintf("step %d", step))
		// The state read before the write still has its lists.
		again, _ := before.AppInstances(nil, "acme", "web")
		againHost, _ := before.HostInstances(nil, "host2")
		if !slices.Equal(again, kept[0]) || !slices.Equal(againHost, kept[1]) {
			t.Fatalf("step %d: an earlier state's lists changed under it", step)
		}
		for _, i := range append(kept[0], kept[1]...) {
			if got, _ := before.Instance(nil, i.ID); got != i {
				t.Fatalf("step %d: an earlier state lost instance %s by its id", step, i.ID)
			}
		}
	}
	if len(live()) < 10 {
		t.Fatalf("only %d instances after the random steps: the test exercises too little", len(live()))
	}

	// A batch whose third entry fails: the first two stay, the third's
	// writes do not.
	pre := len(live())
	batch := []MessageType{PlanApplyType, PlanApplyType, PlanApplyType}
	reqs := []any{
		&PlanApplyRequest{Place: []Instance{{ID: "api-b1", Tenant: "beta", App: "api", Version: 1, Host: "host3", CPU: 1, Memory: 1}}, Time: t0},
		&PlanApplyRequest{Place: []Instance{{ID: "api-b2", Tenant: "beta", App: "api", Version: 1, Host: "host3", CPU: 1, Memory: 1}}, Time: t0},
		&PlanApplyRequest{Place: []Instance{
			{ID: "api-b3", Tenant: "beta", App: "api", Version: 1, Host: "host3", CPU: 1, Memory: 1},
			{ID: "api-b4", Tenant: "beta", App: "api", Version: 1, Host: "nohost", CPU: 1, Memory: 1}}, Time: t0},
	}
	if res := h.applyBatch(batch, reqs); res[0] != nil || res[1] != nil || res[2] == nil {
		t.Fatalf("batch results %v: want the third to fail", res)
	}
	if got := len(live()); got != pre+2 {
		t.Fatalf("%d instances after the batch, want %d", got, pre+2)
	}
	checkInstanceSets(t, h.snap(), "after a failed batch")

	// Enough instances in one plan to split chunks within a transaction,
	// then most of them removed, in plans of many.
	var many []Instance
	for k := range 3 * idChunkMax {
		many = append(many, Instance{ID: fmt.Sprintf("api-m%05d", (k*7919)%(3*idChunkMax)), Tenant: "beta", App: "api", Version: 1, Host: hosts[k%len(hosts)], CPU: 1, Memory: 1})
	}
	h.must(PlanApplyType, &PlanApplyRequest{Place: many, Time: t0})
	checkInstanceSets(t, h.snap(), "many placed")
	chunks := 0
	it, err := h.snap().txn.Get(tableInstanceIDs, "id")
	if err != nil {
		t.Fatal(err)
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		chunks++
	}
	if chunks < 3 {
		t.Fatalf("%d instances in %d chunks: none split", len(many), chunks)
	}
	for from := 0; from < len(many)-10; from += 100 {
		var stop []InstanceStop
		var gone []InstanceUpdate
		for _, i := range many[from:min(from+100, len(many)-10)] {
			stop = append(stop, InstanceStop{ID: i.ID, Reason: "test"})
		}
		h.must(PlanApplyType, &PlanApplyRequest{Stop: stop, Time: t0})
		byHost := map[string][]InstanceUpdate{}
		for _, i := range many[from:min(from+100, len(many)-10)] {
			byHost[i.Host] = append(byHost[i.Host], InstanceUpdate{ID: i.ID, State: InstanceStopped})
		}
		for host, u := range byHost {
			gone = append(gone, u...)
			h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: host, Updates: u, Time: t0})
		}
		if len(gone) == 0 {
			t.Fatal("nothing removed")
		}
		checkInstanceSets(t, h.snap(), fmt.Sprintf("many removed from %d", from))
	}

	// A host lost, then removed; an app deleted.
	h.must(HostStateType, &HostStateRequest{ID: "host3", State: HostDown, Time: t0})
	checkInstanceSets(t, h.snap(), "host down")
	h.must(HostDeleteType, &HostDeleteRequest{ID: "host3", Time: t0})
	checkInstanceSets(t, h.snap(), "host removed")
	if is, _ := h.snap().HostInstances(nil, "host3"); len(is) != 0 {
		t.Fatalf("a removed host still lists %v", ids(is))
	}
	h.must(AppDeleteType, &AppDeleteRequest{Tenant: "beta", Name: "db", Time: t0})
	checkInstanceSets(t, h.snap(), "app deleted")

	// A restore builds the same rows.
	var buf bytes.Buffer
	snapshotTo(t, h.fsm, &buf)
	h2 := newHarness(t)
	if err := h2.fsm.Restore(nopCloser{bytes.NewBuffer(buf.Bytes())}); err != nil {
		t.Fatal(err)
	}
	checkInstanceSets(t, h2.snap(), "restored")
	for _, a := range apps {
		want, _ := h.snap().AppInstances(nil, a[0], a[1])
		got, _ := h2.snap().AppInstances(nil, a[0], a[1])
		if len(got) != len(want) {
			t.Fatalf("restored %s/%s: %d instances, want %d", a[0], a[1], len(got), len(want))
		}
	}
	if bytes.Contains(buf.Bytes(), []byte(tableAppInstances)) || bytes.Contains(buf.Bytes(), []byte(tableHostInstances)) {
		t.Fatal("the snapshot holds a derived table")
	}
}

// applyBatch applies the commands as one Raft batch and returns their
// results.
func (h *harness) applyBatch(types []MessageType, reqs []any) []any {
	h.t.Helper()
	logs := make([]*raft.Log, len(types))
	for n := range types {
		b, err := Encode(types[n], reqs[n])
		if err != nil {
			h.t.Fatal(err)
		}
		h.index++
		logs[n] = &raft.Log{Index: h.index, Type: raft.LogCommand, Data: b}
	}
	return h.fsm.ApplyBatch(logs)
}

// TestRestoreChecksInstances: a snapshot's instances come once each, in
// id order, with an id, host, tenant and app; a restore refuses any other
// and leaves the store as it was.
func TestRestoreChecksInstances(t *testing.T) {
	h := newHarness(t)
	fill(h) // instance i-1 on host1
	h.must(PlanApplyType, &PlanApplyRequest{Place: []Instance{{ID: "i-2", Tenant: "acme", App: "web", Version: 2, Host: "host1", CPU: 100, Memory: 128}}, Time: t0})
	var buf bytes.Buffer
	snapshotTo(t, h.fsm, &buf)
	for _, c := range []struct{ name, from, to string }{
		{"out of order", `"ID":"i-1",`, `"ID":"i-3",`},
		{"twice", `"ID":"i-2",`, `"ID":"i-1",`},
		{"without a host", `"Host":"host1",`, `"Host":"",`},
	} {
		bad := bytes.Replace(buf.Bytes(), []byte(c.from), []byte(c.to), 1)
		if bytes.Equal(bad, buf.Bytes()) {
			t.Fatalf("%s: %s not in the snapshot", c.name, c.from)
		}
		h2 := newHarness(t)
		fill(h2)
		before := dump(t, h2.fsm.Store())
		if err := h2.fsm.Restore(nopCloser{bytes.NewBuffer(bad)}); err == nil {
			t.Fatalf("%s: restored", c.name)
		} else if !strings.Contains(err.Error(), "instance") {
			t.Fatalf("%s: %v, want an error about the instances", c.name, err)
		}
		if after := dump(t, h2.fsm.Store()); !reflect.DeepEqual(after, before) {
			t.Fatalf("%s: a refused restore changed the store", c.name)
		}
		checkInstanceSets(t, h2.snap(), c.name)
	}
}

// TestWatchInstancesNeverPlaced: the watch of the instances before the
// first is placed fires when it is, not on every write to other tables
// (the instances have no go-memdb table of their own to watch).
func TestWatchInstancesNeverPlaced(t *testing.T) {
	h := newHarness(t)
	h.must(BootstrapType, &BootstrapRequest{Token: Token{ID: "root", Role: RoleAdmin, SecretHash: "h0"}, Time: t0})
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "acme"}, Time: t0})
	h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "aws-bj", Datacenter: "dc1"}, Time: t0})
	s := spec("web", "web:1")
	s.Pools = []string{"aws-bj"}
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, Create: true, Time: t0})
	h.must(AgentCACreateType, &AgentCACreateRequest{CA: AgentCA{CertPEM: []byte("cert"), KeyPEM: []byte("key"), Fingerprint: "sha256:00"}, Time: t0})
	h.must(JoinTokenCreateType, &JoinTokenCreateRequest{Token: JoinToken{ID: "jt1", Pool: "aws-bj", SecretHash: "sh", ExpiresAt: t0.Add(time.Hour), MaxUses: 1}, Time: t0})
	h.must(HostEnrollType, &HostEnrollRequest{TokenID: "jt1", SecretHash: "sh", Host: Host{ID: "host1", Name: "n1", Inventory: Inventory{CPUs: 2, MemoryBytes: 4 << 30}}, Time: t0})
	ws := memdb.NewWatchSet()
	if idx := h.snap().WatchTables(ws, TableInstances); idx != 0 {
		t.Fatalf("index of the instances before any: %d", idx)
	}
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "other"}, Time: t0})
	h.must(AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 2, Time: t0})
	if !ws.Watch(time.After(50 * time.Millisecond)) {
		t.Fatal("the instances' watch fired on writes to other tables")
	}
	h.must(PlanApplyType, &PlanApplyRequest{Place: []Instance{{ID: "i-1", Tenant: "acme", App: "web", Version: 1, Host: "host1", CPU: 100, Memory: 128}}, Time: t0})
	if ws.Watch(time.After(5 * time.Second)) {
		t.Fatal("the instances' watch did not fire on the first placement")
	}
	if idx := h.snap().WatchTables(memdb.NewWatchSet(), TableInstances); idx != h.index {
		t.Fatalf("index of the instances %d, want %d", idx, h.index)
	}
}
