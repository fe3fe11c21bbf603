package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// countingCache is a client session cache that counts the tickets stored.
type countingCache struct {
	puts atomic.Int32
}

func (c *countingCache) Get(string) (*tls.ClientSessionState, bool) { return nil, false }
func (c *countingCache) Put(string, *tls.ClientSessionState)        { c.puts.Add(1) }

// tlsRig is a gateway served on loopback over a store of its own, and an
// agent CA the test puts in that store when it chooses.
type tlsRig struct {
	ca    *pki.CA
	store *state.Store
	g     *Gateway
	ctx   context.Context
}

// newTLSRig serves a gateway until the test ends, the agent CA in its
// store first when withCA; prepare, when set, sees the gateway before it
// is served.
func newTLSRig(t *testing.T, withCA bool, prepare func(*Gateway)) *tlsRig {
	t.Helper()
	ca, err := pki.NewCA("agents", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	r := &tlsRig{ca: ca, store: store}
	if withCA {
		r.putCA(t)
	}
	if r.g, err = New(Config{Addr: "127.0.0.1:0", Store: store, Cluster: &flakyCluster{st: statetest.New(t)}}); err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(r.g)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.ctx = ctx
	done := make(chan error, 1)
	go func() { done <- r.g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return r
}

// putCA commits the agent CA to the rig's store.
func (r *tlsRig) putCA(t *testing.T) {
	t.Helper()
	b, err := state.Encode(state.AgentCACreateType, &state.AgentCACreateRequest{
		CA: state.AgentCA{CertPEM: r.ca.CertPEM(), KeyPEM: r.ca.KeyPEM(), Fingerprint: r.ca.Fingerprint()}, Time: statetest.T0})
	if err != nil {
		t.Fatal(err)
	}
	if res := state.NewFSM(r.store, nil).Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: b}); res != nil {
		t.Fatal(res)
	}
}

// dial makes a QUIC connection to the gateway, trusting the agent CA.
func (r *tlsRig) dial(ctx context.Context, cache tls.ClientSessionCache) (*quic.Conn, error) {
	return quic.DialAddr(ctx, r.g.udp.LocalAddr().String(), &tls.Config{
		RootCAs: r.ca.Pool(), ServerName: "gateway.wharf.internal", NextProtos: []string{wire.ALPN},
		ClientSessionCache: cache,
	}, nil)
}

// TestHandshakesShareOneConfigAndSendNoTicket: every handshake gets the
// same server config (one CA pool for all connections, not one each), and
// a client that would keep a session ticket is sent none.
func TestHandshakesShareOneConfigAndSendNoTicket(t *testing.T) {
	r := newTLSRig(t, true, nil)
	g, ctx := r.g, r.ctx

	first, err := g.tlsConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !first.SessionTicketsDisabled {
		t.Error("the gateway's config would send session tickets")
	}
	if first.ClientCAs == nil || !first.ClientCAs.Equal(r.ca.Pool()) {
		t.Error("the gateway's config does not verify clients against the agent CA")
	}

	cache := &countingCache{}
	for i := range 2 {
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := r.dial(dctx, cache)
		if err != nil {
			dcancel()
			t.Fatalf("dial %d: %v", i, err)
		}
		// A round trip after the handshake: the gateway answers a stream of
		// an unknown kind with an error. A ticket, had one been sent, went
		// out before that answer.
		st, err := conn.OpenStreamSync(dctx)
		if err != nil {
			dcancel()
			t.Fatal(err)
		}
		if _, err := st.Write([]byte{0xee}); err != nil {
			dcancel()
			t.Fatal(err)
		}
		_, _ = io.ReadAll(st)
		dcancel()
		conn.CloseWithError(0, "")
		again, err := g.tlsConfig(nil)
		if err != nil {
			t.Fatal(err)
		}
		if again != first {
			t.Fatalf("handshake %d got a config of its own", i)
		}
	}
	if n := cache.puts.Load(); n != 0 {
		t.Fatalf("the client was sent %d session tickets", n)
	}
}

