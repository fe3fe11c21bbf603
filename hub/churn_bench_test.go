package hub_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/gctune"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// The churn benchmark's size; the defaults are the full size.
var (
	churnHosts    = flag.Int("churn.hosts", 5000, "BenchmarkChurn: simulated hosts")
	churnApps     = flag.Int("churn.apps", 1000, "BenchmarkChurn: apps (over churn.tenants tenants)")
	churnTenants  = flag.Int("churn.tenants", 100, "BenchmarkChurn: tenants")
	churnPer      = flag.Int("churn.per", 50, "BenchmarkChurn: instances per app")
	churnWatchers = flag.Int("churn.watchers", 1000, "BenchmarkChurn: blocking watchers on one app's instances")
	churnClients  = flag.Int("churn.clients", 16, "BenchmarkChurn: API clients updating and scaling apps")
	churnRate     = flag.Float64("churn.rate", 100, "BenchmarkChurn: app writes per second, all clients together")
	churnFor      = flag.Duration("churn.for", 60*time.Second, "BenchmarkChurn: how long the churn lasts")
	churnProfile  = flag.String("churn.cpuprofile", "", "BenchmarkChurn: write a CPU profile of the churn alone (not the seeding) to this file")
	churnAllocs   = flag.String("churn.allocprofile", "", "BenchmarkChurn: write the allocation profile at the churn's start to FILE.start and at its end to FILE (pprof -diff_base FILE.start FILE: the churn's allocations)")
)

// BenchmarkChurn: the API under churn at large state, on an in-process
// 3-node Raft cluster (production Raft timeouts, raft-wal on disk, fsync
// on). Seeding: hosts enrolled straight through Raft (agents simulated
// through the FSM: no gateway, host liveness set to an hour), apps created
// through the HTTP API and placed by the leader's real planner, then
// reported running and ready by InstanceUpdate commands, one per host, as
// agents do. Then, for -churn.for:
//
//   - -churn.clients API clients, spread over the 3 nodes, update apps (a
//     new env value: a new version, rolled out by the planner) and scale
//     them (45..55 instances) at -churn.rate writes/s in all; each write's
//     latency is recorded (the mutation goal: p99 ≤ 50 ms);
//   - the simulated agents keep reporting: new instances running and
//     ready, stopped ones stopped (which removes them), so rolling updates
//     complete;
//   - -churn.watchers blocking queries (GET /v1/apps/hot/instances?index=)
//     watch one app that a separate writer scales up and down once a
//     second; fan-out is the time from sending that write until every
//     watcher holds an answer with the new count of instances desired to
//     run (so it includes the planner's commit of the plan).
//
// Afterwards the leader's state is snapshotted exactly as Raft's Persist
// does it (into a file) and restored into a fresh store as a node does on
// restart (goal: both ≤ 5 s), and the heap one node's state takes is the
// heap that restored store holds. The process holds 3 nodes, the clients
// and the watchers: its heap and RSS are reported too, but per node it is
// the restored store's figure that counts.
//
//	go test -run '^$' -bench Churn -benchtime 1x -timeout 30m ./hub
func BenchmarkChurn(b *testing.B) {
	for it := 0; it < b.N; it++ {
		runChurn(b)
	}
}

