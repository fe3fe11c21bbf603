package drain

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestDrainStartsAtItsCreation: a drain new on a node forwards the app's
// lines stamped at or after the drain's creation, also those that reached
// the node's store before its runner saw the drain (a busy node applies
// and reconciles late), and none stamped before it.
func TestDrainStartsAtItsCreation(t *testing.T) {
	lokiURL, lines := lokiLines(t)

	created := time.Now().UTC().Truncate(time.Second).Add(-10 * time.Minute)
	ph := statetest.New(t)
	ph.App(apitypes.AppSpec{Name: "web", Image: "i", Instances: new(int)})
	ph.Must(state.LogDrainAddType, &state.LogDrainAddRequest{Drain: state.LogDrain{ID: "d-1", Tenant: "acme", App: "web", URL: "loki+" + lokiURL}, Time: created})
	dir := t.TempDir()
	logs, err := logstore.Open(logstore.Config{Dir: dir + "/logs"})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	var seq uint64
	add := func(at time.Time, line string) {
		seq++
		rec := logstore.Record{Time: at, Tenant: "acme", App: "web", Instance: "i1", Stream: "stdout", Seq: seq, Line: line, Primary: true}
		if _, err := logs.Append([]logstore.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
	add(created.Add(-time.Minute), "before-1")
	add(created.Add(-time.Second), "before-2")
	add(created, "at")
	add(created.Add(time.Second), "after-1")
	add(created.Add(2*time.Second), "after-2")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- NewRunner(RunnerConfig{State: ph.Store(), Lines: logs, Events: noEvents{}, Dir: dir + "/drains"}).Run(ctx)
	}()
	want := []string{"after-1", "after-2", "at"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if len(lines()) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // nothing more comes
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("drainer: %v", err)
	}
	got := lines()
	sort.Strings(got)
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("the drain forwarded %q, want %q", got, want)
	}
}

// TestRunnerFollowsARestore: a drain that reaches a node in a restored
// snapshot (a follower installing the leader's) gets its worker; the
// replaced database's watches never fire again.
func TestRunnerFollowsARestore(t *testing.T) {
	lokiURL, _ := lokiLines(t)
	ph, leader := statetest.New(t), statetest.New(t)
	for _, st := range []*statetest.State{ph, leader} {
		st.App(apitypes.AppSpec{Name: "web", Image: "i", Instances: new(int)})
	}
	leader.Must(state.LogDrainAddType, &state.LogDrainAddRequest{Drain: state.LogDrain{ID: "d-1", Tenant: "acme", App: "web", URL: "loki+" + lokiURL}, Time: statetest.T0})
	dir := t.TempDir()
	logs, err := logstore.Open(logstore.Config{Dir: dir + "/logs"})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := NewRunner(RunnerConfig{State: ph.Store(), Lines: logs, Events: noEvents{}, Dir: dir + "/drains"})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	running := func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.workers["d-1"] != nil
	}
	time.Sleep(50 * time.Millisecond) // the runner waits on the store
	if running() {
		t.Fatal("a worker for a drain the node does not have")
	}
	ph.RestoreFrom(leader)
	for deadline := time.Now().Add(10 * time.Second); !running(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no worker for the restored drain")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runner: %v", err)
	}
}
