package billing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wharf-platform/wharf/hub/state"
)

// fsmCommit commits into a real FSM, as Raft would on every node; fail
// makes the next commits fail, before or after the entry is applied (a
// timeout whose entry commits anyway).
type fsmCommit struct {
	t     testing.TB
	fsm   *state.FSM
	mu    sync.Mutex
	index uint64
	// failBefore and failAfter count the next commits that fail without
	// applying, and that apply but still fail.
	failBefore, failAfter int
	applied               map[state.MessageType]int
}

var errTimeout = errors.New("timed out waiting for the leader")

func newFSMCommit(t testing.TB) *fsmCommit {
	s, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	return &fsmCommit{t: t, fsm: state.NewFSM(s, nil), applied: map[state.MessageType]int{}}
}

func (c *fsmCommit) Snapshot() *state.Snapshot { return c.fsm.Store().Snapshot() }

func (c *fsmCommit) Apply(_ context.Context, msg []byte) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failBefore > 0 {
		c.failBefore--
		return 0, errTimeout
	}
	c.index++
	c.applied[state.MessageType(msg[0])]++
	if r := c.fsm.Apply(&raft.Log{Index: c.index, Type: raft.LogCommand, Data: msg}); r != nil {
		return c.index, r.(error)
	}
	if c.failAfter > 0 {
		c.failAfter--
		return 0, errTimeout
	}
	return c.index, nil
}

func (c *fsmCommit) must(t state.MessageType, req any) {
	c.t.Helper()
	msg, err := state.Encode(t, req)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.Apply(context.Background(), msg); err != nil {
		c.t.Fatalf("apply %d: %v", t, err)
	}
}

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// running makes tenant acme with app web and one instance (500
// millicores, 256 MB) reported running at at.
func (c *fsmCommit) running(at time.Time) {
	c.must(state.TenantCreateType, &state.TenantCreateRequest{Tenant: state.Tenant{Name: "acme"}, Time: at})
	c.must(state.PoolCreateType, &state.PoolCreateRequest{Pool: state.Pool{Name: "p", Datacenter: "dc1"}, Time: at})
	c.must(state.AppUpsertType, &state.AppUpsertRequest{Tenant: "acme", Spec: state.AppSpec{Name: "web", Image: "web:1", CPU: 500, Memory: 256}, Create: true, Time: at})
	c.must(state.AgentCACreateType, &state.AgentCACreateRequest{CA: state.AgentCA{CertPEM: []byte("c"), KeyPEM: []byte("k"), Fingerprint: "f"}, Time: at})
	c.must(state.JoinTokenCreateType, &state.JoinTokenCreateRequest{Token: state.JoinToken{ID: "jt", Pool: "p", SecretHash: "s"}, Time: at})
	c.must(state.HostEnrollType, &state.HostEnrollRequest{TokenID: "jt", SecretHash: "s", Host: state.Host{ID: "h1", Name: "h1", Inventory: state.Inventory{CPUs: 4, MemoryBytes: 8 << 30}}, Time: at})
	c.must(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: "i1", Tenant: "acme", App: "web", Version: 1, Host: "h1", CPU: 500, Memory: 256}}, Time: at})
	c.must(state.InstanceUpdateType, &state.InstanceUpdateRequest{Host: "h1", Updates: []state.InstanceUpdate{{ID: "i1", State: state.InstanceRunning}}, Time: at})
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunnerCatchesUp: a leader that comes back after five hours closes
// them in order, each once, even when commits time out (applied or not)
// and when a second leader runs the same loop; the open hour is computed
// on read, not final.
func TestRunnerCatchesUp(t *testing.T) {
	c := newFSMCommit(t)
	start := t0.Add(20*time.Minute + 300*time.Millisecond)
	c.running(start) // counts from 00:20:00
	clk := &clock{t: start}
	c.failBefore, c.failAfter = 2, 2
	newMeter := func() *Meter {
		m, err := NewMeter(MeterConfig{State: c, Commit: c, Now: clk.Now, Grace: time.Minute, Metrics: NewMetrics()})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := newMeter()
	clk.Set(t0.Add(5*time.Hour + 30*time.Minute)) // five hours to close, 00:00 to 05:00
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range []*Meter{m, newMeter()} { // two leaders at once: the worst case
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx) }()
	}
	waitFor(t, "five closed hours", func() bool {
		ct, _ := m.ClosedThrough()
		return ct.Equal(t0.Add(5 * time.Hour))
	})
	time.Sleep(100 * time.Millisecond) // would a sixth close early?
	cancel()
	wg.Wait()
	if ct, _ := m.ClosedThrough(); !ct.Equal(t0.Add(5 * time.Hour)) {
		t.Fatalf("closed through %s, want 05:00 (the hour of 05:00 ends at 06:00)", ct)
	}
	us, err := m.Usage(context.Background(), "acme", t0, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for h := range 6 {
		secs := int64(3600)
		switch h {
		case 0:
			secs = 40 * 60
		case 5:
			secs = 30 * 60
		}
		want = append(want, fmt.Sprintf("%02d:00 %d %d %d %v", h, secs, secs*500, secs*256, h < 5))
	}
	var got []string
	for _, u := range us {
		got = append(got, fmt.Sprintf("%s %d %d %d %v", u.From.Format("15:04"), u.InstanceSeconds, u.CPUMilliSeconds, u.MemoryMBSeconds, u.Final))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("usage:\n got %v\nwant %v", got, want)
	}
}

