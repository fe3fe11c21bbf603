package state

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"math/rand"
	"slices"
	"testing"
	"time"

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
