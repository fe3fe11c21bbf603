package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// meterHour is the hour of these tests: a minute, so that a run spans many.
const meterHour = 60

// usageKey names one row: tenant, app, hour start.
type usageKey struct {
	tenant, app string
	hour        int64
}

// usageRef is the reference computation of metering: it follows the
// rules of hub/billing/doc.go on its own bookkeeping, hour by hour.
type usageRef struct {
	rows  map[usageKey]*UsageRow
	insts map[string]*refInst
	down  map[string]bool
	// closed is the end of the last closed hour (0: none).
	closed int64
}

type refInst struct {
	id, tenant, app, host string
	cpu, mem              int
	desiredStop           bool
	since                 int64 // counting since (0: not counting)
}

func newUsageRef() *usageRef {
	return &usageRef{rows: map[usageKey]*UsageRow{}, insts: map[string]*refInst{}, down: map[string]bool{}}
}

func (r *usageRef) row(t, a string, h int64) *UsageRow {
	k := usageKey{t, a, h}
	if r.rows[k] == nil {
		r.rows[k] = &UsageRow{Tenant: t, App: a, Start: h, End: h + meterHour}
	}
	return r.rows[k]
}

// count adds [from, to) of an instance, second by second into hours.
// (No command here is stamped before a close: nothing to clamp.)
func (r *usageRef) count(i *refInst, from, to int64) {
	for s := from; s < to; s++ {
		row := r.row(i.tenant, i.app, s-s%meterHour)
		row.InstanceSeconds++
		row.CPUMilliSeconds += int64(i.cpu)
		row.MemoryMBSeconds += int64(i.mem)
	}
}

func (r *usageRef) stop(i *refInst, at int64) {
	if i.since != 0 {
		r.count(i, i.since, at)
		i.since = 0
	}
}

// expected returns the rows at now: running instances count up to now.
func (r *usageRef) expected(now int64) map[usageKey]UsageRow {
	out := map[usageKey]UsageRow{}
	for k, v := range r.rows {
		out[k] = *v
	}
	for _, i := range r.insts {
		if i.since != 0 {
			for s := i.since; s < now; s++ {
				k := usageKey{i.tenant, i.app, s - s%meterHour}
				x := out[k]
				x.Tenant, x.App, x.Start, x.End = k.tenant, k.app, k.hour, k.hour+meterHour
				x.InstanceSeconds++
				x.CPUMilliSeconds += int64(i.cpu)
				x.MemoryMBSeconds += int64(i.mem)
				out[k] = x
			}
		}
	}
	for k, v := range out {
		if v.zero() {
			delete(out, k)
		}
	}
	return out
}

// fsmUsage reads every row from the store: closed hours and, computed,
// the open ones up to now.
func fsmUsage(t *testing.T, s *Store, now int64) map[usageKey]UsageRow {
	t.Helper()
	snap := s.Snapshot()
	closed, err := snap.ClosedUsage(nil, "", 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	open, err := snap.OpenUsage("", now, meterHour)
	if err != nil {
		t.Fatal(err)
	}
	out := map[usageKey]UsageRow{}
	for _, rows := range [][]*UsageRow{closed, open} {
		for _, r := range rows {
			k := usageKey{r.Tenant, r.App, r.Start}
			if _, dup := out[k]; dup {
				t.Fatalf("two rows for %v (closed and open overlap)", k)
			}
			out[k] = *r
		}
	}
	ct, _, _ := snap.MeterState()
	for k, r := range out {
		if r.Final != (k.hour < ct) {
			t.Fatalf("row %v final=%v, hours are closed through %d", k, r.Final, ct)
		}
		r.Final = false
		out[k] = r
	}
	return out
}

// meterHarness is a cluster state with two tenants, three apps and three
// big hosts, driven by random instance lifetimes.
type meterHarness struct {
	*harness
	ref  *usageRef
	rng  *rand.Rand
	now  time.Time
	apps [][2]string
	next int
	// counter batches: the last seq per node, and batches to send again.
	seq     map[string]uint64
	retries []*UsageCountersRequest
}

func newMeterHarness(t *testing.T, seed uint64) *meterHarness {
	h := &meterHarness{harness: newHarness(t), ref: newUsageRef(), rng: rand.New(rand.NewPCG(seed, 7)), now: t0,
		apps: [][2]string{{"acme", "web"}, {"acme", "api"}, {"beta", "web"}}, seq: map[string]uint64{}}
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "acme"}, Time: t0})
	h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "beta"}, Time: t0})
	h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "p", Datacenter: "dc1"}, Time: t0})
	for _, a := range h.apps {
		h.must(AppUpsertType, &AppUpsertRequest{Tenant: a[0], Spec: spec(a[1], a[1]+":1"), Create: true, Time: t0})
	}
	h.must(AgentCACreateType, &AgentCACreateRequest{CA: AgentCA{CertPEM: []byte("c"), KeyPEM: []byte("k"), Fingerprint: "f"}, Time: t0})
	h.must(JoinTokenCreateType, &JoinTokenCreateRequest{Token: JoinToken{ID: "jt", Pool: "p", SecretHash: "s"}, Time: t0})
	for _, id := range []string{"h1", "h2", "h3"} {
		h.must(HostEnrollType, &HostEnrollRequest{TokenID: "jt", SecretHash: "s", Host: Host{ID: id, Name: id, Inventory: Inventory{CPUs: 10000, MemoryBytes: 1 << 50}}, Time: t0})
	}
	return h
}

