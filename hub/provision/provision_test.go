package provision

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/providers"
)

func TestMinHostsReachesReady(t *testing.T) {
	h := newHarness(t)
	h.store.setPool(testPool, testAccount, 3, 5, time.Hour, 10*time.Minute)
	h.settled(3)
	if n := h.cloud.count("create"); n != 3 {
		t.Errorf("%d creates for 3 machines", n)
	}
	// Settled: more rounds change nothing and call the cloud for nothing
	// but the periodic listing.
	before := h.cloud.total() - h.cloud.count("list")
	for range 100 {
		h.step(time.Second)
	}
	if after := h.cloud.total() - h.cloud.count("list"); after != before {
		t.Errorf("a settled pool made %d more calls", after-before)
	}
	h.consistent()
	// Each machine's user data enrolled it with its own token: the hosts
	// are the machines'.
	for _, m := range h.store.machineList() {
		if m.Host != "h-"+m.ID {
			t.Errorf("machine %s has host %q", m.ID, m.Host)
		}
	}
}

func TestLoweringMinDrainsIdleHosts(t *testing.T) {
	h := newHarness(t)
	h.store.setPool(testPool, testAccount, 3, 5, 5*time.Minute, 10*time.Minute)
	h.settled(3)
	hosts := h.hostIDs()
	busy := hosts[1]
	h.store.setAlloc(busy, 500, 256)
	h.store.setAlloc(hosts[0], 500, 256) // busy, then idle from now on
	h.store.setAlloc(hosts[0], 0, 0)
	h.store.setPool(testPool, testAccount, 1, 5, 5*time.Minute, 10*time.Minute)

	// hosts[2] has been idle since it enrolled, hosts[0] only from now:
	// within scale_down_after nothing is drained.
	for range 4 * 60 {
		h.step(time.Second)
	}
	if n := len(h.store.machineList()); n != 3 || h.store.inState(state.MachineDraining) != 0 {
		t.Fatalf("drained before scale_down_after: %s", h.machines())
	}
	h.until("one machine left", time.Second, 600, func() bool { return len(h.store.machineList()) == 1 })
	left := h.store.machineList()[0]
	if left.Host != busy || left.State != state.MachineReady {
		t.Errorf("kept %+v, want the busy host %s", left, busy)
	}
	if n := h.cloud.count("delete"); n != 2 {
		t.Errorf("%d deletes, want 2", n)
	}
	for range 30 {
		h.step(time.Second)
	}
	if n := len(h.store.machineList()); n != 1 {
		t.Errorf("%d machines after settling, want 1 (min_hosts 1, the busy one)", n)
	}
	h.consistent()
}

func TestPendingGrowsOneDecisionPerBurstUpToMax(t *testing.T) {
	h := newHarness(t)
	h.store.setPool(testPool, testAccount, 0, 5, time.Hour, 10*time.Minute)
	// 10 instances of 1 core on 4-core machines: 3 machines, decided once
	// however many rounds the burst stays pending while they boot.
	h.store.setPending(testPool, Demand{CPU: 1000, Memory: 512, Count: 10})
	h.until("3 machines", time.Second, 10, func() bool { return len(h.store.machineList()) == 3 })
	h.settled(3)
	if n := len(h.store.eventsOf("provision.scale")); n != 1 {
		t.Errorf("%d scale decisions for one burst, want 1", n)
	}
	// Ready but not yet used by the scheduler: the free capacity covers
	// the burst, nothing more is added.
	for range 20 {
		h.step(time.Second)
	}
	if n := len(h.store.machineList()); n != 3 {
		t.Fatalf("%d machines for a burst that fits in free capacity", n)
	}
	// The scheduler places them: 10 cores of 12 are used.
	for i, host := range h.hostIDs() {
		h.store.setAlloc(host, []int{4000, 4000, 2000}[i], 2048)
	}
	h.store.setPending(testPool)
	h.step(time.Second)
	// A second burst of 20: 2 fit in the free cores, 18 would need 5 more
	// machines; max_hosts 5 allows 2.
	h.store.setPending(testPool, Demand{CPU: 1000, Memory: 512, Count: 20})
	for range 200 {
		h.step(time.Second)
	}
	if n := len(h.store.machineList()); n != 5 {
		t.Fatalf("%d machines, want max_hosts 5: %s", n, h.machines())
	}
	if n := len(h.store.eventsOf("provision.scale")); n != 2 {
		t.Errorf("%d scale decisions for two bursts, want 2", n)
	}
	if n := h.cloud.count("create"); n != 5 {
		t.Errorf("%d creates, want 5", n)
	}
	if n := h.cloud.count("shape"); n != 1 {
		t.Errorf("%d shape calls, want 1 (cached per template)", n)
	}
	h.consistent()
}

