package state

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// BenchmarkCloseHour measures closing one hour of 50,000 running
// instances in 1,000 apps of 100 tenants, with a counter row per app: the
// FSM's work on every node (the leader's included) and the size of the
// Raft entry, which carries only the hour's bounds whatever the number of
// instances (the FSM computes the rows from its own state).
func BenchmarkCloseHour(b *testing.B) {
	const tenants, appsPer, instsPer = 100, 10, 50
	h := newHarness(b)
	h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "p", Datacenter: "dc1"}, Time: t0})
	h.must(AgentCACreateType, &AgentCACreateRequest{CA: AgentCA{CertPEM: []byte("c"), KeyPEM: []byte("k"), Fingerprint: "f"}, Time: t0})
	h.must(JoinTokenCreateType, &JoinTokenCreateRequest{Token: JoinToken{ID: "jt", Pool: "p", SecretHash: "s"}, Time: t0})
	const hosts = 50
	for n := range hosts {
		id := fmt.Sprintf("h%d", n)
		h.must(HostEnrollType, &HostEnrollRequest{TokenID: "jt", SecretHash: "s", Host: Host{ID: id, Name: id, Inventory: Inventory{CPUs: 1000, MemoryBytes: 1 << 42}}, Time: t0})
	}
	var counts []UsageCount
	n := 0
	for t := range tenants {
		tenant := fmt.Sprintf("t%03d", t)
		h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: tenant}, Time: t0})
		for a := range appsPer {
			app := fmt.Sprintf("app%d", a)
			h.must(AppUpsertType, &AppUpsertRequest{Tenant: tenant, Spec: spec(app, "img"), Create: true, Time: t0})
			var place []Instance
			for range instsPer {
				place = append(place, Instance{ID: fmt.Sprintf("i%06d", n), Tenant: tenant, App: app, Version: 1, Host: fmt.Sprintf("h%d", n%hosts), CPU: 250, Memory: 512})
				n++
			}
			h.must(PlanApplyType, &PlanApplyRequest{Place: place, Time: t0})
			counts = append(counts, UsageCount{Tenant: tenant, App: app, Start: t0, Requests: 1000, EgressBytes: 1 << 20, LogBytes: 1 << 10})
		}
	}
	byHost := map[string][]InstanceUpdate{}
	is, _ := h.snap().Instances(nil)
	for _, i := range is {
		byHost[i.Host] = append(byHost[i.Host], InstanceUpdate{ID: i.ID, State: InstanceRunning, Ready: true})
	}
	for host, us := range byHost {
		h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: host, Updates: us, Time: t0.Add(time.Second)})
	}
	h.must(UsageCountersType, &UsageCountersRequest{Node: "hub0", Seq: 1, Counts: counts, Time: t0})
	var size int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		from := t0.Add(time.Duration(i) * time.Hour)
		msg, err := Encode(CloseHourType, &CloseHourRequest{From: from, To: from.Add(time.Hour), Time: from.Add(time.Hour + 30*time.Second)})
		if err != nil {
			b.Fatal(err)
		}
		size = len(msg)
		h.index++
		if r := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: msg}); r != nil {
			b.Fatal(r)
		}
	}
	b.StopTimer()
	rows, err := h.snap().ClosedUsage(nil, "", 0, 1<<62)
	if err != nil {
		b.Fatal(err)
	}
	if len(rows) < tenants*appsPer {
		b.Fatalf("%d rows closed, want at least %d", len(rows), tenants*appsPer)
	}
	b.ReportMetric(float64(size), "entry-bytes")
	b.ReportMetric(float64(len(rows))/float64(b.N), "rows/hour")
}