// at is the current time with a random fraction of a second, which the
// meter truncates.
func (h *meterHarness) at() time.Time {
	return h.now.Add(time.Duration(h.rng.IntN(1000)) * time.Millisecond)
}

func (h *meterHarness) place(host string) *refInst {
	a := h.apps[h.rng.IntN(len(h.apps))]
	h.next++
	i := &refInst{id: fmt.Sprintf("i-%d", h.next), tenant: a[0], app: a[1], host: host, cpu: 1 + h.rng.IntN(4000), mem: 1 + h.rng.IntN(8192)}
	err := h.apply(PlanApplyType, &PlanApplyRequest{Place: []Instance{{ID: i.id, Tenant: i.tenant, App: i.app, Version: 1, Host: host, CPU: i.cpu, Memory: i.mem}}, Time: h.at()})
	if err != nil {
		if errors.Is(err, ErrConflict) { // the app is deleted, or the host down
			return nil
		}
		h.t.Fatal(err)
	}
	h.ref.insts[i.id] = i
	return i
}

func (h *meterHarness) report(i *refInst, st string) {
	at := h.at()
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: i.host, Updates: []InstanceUpdate{{ID: i.id, State: st}}, Time: at})
	switch {
	case st == InstanceRunning && !i.desiredStop:
		if i.since == 0 {
			i.since = at.Unix()
		}
	case i.desiredStop && st == InstanceStopped:
		h.ref.stop(i, at.Unix())
		delete(h.ref.insts, i.id) // dropped
	default:
		h.ref.stop(i, at.Unix())
	}
}

func (h *meterHarness) replace(i *refInst) {
	at := h.at()
	h.must(PlanApplyType, &PlanApplyRequest{Stop: []InstanceStop{{ID: i.id, Reason: "replaced"}}, Time: at})
	if !i.desiredStop {
		h.ref.stop(i, at.Unix())
		i.desiredStop = true
	}
}

func (h *meterHarness) hostState(host, st string) {
	at := h.at()
	h.must(HostStateType, &HostStateRequest{ID: host, State: st, Time: at})
	if st == HostDown && !h.ref.down[host] {
		for _, i := range h.ref.insts {
			if i.host == host {
				h.ref.stop(i, at.Unix())
			}
		}
	}
	h.ref.down[host] = st == HostDown
}

func (h *meterHarness) deleteApp(tenant, app string) {
	at := h.at()
	h.must(AppDeleteType, &AppDeleteRequest{Tenant: tenant, Name: app, Time: at})
	for _, i := range h.ref.insts {
		if i.tenant == tenant && i.app == app && !i.desiredStop {
			h.ref.stop(i, at.Unix())
			i.desiredStop = true
		}
	}
}

