package state

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
)

// changedSince lists what AppsChangedSince reports since idx, and whether
// the log reaches back that far.
func changedSince(t *testing.T, s *Snapshot, idx uint64) ([]string, bool) {
	t.Helper()
	var out []string
	known, err := s.AppsChangedSince(nil, idx, func(tenant, app string) { out = append(out, tenant+"/"+app) })
	if err != nil {
		t.Fatal(err)
	}
	return out, known
}

// TestAppChangesLog: the log of changed apps holds, per batch of
// commands, the apps whose instances or status they changed; a failed
// command in a batch adds nothing; the log drops what is older than it
// keeps and then says so rather than answering short; a restore starts
// it afresh, incomplete up to the restored index.
func TestAppChangesLog(t *testing.T) {
	h := newHarness(t)
	fill(h) // acme/web with i-1 on host1
	s := spec("api", "api:1")
	s.Instances = intp(1)
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, Create: true, Time: t0})
	base := h.index

	// One batch: a placement of api, a report of it, and a command that
	// fails after it stopped web's instance (it places a taken id): one
	// row, api once, and nothing of the failed command.
	res := h.applyBatch([]MessageType{PlanApplyType, InstanceUpdateType, InstanceUpdateType, PlanApplyType}, []any{
		&PlanApplyRequest{Place: []Instance{{ID: "a-1", Tenant: "acme", App: "api", Version: 1, Host: "host1", CPU: 100, Memory: 128}}, Time: t0},
		&InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "a-1", State: InstanceRunning}}, Time: t0},
		&InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "a-1", State: InstanceRunning, Ready: true}}, Time: t0},
		&PlanApplyRequest{Stop: []InstanceStop{{ID: "i-1", Reason: "test"}}, Place: []Instance{{ID: "a-1", Tenant: "acme", App: "api", Version: 1, Host: "host1", CPU: 100, Memory: 128}}, Time: t0},
	})
	if res[0] != nil || res[1] != nil || res[2] != nil || res[3] == nil {
		t.Fatalf("batch results: %v", res)
	}
	if i, _ := h.snap().Instance(nil, "i-1"); i == nil || i.Desired != DesiredRun {
		t.Fatalf("the failed plan's stop stayed: %+v", i)
	}
	if got, known := changedSince(t, h.snap(), base); !known || !slices.Equal(got, []string{"acme/api"}) {
		t.Fatalf("changed since %d: %v (known %v), want acme/api once", base, got, known)
	}
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-1", State: InstanceRunning}}, Time: t0})
	got, known := changedSince(t, h.snap(), base)
	slices.Sort(got)
	if !known || !slices.Equal(got, []string{"acme/api", "acme/web"}) {
		t.Fatalf("changed since %d: %v (known %v), want acme/api and acme/web once each", base, got, known)
	}
	if got, known := changedSince(t, h.snap(), h.index-1); !known || !slices.Equal(got, []string{"acme/web"}) {
		t.Fatalf("changed since %d: %v (known %v), want acme/web", h.index-1, got, known)
	}
	if got, known := changedSince(t, h.snap(), h.index); !known || len(got) != 0 {
		t.Fatalf("changed since the last index: %v (known %v)", got, known)
	}

	// Past what the log keeps: incomplete below the floor, whole above.
	defer func(k uint64) { changesKept = k }(changesKept)
	changesKept = 8
	for n := 0; n < 40; n++ {
		h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "a-1", State: InstanceRunning, Ready: n%2 == 0}}, Time: t0})
	}
	if got, known := changedSince(t, h.snap(), base); known || len(got) != 0 {
		t.Fatalf("changed since %d, long dropped: %v (known %v), want unknown", base, got, known)
	}
	if got, known := changedSince(t, h.snap(), h.index-changesKept); !known || !slices.Equal(got, []string{"acme/api"}) {
		t.Fatalf("changed since %d, kept: %v (known %v)", h.index-changesKept, got, known)
	}
	rows := 0
	it, err := h.snap().txn.Get(tableChanges, "id")
	if err != nil {
		t.Fatal(err)
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		rows++
	}
	if rows > int(2*changesKept)+2 {
		t.Fatalf("the log holds %d rows, keeping %d indexes", rows, changesKept)
	}

	// A restore: nothing known before the restored index.
	var buf bytes.Buffer
	snapshotTo(t, h.fsm, &buf)
	h2 := newHarness(t)
	if err := h2.fsm.Restore(nopCloser{bytes.NewBuffer(buf.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if _, known := changedSince(t, h2.snap(), h.index-1); known {
		t.Fatal("a restored log claims to know the changes before the restore")
	}
	if got, known := changedSince(t, h2.snap(), h.index); !known || len(got) != 0 {
		t.Fatalf("a restored log since the restored index: %v (known %v)", got, known)
	}
}

// TestAppInstancesIndexRises: an app's index for its instances rises with
// every write of one of them (kept in its row of instances, not its watch
// row) and does not fall back when the last one goes and the row with
// it, and the channel it adds fires on such a write.
func TestAppInstancesIndexRises(t *testing.T) {
	h := newHarness(t)
	fill(h) // i-1 of acme/web on host1
	prev := h.snap().AppInstancesIndex(nil, "acme", "web")
	ws := memdb.NewWatchSet()
	h.snap().AppInstancesIndex(ws, "acme", "web")
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-1", State: InstanceRunning, Ready: true}}, Time: t0})
	if ws.Watch(time.After(5 * time.Second)) {
		t.Fatal("a report of the app's instance did not fire the watch")
	}
	if idx := h.snap().AppInstancesIndex(nil, "acme", "web"); idx != h.index || idx <= prev {
		t.Fatalf("after a report at %d: index %d (was %d)", h.index, idx, prev)
	}
	// Another app's write leaves it alone.
	at := h.index
	s := spec("api", "api:1")
	h.must(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: s, Create: true, Time: t0})
	h.must(PlanApplyType, &PlanApplyRequest{Place: []Instance{{ID: "a-1", Tenant: "acme", App: "api", Version: 1, Host: "host1", CPU: 100, Memory: 128}}, Time: t0})
	if idx := h.snap().AppInstancesIndex(nil, "acme", "web"); idx != at {
		t.Fatalf("another app's placement moved web's index from %d to %d", at, idx)
	}
	// Nor does its channel fire on another app's status or a host's
	// state: it is its own rows' (an app has a watch row from its
	// creation), not the part of the table where a missing one would be.
	ws = memdb.NewWatchSet()
	h.snap().AppInstancesIndex(ws, "acme", "web")
	h.must(PlanApplyType, &PlanApplyRequest{Pending: []AppPending{{Tenant: "acme", App: "api", Reason: "no room"}}, Time: t0})
	h.must(HostStateType, &HostStateRequest{ID: "host1", State: HostSuspect, Time: t0})
	if !ws.Watch(time.After(50 * time.Millisecond)) {
		t.Fatal("web's channel fired on api's status or a host's state")
	}
	h.must(HostStateType, &HostStateRequest{ID: "host1", State: HostReady, Time: t0})
	// The last instance stopped and reported stopped (which removes it):
	// the row goes, the index stays at the removal.
	h.must(PlanApplyType, &PlanApplyRequest{Stop: []InstanceStop{{ID: "i-1", Reason: "test"}}, Time: t0})
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-1", State: InstanceStopped}}, Time: t0})
	if is, _ := h.snap().AppInstances(nil, "acme", "web"); len(is) != 0 {
		t.Fatalf("web still has %d instances", len(is))
	}
	if idx := h.snap().AppInstancesIndex(nil, "acme", "web"); idx != h.index {
		t.Fatalf("after the last instance went at %d: index %d", h.index, idx)
	}
}

// hostsChangedSince lists the hosts ChangedSince reports since idx.
func hostsChangedSince(t *testing.T, s *Snapshot, idx uint64) []string {
	t.Helper()
	var out []string
	known, err := s.ChangedSince(nil, idx, nil, func(id string) { out = append(out, id) })
	if err != nil || !known {
		t.Fatalf("hosts changed since %d: known %v, %v", idx, known, err)
	}
	return out
}

// TestHostChangesLog: the log names every host whose record a command
// wrote or removed (an enrolment, a state, an allocation, a removal),
// once however often; not a host a command left alone; nothing of a
// command that failed; and no host among the apps, nor an app among the
// hosts.
func TestHostChangesLog(t *testing.T) {
	h := newHarness(t)
	base := h.index
	fill(h) // host1 enrolled, i-1 placed on it
	if got := hostsChangedSince(t, h.snap(), base); !slices.Equal(got, []string{"host1"}) {
		t.Fatalf("hosts changed by the fill: %v, want host1 once", got)
	}
	if got, _ := changedSince(t, h.snap(), base); slices.Contains(got, "/") || len(got) != 1 {
		t.Fatalf("apps changed by the fill: %v, want acme/web alone", got)
	}
	at := h.index
	// A report that changes no allocation leaves the host alone.
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-1", State: InstanceRunning, Ready: true}}, Time: t0})
	if got := hostsChangedSince(t, h.snap(), at); len(got) != 0 {
		t.Fatalf("a report that changes no allocation named hosts %v", got)
	}
	// A batch whose second command fails (it places a taken id after
	// stopping i-1): the first command's host, not the failed one's.
	h.must(JoinTokenCreateType, &JoinTokenCreateRequest{Token: JoinToken{ID: "jt2", Pool: "aws-bj", SecretHash: "sh2", ExpiresAt: t0.Add(time.Hour)}, Time: t0})
	h.must(HostEnrollType, &HostEnrollRequest{TokenID: "jt2", SecretHash: "sh2", Host: Host{ID: "host2", Name: "n2", Inventory: Inventory{CPUs: 2, MemoryBytes: 4 << 30}}, Time: t0})
	at = h.index
	res := h.applyBatch([]MessageType{HostStateType, PlanApplyType}, []any{
		&HostStateRequest{ID: "host2", State: HostSuspect, Time: t0},
		&PlanApplyRequest{Stop: []InstanceStop{{ID: "i-1", Reason: "test"}}, Place: []Instance{{ID: "i-1", Tenant: "acme", App: "web", Version: 2, Host: "host1", CPU: 100, Memory: 128}}, Time: t0},
	})
	if res[0] != nil || res[1] == nil {
		t.Fatalf("batch results: %v", res)
	}
	if got := hostsChangedSince(t, h.snap(), at); !slices.Equal(got, []string{"host2"}) {
		t.Fatalf("hosts changed by the batch: %v, want host2 alone", got)
	}
	// A removal is named too.
	at = h.index
	h.must(HostDeleteType, &HostDeleteRequest{ID: "host2", Time: t0})
	if got := hostsChangedSince(t, h.snap(), at); !slices.Equal(got, []string{"host2"}) {
		t.Fatalf("hosts changed by a removal: %v, want host2", got)
	}
}
