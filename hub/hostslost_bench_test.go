package hub_test

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/liveness"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

var lostHosts = flag.Int("lost.hosts", 5000, "BenchmarkHostsLost: hosts, half of them in the datacenter that is lost")

// heartbeatRPC is the hub nodes' liveness report, as a gateway's node
// sends it to the leader.
var heartbeatRPC = cluster.RPC[liveness.Report, struct{}]{Name: "liveness", Req: cluster.JSON[liveness.Report]{}, Resp: cluster.JSON[struct{}]{}, MaxBody: 8 << 20}

// BenchmarkHostsLost: how long after its hosts fall silent the leader has
// marked a whole lost datacenter suspect, then down. An in-process 3-node
// cluster (production Raft timings, raft-wal with fsync) holds -lost.hosts
// hosts (default 5,000) in two datacenters, enrolled straight through
// Raft; their heartbeats reach the leader's tracker as hub nodes report
// them (the liveness RPC, every 500 ms). Then the second datacenter's
// hosts fall silent: the benchmark reports, beyond --suspect-after (2 s
// here) and --down-after (5 s), when the last of them was suspect and when
// the last was down, and checks that no host of the first datacenter
// moved.
//
//	go test -run '^$' -bench HostsLost -benchtime 1x ./hub
func BenchmarkHostsLost(b *testing.B) {
	const suspectAfter, downAfter = 2 * time.Second, 5 * time.Second
	n := *lostHosts
	for it := 0; it < b.N; it++ {
		c := hubtest.New(b, 3, hubtest.Options{SuspectAfter: suspectAfter, DownAfter: downAfter, ProductionRaft: true})
		admin := bootstrap(b, c)
		url := c.Nodes[0].URL()
		leader := c.WaitLeader(10 * time.Second).Hub()
		apply := leaderApply(b, leader)
		now := time.Now().UTC()
		for d := 1; d <= 2; d++ {
			name := fmt.Sprintf("pool%d", d)
			admin.must(b, "POST", url+"/v1/pools", apitypes.PoolRequest{Name: name, Datacenter: fmt.Sprintf("dc%d", d)}, nil)
			apply(state.JoinTokenCreateType, &state.JoinTokenCreateRequest{Token: state.JoinToken{ID: "jt-" + name, Pool: name, SecretHash: "s"}, Time: now})
		}
		id := func(j int) string { return fmt.Sprintf("h%05d", j) }
		lost := func(j int) bool { return j%2 == 1 }

		// Heartbeats from every host not lost (all of them until silence).
		silence := make(chan struct{})
		lastLost := make(chan time.Time, 1)
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			quiet := false
			for {
				rep := liveness.Report{Node: "bench", AgesMs: map[string]int64{}}
				for j := range n {
					if !quiet || !lost(j) {
						rep.AgesMs[id(j)] = 0
					}
				}
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := heartbeatRPC.CallLeader(cctx, leader.Cluster(), rep)
				cancel()
				if err != nil && ctx.Err() == nil {
					b.Errorf("heartbeat report: %v", err)
				}
				if !quiet {
					select {
					case <-silence:
						quiet = true
						lastLost <- time.Now()
					default:
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()

		var ew sync.WaitGroup
		for w := range 16 {
			ew.Add(1)
			go func() {
				defer ew.Done()
				for j := w; j < n; j += 16 {
					apply(state.HostEnrollType, &state.HostEnrollRequest{TokenID: fmt.Sprintf("jt-pool%d", 1+j%2), SecretHash: "s", Time: time.Now().UTC(),
						Host: state.Host{ID: id(j), Name: id(j), Inventory: state.Inventory{CPUs: 4, MemoryBytes: 16 << 30}}})
				}
			}()
		}
		ew.Wait()
		count := func() (ready, suspectOrDown, down, moved int) {
			hs, _ := leader.Store().Snapshot().Hosts(nil)
			for _, h := range hs {
				var j int
				fmt.Sscanf(h.ID, "h%d", &j)
				switch {
				case !lost(j) && h.State != state.HostReady:
					moved++
				case !lost(j):
				case h.State == state.HostReady:
					ready++
				case h.State == state.HostDown:
					down++
					suspectOrDown++
				default:
					suspectOrDown++
				}
			}
			return
		}
		// Settled: every host ready for longer than --suspect-after.
		time.Sleep(suspectAfter + time.Second)
		if ready, _, _, moved := count(); ready != n/2 || moved != 0 {
			b.Fatalf("before the loss: %d of %d hosts of dc2 ready, %d of dc1 not ready", ready, n/2, moved)
		}

		b.ResetTimer()
		close(silence)
		last := <-lastLost
		var allSuspect, allDown time.Time
		deadline := time.Now().Add(downAfter + 3*time.Minute)
		for allDown.IsZero() && time.Now().Before(deadline) {
			_, sd, d, _ := count()
			if allSuspect.IsZero() && sd == n/2 {
				allSuspect = time.Now()
			}
			if d == n/2 {
				allDown = time.Now()
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.StopTimer()
		_, sd, d, moved := count()
		stop()
		wg.Wait()
		if allDown.IsZero() {
			b.Fatalf("after %s: %d of %d lost hosts suspect or down, %d down", time.Since(last).Round(time.Second), sd, n/2, d)
		}
		if moved != 0 {
			b.Fatalf("%d hosts of the datacenter that stayed left ready", moved)
		}
		b.ReportMetric(allSuspect.Sub(last.Add(suspectAfter)).Seconds(), "all-suspect-s-beyond")
		b.ReportMetric(allDown.Sub(last.Add(downAfter)).Seconds(), "all-down-s-beyond")
		b.Logf("%d hosts lost: all suspect %s and all down %s after their last heartbeat report (--suspect-after %s, --down-after %s)",
			n/2, allSuspect.Sub(last).Round(time.Millisecond), allDown.Sub(last).Round(time.Millisecond), suspectAfter, downAfter)
		c.Stop()
	}
}