func TestPendingWithoutShape(t *testing.T) {
	h := newHarness(t)
	h.cloud.shapeOK = false
	h.store.setPool(testPool, testAccount, 0, 5, time.Hour, 10*time.Minute)
	h.store.setPending(testPool, Demand{CPU: 1000, Memory: 512, Count: 10})
	// No shape and no host to learn one from: one machine at a time.
	h.until("a machine", time.Second, 5, func() bool { return h.store.inState(state.MachineBooting) == 1 })
	for range 20 { // it boots in 30 s
		h.step(time.Second)
	}
	if n := h.cloud.count("create"); n != 1 || len(h.store.machineList()) != 1 {
		t.Fatalf("%d creates, want 1 at a time without a shape", n)
	}
	// Now the pool's host tells the shape (4 cores): 10 cores need 2 more
	// beyond the free 4.
	h.until("3 machines", time.Second, 10, func() bool { return len(h.store.machineList()) == 3 })
	for range 100 {
		h.step(time.Second)
	}
	if n := len(h.store.machineList()); n != 3 {
		t.Errorf("%d machines, want 3", n)
	}
}

func TestBootTimeoutReplaces(t *testing.T) {
	h := newHarness(t)
	h.store.setPool(testPool, testAccount, 1, 1, time.Hour, 2*time.Minute)
	h.until("a machine", time.Second, 5, func() bool { return len(h.store.machineList()) == 1 })
	first := h.store.machineList()[0].ID
	h.cloud.noBoot[first] = true
	h.until("the first machine gone", time.Second, 200, func() bool {
		for _, m := range h.store.machineList() {
			if m.ID == first {
				return false
			}
		}
		return true
	})
	if h.clock.Now().Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) < 2*time.Minute {
		t.Errorf("replaced before boot_timeout")
	}
	h.settled(1)
	if got := h.store.machineList()[0].ID; got == first {
		t.Errorf("not replaced")
	}
	if c, d := h.cloud.count("create"), h.cloud.count("delete"); c != 2 || d != 1 {
		t.Errorf("%d creates, %d deletes; want 2 and 1", c, d)
	}
	if evs := h.store.eventsOf("provision.failed"); len(evs) != 1 || !strings.Contains(evs[0].Message, "did not enroll within 2m0s") {
		t.Errorf("events %+v, want one telling the boot timeout", evs)
	}
}

func TestUnknownMachinesDeletedAfterGrace(t *testing.T) {
	h := newHarness(t)
	h.cfg.OrphanGrace = 5 * time.Minute
	h.cfg.ListEvery = 10 * time.Second
	h.restart()
	h.store.setPool(testPool, testAccount, 1, 1, time.Hour, time.Hour)
	ghost := h.cloud.inject("ghost-1")
	// The pool's machine: its create reached the cloud but every answer
	// is lost, so the state never learns its cloud id from a create.
	h.cloud.setFault(func(action string) (error, bool) { return nil, action == "create" })
	h.until("a creating machine", time.Second, 5, func() bool { return h.store.inState(state.MachineCreating) == 1 })
	m := h.store.machineList()[0]
	for range 4 * 60 {
		h.step(time.Second)
	}
	if live := h.cloud.live(); len(live["ghost-1"]) != 1 {
		t.Fatalf("the unknown machine was deleted before its grace: %v", live)
	}
	// Every create fails (its answer is lost), so the account backs off
	// up to BackoffMax: the unknown machine goes in the first window
	// after its grace.
	for range 4 * 60 {
		h.step(time.Second)
	}
	live := h.cloud.live()
	if len(live["ghost-1"]) != 0 {
		t.Errorf("unknown machine %s not deleted after the grace", ghost)
	}
	if len(live[m.ID]) != 1 {
		t.Errorf("the creating machine's cloud machine was collected: %v", live)
	}
	if got := h.store.machineList()[0]; got.ProviderID != live[m.ID][0] {
		t.Errorf("the listing did not give the machine its cloud id: %+v", got)
	}
	if n := len(h.store.eventsOf("provision.orphan")); n != 1 {
		t.Errorf("%d orphan events, want 1", n)
	}
	h.cloud.setFault(nil)
	h.settled(1)
}

