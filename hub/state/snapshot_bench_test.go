package state

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// bigState builds the state of a large cluster through the FSM: 5,000
// hosts in 5 pools, 100 tenants with 10 apps of 50 instances each
// (50,000), all reported running and ready.
func bigState(b *testing.B) *harness {
	const pools, hosts, tenants, appsPer, instsPer = 5, 5000, 100, 10, 50
	h := newHarness(b)
	h.must(AgentCACreateType, &AgentCACreateRequest{CA: AgentCA{CertPEM: []byte("c"), KeyPEM: []byte("k"), Fingerprint: "f"}, Time: t0})
	for p := range pools {
		name := fmt.Sprintf("pool%d", p)
		h.must(PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: name, Datacenter: "dc1"}, Time: t0})
		h.must(JoinTokenCreateType, &JoinTokenCreateRequest{Token: JoinToken{ID: "jt-" + name, Pool: name, SecretHash: "s"}, Time: t0})
	}
	for n := range hosts {
		id := fmt.Sprintf("h%05d", n)
		h.must(HostEnrollType, &HostEnrollRequest{TokenID: fmt.Sprintf("jt-pool%d", n%pools), SecretHash: "s", Time: t0,
			Host: Host{ID: id, Name: id, Inventory: Inventory{CPUs: 4, MemoryBytes: 16 << 30, Labels: map[string]string{"rack": fmt.Sprint(n % 20)}}}})
	}
	n := 0
	for t := range tenants {
		tenant := fmt.Sprintf("t%03d", t)
		h.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: tenant}, Time: t0})
		for a := range appsPer {
			app := fmt.Sprintf("app%d", a)
			s := spec(app, "app:1")
			s.Instances = intp(instsPer)
			s.Env = map[string]string{"REV": "0", "TIER": "web"}
			h.must(AppUpsertType, &AppUpsertRequest{Tenant: tenant, Spec: s, Create: true, Time: t0})
			var place []Instance
			for range instsPer {
				place = append(place, Instance{ID: fmt.Sprintf("%s-%s-%08x", tenant, app, n), Tenant: tenant, App: app, Version: 1,
					Host: fmt.Sprintf("h%05d", n%hosts), CPU: 100, Memory: 64})
				n++
			}
			h.must(PlanApplyType, &PlanApplyRequest{Place: place, Time: t0})
		}
	}
	byHost := map[string][]InstanceUpdate{}
	is, _ := h.snap().Instances(nil)
	for _, i := range is {
		byHost[i.Host] = append(byHost[i.Host], InstanceUpdate{ID: i.ID, State: InstanceRunning, Ready: true, Address: "10.0.0.1:8080"})
	}
	for host, us := range byHost {
		h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: host, Updates: us, Time: t0.Add(time.Second)})
	}
	return h
}

// BenchmarkSnapshot50k measures what a Raft snapshot and a restore of a
// large cluster's state cost a node (bigState: 5,000 hosts, 1,000 apps,
// 50,000 instances): Persist's encoding and Restore's decoding and
// inserts, streams in memory.
func BenchmarkSnapshot50k(b *testing.B) {
	h := bigState(b)
	var buf bytes.Buffer
	snapshotTo(b, h.fsm, &buf)
	raw := append([]byte(nil), buf.Bytes()...)
	b.Run("persist", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf.Reset()
			snapshotTo(b, h.fsm, &buf)
		}
		b.ReportMetric(float64(buf.Len())/1e6, "MB")
	})
	b.Run("restore", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			h2 := newHarness(b)
			if err := h2.fsm.Restore(nopCloser{bytes.NewBuffer(raw)}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(raw))/1e6, "MB")
	})
	// What a node holds for this state: the heap and the objects a
	// restored copy adds, after collections, which is what the collector
	// marks on every cycle.
	b.Run("heap", func(b *testing.B) {
		var before, after runtime.MemStats
		for i := 0; i < b.N; i++ {
			runtime.GC()
			runtime.ReadMemStats(&before)
			h2 := newHarness(b)
			if err := h2.fsm.Restore(nopCloser{bytes.NewBuffer(raw)}); err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(h2)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "state-MB")
		b.ReportMetric(float64(after.HeapObjects-before.HeapObjects), "state-objects")
	})
}
