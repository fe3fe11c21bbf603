package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/registryauth"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// recorder is an agent's end of a control stream that nobody reads: it
// keeps what the hub sends.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Read([]byte) (int, error) { return 0, io.EOF }

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

// envelopes decodes what was sent so far.
func (r *recorder) envelopes(t *testing.T) []*wire.Envelope {
	t.Helper()
	r.mu.Lock()
	b := bytes.Clone(r.buf.Bytes())
	r.mu.Unlock()
	s := wire.NewStream(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(b), io.Discard}, 0)
	var out []*wire.Envelope
	for {
		env, err := s.Recv()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("what the hub sent does not decode: %v", err)
		}
		out = append(out, env)
	}
}

// count returns how many assignment sets and route tables were sent.
func (r *recorder) count(t *testing.T) (sets, tables int) {
	for _, env := range r.envelopes(t) {
		if env.GetAssignments() != nil {
			sets++
		}
		if env.GetRouteTable() != nil {
			tables++
		}
	}
	return sets, tables
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPushHoldsNoGoroutinePerAgent: idle agents cost the node no parked
// goroutine each, and a host's change is pushed to its agent alone.
func TestPushHoldsNoGoroutinePerAgent(t *testing.T) {
	const hosts = 300
	st := statetest.New(t)
	st.Pool("p", "dc1")
	for i := range hosts {
		st.Host(fmt.Sprintf("h%d", i), "p", 2, 1024, nil)
	}
	st.App(apitypes.AppSpec{Name: "web", Image: "web:1"})
	g, err := New(Config{Addr: "127.0.0.1:0", Store: st.Store(), Cluster: &flakyCluster{st: st}, AppsDomain: "apps.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	recs := make([]*recorder, hosts)
	for i := range recs {
		recs[i] = &recorder{}
		end := g.startPush(ctx, wire.NewStream(recs[i], 0), pki.AgentIdentity{HostID: fmt.Sprintf("h%d", i), Pool: "p"}, wire.ProtocolMax, 0,
			func(err error) { t.Errorf("push to h%d failed: %v", i, err) })
		defer end.end()
	}
	waitFor(t, "every agent's first route table", func() bool {
		for _, r := range recs {
			if _, tables := r.count(t); tables != 1 {
				return false
			}
		}
		return true
	})
	// The node's watcher of the log and the pool's route watcher stay;
	// nothing per agent does.
	waitFor(t, "the pushers' goroutines to end", func() bool { return runtime.NumGoroutine() <= base+4 })

	// A placement on h7 writes its host record: its agent alone gets a set.
	st.Must(state.PlanApplyType, &state.PlanApplyRequest{Place: []state.Instance{
		{ID: "w-1", Tenant: "acme", App: "web", Version: 1, Host: "h7", CPU: 100, Memory: 64}}, Time: statetest.T0})
	waitFor(t, "h7's set", func() bool { sets, _ := recs[7].count(t); return sets == 1 })
	// A second change later, so that a stray push to another agent would
	// have had time to go out.
	st.Host("h-late", "p", 2, 1024, nil)
	waitFor(t, "h7's second look", func() bool { return runtime.NumGoroutine() <= base+4 })
	for i, r := range recs {
		if sets, tables := r.count(t); i != 7 && (sets != 0 || tables != 1) {
			t.Errorf("h%d was sent %d sets and %d tables, want none and the first", i, sets, tables)
		}
	}
	if envs := recs[7].envelopes(t); len(envs[len(envs)-1].GetAssignments().GetInstances()) != 1 {
		t.Errorf("h7's set: %v", envs[len(envs)-1])
	}
}

// TestPushFollowsARestore: a replica whose database is replaced (a
// follower installing the leader's snapshot) pushes the restored sets and
// tables; the replaced database's watches never fire again.
func TestPushFollowsARestore(t *testing.T) {
	build := func(instances int) *statetest.State {
		st := statetest.New(t)
		st.Pool("p", "dc1")
		st.Host("h1", "p", 4, 1024, nil)
		st.App(apitypes.AppSpec{Name: "web", Image: "web:1"})
		for i := range instances {
			placeOn(st, fmt.Sprintf("w-%d", i))
		}
		return st
	}
	st, leader := build(1), build(3)
	leader.App(apitypes.AppSpec{Name: "api", Image: "api:1"})
	g, err := New(Config{Addr: "127.0.0.1:0", Store: st.Store(), Cluster: &flakyCluster{st: st}, AppsDomain: "apps.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got, stop := pushTo(t, g, 0)
	defer stop()
	held := expectPushed(t, got, nil, 1, 1)
	st.RestoreFrom(leader)
	expectPushed(t, got, held, 3, 2)
}

// TestPushEndsForACutOffHost: a cutoff drill on the host's pool ends its
// session with the drill's error, on a change of no host record.
func TestPushEndsForACutOffHost(t *testing.T) {
	st, g := onePool(t, 0)
	got, failed, stop := pushToHost(t, g, "h1", 0)
	defer stop()
	// The first table: the session is past its first look.
	for env := range got {
		if env.GetRouteTable() != nil {
			break
		}
	}
	st.Must(state.DrillStartType, &state.DrillStartRequest{ID: "d1", Pool: "p", Mode: state.DrillCutoff, Time: statetest.T0})
	select {
	case err := <-failed:
		if err != errCutOff {
			t.Fatalf("push failed with %v, want the cutoff", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the push went on for a host cut off")
	}
}

// registryUser gives, for any image, the credentials of the first
// registry kept in the state, under its username.
type registryUser struct{}

func (registryUser) ForImage(snap *state.Snapshot, tenant, image string) (*registryauth.Credentials, bool, error) {
	regs, err := snap.Registries(nil)
	if err != nil || len(regs) == 0 {
		return nil, false, err
	}
	return &registryauth.Credentials{Server: regs[0].Server, Username: regs[0].Username, Password: "pw"}, true, nil
}

// TestPushResendsASetWhenRegistriesChange: new credentials for a
// registry re-send the host's set, at the same version, carrying them.
func TestPushResendsASetWhenRegistriesChange(t *testing.T) {
	st := statetest.New(t)
	st.Pool("p", "dc1")
	st.Host("h1", "p", 2, 1024, nil)
	st.App(apitypes.AppSpec{Name: "web", Image: "registry.acme.test/web:1"})
	put := func(user string) {
		st.Must(state.RegistryPutType, &state.RegistryPutRequest{Registry: state.Registry{Tenant: "acme", Server: "registry.acme.test", Username: user, SealedPassword: []byte{1}}, Time: statetest.T0})
	}
	put("ci")
	held := placeOn(st, "w-1")
	g, err := New(Config{Addr: "127.0.0.1:0", Store: st.Store(), Cluster: &flakyCluster{st: st}, AppsDomain: "apps.test", Registries: registryUser{}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got, stop := pushTo(t, g, held) // the agent holds the set, without credentials on disk
	defer stop()
	user := func() string {
		t.Helper()
		for deadline := time.After(10 * time.Second); ; {
			select {
			case env := <-got:
				if a := env.GetAssignments(); a != nil {
					if a.Version != held || len(a.Instances) != 1 {
						t.Fatalf("set %v, want version %d with 1 instance", a, held)
					}
					return a.Instances[0].GetRegistryAuth().GetUsername()
				}
			case <-deadline:
				t.Fatal("no set sent")
			}
		}
	}
	if u := user(); u != "ci" {
		t.Fatalf("first set's credentials are %q's, want ci's", u)
	}
	put("deploy")
	if u := user(); u != "deploy" {
		t.Fatalf("set after the change carries %q's credentials, want deploy's", u)
	}
}
