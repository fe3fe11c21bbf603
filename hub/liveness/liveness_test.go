package liveness

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
)

func TestNext(t *testing.T) {
	s, d := 4*time.Second, 10*time.Second
	sec := func(n float64) time.Duration { return time.Duration(n * float64(time.Second)) }
	const never = -1
	tests := []struct {
		name      string
		from      string
		o         Observed
		want      string
		wantDisco bool
	}{
		{"fresh", state.HostReady, Observed{sec(1), never, never}, state.HostReady, false},
		{"silent", state.HostReady, Observed{sec(5), never, never}, state.HostSuspect, false},
		{"long silent", state.HostReady, Observed{sec(11), never, never}, state.HostDown, false},
		{"back", state.HostSuspect, Observed{sec(1), never, never}, state.HostReady, false},
		{"suspect to down", state.HostSuspect, Observed{sec(10), never, never}, state.HostDown, false},
		{"down stays down", state.HostDown, Observed{sec(5), never, never}, state.HostDown, false},
		{"down comes back", state.HostDown, Observed{sec(1), never, never}, state.HostReady, false},
		{"draining is the admin's", state.HostDraining, Observed{time.Hour, never, never}, state.HostDraining, false},
		{"drained", state.HostDrained, Observed{0, never, never}, state.HostDrained, false},
		// Gossip.
		{"peers confirm dead", state.HostReady, Observed{sec(2.5), sec(3), sec(0.5)}, state.HostDown, false},
		{"peers confirm dead but the hub heard it just now", state.HostReady, Observed{sec(1), never, sec(0.5)}, state.HostReady, false},
		{"peers' dead word is older than their alive word", state.HostReady, Observed{sec(2.5), sec(0.5), sec(3)}, state.HostReady, false},
		{"partition: peers see it", state.HostReady, Observed{sec(5), sec(1), never}, state.HostSuspect, true},
		{"partition, long: down and disconnected", state.HostSuspect, Observed{sec(12), sec(1), never}, state.HostDown, true},
		{"peers' alive word is stale", state.HostReady, Observed{sec(7), sec(6.5), never}, state.HostSuspect, false},
		{"peers' alive word from 3s ago still counts", state.HostReady, Observed{sec(5), sec(3), never}, state.HostSuspect, true},
		{"draining and cut off", state.HostDraining, Observed{sec(5), sec(1), never}, state.HostDraining, true},
		{"reconnected clears the flag", state.HostSuspect, Observed{sec(0.5), sec(0.5), never}, state.HostReady, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Next(tt.from, tt.o, s, d)
			if got.State != tt.want || got.Disconnected != tt.wantDisco {
				t.Errorf("Next(%s, %+v) = %+v, want %s disconnected=%v", tt.from, tt.o, got, tt.want, tt.wantDisco)
			}
		})
	}
}

func TestObserveKeepsTheNewest(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := New(Config{Now: func() time.Time { return now }})
	tr.Observe(Report{Node: "hub-a", AgesMs: map[string]int64{"h1": 500}, CertTTLMs: map[string]int64{"h1": 3600_000}})
	tr.Observe(Report{Node: "hub-b", AgesMs: map[string]int64{"h1": 3000}}) // an older view from another node
	tr.Observe(Report{PeerAliveAgesMs: map[string]int64{"h1": 200}, PeerDeadAgesMs: map[string]int64{"h1": 100}})
	tr.Observe(Report{PeerDeadAgesMs: map[string]int64{"h1": 900}})
	s := tr.hosts["h1"]
	if !s.heartbeat.Equal(now.Add(-500*time.Millisecond)) || s.node != "hub-a" {
		t.Fatalf("heartbeat %v from %q", s.heartbeat, s.node)
	}
	if !s.peerAlive.Equal(now.Add(-200*time.Millisecond)) || !s.peerDead.Equal(now.Add(-100*time.Millisecond)) {
		t.Fatalf("peer views %v / %v", s.peerAlive, s.peerDead)
	}
	info := tr.Info("h1")
	if info.HubNode != "hub-a" || !info.CertNotAfter.Equal(now.Add(time.Hour)) {
		t.Fatalf("info %+v", info)
	}
}

// TestVerdictFromAStaleLookLoses: liveness judges a silent host from a
// snapshot; an admin who drains the host before that verdict commits
// keeps the drain (the verdict says which state it saw, and the FSM
// refuses it), and the tracker does not count the refusal as a failure.
func TestVerdictFromAStaleLookLoses(t *testing.T) {
	st := statetest.New(t)
	st.Pool("p1", "dc1")
	st.Host("h1", "p1", 2, 1024, nil)
	now := time.Now()
	drained := false
	tr := New(Config{SuspectAfter: time.Second, DownAfter: time.Hour, Store: st.Store(), Now: func() time.Time { return now },
		Apply: func(ctx context.Context, msg []byte) (uint64, error) {
			if !drained { // the admin's drain lands between the look and the verdict
				drained = true
				st.Must(state.HostStateType, &state.HostStateRequest{ID: "h1", State: state.HostDraining, From: state.HostReady, Reason: "drained by admin"})
			}
			return st.Apply(ctx, msg)
		}})
	tr.Observe(Report{Node: "n1", AgesMs: map[string]int64{"h1": 5000}})
	tr.evaluate(context.Background())
	h, _ := st.Store().Snapshot().Host(nil, "h1")
	if !drained || h.State != state.HostDraining {
		t.Fatalf("host %s (drain attempted: %v), want the admin's draining kept", h.State, drained)
	}
}