// counters sends a batch of one node's counts, some of them late (for an
// hour closed already), and sometimes sends an earlier batch again.
func (h *meterHarness) counters() {
	if len(h.retries) > 0 && h.rng.IntN(3) == 0 {
		h.must(UsageCountersType, h.retries[h.rng.IntN(len(h.retries))])
		return
	}
	node := fmt.Sprintf("hub%d", h.rng.IntN(3))
	h.seq[node] += 1 + uint64(h.rng.IntN(3))
	req := &UsageCountersRequest{Node: node, Seq: h.seq[node], Time: h.at()}
	for n := h.rng.IntN(4); n >= 0; n-- {
		a := h.apps[h.rng.IntN(len(h.apps))]
		start := h.now.Unix() - h.now.Unix()%meterHour
		if h.rng.IntN(4) == 0 {
			start -= meterHour * int64(h.rng.IntN(3)) // late
		}
		start = max(start, t0.Unix())
		c := UsageCount{Tenant: a[0], App: a[1], Start: time.Unix(start, 0).UTC(),
			Requests: int64(h.rng.IntN(1000)), EgressBytes: int64(h.rng.IntN(1 << 20)), LogBytes: int64(h.rng.IntN(1 << 16))}
		req.Counts = append(req.Counts, c)
		hour := max(start, h.ref.closed)
		row := h.ref.row(c.Tenant, c.App, hour)
		row.Requests += c.Requests
		row.EgressBytes += c.EgressBytes
		row.LogBytes += c.LogBytes
	}
	h.must(UsageCountersType, req)
	h.retries = append(h.retries, req)
}

// closeDue closes the hours that ended (the runner's job).
func (h *meterHarness) closeDue() {
	for {
		from := h.ref.closed
		if from == 0 {
			from = t0.Unix()
		}
		if h.now.Unix() < from+meterHour+5 {
			return
		}
		h.must(CloseHourType, &CloseHourRequest{From: time.Unix(from, 0), To: time.Unix(from+meterHour, 0), Time: h.now})
		if h.rng.IntN(4) == 0 { // a new leader closes it again: nothing changes
			h.must(CloseHourType, &CloseHourRequest{From: time.Unix(from, 0), To: time.Unix(from+meterHour, 0), Time: h.now})
		}
		h.ref.closed = from + meterHour
	}
}

func (h *meterHarness) step() {
	h.now = h.now.Add(time.Duration(h.rng.IntN(20)) * time.Second)
	var live []*refInst
	for _, i := range h.ref.insts {
		live = append(live, i)
	}
	// Map order is random: sort for a reproducible run.
	sortInsts(live)
	pick := func() *refInst {
		if len(live) == 0 {
			return nil
		}
		return live[h.rng.IntN(len(live))]
	}
	hosts := []string{"h1", "h2", "h3"}
	switch n := h.rng.IntN(100); {
	case n < 20:
		host := hosts[h.rng.IntN(len(hosts))]
		if !h.ref.down[host] {
			if i := h.place(host); i != nil {
				h.report(i, InstanceRunning)
			}
		}
	case n < 50:
		if i := pick(); i != nil {
			h.report(i, []string{InstanceRunning, InstanceRunning, InstanceStarting, InstanceStopped, InstanceFailed}[h.rng.IntN(5)])
		}
	case n < 58:
		if i := pick(); i != nil {
			h.replace(i)
		}
	case n < 64:
		h.hostState(hosts[h.rng.IntN(len(hosts))], HostDown)
	case n < 72:
		h.hostState(hosts[h.rng.IntN(len(hosts))], HostReady)
	case n < 75:
		a := h.apps[h.rng.IntN(len(h.apps))]
		h.deleteApp(a[0], a[1])
		h.must(AppUpsertType, &AppUpsertRequest{Tenant: a[0], Spec: spec(a[1], a[1]+":2"), Time: h.at()})
	default:
		h.counters()
	}
	h.closeDue()
}

func sortInsts(is []*refInst) {
	for i := 1; i < len(is); i++ {
		for j := i; j > 0 && is[j].id < is[j-1].id; j-- {
			is[j], is[j-1] = is[j-1], is[j]
		}
	}
}