func runChurn(b *testing.B) {
	hosts, apps, tenants, per := *churnHosts, *churnApps, *churnTenants, *churnPer
	if apps < 2 || tenants < 1 || hosts < 1 || per < 1 {
		b.Fatal("churn: need 2+ apps, 1+ tenants, hosts and instances")
	}
	// The collector follows the policy a `wharf hub` process runs (one
	// tuner for the three nodes here, so one budget of collector CPU for
	// all three); GOGC in the environment overrides it, as it does a hub.
	gcCtx, gcStop := context.WithCancel(context.Background())
	gcDone := make(chan struct{})
	go func() { defer close(gcDone); gctune.Run(gcCtx, gctune.Default) }()
	defer func() { gcStop(); <-gcDone }()
	c := hubtest.New(b, 3, hubtest.Options{SuspectAfter: time.Hour, DownAfter: 2 * time.Hour, ProductionRaft: true})
	defer c.Stop()
	admin := bootstrap(b, c)
	leader := c.WaitLeader(10 * time.Second).Hub()
	seedStart := time.Now()
	seedChurn(b, c, admin, leader, hosts, apps, tenants, per)
	b.ReportMetric(time.Since(seedStart).Seconds(), "seed-s")
	b.Logf("seeded %d hosts, %d apps, %d instances running in %s", hosts, apps, apps*per, time.Since(seedStart).Round(time.Millisecond))
	heapSeeded := heapBytes()

	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Add(1)
	var refused atomic.Int64
	go func() { defer bg.Done(); simulateAgents(ctx, b, leader, &refused) }()

	// The watchers first, so that they hold their first answer when the
	// churn starts.
	hot := appName(0)
	hotURL := func(n int) string {
		return fmt.Sprintf("%s/v1/apps/%s/instances?tenant=%s", c.Nodes[n%3].URL(), hot, tenantName(0, tenants))
	}
	ws := startWatchers(ctx, &bg, *churnWatchers, hotURL, admin.token)
	if !ws.waitAll(per, time.Now(), 60*time.Second).ok {
		b.Fatalf("churn: watchers did not all answer %d instances within 60 s", per)
	}

	b.ResetTimer()
	if *churnProfile != "" {
		f, err := os.Create(*churnProfile)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer f.Close()
	}
	writeAllocs(b, *churnAllocs, ".start")
	schedBefore := schedLatencies()
	gcBefore := gcCycles()
	roundsBefore := plannerCounts(b, c)
	churnStart := time.Now()
	end := churnStart.Add(*churnFor)
	muts := &latencies{}
	slowest := &perSecond{start: churnStart}
	spans := &spans{}
	var cw sync.WaitGroup
	for w := 0; w < *churnClients; w++ {
		cw.Add(1)
		go func() {
			defer cw.Done()
			churnClient(b, c, admin.token, w, end, apps, tenants, per, muts, slowest, spans)
		}()
	}
	fan := &latencies{}
	first := &latencies{}
	hotWrites := &latencies{}
	hotRest := newREST(b, admin.token)
	for k := 1; time.Now().Before(end); k++ {
		target := per + k%2
		t0 := time.Now()
		_, _, err := hotRest.call(ctx, "POST", fmt.Sprintf("%s/v1/apps/%s/scale?tenant=%s", c.Nodes[k%3].URL(), hot, tenantName(0, tenants)), apitypes.ScaleRequest{Instances: &target}, nil)
		hotWrites.add(time.Since(t0), err)
		if err != nil {
			continue
		}
		r := ws.waitAll(target, t0, 30*time.Second)
		if !r.ok {
			fan.add(0, fmt.Errorf("fan-out of scale to %d: not every watcher answered within 30 s", target))
			continue
		}
		fan.add(r.last, nil)
		first.add(r.first, nil)
		spans.fanout(t0, t0.Add(r.last))
		time.Sleep(time.Until(t0.Add(time.Second)))
	}
	cw.Wait()
	churnTime := time.Since(churnStart)
	sched := schedLatencies().since(schedBefore)
	gcDuring := gcCycles() - gcBefore
	roundsAfter := plannerCounts(b, c)
	if *churnProfile != "" {
		pprof.StopCPUProfile()
	}
	writeAllocs(b, *churnAllocs, "")
	b.StopTimer()
	answers := ws.answers.Load()
	cancel()
	bg.Wait()

	mp := muts.summary()
	b.Logf("mutations: %s", mp)
	b.Logf("slowest mutation sent in each second of the churn, ms: %s", slowest)
	during, outside := spans.split()
	b.Logf("mutations overlapping a fan-out: %s; the others: %s", during.summary(), outside.summary())
	b.ReportMetric(ms(during.summary().p99), "mut-in-fanout-p99-ms")
	b.ReportMetric(ms(outside.summary().p99), "mut-off-fanout-p99-ms")
	b.Logf("hot-app writes: %s", hotWrites.summary())
	b.Logf("fan-out to %d watchers: first %s; all %s", *churnWatchers, first.summary(), fan.summary())
	b.Logf("watcher answers: %d in %s (%.1f per watcher per second)", answers, churnTime.Round(time.Millisecond), float64(answers)/float64(*churnWatchers)/churnTime.Seconds())
	b.ReportMetric(float64(mp.n)/churnTime.Seconds(), "mutations/s")
	b.ReportMetric(ms(mp.p50), "mut-p50-ms")
	b.ReportMetric(ms(mp.p99), "mut-p99-ms")
	b.ReportMetric(ms(mp.max), "mut-max-ms")
	b.ReportMetric(float64(mp.errs), "mut-errors")
	fp := fan.summary()
	b.ReportMetric(ms(fp.p50), "fanout-p50-ms")
	b.ReportMetric(ms(fp.p99), "fanout-p99-ms")
	b.ReportMetric(ms(fp.max), "fanout-max-ms")
	b.ReportMetric(float64(answers)/float64(*churnWatchers)/churnTime.Seconds(), "answers/watcher/s")
	b.ReportMetric(float64(fp.errs), "fanout-timeouts")
	b.ReportMetric(float64(refused.Load()), "agent-reports-refused")
	b.Logf("simulated agents' reports refused (no leader, say) and made again: %d", refused.Load())
	// How long goroutines waited, runnable, for a CPU: what a Raft
	// heartbeat waits too when the process is saturated.
	b.Logf("run-queue wait during the churn (runtime/metrics %s): %d waits, p50 %s, p99 %s, p99.9 %s, max bucket %s",
		schedLatencyMetric, sched.count(), sched.quantile(0.5), sched.quantile(0.99), sched.quantile(0.999), sched.quantile(1))
	b.ReportMetric(ms(sched.quantile(0.99)), "runq-wait-p99-ms")
	b.Logf("collector: %d cycles during the churn, GC percent %d at its end", gcDuring, gctune.CurrentPercent())
	b.ReportMetric(float64(gcDuring), "gc-cycles")
	b.ReportMetric(float64(gctune.CurrentPercent()), "gc-percent")
	rounds, plans, placed := roundsAfter[0]-roundsBefore[0], roundsAfter[1]-roundsBefore[1], roundsAfter[2]-roundsBefore[2]
	b.Logf("planner: %.0f rounds and %.0f plans committed in %s, placing %.0f instances", rounds, plans, churnTime.Round(time.Millisecond), placed)
	b.ReportMetric(rounds/churnTime.Seconds(), "planner-rounds/s")
	b.ReportMetric(plans/churnTime.Seconds(), "plans/s")
	// Whether the cluster keeps up: every new version asks for all of its
	// app's instances anew, one surge at a time.
	b.ReportMetric(placed/churnTime.Seconds(), "placements/s")

	updating := appsUpdating(b, leader)
	b.Logf("apps with instances of an older version still to replace at the end: %d of %d", updating, apps)
	b.ReportMetric(float64(updating), "apps-updating-at-end")

	snapshotRestore(b, leader, heapSeeded)
}