// TestCounterCommitsOnce: counts are committed once each, though commits
// fail before and after applying and the node restarts.
func TestCounterCommitsOnce(t *testing.T) {
	c := newFSMCommit(t)
	c.running(t0)
	clk := &clock{t: t0.Add(time.Minute)}
	newCounter := func() *Counter {
		k, err := NewCounter(CounterConfig{Node: "hub0", State: c, Commit: c, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k := newCounter()
	ctx := context.Background()
	var want int64
	for round := range 20 {
		k.Add("acme", "web", clk.Now(), 10, 1000, 5)
		want += 10
		switch round % 4 {
		case 1:
			c.failBefore = 1
		case 2:
			c.failAfter = 1
		}
		if round == 10 { // a restart once everything is committed
			for try := 0; k.Pending() > 0; try++ {
				if err := k.Flush(ctx); err != nil && try > 5 {
					t.Fatal(err)
				}
			}
			k = newCounter()
			continue
		}
		_ = k.Flush(ctx) // a failure keeps the batch
	}
	for try := 0; k.Pending() > 0; try++ {
		if err := k.Flush(ctx); err != nil && try > 3 {
			t.Fatal(err)
		}
	}
	m, err := NewMeter(MeterConfig{State: c, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	us, err := m.Usage(ctx, "acme", t0, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 1 || us[0].Requests != want || us[0].EgressBytes != want*100 || us[0].LogBytes != want/2 {
		t.Fatalf("usage %+v, want %d requests, %d egress bytes, %d log bytes", us, want, want*100, want/2)
	}
}

func TestMeterConfig(t *testing.T) {
	c := newFSMCommit(t)
	for _, tc := range []struct {
		name string
		cfg  MeterConfig
	}{
		{"no state", MeterConfig{}},
		{"hour not whole seconds", MeterConfig{State: c, Hour: 1500 * time.Millisecond}},
	} {
		if _, err := NewMeter(tc.cfg); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if _, err := NewCounter(CounterConfig{State: c, Commit: c}); err == nil {
		t.Error("a counter without a node name was accepted")
	}
	m, err := NewMeter(MeterConfig{State: c})
	if err != nil {
		t.Fatal(err)
	}
	if m.Hour() != time.Hour {
		t.Fatalf("default hour %s", m.Hour())
	}
	if _, err := m.Usage(context.Background(), "", t0.Add(time.Hour), t0); err == nil {
		t.Fatal("from after to was accepted")
	}
}