func diffUsage(t *testing.T, got, want map[usageKey]UsageRow) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%v: got %+v, want %+v", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%v: got %+v, want no row", k, g)
		}
	}
	t.FailNow()
}

// TestMeterMatchesReference drives random instance lifetimes (running,
// stopped, failed, lost with their host, running again, replaced, their
// app deleted) and counter batches (retried, late) through the FSM and
// compares what it metered, closed hours and open ones, with the
// reference, to the second; then a snapshot restores to the same usage.
func TestMeterMatchesReference(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			h := newMeterHarness(t, seed)
			for range 400 {
				h.step()
				if h.rng.IntN(50) == 0 {
					diffUsage(t, fsmUsage(t, h.fsm.Store(), h.now.Unix()), h.ref.expected(h.now.Unix()))
				}
			}
			now := h.now.Unix()
			want := h.ref.expected(now)
			if len(want) == 0 || h.ref.closed == 0 {
				t.Fatalf("the run metered nothing or closed no hour: %d rows, closed through %d", len(want), h.ref.closed)
			}
			diffUsage(t, fsmUsage(t, h.fsm.Store(), now), want)

			var buf bytes.Buffer
			snapshotTo(t, h.fsm, &buf)
			r := newHarness(t)
			if err := r.fsm.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dump(t, h.fsm.Store()), dump(t, r.fsm.Store())) {
				t.Fatal("the restored store differs")
			}
			var again bytes.Buffer
			snapshotTo(t, r.fsm, &again)
			if !bytes.Equal(buf.Bytes(), again.Bytes()) {
				t.Fatal("the restored store's snapshot differs byte for byte")
			}
		})
	}
}