// TestEvaluateCommitsALookTogether: a look that finds many hosts silent
// commits their changes in a few entries (maxChanges each), not one per
// host; hosts still heard from stay ready, and a host gone from the store
// is forgotten.
func TestEvaluateCommitsALookTogether(t *testing.T) {
	st := statetest.New(t)
	st.Pool("p1", "dc1")
	const silent, heard = 2500, 10
	rep := Report{Node: "n1", AgesMs: map[string]int64{"removed": 0}}
	for i := range silent + heard {
		id := fmt.Sprintf("h%04d", i)
		st.Host(id, "p1", 2, 1024, nil)
		rep.AgesMs[id] = 5000
		if i >= silent {
			rep.AgesMs[id] = 100
		}
	}
	now := time.Now()
	applies := 0
	tr := New(Config{SuspectAfter: time.Second, DownAfter: time.Hour, Store: st.Store(), Now: func() time.Time { return now },
		Apply: func(ctx context.Context, msg []byte) (uint64, error) {
			applies++
			return st.Apply(ctx, msg)
		}})
	tr.Observe(rep)
	tr.evaluate(context.Background())
	if want := (silent + maxChanges - 1) / maxChanges; applies != want {
		t.Fatalf("%d Raft entries for %d silent hosts, want %d", applies, silent, want)
	}
	hosts, _ := st.Store().Snapshot().Hosts(nil)
	for i, h := range hosts {
		if want := state.HostSuspect; (i < silent && h.State != want) || (i >= silent && h.State != state.HostReady) {
			t.Fatalf("host %s (%d of %d silent) is %s", h.ID, i, silent, h.State)
		}
	}
	if _, ok := tr.hosts["removed"]; ok {
		t.Fatal("a host not in the store is still tracked")
	}
	applies = 0
	tr.evaluate(context.Background())
	if applies != 0 {
		t.Fatalf("a look with nothing to change made %d entries", applies)
	}
}

// TestEvaluateListsHostsOnlyAfterAWrite: looks reuse the hosts listed
// while the hosts table is unchanged, and a host enrolled since is judged
// at the next look.
func TestEvaluateListsHostsOnlyAfterAWrite(t *testing.T) {
	st := statetest.New(t)
	st.Pool("p1", "dc1")
	st.Host("h1", "p1", 2, 1024, nil)
	now := time.Now()
	tr := New(Config{SuspectAfter: time.Second, DownAfter: time.Hour, Store: st.Store(), Now: func() time.Time { return now },
		Apply: st.Apply})
	tr.Observe(Report{Node: "n1", AgesMs: map[string]int64{"h1": 0}})
	tr.evaluate(context.Background())
	first := tr.listed
	tr.evaluate(context.Background())
	if len(first) != 1 || &tr.listed[0] != &first[0] {
		t.Fatal("a look with the hosts table unchanged listed the hosts again")
	}
	// Enrolled long ago and never heard from: judged at the next look.
	st.Host("h2", "p1", 2, 1024, nil)
	tr.evaluate(context.Background())
	h, _ := st.Store().Snapshot().Host(nil, "h2")
	if h == nil || h.State == state.HostReady {
		t.Fatalf("host h2 enrolled after the last list and never heard from: %+v, want it judged", h)
	}
	if h1, _ := st.Store().Snapshot().Host(nil, "h1"); h1.State != state.HostReady {
		t.Fatalf("host h1, heard from, is %s", h1.State)
	}
}

// BenchmarkEvaluateSteady: one look over 5,000 hosts all heard from, the
// hosts table unchanged since the last look (a fleet of steady agents).
func BenchmarkEvaluateSteady(b *testing.B) {
	st := statetest.New(b)
	st.Pool("p1", "dc1")
	rep := Report{Node: "n1", AgesMs: map[string]int64{}}
	for i := range 5000 {
		id := fmt.Sprintf("h%04d", i)
		st.Host(id, "p1", 2, 1024, nil)
		rep.AgesMs[id] = 100
	}
	now := time.Now()
	tr := New(Config{SuspectAfter: time.Second, DownAfter: time.Hour, Store: st.Store(), Now: func() time.Time { return now }, Apply: st.Apply})
	tr.Observe(rep)
	tr.evaluate(context.Background())
	b.ReportAllocs()
	for b.Loop() {
		tr.evaluate(context.Background())
	}
}
