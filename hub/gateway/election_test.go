package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// flakyCluster answers its first fails applies with err (having applied
// them when lost: a leader that died before it answered), then applies
// through the FSM as a leader would (returning the store's latest index:
// a status of an instance the store does not hold changes nothing).
type flakyCluster struct {
	st    *statetest.State
	fails int
	err   error
	lost  bool
	// readFails is how many consistent reads fail first (no leader).
	readFails int

	mu        sync.Mutex
	calls     int
	committed int
}

func (c *flakyCluster) Apply(ctx context.Context, msg []byte) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls <= c.fails {
		if c.lost {
			c.st.FSM.Apply(&raft.Log{Index: c.st.Store().Snapshot().LatestIndex() + 1, Type: raft.LogCommand, Data: msg})
		}
		return 0, c.err
	}
	c.committed++
	r := c.st.FSM.Apply(&raft.Log{Index: c.st.Store().Snapshot().LatestIndex() + 1, Type: raft.LogCommand, Data: msg})
	if err, ok := r.(*state.Error); ok && err != nil {
		return 0, err
	}
	return c.st.Store().Snapshot().LatestIndex(), nil
}

func (c *flakyCluster) ConsistentRead(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readFails > 0 {
		c.readFails--
		return errors.New("no cluster leader")
	}
	return nil
}

func (c *flakyCluster) LeaderContact() time.Duration { return 0 }

func (c *flakyCluster) count() (calls, committed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, c.committed
}

// TestStatusReportOutlivesAnElection: a status report whose commit finds
// no leader is committed once one answers (the agent sends it only once);
// one the cluster refuses for another reason is not retried.
func TestStatusReportOutlivesAnElection(t *testing.T) {
	noLeader := &state.Error{Kind: state.KindUnavailable, Msg: "no cluster leader"}
	tests := []struct {
		name      string
		fails     int
		err       error
		wantCalls int
	}{
		{"committed at once", 0, nil, 1},
		{"committed after an election", 4, noLeader, 5},
		{"a refusal is not retried", 100, state.Errorf(state.KindInvalid, "bad"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := statetest.New(t)
			c := &flakyCluster{st: st, fails: tt.fails, err: tt.err}
			g := &Gateway{cfg: Config{Store: st.Store(), Cluster: c, Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			g.reportStatus(context.Background(), pki.AgentIdentity{HostID: "h1"},
				&wire.StatusReport{Instances: []*wire.InstanceStatus{{Id: "i1", StateCode: wire.InstanceRunning, Ready: true}}})
			calls, committed := c.count()
			if calls != tt.wantCalls {
				t.Fatalf("%d commits tried, want %d", calls, tt.wantCalls)
			}
			if want := min(max(tt.wantCalls-tt.fails, 0), 1); committed != want {
				t.Fatalf("committed %d times, want %d", committed, want)
			}
		})
	}
}

// TestStatusRetryEndsWithTheConnection: retries stop when the agent's
// connection ends.
func TestStatusRetryEndsWithTheConnection(t *testing.T) {
	st := statetest.New(t)
	c := &flakyCluster{st: st, fails: 1000, err: &state.Error{Kind: state.KindUnavailable, Msg: "no cluster leader"}}
	g := &Gateway{cfg: Config{Store: st.Store(), Cluster: c, Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() {
		g.reportStatus(ctx, pki.AgentIdentity{HostID: "h1"}, &wire.StatusReport{Instances: []*wire.InstanceStatus{{Id: "i1", StateCode: wire.InstanceRunning}}})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("reportStatus retried past its connection's end")
	}
	if n, _ := c.count(); n < 2 {
		t.Fatalf("%d commits tried before the connection ended, want retries", n)
	}
}

// TestEnrolmentOutlivesAnElection: an enrolment whose commit lost its
// answer to a leader's death is found committed, not retried (a
// single-use token would refuse the retry); one that did not commit is
// tried again; a refusal is final.
func TestEnrolmentOutlivesAnElection(t *testing.T) {
	noLeader := &state.Error{Kind: state.KindUnavailable, Msg: "no cluster leader"}
	tests := []struct {
		name       string
		fails      int
		lost       bool
		secretHash string
		wantCalls  int
		wantErr    error
	}{
		{"committed, its answer lost", 1, true, "s", 1, nil},
		{"not committed, tried again", 2, false, "s", 3, nil},
		{"refused", 0, false, "wrong", 1, state.ErrRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := statetest.New(t)
			st.Pool("p1", "dc1")
			c := &flakyCluster{st: st, fails: tt.fails, err: noLeader, lost: tt.lost}
			g := &Gateway{cfg: Config{Store: st.Store(), Cluster: c, Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := g.commitEnrol(context.Background(), &state.HostEnrollRequest{TokenID: "jt-p1", SecretHash: tt.secretHash,
				Host: state.Host{ID: "h-new", Name: "web-1"}, Time: statetest.T0})
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("commitEnrol: %v, want %v", err, tt.wantErr)
			}
			if calls, _ := c.count(); calls != tt.wantCalls {
				t.Fatalf("%d commits tried, want %d", calls, tt.wantCalls)
			}
			h, _ := st.Store().Snapshot().Host(nil, "h-new")
			if (h != nil) != (tt.wantErr == nil) {
				t.Fatalf("host %+v after %v", h, err)
			}
		})
	}
}

// TestEnrolmentRetriedOnAnotherNode: the agent asks another node when the
// one that committed its enrolment died before answering; the same key
// names the same host, so the retry, refused as a used-up single-use
// token, finds the host and gets its certificate.
func TestEnrolmentRetriedOnAnotherNode(t *testing.T) {
	key, _, err := pki.NewAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.CreateCSR(key, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	id := enrolHostID("jt-once", csr)
	st := statetest.New(t)
	st.Pool("p1", "dc1")
	st.Must(state.JoinTokenCreateType, &state.JoinTokenCreateRequest{Token: state.JoinToken{ID: "jt-once", Pool: "p1", SecretHash: "s", MaxUses: 1}, Time: statetest.T0})
	req := &state.HostEnrollRequest{TokenID: "jt-once", SecretHash: "s", Host: state.Host{ID: id, Name: "web-1"}, Time: statetest.T0}
	st.Must(state.HostEnrollType, req) // the first node's commit, whose answer was lost

	// The retry's node first has no leader to bring its replica up to
	// date: the used-up token is no refusal until it can look.
	c := &flakyCluster{st: st, readFails: 2}
	g := &Gateway{cfg: Config{Store: st.Store(), Cluster: c, Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := g.commitEnrol(context.Background(), req); err != nil {
		t.Fatalf("the retry: %v, want the host found", err)
	}
	// Another key with the same token is a different host, and refused.
	other, _, _ := pki.NewAgentKey()
	csr2, _ := pki.CreateCSR(other, "web-2")
	id2 := enrolHostID("jt-once", csr2)
	if id2 == id || enrolHostID("jt-other", csr) == id || enrolHostID("jt-once", csr) != id {
		t.Fatalf("host ids: %s, another key %s; want one per token and key", id, id2)
	}
	err = g.commitEnrol(context.Background(), &state.HostEnrollRequest{TokenID: "jt-once", SecretHash: "s", Host: state.Host{ID: id2, Name: "web-2"}, Time: statetest.T0})
	if !errors.Is(err, state.ErrRefused) {
		t.Fatalf("another key with the used-up token: %v, want refused", err)
	}
}
