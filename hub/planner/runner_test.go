package planner

import (
	"context"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestRunnerFollowsARestore: a restore (an operator's, or a snapshot
// installed before the node took office) replaces the store's database,
// whose watches never fire again; the planner waiting on them plans
// the restored state at once, not at its idle timeout.
func TestRunnerFollowsARestore(t *testing.T) {
	build := func() *statetest.State {
		st := statetest.New(t)
		st.Pool("p", "dc1")
		st.Host("h1", "p", 4, 1024, nil)
		return st
	}
	st, from := build(), build()
	from.App(apitypes.AppSpec{Name: "web", Image: "web:1", Instances: n(2)})

	m := NewMetrics()
	r := New(Config{State: st.Store(), Plans: st, Metrics: m})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }() //nolint:errcheck // ends with ctx
	defer func() { cancel(); <-done }()
	// The first round finds nothing to do; the planner then waits.
	for deadline := time.Now().Add(5 * time.Second); m.rounds.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no first round")
		}
	}

	st.RestoreFrom(from)
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		is, err := st.Store().Snapshot().AppInstances(nil, "acme", "web")
		if err != nil {
			t.Fatal(err)
		}
		if len(is) == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 instances placed 2 s after the restore (planner rounds: %d)", len(is), m.rounds.Load())
		}
	}
}
