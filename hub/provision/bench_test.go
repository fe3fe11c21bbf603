package provision

import (
	"context"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

// BenchmarkProvision100 grows a pool from 0 to 100 machines on the fake
// cloud (each call takes 20 ms, each machine boots in 200 ms) with the
// loop woken on every state change, as the hub wires it. It reports the
// cloud calls per machine and the time to 100 ready minus the boot delay
// (the loop's own overhead: writes, calls, at most Parallel at once).
func BenchmarkProvision100(b *testing.B) {
	const n, bootDelay, latency = 100, 200 * time.Millisecond, 20 * time.Millisecond
	var calls, overhead float64
	for range b.N {
		store := newFakeStore(time.Now)
		cloud := newFakeCloud(time.Now, store, testCluster)
		cloud.bootDelay, cloud.latency = bootDelay, latency
		store.addAccount(testAccount, cloud)
		p, err := New(Config{Store: store, UserData: testUserData, Cluster: testCluster})
		if err != nil {
			b.Fatal(err)
		}
		store.changed = p.Wake
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		start := time.Now()
		go func() { done <- p.Run(ctx) }()
		store.setPool(testPool, testAccount, n, n, time.Hour, time.Hour)
		for store.inState(state.MachineReady) < n {
			cloud.boot()
			time.Sleep(time.Millisecond)
		}
		elapsed := time.Since(start)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		calls += float64(cloud.total()) / n
		overhead += (elapsed - bootDelay).Seconds()
		if c := cloud.count("create"); c != n {
			b.Fatalf("%d creates for %d machines", c, n)
		}
	}
	b.ReportMetric(calls/float64(b.N), "calls/machine")
	b.ReportMetric(overhead/float64(b.N), "s-to-ready-minus-boot")
	b.ReportMetric(0, "ns/op")
}