func TestThrottlingBacksOff(t *testing.T) {
	h := newHarness(t)
	throttled := &providers.Error{Kind: providers.KindThrottled, Code: "RequestLimitExceeded", Message: "Request limit exceeded."}
	h.cloud.setFault(func(string) (error, bool) { return throttled, false })
	h.store.setPool(testPool, testAccount, 3, 5, time.Hour, 10*time.Minute)
	for range 600 { // 60 s in 100 ms rounds
		h.step(100 * time.Millisecond)
	}
	// Backoff 1, 2, 4, 8, 16, 32 s: about 7 waves of at most 4 calls (3
	// creates, 1 list), where a hot loop would make thousands.
	if n := h.cloud.total(); n > 32 {
		t.Errorf("%d cloud calls in 60 s of throttling", n)
	}
	if n := len(h.store.eventsOf("provision.failed")); n > 2 {
		t.Errorf("%d failure events for one throttling, want one per subject", n)
	}
	for _, m := range h.store.machineList() {
		if m.State != state.MachineCreating || !strings.Contains(m.Error, "RequestLimitExceeded") {
			t.Errorf("throttled machine %+v: want creating with the cloud's error", m)
		}
	}
	h.cloud.setFault(nil)
	h.settled(3)
	for _, m := range h.store.machineList() {
		if m.Error != "" {
			t.Errorf("ready machine keeps error %q", m.Error)
		}
	}
}

func TestBadCredentialsFailOnce(t *testing.T) {
	h := newHarness(t)
	bad := &providers.Error{Kind: providers.KindBadCredentials, Code: "AuthFailure", Message: "AWS was not able to validate the provided access credentials"}
	h.cloud.setFault(func(string) (error, bool) { return bad, false })
	h.store.setPool(testPool, testAccount, 3, 5, time.Hour, 10*time.Minute)
	h.until("3 failed", time.Second, 10, func() bool { return h.store.inState(state.MachineFailed) == 3 })
	calls := h.cloud.total()
	for range 5 * 60 {
		h.step(time.Second)
	}
	if n := h.cloud.total(); n != calls || n > 4 {
		t.Errorf("%d calls, then %d more while the credentials are bad", calls, n-calls)
	}
	if evs := h.store.eventsOf("provision.failed"); len(evs) != 1 || !strings.Contains(evs[0].Message, "AuthFailure") {
		t.Errorf("events %+v, want one with the cloud's error", evs)
	}
	for _, m := range h.store.machineList() {
		if m.State != state.MachineFailed || !strings.Contains(m.Error, "AuthFailure") {
			t.Errorf("machine %+v: want failed with the cloud's error", m)
		}
	}
	// New credentials: the failed machines are replaced.
	h.cloud.setFault(nil)
	h.store.touchAccount(testAccount)
	h.settled(3)
}

func TestQuotaPausesGrowthUntilPoolChanges(t *testing.T) {
	h := newHarness(t)
	quota := &providers.Error{Kind: providers.KindQuota, Code: "VcpuLimitExceeded", Message: "You have requested more vCPU capacity than your current vCPU limit"}
	h.store.setPool(testPool, testAccount, 1, 5, time.Hour, 10*time.Minute)
	h.settled(1)
	h.cloud.setFault(func(a string) (error, bool) {
		if a == "create" {
			return quota, false
		}
		return nil, false
	})
	h.store.setPool(testPool, testAccount, 3, 5, time.Hour, 10*time.Minute)
	h.until("2 failed", time.Second, 10, func() bool { return h.store.inState(state.MachineFailed) == 2 })
	for range 5 * 60 {
		h.step(time.Second)
	}
	if n := h.cloud.count("create"); n != 3 {
		t.Errorf("%d creates, want 1 + 2 refused, then a pause", n)
	}
	// After FailurePause, one more try: refused again, paused again.
	for range 6 * 60 {
		h.step(time.Second)
	}
	if n := h.cloud.count("create"); n != 5 {
		t.Errorf("%d creates after the long backoff, want 5", n)
	}
	if n := len(h.store.eventsOf("provision.failed")); n != 1 {
		t.Errorf("%d failure events for one quota error, want 1", n)
	}
	// The admin lowers min_hosts: the failed machines go with the shrink.
	h.store.setPool(testPool, testAccount, 1, 5, time.Hour, 10*time.Minute)
	h.settled(1)
}

