package provision

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wharf-platform/wharf/hub/state"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testCluster = "c1"
	testAccount = "aws1"
	testPool    = "web"
)

// harness drives a Provisioner round by round on a fake clock, over a
// fake store and a fake cloud. A restart is a leader change: a new
// Provisioner over the same store and cloud.
type harness struct {
	t      testing.TB
	clock  *fakeClock
	store  *fakeStore
	cloud  *fakeCloud
	cfg    Config
	p      *Provisioner
	ctx    context.Context
	cancel context.CancelFunc
	rounds int
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	clock := newFakeClock()
	store := newFakeStore(clock.Now)
	cloud := newFakeCloud(clock.Now, store, testCluster)
	store.addAccount(testAccount, cloud)
	h := &harness{t: t, clock: clock, store: store, cloud: cloud}
	h.cfg = Config{Store: store, UserData: testUserData, Cluster: testCluster, Now: clock.Now,
		Jitter: func(d time.Duration) time.Duration { return d / 2 }}
	h.restart()
	t.Cleanup(func() { h.stop() })
	return h
}

// restart ends the current term (its calls in flight are cancelled and
// awaited) and starts a new Provisioner.
func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	p, err := New(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.p = p
	h.ctx, h.cancel = context.WithCancel(context.Background())
}

func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		h.p.wg.Wait()
	}
}

// step moves the clock by d, boots what is due, runs one round and waits
// for the calls it started.
func (h *harness) step(d time.Duration) {
	h.clock.Advance(d)
	h.cloud.boot()
	h.p.round(h.ctx)
	h.p.wg.Wait()
	h.rounds++
}

// until steps (d each) until cond holds, at most n steps.
func (h *harness) until(what string, d time.Duration, n int, cond func() bool) {
	h.t.Helper()
	for range n {
		if cond() {
			return
		}
		h.step(d)
	}
	if !cond() {
		h.t.Fatalf("after %d steps of %v: not %s\nmachines: %s\ncloud: %v", n, d, what, h.machines(), h.cloud.live())
	}
}

func (h *harness) machines() string {
	var out []string
	for _, m := range h.store.machineList() {
		out = append(out, fmt.Sprintf("%s:%s(%s,%q)", m.ID, m.State, m.ProviderID, m.Error))
	}
	return fmt.Sprint(out)
}

func (h *harness) ready(n int) func() bool {
	return func() bool { return h.store.inState(state.MachineReady) == n && len(h.store.machineList()) == n }
}

// consistent checks that the cloud and the store agree: every machine of
// the store that may have a cloud machine has exactly one, with its cloud
// id; the cloud has nothing the store does not know; no duplicates.
func (h *harness) consistent() {
	h.t.Helper()
	h.cloud.mu.Lock()
	for _, err := range h.cloud.enrollErrs {
		h.t.Errorf("enrolment refused: %v", err)
	}
	h.cloud.mu.Unlock()
	live := h.cloud.live()
	ms := h.store.machineList()
	known := map[string]bool{}
	for _, m := range ms {
		known[m.ID] = true
		ids := live[m.ID]
		switch m.State {
		case state.MachineFailed:
			if len(ids) != 0 {
				h.t.Errorf("failed machine %s has cloud machines %v", m.ID, ids)
			}
		case state.MachineBooting, state.MachineReady:
			if len(ids) != 1 || ids[0] != m.ProviderID {
				h.t.Errorf("machine %s (%s, cloud id %q): cloud has %v", m.ID, m.State, m.ProviderID, ids)
			}
		default:
			if len(ids) > 1 {
				h.t.Errorf("machine %s: duplicates in the cloud %v", m.ID, ids)
			}
		}
	}
	for id, ids := range live {
		if !known[id] {
			h.t.Errorf("cloud has %v (machine %q) that the store does not know", ids, id)
		}
	}
}

// settled checks that nothing is left in between: every machine ready
// (and the host of each ready machine enrolled), nothing in flight.
func (h *harness) settled(n int) {
	h.t.Helper()
	h.until(fmt.Sprintf("%d ready", n), time.Second, 2000, h.ready(n))
	// A create retried with other parameters than its first attempt would
	// be refused by a cloud with client tokens.
	for _, ev := range h.store.eventsOf("provision.failed") {
		if strings.Contains(ev.Message, "IdempotentParameterMismatch") {
			h.t.Errorf("a retried create differed from its first attempt: %s", ev.Message)
		}
	}
	for _, m := range h.store.machineList() {
		if m.Host == "" || m.ProviderID == "" {
			h.t.Errorf("ready machine %s lacks its host or cloud id: %+v", m.ID, m)
		}
	}
	h.consistent()
}

func (h *harness) hostIDs() []string {
	var out []string
	for _, m := range h.store.machineList() {
		if m.Host != "" {
			out = append(out, m.Host)
		}
	}
	slices.Sort(out)
	return out
}