// appsUpdating counts the apps in the leader's store that still run
// instances of an older version: rolling updates the cluster has not
// caught up with.
func appsUpdating(b *testing.B, leader *hub.Hub) int {
	snap := leader.Store().Snapshot()
	as, err := snap.Apps(nil, "")
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, a := range as {
		is, err := snap.AppInstances(nil, a.Tenant, a.Name)
		if err != nil {
			b.Fatal(err)
		}
		for _, i := range is {
			if i.Desired == state.DesiredRun && i.Version != a.Version {
				n++
				break
			}
		}
	}
	return n
}

// writeAllocs writes the allocation profile to path+suffix, if path is
// set.
func writeAllocs(b *testing.B, path, suffix string) {
	if path == "" {
		return
	}
	f, err := os.Create(path + suffix)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

func tenantName(app, tenants int) string { return fmt.Sprintf("t%03d", app%tenants) }
func appName(app int) string             { return fmt.Sprintf("app%04d", app) }

// seedChurn builds the state: pools, tenants, hosts through Raft, apps
// through the API, placed by the planner and reported running.
func seedChurn(b *testing.B, c *hubtest.Cluster, admin *rest, leader *hub.Hub, hosts, apps, tenants, per int) {
	url := c.Nodes[0].URL()
	apply := leaderApply(b, leader)
	const pools = 5
	now := time.Now().UTC()
	for p := 0; p < pools; p++ {
		name := fmt.Sprintf("pool%d", p)
		admin.must(b, "POST", url+"/v1/pools", apitypes.PoolRequest{Name: name, Datacenter: "dc1"}, nil)
		apply(state.JoinTokenCreateType, &state.JoinTokenCreateRequest{Token: state.JoinToken{ID: "jt-" + name, Pool: name, SecretHash: "s"}, Time: now})
	}
	for t := 0; t < tenants; t++ {
		admin.must(b, "POST", url+"/v1/tenants", apitypes.TenantRequest{Name: tenantName(t, tenants)}, nil)
	}
	var wg sync.WaitGroup
	const enrollers = 32
	for w := 0; w < enrollers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := w; j < hosts; j += enrollers {
				apply(state.HostEnrollType, &state.HostEnrollRequest{TokenID: fmt.Sprintf("jt-pool%d", j%pools), SecretHash: "s", Time: now,
					Host: state.Host{ID: fmt.Sprintf("h%05d", j), Name: fmt.Sprintf("h%05d", j),
						Inventory: state.Inventory{CPUs: 4, MemoryBytes: 16 << 30, Labels: map[string]string{"rack": fmt.Sprint(j % 20)}}}})
			}
		}()
	}
	wg.Wait()
	const creators = 16
	for w := 0; w < creators; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newREST(b, admin.token)
			for a := w; a < apps; a += creators {
				spec := churnSpec(a, per, 0)
				r.must(b, "PUT", fmt.Sprintf("%s/v1/apps/%s?tenant=%s", c.Nodes[a%3].URL(), spec.Name, tenantName(a, tenants)), spec, nil)
			}
		}()
	}
	wg.Wait()
	// Every instance placed and reported running and ready.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var refused atomic.Int64
	go func() { defer close(done); simulateAgents(ctx, b, leader, &refused) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		is, _ := leader.Store().Snapshot().Instances(nil)
		ready := 0
		for _, i := range is {
			if i.Desired == state.DesiredRun && i.State == state.InstanceRunning && i.Ready {
				ready++
			}
		}
		if ready == apps*per {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("churn: %d of %d instances running after 10 minutes", ready, apps*per)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// churnSpec is app a's spec at revision rev (a new revision is a new
// version, rolled out by the planner).
func churnSpec(a, instances, rev int) apitypes.AppSpec {
	return apitypes.AppSpec{Name: appName(a), Image: "app:1", Instances: &instances, CPU: 100, Memory: 64,
		Pools: []string{fmt.Sprintf("pool%d", a%5)}, Env: map[string]string{"REV": fmt.Sprint(rev), "TIER": "web"}}
}

// churnClient writes until end at its share of -churn.rate: half of the
// writes a new revision of an app (PUT), half a scale (POST .../scale).
// App 0 is the watchers' and left alone.
func churnClient(b *testing.B, c *hubtest.Cluster, token string, w int, end time.Time, apps, tenants, per int, out *latencies, slowest *perSecond, sp *spans) {
	r := newREST(b, token)
	rng := rand.New(rand.NewPCG(uint64(w), 7))
	every := time.Duration(float64(time.Second) * float64(*churnClients) / *churnRate)
	next := time.Now().Add(time.Duration(rng.Int64N(int64(every))))
	for i := 0; ; i++ {
		time.Sleep(time.Until(next))
		if time.Now().After(end) {
			return
		}
		next = next.Add(every)
		a := 1 + rng.IntN(apps-1)
		base := fmt.Sprintf("%s/v1/apps/%s", c.Nodes[(w+i)%3].URL(), appName(a))
		q := "?tenant=" + tenantName(a, tenants)
		n := per - 5 + rng.IntN(11)
		start := time.Now()
		var err error
		if rng.IntN(2) == 0 {
			spec := churnSpec(a, n, 1+rng.IntN(1<<20))
			spec.Instances = nil // keep the count; a new version
			_, _, err = r.call(context.Background(), "PUT", base+q, spec, nil)
		} else {
			_, _, err = r.call(context.Background(), "POST", base+"/scale"+q, apitypes.ScaleRequest{Instances: &n}, nil)
		}
		out.add(time.Since(start), err)
		if err == nil {
			slowest.add(start, time.Since(start))
			sp.mutation(start, time.Now())
		}
	}
}

// perSecond keeps the longest latency of the requests sent in each second
// since start: whether the tail is spread out or comes in stalls.
type perSecond struct {
	start time.Time
	mu    sync.Mutex
	max   []time.Duration
}

func (p *perSecond) add(sent time.Time, d time.Duration) {
	i := int(sent.Sub(p.start) / time.Second)
	if i < 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.max) <= i {
		p.max = append(p.max, 0)
	}
	p.max[i] = max(p.max[i], d)
}

func (p *perSecond) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for i, d := range p.max {
		if i > 0 {
			out = append(out, ' ')
		}
		out = fmt.Append(out, d.Milliseconds())
	}
	return string(out)
}