func TestDeleteHostDrainsThenDeletes(t *testing.T) {
	h := newHarness(t)
	h.store.setPool(testPool, testAccount, 2, 3, time.Hour, 10*time.Minute)
	h.settled(2)
	host := h.hostIDs()[0]
	h.store.setAlloc(host, 1000, 512)
	var gone state.Machine
	for _, m := range h.store.machineList() {
		if m.Host == host {
			gone = m
		}
	}
	h.store.deleteHost(host)
	for range 10 {
		h.step(time.Second)
	}
	h.store.mu.Lock()
	hs := h.store.hosts[host].State
	h.store.mu.Unlock()
	if hs != state.HostDraining || len(h.cloud.live()[gone.ID]) != 1 {
		t.Fatalf("host %s, cloud %v: want draining, its machine kept while instances run", hs, h.cloud.live())
	}
	h.store.setAlloc(host, 0, 0) // the planner moved its instances
	h.until("the machine gone", time.Second, 30, func() bool {
		for _, m := range h.store.machineList() {
			if m.ID == gone.ID {
				return false
			}
		}
		return true
	})
	h.store.mu.Lock()
	_, hostLeft := h.store.hosts[host]
	h.store.mu.Unlock()
	if hostLeft || len(h.cloud.live()[gone.ID]) != 0 {
		t.Errorf("host left %v, cloud %v", hostLeft, h.cloud.live())
	}
	h.settled(2) // min_hosts brings a new one
}