func TestCloseHour(t *testing.T) {
	h := newMeterHarness(t, 1)
	i := h.place("h1")
	h.now = t0.Add(10 * time.Second)
	h.report(i, InstanceRunning) // counts from 12:00:10
	hour := func(n int) (time.Time, time.Time) {
		return t0.Add(time.Duration(n) * time.Minute), t0.Add(time.Duration(n+1) * time.Minute)
	}
	from, to := hour(0)
	tests := []struct {
		name string
		req  *CloseHourRequest
		want error
	}{
		{"from after to", &CloseHourRequest{From: to, To: from}, ErrInvalid},
		{"not whole seconds", &CloseHourRequest{From: from.Add(time.Millisecond), To: to}, ErrInvalid},
		{"zero", &CloseHourRequest{}, ErrInvalid},
		{"the first hour after usage began", &CloseHourRequest{From: from.Add(time.Minute), To: to.Add(time.Minute)}, ErrConflict},
		{"the first hour", &CloseHourRequest{From: from, To: to}, nil},
		{"the same hour again", &CloseHourRequest{From: from, To: to}, nil},
		{"an hour skipped", &CloseHourRequest{From: from.Add(2 * time.Minute), To: to.Add(2 * time.Minute)}, ErrConflict},
		{"an hour of another length", &CloseHourRequest{From: to, To: to.Add(2 * time.Minute)}, ErrInvalid},
		{"the next hour", &CloseHourRequest{From: to, To: to.Add(time.Minute)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := dump(t, h.fsm.Store())
			err := h.apply(CloseHourType, tc.req)
			if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if (err != nil || tc.name == "the same hour again") && !reflect.DeepEqual(before, dump(t, h.fsm.Store())) {
				t.Fatal("a refused or repeated close changed the store")
			}
		})
	}
	rows, err := h.fsm.Store().Snapshot().ClosedUsage(nil, "acme", 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	var secs int64
	for _, r := range rows {
		secs += r.InstanceSeconds
	}
	if i.tenant == "acme" && secs != 50+60 || i.tenant != "acme" && secs != 0 {
		t.Fatalf("closed %d instance-seconds of acme (instance of %s), want 110", secs, i.tenant)
	}
}

func TestUsageCountersOnce(t *testing.T) {
	h := newMeterHarness(t, 1)
	c := UsageCount{Tenant: "acme", App: "web", Start: t0, Requests: 10, EgressBytes: 100, LogBytes: 1}
	tests := []struct {
		name string
		req  *UsageCountersRequest
		want error
		reqs int64 // acme/web's requests after it
	}{
		{"a batch", &UsageCountersRequest{Node: "hub0", Seq: 5, Counts: []UsageCount{c}}, nil, 10},
		{"the same batch again", &UsageCountersRequest{Node: "hub0", Seq: 5, Counts: []UsageCount{c}}, nil, 10},
		{"an older batch", &UsageCountersRequest{Node: "hub0", Seq: 4, Counts: []UsageCount{c}}, nil, 10},
		{"another node's batch with the same seq", &UsageCountersRequest{Node: "hub1", Seq: 5, Counts: []UsageCount{c, c}}, nil, 30},
		{"the next batch", &UsageCountersRequest{Node: "hub0", Seq: 9, Counts: []UsageCount{c}}, nil, 40},
		{"no node", &UsageCountersRequest{Seq: 10, Counts: []UsageCount{c}}, ErrInvalid, 40},
		{"no seq", &UsageCountersRequest{Node: "hub0", Counts: []UsageCount{c}}, ErrInvalid, 40},
		{"negative", &UsageCountersRequest{Node: "hub0", Seq: 10, Counts: []UsageCount{{Tenant: "acme", App: "web", Start: t0, Requests: -1}}}, ErrInvalid, 40},
		{"no hour", &UsageCountersRequest{Node: "hub0", Seq: 10, Counts: []UsageCount{{Tenant: "acme", App: "web", Requests: 1}}}, ErrInvalid, 40},
		{"no app", &UsageCountersRequest{Node: "hub0", Seq: 10, Counts: []UsageCount{{Tenant: "acme", Start: t0, Requests: 1}}}, ErrInvalid, 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := dump(t, h.fsm.Store())
			err := h.apply(UsageCountersType, tc.req)
			if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil && !reflect.DeepEqual(before, dump(t, h.fsm.Store())) {
				t.Fatal("a refused batch changed the store")
			}
			rows, err := h.fsm.Store().Snapshot().OpenUsage("acme", t0.Unix()+1, meterHour)
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for _, r := range rows {
				if r.App == "web" {
					n += r.Requests
				}
			}
			if n != tc.reqs {
				t.Fatalf("acme/web has %d requests, want %d", n, tc.reqs)
			}
		})
	}
	if seq, err := h.fsm.Store().Snapshot().UsageBatchSeq("hub0"); err != nil || seq != 9 {
		t.Fatalf("hub0's last batch: %d %v, want 9", seq, err)
	}
}

// TestMeterUpgrade: a snapshot written before metering (no "metering" in
// its header) gives the instances running then their counts.
func TestMeterUpgrade(t *testing.T) {
	h := newMeterHarness(t, 1)
	i := h.place("h1")
	j := h.place("h2")
	h.now = t0.Add(30 * time.Second)
	h.report(i, InstanceRunning)
	h.report(j, InstanceRunning)
	h.hostState("h2", HostDown)
	var buf bytes.Buffer
	snapshotTo(t, h.fsm, &buf)
	old := bytes.Replace(buf.Bytes(), []byte(`{"format":1,"metering":1}`), []byte(`{"format":1}`), 1)
	if bytes.Equal(old, buf.Bytes()) {
		t.Fatalf("the snapshot header is not as expected: %.40s", buf.Bytes())
	}
	// Without metering, i and j carry no start.
	old = bytes.ReplaceAll(old, []byte(fmt.Sprintf(`"MeteredSince":%d`, h.now.Unix())), []byte(`"MeteredSince":0`))
	r := newHarness(t)
	if err := r.fsm.Restore(io.NopCloser(bytes.NewReader(old))); err != nil {
		t.Fatal(err)
	}
	snap := r.fsm.Store().Snapshot()
	gi, _ := snap.Instance(nil, i.id)
	gj, _ := snap.Instance(nil, j.id)
	if gi == nil || gj == nil || gi.MeteredSince != gi.UpdatedAt.Unix() || gj.MeteredSince != 0 {
		t.Fatalf("after the upgrade: %+v, %+v; want the running one counting from its last change, the lost one not", gi, gj)
	}
}
