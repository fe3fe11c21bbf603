package gateway

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// recorder is a connection's end as the pushers see it: what was sent,
// and the error it was ended with.
type recorder struct {
	mu     sync.Mutex
	sent   []*wire.Envelope
	failed error
}

func (r *recorder) send(e *wire.Envelope) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, e)
	return nil
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = err
}

// counts returns how many assignment sets and route tables were sent,
// the newest assignment set, and the error the connection ended with.
func (r *recorder) counts() (assigns, routes int, last *wire.Assignments, failed error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.sent {
		if a := e.GetAssignments(); a != nil {
			assigns, last = assigns+1, a
		}
		if e.GetRouteTable() != nil {
			routes++
		}
	}
	return assigns, routes, last, r.failed
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOneWatchPushesOnlyToTheAffected: one watch for the whole node
// pushes a host's new assignments to that host's agent only, the route
// table once per change of its content, and cuts off the agent of a
// removed host alone.
func TestOneWatchPushesOnlyToTheAffected(t *testing.T) {
	st := statetest.New(t)
	st.Pool("p1", "dc1")
	st.Host("h1", "p1", 4, 4096, nil)
	st.Host("h2", "p1", 4, 4096, nil)
	st.App(apitypes.AppSpec{Name: "web", Image: "web:1"})
	g := &Gateway{cfg: Config{Store: st.Store(), Cluster: &flakyCluster{st: st}, Now: time.Now, AppsDomain: "localhost"}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.runPushes(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	agents := map[string]*recorder{}
	for _, id := range []string{"h1", "h2"} {
		r := &recorder{}
		agents[id] = r
		defer g.register(&pushConn{id: pki.AgentIdentity{HostID: id, Pool: "p1"}, protocol: wire.Supported().Max, send: r.send, fail: r.fail})()
	}
	// A new connection gets the route table at once; assignments only
	// when it lacks them (a fresh host has none to apply).
	for id, r := range agents {
		waitFor(t, id+"'s route table", func() bool { _, n, _, _ := r.counts(); return n == 1 })
	}

	st.Must(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{{ID: "i-1", Tenant: "acme", App: "web", Version: 1, Host: "h1", CPU: 100, Memory: 64}}, Time: statetest.T0})
	waitFor(t, "h1's assignments", func() bool { n, _, _, _ := agents["h1"].counts(); return n == 1 })
	if _, _, a, _ := agents["h1"].counts(); len(a.Instances) != 1 || a.Instances[0].Id != "i-1" {
		t.Fatalf("h1 was sent %v, want i-1", a)
	}

	st.Must(state.HostDeleteType, &state.HostDeleteRequest{ID: "h1", Time: statetest.T0})
	waitFor(t, "h1 cut off", func() bool { _, _, _, err := agents["h1"].counts(); return err != nil })
	if _, _, _, err := agents["h1"].counts(); closeCode(err) != wire.CodeUnauthorized {
		t.Fatalf("removed h1 ended with %v (code %d), want unauthorized", err, closeCode(err))
	}
	// Give the watch time to push anything it would wrongly push.
	time.Sleep(100 * time.Millisecond)
	a2, r2, _, err2 := agents["h2"].counts()
	if a2 != 0 || err2 != nil {
		t.Fatalf("h2 got %d assignment sets, ended with %v; want none and still connected", a2, err2)
	}
	// The route table changed once: i-1 is not ready, so only the app's
	// routes were there from the start.
	if r2 != 1 {
		t.Fatalf("h2 got %d route tables, want 1 (nothing in it changed)", r2)
	}
}

// TestLatestKeepsOnlyTheNewest: values put while one is being handled
// are replaced by newer ones, handled in order, and no goroutine is left
// when none waits.
func TestLatestKeepsOnlyTheNewest(t *testing.T) {
	var l latest[int]
	started, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var got []int
	do := func(v int) {
		if v == 1 {
			close(started)
			<-release
		}
		mu.Lock()
		got = append(got, v)
		mu.Unlock()
	}
	l.put(1, do)
	<-started
	l.put(2, do)
	l.put(3, do)
	close(release)
	waitFor(t, "the handler to go", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return !l.running
	})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("handled %v, want [1 3]", got)
	}
}