func TestMachinesFor(t *testing.T) {
	gib := int64(1) << 30
	shape := providers.Resources{CPUMillis: 4000, MemoryBytes: 8 * gib}
	free := func(cpu int64, mem int64) providers.Resources {
		return providers.Resources{CPUMillis: cpu, MemoryBytes: mem * gib}
	}
	cases := []struct {
		name    string
		pending []Demand
		free    []providers.Resources
		coming  int
		known   bool
		want    int
	}{
		{"nothing pending", nil, nil, 0, true, 0},
		{"10 cores on 4-core machines", []Demand{{CPU: 1000, Memory: 512, Count: 10}}, nil, 0, true, 3},
		{"memory bound", []Demand{{CPU: 100, Memory: 4096, Count: 5}}, nil, 0, true, 3},
		{"free capacity first", []Demand{{CPU: 1000, Memory: 512, Count: 10}}, []providers.Resources{free(4000, 8)}, 0, true, 2},
		{"machines on their way count", []Demand{{CPU: 1000, Memory: 512, Count: 10}}, nil, 3, true, 0},
		{"fragmented free capacity", []Demand{{CPU: 2000, Memory: 512, Count: 1}}, []providers.Resources{free(1000, 8), free(1000, 8)}, 0, true, 1},
		{"too large for the template", []Demand{{CPU: 8000, Memory: 512, Count: 3}}, nil, 0, true, 0},
		{"mixed sizes pack largest first", []Demand{{CPU: 1000, Memory: 512, Count: 4}, {CPU: 3000, Memory: 512, Count: 4}}, nil, 0, true, 4},
		{"no shape: one", []Demand{{CPU: 1000, Memory: 512, Count: 10}}, nil, 0, false, 1},
		{"no shape, one coming: wait", []Demand{{CPU: 1000, Memory: 512, Count: 10}}, nil, 1, false, 0},
		{"no shape, fits in free", []Demand{{CPU: 1000, Memory: 512, Count: 2}}, []providers.Resources{free(4000, 8)}, 0, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := machinesFor(tc.pending, tc.free, tc.coming, shape, tc.known); got != tc.want {
				t.Errorf("machinesFor = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRunWakesAndStops(t *testing.T) {
	clock := newFakeClock()
	store := newFakeStore(clock.Now)
	cloud := newFakeCloud(clock.Now, store, testCluster)
	cloud.bootDelay = 0
	store.addAccount(testAccount, cloud)
	reg := prometheus.NewRegistry()
	metrics := NewMetrics()
	metrics.Register(reg)
	p, err := New(Config{Store: store, UserData: testUserData, Cluster: testCluster, Now: clock.Now,
		Tick: time.Hour, Metrics: metrics}) // only Wake moves it
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	store.setPool(testPool, testAccount, 2, 2, time.Hour, time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for store.inState(state.MachineReady) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", store.machineList())
		}
		cloud.boot()
		p.Wake()
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	p.round(context.Background()) // the gauge is set by a round that reads the ready machines
	p.wg.Wait()
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.Counter != nil:
				got[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				got[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		"wharf_provision_cloud_calls_total,action=create,outcome=ok,provider=" + testAccount: 2,
		"wharf_provision_machines,state=ready":                                               2,
		"wharf_provision_machines,state=failed":                                              0,
		"wharf_provision_create_to_ready_seconds":                                            2,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v (have %v)", key, got[key], want, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	store := newFakeStore(time.Now)
	ok := Config{Store: store, UserData: testUserData, Cluster: "c"}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"complete", func(*Config) {}, ""},
		{"no store", func(c *Config) { c.Store = nil }, "no store"},
		{"no user data", func(c *Config) { c.UserData = nil }, "user data"},
		{"no cluster", func(c *Config) { c.Cluster = "" }, "cluster"},
		{"negative", func(c *Config) { c.OrphanGrace = -time.Second }, "negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			_, err := New(c)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("New: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCallsBoundedAndOnePerMachine(t *testing.T) {
	store := newFakeStore(time.Now)
	cloud := newFakeCloud(time.Now, store, testCluster)
	cloud.bootDelay, cloud.latency = 0, 10*time.Millisecond
	store.addAccount(testAccount, cloud)
	p, err := New(Config{Store: store, UserData: testUserData, Cluster: testCluster, Parallel: 4, Tick: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	store.changed = p.Wake
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	store.setPool(testPool, testAccount, 20, 20, time.Hour, time.Hour)
	deadline := time.Now().Add(20 * time.Second)
	for store.inState(state.MachineReady) != 20 && time.Now().Before(deadline) {
		cloud.boot()
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	cloud.mu.Lock()
	defer cloud.mu.Unlock()
	if store.inState(state.MachineReady) != 20 {
		t.Fatalf("not ready: %d", store.inState(state.MachineReady))
	}
	if cloud.maxInCall > 4 || cloud.maxPerMachine != 1 {
		t.Errorf("peak %d calls in flight (Parallel 4), %d creates at once for one machine", cloud.maxInCall, cloud.maxPerMachine)
	}
	if cloud.calls["create"] != 20 {
		t.Errorf("%d creates for 20 machines", cloud.calls["create"])
	}
}

func TestHungCallEndsAtItsTimeout(t *testing.T) {
	h := newHarness(t)
	h.cfg.CreateTimeout, h.cfg.CallTimeout = 50*time.Millisecond, 50*time.Millisecond
	h.restart()
	h.cloud.mu.Lock()
	h.cloud.hang = true
	h.cloud.mu.Unlock()
	h.store.setPool(testPool, testAccount, 1, 1, time.Hour, time.Hour)
	start := time.Now()
	h.until("a timed out create", time.Second, 20, func() bool {
		ms := h.store.machineList()
		return len(ms) == 1 && strings.Contains(ms[0].Error, "deadline exceeded")
	})
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v", el)
	}
	h.cloud.mu.Lock()
	h.cloud.hang = false
	h.cloud.mu.Unlock()
	h.settled(1)
}

func TestShrinkBelowMax(t *testing.T) {
	h := newHarness(t)
	h.store.setPool(testPool, testAccount, 3, 3, time.Hour, 10*time.Minute)
	h.settled(3)
	hosts := h.hostIDs()
	h.store.setAlloc(hosts[0], 3000, 1024)
	h.store.setAlloc(hosts[1], 1000, 1024)
	// max_hosts 1: the idle host and the least loaded go, their
	// instances drained first; the busiest stays.
	h.store.setPool(testPool, testAccount, 0, 1, time.Hour, 10*time.Minute)
	h.step(time.Second)
	h.store.setAlloc(hosts[1], 0, 0) // the planner moved its instances
	h.until("one machine", time.Second, 60, func() bool { return len(h.store.machineList()) == 1 })
	if left := h.store.machineList()[0]; left.Host != hosts[0] {
		t.Errorf("kept %s, want the busiest %s", left.Host, hosts[0])
	}
	h.consistent()
}

func TestDeletedPoolLosesItsMachines(t *testing.T) {
	h := newHarness(t)
	h.store.setPool(testPool, testAccount, 2, 2, time.Hour, 10*time.Minute)
	h.settled(2)
	h.store.mu.Lock()
	delete(h.store.pools, testPool)
	h.store.mu.Unlock()
	h.until("no machine", time.Second, 60, func() bool { return len(h.store.machineList()) == 0 })
	h.consistent()
}

func TestPoolWithoutProvisionCreatesNothing(t *testing.T) {
	h := newHarness(t)
	h.store.setPool(testPool, testAccount, 2, 2, time.Hour, 10*time.Minute)
	h.until("2 creating", time.Second, 3, func() bool { return h.store.inState(state.MachineCreating) == 2 })
	h.store.mu.Lock()
	h.store.pools[testPool].Provision = nil
	h.store.mu.Unlock()
	h.until("no machine", time.Second, 60, func() bool { return len(h.store.machineList()) == 0 })
	h.consistent()
	if n := h.cloud.count("create"); n != 0 {
		t.Errorf("%d creates for a pool that no longer provisions", n)
	}
}

func TestMachineTerminatedOutsideIsReplaced(t *testing.T) {
	h := newHarness(t)
	h.store.setPool(testPool, testAccount, 2, 2, time.Hour, 10*time.Minute)
	h.settled(2)
	victim := h.store.machineList()[0]
	h.cloud.mu.Lock()
	h.cloud.vms[victim.ProviderID].m.State = providers.StateGone
	h.cloud.mu.Unlock()
	h.until("the victim replaced", time.Second, 200, func() bool {
		for _, m := range h.store.machineList() {
			if m.ID == victim.ID {
				return false
			}
		}
		return true
	})
	h.settled(2)
	// One the listing no longer shows is replaced once its host is down
	// too, not before.
	victim = h.store.machineList()[0]
	h.cloud.mu.Lock()
	delete(h.cloud.vms, victim.ProviderID)
	h.cloud.mu.Unlock()
	for range 600 {
		h.step(time.Second)
	}
	if n := h.cloud.count("create"); n != 3 {
		t.Fatalf("%d creates, want 2 + 1 replacement while the host is up", n)
	}
	h.store.mu.Lock()
	h.store.hosts[victim.Host].State = state.HostDown
	h.store.mu.Unlock()
	h.until("the second victim replaced", time.Second, 200, func() bool { return h.cloud.count("create") == 4 })
	h.settled(2)
}

// TestProviderPanicFailsTheCallNotTheHub: a provider (or its SDK) that
// panics on an answer it did not expect fails that call with a retryable
// error on the machine; the loop goes on and the pool settles once the
// cloud behaves.
func TestProviderPanicFailsTheCallNotTheHub(t *testing.T) {
	h := newHarness(t)
	h.cloud.setFault(func(action string) (error, bool) {
		if action == "create" {
			panic("no task info")
		}
		return nil, false
	})
	h.store.setPool(testPool, testAccount, 2, 3, time.Hour, 10*time.Minute)
	for range 20 {
		h.step(100 * time.Millisecond)
	}
	ms := h.store.machineList()
	if len(ms) == 0 {
		t.Fatal("no machine")
	}
	for _, m := range ms {
		if m.State != state.MachineCreating || !strings.Contains(m.Error, "the provider failed: no task info") {
			t.Errorf("machine %+v: want creating with the panic as its error", m)
		}
	}
	h.cloud.setFault(nil)
	h.settled(2)
}