// spans keeps when each mutation and each fan-out ran, to tell the
// mutations that overlapped a fan-out to 1,000 watchers (whose answers
// and new queries are a burst of work) from the others.
type spans struct {
	mu      sync.Mutex
	muts    [][2]time.Time
	fanouts [][2]time.Time
}

func (s *spans) mutation(start, end time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.muts = append(s.muts, [2]time.Time{start, end})
}

func (s *spans) fanout(start, end time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fanouts = append(s.fanouts, [2]time.Time{start, end})
}

// split returns the latencies of the mutations that overlapped a fan-out
// and of the others.
func (s *spans) split() (during, outside *latencies) {
	s.mu.Lock()
	defer s.mu.Unlock()
	during, outside = &latencies{}, &latencies{}
	for _, m := range s.muts {
		hit := false
		for _, f := range s.fanouts {
			if m[0].Before(f[1]) && f[0].Before(m[1]) {
				hit = true
				break
			}
		}
		if hit {
			during.add(m[1].Sub(m[0]), nil)
		} else {
			outside.add(m[1].Sub(m[0]), nil)
		}
	}
	return during, outside
}

// snapshotRestore writes the leader's state as Raft's Persist does, reads
// it back into a fresh store as Restore does, and reports the times, the
// size and the heap the restored state holds.
func snapshotRestore(b *testing.B, leader *hub.Hub, heapSeeded int64) {
	path := filepath.Join(b.TempDir(), "state.snap")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	snap, err := state.NewFSM(leader.Store(), nil).Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	if err := snap.Persist(&fileSink{File: f}); err != nil {
		b.Fatal(err)
	}
	snapTime := time.Since(start)
	snap.Release()
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	heapBefore := heapBytes()
	store, err := state.NewStore()
	if err != nil {
		b.Fatal(err)
	}
	rf, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	if err := state.NewFSM(store, nil).Restore(rf); err != nil {
		b.Fatal(err)
	}
	restoreTime := time.Since(start)
	heapState := heapBytes() - heapBefore
	// The restored state is the snapshot's, byte for byte.
	again, err := state.NewFSM(store, nil).Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	againPath := path + ".again"
	af, err := os.Create(againPath)
	if err != nil {
		b.Fatal(err)
	}
	if err := again.Persist(&fileSink{File: af}); err != nil {
		b.Fatal(err)
	}
	if x, y, err := sameFile(path, againPath); err != nil || !x {
		b.Fatalf("a snapshot of the restored state differs from the one restored (%d bytes vs %d): %v", y[0], y[1], err)
	}
	runtime.KeepAlive(store)
	rss := rssBytes()
	b.Logf("snapshot: %s, %.1f MB; restore: %s; one node's state on the heap: %.0f MB; process (3 nodes, clients, watchers): heap %.0f MB after seeding, %.0f MB now, RSS %.0f MB",
		snapTime.Round(time.Millisecond), float64(st.Size())/1e6, restoreTime.Round(time.Millisecond), float64(heapState)/1e6,
		float64(heapSeeded)/1e6, float64(heapBefore)/1e6, float64(rss)/1e6)
	b.ReportMetric(snapTime.Seconds(), "snapshot-s")
	b.ReportMetric(float64(st.Size())/1e6, "snapshot-MB")
	b.ReportMetric(restoreTime.Seconds(), "restore-s")
	b.ReportMetric(float64(heapState)/1e6, "state-heap-MB")
	b.ReportMetric(float64(rss)/1e6, "process-RSS-MB")
}

