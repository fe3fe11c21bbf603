package provision

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

func TestRestartAtEveryStep(t *testing.T) {
	cases := []struct {
		name string
		// fault is installed once the pool is set; it returns the fault
		// for a call and whether it is the crash point.
		action string
		lose   bool
		shrink bool // the fault is on the way down (min 2 → 1)
	}{
		{name: "before the create call", action: "create"},
		{name: "create answer lost", action: "create", lose: true},
		{name: "before the delete call", action: "delete", shrink: true},
		{name: "delete answer lost", action: "delete", lose: true, shrink: true},
		{name: "list answer lost", action: "list", lose: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			var crashed atomic.Bool // concurrent calls consult the fault
			arm := func() {
				h.cloud.setFault(func(action string) (error, bool) {
					if action != tc.action || !crashed.CompareAndSwap(false, true) {
						return nil, false
					}
					h.cancel() // the leader goes away mid-call
					if tc.lose {
						return nil, true
					}
					return context.Canceled, false
				})
			}
			if !tc.shrink {
				arm()
			}
			h.store.setPool(testPool, testAccount, 2, 3, time.Minute, 10*time.Minute)
			if tc.shrink {
				h.settled(2)
				arm()
				h.store.setPool(testPool, testAccount, 1, 3, time.Minute, 10*time.Minute)
			}
			h.until("the crash", time.Second, 400, func() bool { return crashed.Load() })
			h.restart()
			want := 2
			if tc.shrink {
				want = 1
			}
			h.settled(want)
			if total := len(h.cloud.live()); total != want {
				t.Errorf("cloud holds %d machines, want %d", total, want)
			}
		})
	}
	t.Run("while booting", func(t *testing.T) {
		h := newHarness(t)
		h.store.setPool(testPool, testAccount, 2, 3, time.Minute, 10*time.Minute)
		h.until("booting", time.Second, 10, func() bool { return h.store.inState(state.MachineBooting) == 2 })
		h.restart()
		h.settled(2)
		if n := h.cloud.count("create"); n != 2 {
			t.Errorf("%d creates", n)
		}
	})
	t.Run("while draining and deleting", func(t *testing.T) {
		h := newHarness(t)
		h.store.setPool(testPool, testAccount, 3, 3, time.Minute, 10*time.Minute)
		h.settled(3)
		h.store.setPool(testPool, testAccount, 0, 0, time.Minute, 10*time.Minute)
		for range 30 {
			h.restart()
			h.step(time.Second)
		}
		h.until("no machine", time.Second, 100, func() bool { return len(h.store.machineList()) == 0 })
		h.consistent()
		if n := h.cloud.count("delete"); n != 3 {
			t.Errorf("%d deletes for 3 machines", n)
		}
	})
}

// TestLeaderChangesAndLostAnswers runs a pool's whole life — growth to
// min, a burst of pending instances, a host deleted by an admin, a
// shrink — while leaders change at random rounds and the cloud loses
// answers or the leader dies mid-call; then, faults off, everything must
// settle with the cloud equal to the store.
func TestLeaderChangesAndLostAnswers(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			h := newHarness(t)
			rnd := rand.New(rand.NewPCG(seed, 1))
			var mu sync.Mutex
			h.cloud.setFault(func(action string) (error, bool) {
				mu.Lock()
				defer mu.Unlock()
				switch r := rnd.Float64(); {
				case r < 0.15:
					return nil, true // done, answer lost
				case r < 0.25:
					h.cancel() // the leader dies before the call lands
					return context.Canceled, false
				}
				return nil, false
			})
			chaos := func(steps int) {
				for range steps {
					mu.Lock()
					restart := rnd.Float64() < 0.1
					mu.Unlock()
					if restart || h.ctx.Err() != nil {
						h.restart()
					}
					h.step(time.Second)
				}
			}
			h.store.setPool(testPool, testAccount, 3, 6, 2*time.Minute, 5*time.Minute)
			chaos(120)
			h.store.setPending(testPool, Demand{CPU: 1000, Memory: 512, Count: 10})
			chaos(120)
			h.store.setPending(testPool)
			if hosts := h.hostIDs(); len(hosts) > 0 {
				h.store.deleteHost(hosts[0])
			}
			chaos(60)
			h.store.setPool(testPool, testAccount, 1, 6, 2*time.Minute, 5*time.Minute)
			chaos(300)

			h.cloud.setFault(nil)
			h.restart()
			h.settled(1)
			for range 300 { // past any grace: nothing leaked, nothing else deleted
				h.step(time.Second)
			}
			h.consistent()
			if n := len(h.store.machineList()); n != 1 {
				t.Errorf("%d machines, want 1: %s", n, h.machines())
			}
		})
	}
}