// TestHandshakeWaitsForTheCA: a node whose replica has no agent CA yet
// (one that has just started) holds an agent's handshake until the CA
// arrives, instead of refusing it and sending the agent to a longer wait.
func TestHandshakeWaitsForTheCA(t *testing.T) {
	r := newTLSRig(t, false, nil)

	type dialed struct {
		conn *quic.Conn
		err  error
		at   time.Time
	}
	got := make(chan dialed, 1)
	start := time.Now()
	go func() {
		dctx, dcancel := context.WithTimeout(r.ctx, 10*time.Second)
		defer dcancel()
		conn, err := r.dial(dctx, nil)
		got <- dialed{conn, err, time.Now()}
	}()
	select {
	case d := <-got:
		t.Fatalf("the handshake ended before the node had a CA: %v", d.err)
	case <-time.After(300 * time.Millisecond):
	}

	r.putCA(t)
	d := <-got
	if d.err != nil {
		t.Fatalf("handshake after the CA arrived: %v", d.err)
	}
	defer d.conn.CloseWithError(0, "")
	if waited := d.at.Sub(start); waited >= caWait {
		t.Fatalf("the handshake took %s: it did not wake when the CA arrived", waited)
	}
}

// TestBurstOfHandshakesIsNotRefused: quic-go queues 32 connections
// whose handshake is done and refuses the next. Connections handed to
// acceptors already waiting take no place in that queue, so a burst of
// 40, all done while the acceptors are held, is not refused.
func TestBurstOfHandshakesIsNotRefused(t *testing.T) {
	hold := make(chan struct{})
	var held atomic.Int32
	r := newTLSRig(t, true, func(g *Gateway) {
		g.accepted = func() {
			held.Add(1)
			<-hold
		}
	})
	// Released before the rig stops, should the test end early.
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release)

	const burst = 40
	conns := make(chan *quic.Conn, burst)
	errs := make(chan error, burst)
	for range burst {
		go func() {
			dctx, dcancel := context.WithTimeout(r.ctx, 10*time.Second)
			defer dcancel()
			conn, err := r.dial(dctx, nil)
			if err != nil {
				errs <- err
				return
			}
			conns <- conn
		}()
	}
	var open []*quic.Conn
	for range burst {
		select {
		case c := <-conns:
			open = append(open, c)
		case err := <-errs:
			t.Fatalf("dial: %v", err)
		}
	}
	// Every handshake is done; a refused connection is closed by the
	// gateway right after its handshake.
	time.Sleep(300 * time.Millisecond)
	refused := 0
	for _, c := range open {
		select {
		case <-c.Context().Done():
			refused++
			t.Logf("closed: %v", context.Cause(c.Context()))
		default:
		}
	}
	h := held.Load()
	release()
	for _, c := range open {
		c.CloseWithError(0, "")
	}
	if refused > 0 {
		t.Fatalf("%d of %d connections were refused while %d acceptors were busy", refused, burst, h)
	}
}

// heldReads is a cluster whose consistent reads wait until released and
// then answer err.
type heldReads struct {
	*flakyCluster
	release chan struct{}
	err     error
}

func (c *heldReads) ConsistentRead(ctx context.Context) error {
	select {
	case <-c.release:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestHandshakesWaitForACurrentReplica: a node that has just started
// holds handshakes until its first consistent read ends, whether that
// read succeeds or fails (no quorum: they go ahead then).
func TestHandshakesWaitForACurrentReplica(t *testing.T) {
	for _, readErr := range []error{nil, errors.New("no cluster leader")} {
		release := make(chan struct{})
		r := newTLSRig(t, true, func(g *Gateway) {
			g.cfg.Cluster = &heldReads{flakyCluster: g.cfg.Cluster.(*flakyCluster), release: release, err: readErr}
		})
		got := make(chan error, 1)
		go func() {
			dctx, dcancel := context.WithTimeout(r.ctx, 10*time.Second)
			defer dcancel()
			conn, err := r.dial(dctx, nil)
			if err == nil {
				conn.CloseWithError(0, "")
			}
			got <- err
		}()
		select {
		case err := <-got:
			t.Fatalf("read answering %v: the handshake ended before the node's first read did: %v", readErr, err)
		case <-time.After(300 * time.Millisecond):
		}
		close(release)
		if err := <-got; err != nil {
			t.Fatalf("read answering %v: the handshake after it: %v", readErr, err)
		}
	}
}
