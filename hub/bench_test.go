package hub_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// BenchmarkPutApp drives app updates through every node of an in-process
// 3-node cluster from parallel clients (b.SetParallelism scales them), the
// same write as e2e/bench. Use -cpuprofile to see where a write's CPU goes.
// Raft keeps its production timings: those of the write path measured, and
// the test ones cost elections under this load on a small machine.
func BenchmarkPutApp(b *testing.B) {
	c := hubtest.New(b, 3, hubtest.Options{ProductionRaft: true})
	admin := bootstrap(b, c)
	admin.must(b, "POST", c.Nodes[0].URL()+"/v1/tenants", apitypes.TenantRequest{Name: "bench"}, nil)
	var worker atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := int(worker.Add(1))
		r := newREST(b, admin.token)
		url := c.Nodes[w%3].URL()
		for i := 0; pb.Next(); i++ {
			name := fmt.Sprintf("b%d-%d", w, i%100)
			spec := apitypes.AppSpec{Name: name, Image: "bench:1", Instances: intp(i % 50), Env: map[string]string{"PAD": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}
			if _, _, err := r.call(context.Background(), "PUT", url+"/v1/apps/"+name+"?tenant=bench", spec, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPlacementsRaft: placements committed through an in-process
// 3-node Raft cluster. 5,000 simulated hosts (enrolled straight through
// Raft: no agent, host liveness set to an hour so none goes suspect; 4
// CPUs, 16 GB, half labelled disk=ssd) in 5 pools; then 1,000 apps of 100
// instances (100m, 64 MB; every fifth constrained to label.disk=ssd) are
// created through the API by 8 parallel clients, and the leader's planner
// places them. It reports placements/s from the first app to the last
// placement, and over the first and last 10% of placements.
//
//	go test -run '^$' -bench PlacementsRaft -benchtime 1x ./hub
func BenchmarkPlacementsRaft(b *testing.B) {
	const hosts, apps, per, workers = 5000, 1000, 100, 8
	for it := 0; it < b.N; it++ {
		c := hubtest.New(b, 3, hubtest.Options{SuspectAfter: time.Hour, DownAfter: 2 * time.Hour, ProductionRaft: true})
		admin := bootstrap(b, c)
		url := c.Nodes[0].URL()
		admin.must(b, "POST", url+"/v1/tenants", apitypes.TenantRequest{Name: "bench"}, nil)
		leader := c.WaitLeader(10 * time.Second).Hub()
		apply := leaderApply(b, leader)
		now := time.Now().UTC()
		for p := 0; p < 5; p++ {
			name := fmt.Sprintf("pool%d", p)
			admin.must(b, "POST", url+"/v1/pools", apitypes.PoolRequest{Name: name, Datacenter: "dc1"}, nil)
			apply(state.JoinTokenCreateType, &state.JoinTokenCreateRequest{Token: state.JoinToken{ID: "jt-" + name, Pool: name, SecretHash: "s"}, Time: now})
		}
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := w; j < hosts; j += 16 {
					labels := map[string]string{"disk": "hdd"}
					if j%2 == 0 {
						labels["disk"] = "ssd"
					}
					apply(state.HostEnrollType, &state.HostEnrollRequest{TokenID: fmt.Sprintf("jt-pool%d", j%5), SecretHash: "s", Time: now,
						Host: state.Host{ID: fmt.Sprintf("h%05d", j), Name: fmt.Sprintf("h%05d", j),
							Inventory: state.Inventory{CPUs: 4, MemoryBytes: 16 << 30, Labels: labels}}})
				}
			}()
		}
		wg.Wait()

		placed := func() int {
			hs, _ := leader.Store().Snapshot().Hosts(nil)
			cpu := 0
			for _, h := range hs {
				cpu += h.AllocCPU
			}
			return cpu / 100
		}
		b.ResetTimer()
		start := time.Now()
		// The workers take the apps from one counter, so that all of them
		// write until the last few apps: with a fixed share each, those
		// that finished early left the last 10% paced by fewer writers,
		// and the tail measured the load's own unevenness.
		var nextApp atomic.Int64
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := newREST(b, admin.token)
				for a := int(nextApp.Add(1) - 1); a < apps; a = int(nextApp.Add(1) - 1) {
					spec := apitypes.AppSpec{Name: fmt.Sprintf("app%04d", a), Image: "x", Instances: intp(per), CPU: 100, Memory: 64,
						Pools: []string{fmt.Sprintf("pool%d", a%5)}}
					if a%5 == 0 {
						spec.Constraints = []string{"label.disk=ssd"}
					}
					if _, _, err := r.call(context.Background(), "PUT", fmt.Sprintf("%s/v1/apps/%s?tenant=bench", c.Nodes[a%3].URL(), spec.Name), spec, nil); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		// When the last write was answered, and how much was placed then:
		// the last 10% is paced by the writes still coming when they end
		// after 90% is placed, by the planner alone when they end before.
		writesDone := make(chan struct{})
		go func() { wg.Wait(); close(writesDone) }()
		var t10, t90, tEnd, tWrites time.Time
		var deciles [10]time.Time // when each tenth was placed
		placedAtWrites := 0
		deadline := time.Now().Add(5 * time.Minute)
		for tEnd.IsZero() && time.Now().Before(deadline) {
			n := placed()
			now := time.Now()
			for d := range deciles {
				if deciles[d].IsZero() && n >= apps*per*(d+1)/10 {
					deciles[d] = now
				}
			}
			if tWrites.IsZero() {
				select {
				case <-writesDone:
					tWrites, placedAtWrites = now, n
				default:
				}
			}
			if t10.IsZero() && n >= apps*per/10 {
				t10 = now
			}
			if t90.IsZero() && n >= apps*per*9/10 {
				t90 = now
			}
			if n >= apps*per {
				tEnd = now
			}
			time.Sleep(10 * time.Millisecond)
		}
		wg.Wait()
		b.StopTimer()
		if tEnd.IsZero() {
			b.Fatalf("only %d of %d instances placed in 5 minutes", placed(), apps*per)
		}
		rates, prev := make([]string, len(deciles)), start
		for d, at := range deciles {
			rates[d] = fmt.Sprintf("%.0f", float64(apps*per/10)/at.Sub(prev).Seconds())
			prev = at
		}
		b.Logf("placements/s in each tenth: %s", strings.Join(rates, " "))
		b.ReportMetric(float64(apps*per)/tEnd.Sub(start).Seconds(), "placements/s")
		b.ReportMetric(float64(apps*per/10)/t10.Sub(start).Seconds(), "first10%-placements/s")
		b.ReportMetric(float64(apps*per/10)/tEnd.Sub(t90).Seconds(), "last10%-placements/s")
		if !tWrites.IsZero() {
			b.ReportMetric(100*float64(placedAtWrites)/float64(apps*per), "%placed-at-last-write")
			b.ReportMetric(tEnd.Sub(tWrites).Seconds(), "s-after-last-write")
		}
		c.Stop()
	}
}