// leaderApply returns a function that commits a command through leader's
// Raft, failing b on any error: state seeded as agents and the planner
// would write it.
func leaderApply(b *testing.B, leader *hub.Hub) func(state.MessageType, any) {
	return func(mt state.MessageType, req any) {
		msg, err := state.Encode(mt, req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := leader.Cluster().Apply(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
	}
}

// plannerCounts sums the planner's rounds and committed plans over the
// nodes' /metrics (only the leader's move).
func plannerCounts(b *testing.B, c *hubtest.Cluster) [3]float64 {
	var out [3]float64
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		resp, err := http.Get(n.URL() + "/metrics")
		if err != nil {
			b.Fatalf("metrics: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("metrics: %s %v", resp.Status, err)
		}
		for line := range strings.Lines(string(body)) {
			for k, name := range []string{"wharf_planner_rounds_total ", "wharf_planner_plans_committed_total ", "wharf_planner_instances_placed_total "} {
				if v, ok := strings.CutPrefix(line, name); ok {
					f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
					if err != nil {
						b.Fatalf("metrics: %q: %v", line, err)
					}
					out[k] += f
				}
			}
		}
	}
	return out
}

// schedLatencyMetric is the runtime's histogram of the time goroutines
// spent runnable before they ran.
const schedLatencyMetric = "/sched/latencies:seconds"

// latencyHist is a copy of a runtime/metrics histogram.
type latencyHist struct {
	counts  []uint64
	buckets []float64
}

// gcCycles is how many collections the process has completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func schedLatencies() latencyHist {
	s := []metrics.Sample{{Name: schedLatencyMetric}}
	metrics.Read(s)
	h := s[0].Value.Float64Histogram()
	return latencyHist{counts: slices.Clone(h.Counts), buckets: h.Buckets}
}

// since returns the waits counted after before was read.
func (h latencyHist) since(before latencyHist) latencyHist {
	d := latencyHist{counts: slices.Clone(h.counts), buckets: h.buckets}
	for i := range d.counts {
		if i < len(before.counts) {
			d.counts[i] -= before.counts[i]
		}
	}
	return d
}

func (h latencyHist) count() uint64 {
	var n uint64
	for _, c := range h.counts {
		n += c
	}
	return n
}

// quantile returns the upper bound of the bucket holding quantile q (1:
// the highest non-empty bucket).
func (h latencyHist) quantile(q float64) time.Duration {
	n := h.count()
	if n == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= want && c > 0 {
			hi := h.buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = h.buckets[i]
			}
			return time.Duration(hi * float64(time.Second))
		}
	}
	return 0
}
