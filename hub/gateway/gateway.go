// Package gateway is the QUIC side of agents on a hub node: enrolment with a
// join token and a CSR, then mTLS control connections carrying heartbeats.
// Every hub node runs one; state changes go through the cluster.
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Config configures a gateway.
type Config struct {
	// Addr is the UDP address to listen on.
	Addr string
	// Conn, when set, is the socket to serve on, bound by the caller
	// (which then knows the address before the gateway is built); Addr is
	// then unused. The gateway owns it from New on: it is closed when Run
	// ends or Close is called.
	Conn *net.UDPConn
	// NodeName is this hub node's name, told to agents.
	NodeName string
	// Store is the node's state replica (the agent CA, hosts, tokens).
	Store *state.Store
	// Cluster commits state commands and keeps the replica current.
	// Required.
	Cluster Cluster
	// Logger: nil discards.
	Logger *slog.Logger
	// CertTTL is the lifetime of agent certificates. Zero: 24 h.
	CertTTL time.Duration
	// Peers, when set, lists every hub node's gateway address; agents
	// learn it in Welcome so they can fail over to any node.
	Peers Peers
	// HeartbeatInterval is told to agents. Zero: 1 s.
	HeartbeatInterval time.Duration
	// Now: nil means time.Now.
	Now func() time.Time
	// QuorumWindow is told to agents as the lease granularity: a heartbeat
	// ack renews fenced leases only while this node heard from the Raft
	// leader within it. Zero: acks never renew leases.
	QuorumWindow time.Duration
	// Metrics, when set, receives agents' metrics samples.
	Metrics MetricsSink
	// Logs, when set, takes agents' log batches on their logs streams.
	Logs LogSink
	// Access, when set, receives the routers' per-app counts.
	Access AccessSink
	// Usage, when set, commits the agents' usage reports; each committed
	// report is acknowledged to its agent.
	Usage UsageSink
	// UsageHour is the metered hour told to agents (they sum their usage
	// per hour of this length). Zero: one hour.
	UsageHour time.Duration
	// AppsDomain is the parent of apps' default routes. Empty: "localhost".
	AppsDomain string
	// Registries, when set, opens the tenant's credentials that go with
	// each assigned instance whose image is in a private registry (and
	// marks such images always pulled). Nil: no credentials, no marks.
	Registries RegistryCredentials
	// ResetKey, when set, is the QUIC stateless reset key. Kept across
	// restarts, it lets a restarted node reset the connections it lost so
	// their agents reconnect at once.
	ResetKey *[32]byte
	// Secrets opens apps' sealed secrets for the agents that run their
	// instances (*seal.Keyring). Nil: instances of apps with secrets are
	// sent withheld, and their agents do not start them.
	Secrets SecretOpener
}

// SecretOpener opens a value sealed with the data key.
type SecretOpener interface {
	Open(sealed, ad []byte) ([]byte, error)
}

// Gateway accepts agent connections.
type Gateway struct {
	cfg Config
	log *slog.Logger
	tr  *quic.Transport
	ln  *quic.Listener
	// udp is the socket under tr: quic.Transport leaves a socket it did
	// not create open, so the gateway closes it, or a node restarted in
	// the same process could not bind its port again.
	udp *net.UDPConn

	certMu   sync.Mutex
	parsedCA *pki.CA
	caFP     string // parsedCA's fingerprint
	certFP   string // fingerprint of the CA that issued cert
	cert     *tls.Certificate
	// serverTLS is the config every handshake gets while cert is current:
	// one shared, not one (with its own CA pool) held by each connection.
	serverTLS *tls.Config

	seenMu sync.Mutex
	seen   map[string]*agentConn // host id -> its connection's latest news
	peers  map[string]*peerWord

	routes routeTables
	pushes pushes
	// maxTableFrame is the largest route table sent: the agents' frame
	// limit (a test makes it small).
	maxTableFrame int
	// accepted, when set, is called by an acceptor with each connection
	// before it is served (a test holds the acceptors).
	accepted func()
	// buildRoutes is buildRoutes (a test slows it down).
	buildRoutes func(snap *state.Snapshot, pool, appsDomain string, prev *routeMemo) (*wire.RouteTable, *routeMemo, error)

	gossipMu    sync.Mutex
	gossipLists map[string]*peerList // by pool
	execs       execConns            // the agents' connections, for exec streams

	connections, heartbeats, logBatches atomic.Uint64

	// caughtUp is closed once the node's first consistent read since it
	// started has ended (catchUp): handshakes wait for it.
	caughtUp     chan struct{}
	caughtUpOnce sync.Once
}

// Agents counts the agents heard from within the last 10 s.
func (g *Gateway) Agents() int {
	now := g.cfg.Now()
	g.seenMu.Lock()
	defer g.seenMu.Unlock()
	n := 0
	for _, c := range g.seen {
		if now.Sub(c.heartbeat) < 10*time.Second {
			n++
		}
	}
	return n
}

// agentConn is what the gateway knows of one agent's connection to this node.
type agentConn struct {
	heartbeat    time.Time // last heartbeat received here
	certNotAfter time.Time
	assignAcked  uint64 // assignment version the agent applied
	routeAcked   uint64 // route table version its router serves
	pool         string
}

// peerWord is when pool peers last called a host alive or dead here.
type peerWord struct {
	alive, dead time.Time
}

// New binds the gateway's UDP socket.
func New(cfg Config) (*Gateway, error) {
	if cfg.Store == nil || cfg.Cluster == nil {
		return nil, errors.New("gateway: Store and Cluster are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.CertTTL == 0 {
		cfg.CertTTL = 24 * time.Hour
	}
	if cfg.AppsDomain == "" {
		cfg.AppsDomain = "localhost"
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, seen: map[string]*agentConn{}, peers: map[string]*peerWord{},
		maxTableFrame: wire.DefaultMaxFrame, buildRoutes: buildRoutes, caughtUp: make(chan struct{})}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{wire.ALPN}, GetConfigForClient: g.tlsConfig}
	udp := cfg.Conn
	if udp == nil {
		uaddr, err := net.ResolveUDPAddr("udp", cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("quic address %s: %w", cfg.Addr, err)
		}
		if udp, err = net.ListenUDP("udp", uaddr); err != nil {
			return nil, fmt.Errorf("listen quic %s: %w", cfg.Addr, err)
		}
	}
	g.udp = udp
	// Long connection ids make even a bare heartbeat packet larger than
	// the smallest one quic-go answers with a stateless reset (42 bytes).
	g.tr = &quic.Transport{Conn: udp, StatelessResetKey: (*quic.StatelessResetKey)(cfg.ResetKey), ConnectionIDLength: 16}
	ln, err := g.tr.Listen(tlsConf, &quic.Config{
		Allow0RTT:       false,
		MaxIdleTimeout:  30 * time.Second,
		KeepAlivePeriod: 10 * time.Second,
		// Agents send small messages; modest windows keep the memory of
		// thousands of idle connections down.
		InitialStreamReceiveWindow:     64 << 10,
		InitialConnectionReceiveWindow: 128 << 10,
		MaxIncomingStreams:             16,
		MaxIncomingUniStreams:          -1,
	})
	if err != nil {
		g.closeTransport()
		return nil, fmt.Errorf("listen quic %s: %w", cfg.Addr, err)
	}
	g.ln = ln
	return g, nil
}

// Close releases the socket of a gateway that never ran.
func (g *Gateway) Close() error {
	g.ln.Close()
	return g.closeTransport()
}

// closeTransport closes the QUIC transport and its socket.
func (g *Gateway) closeTransport() error {
	err := g.tr.Close()
	if cerr := g.udp.Close(); err == nil {
		err = cerr
	}
	return err
}

// Addr returns the bound UDP address.
func (g *Gateway) Addr() string { return g.ln.Addr().String() }

// LastSeen returns when this node last received a heartbeat from host.
func (g *Gateway) LastSeen(hostID string) (time.Time, bool) {
	g.seenMu.Lock()
	defer g.seenMu.Unlock()
	c, ok := g.seen[hostID]
	if !ok {
		return time.Time{}, false
	}
	return c.heartbeat, true
}

// Observations is what this node saw of agents, as ages in ms on its clock.
type Observations struct {
	HeartbeatAges map[string]int64 // host id -> since its last heartbeat here
	CertTTLs      map[string]int64 // host id -> until its certificate expires
	PeerAliveAges map[string]int64 // host id -> since a pool peer called it alive
	PeerDeadAges  map[string]int64 // host id -> since a pool peer called it dead
	// RouteCurrent: host id -> whether its router serves the latest table
	// this node made for its pool (hosts whose router never acked are
	// left out).
	RouteCurrent map[string]bool
}

// forgetAfter drops what a gateway remembers of hosts it has not heard of
// for that long.
const forgetAfter = time.Hour

// Observe returns what this node saw of its agents.
func (g *Gateway) Observe() Observations {
	now := g.cfg.Now()
	g.seenMu.Lock()
	defer g.seenMu.Unlock()
	o := Observations{HeartbeatAges: make(map[string]int64, len(g.seen)), CertTTLs: make(map[string]int64, len(g.seen)), RouteCurrent: map[string]bool{}}
	for id, c := range g.seen {
		if now.Sub(c.heartbeat) > forgetAfter {
			delete(g.seen, id)
			continue
		}
		o.HeartbeatAges[id] = now.Sub(c.heartbeat).Milliseconds()
		o.CertTTLs[id] = c.certNotAfter.Sub(now).Milliseconds()
		if c.routeAcked > 0 {
			o.RouteCurrent[id] = c.routeAcked == g.routeVersionCached(c.pool)
		}
	}
	if len(g.peers) > 0 {
		o.PeerAliveAges, o.PeerDeadAges = map[string]int64{}, map[string]int64{}
	}
	for id, w := range g.peers {
		if now.Sub(w.alive) > forgetAfter && now.Sub(w.dead) > forgetAfter {
			delete(g.peers, id)
			continue
		}
		if !w.alive.IsZero() {
			o.PeerAliveAges[id] = now.Sub(w.alive).Milliseconds()
		}
		if !w.dead.IsZero() {
			o.PeerDeadAges[id] = now.Sub(w.dead).Milliseconds()
		}
	}
	return o
}

// ca returns the agent CA from the store, parsed once.
func (g *Gateway) ca() (*pki.CA, error) {
	ca, _, err := g.caWithFingerprint()
	return ca, err
}

// caWithFingerprint returns the agent CA and its fingerprint.
func (g *Gateway) caWithFingerprint() (*pki.CA, string, error) {
	rec, err := g.cfg.Store.Snapshot().AgentCA(nil)
	if err != nil {
		return nil, "", err
	}
	if rec == nil {
		return nil, "", errNoCA
	}
	g.certMu.Lock()
	defer g.certMu.Unlock()
	if g.parsedCA != nil && g.caFP == rec.Fingerprint {
		return g.parsedCA, g.caFP, nil
	}
	ca, err := pki.ParseCA(rec.CertPEM, rec.KeyPEM)
	if err != nil {
		return nil, "", err
	}
	g.parsedCA, g.caFP = ca, ca.Fingerprint()
	return ca, g.caFP, nil
}

// errNoCA: the node's replica holds no agent CA (yet).
var errNoCA = errors.New("the agent CA does not exist yet")

// caWait bounds how long a handshake waits for the agent CA on a node
// whose replica has not caught up yet (one that has just started). A
// handshake refused then would count as a failed attempt and double the
// agent's wait before the next; after a restart most of a fleet would
// come back seconds after the node could serve them.
const caWait = 5 * time.Second

// tlsConfig returns the handshakes' config, built again only when the
// agent CA changes or the gateway's certificate nears its end: the
// gateway presents a certificate from the CA and verifies client
// certificates against it when given (enrolment connections have none).
// A node that has just started first holds every handshake until its
// replica is current (catchUp); one whose replica still has no CA then
// (never bootstrapped, or no quorum) holds it up to caWait more. Each
// waits in its own connection's goroutine: crypto/tls asks from quic-go's
// loop of that connection alone.
func (g *Gateway) tlsConfig(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	ctx := context.Background()
	if hello != nil && hello.Context() != nil {
		ctx = hello.Context()
	}
	select {
	case <-g.caughtUp:
	default:
		if err := g.awaitCaughtUp(ctx); err != nil {
			return nil, err
		}
	}
	ca, fp, err := g.caWithFingerprint()
	if errors.Is(err, errNoCA) {
		ca, fp, err = g.awaitCA(ctx)
	}
	if err != nil {
		return nil, err
	}
	g.certMu.Lock()
	defer g.certMu.Unlock()
	if g.cert == nil || g.certFP != fp || time.Until(g.cert.Leaf.NotAfter) < time.Hour {
		c, err := ca.IssueServer([]string{"gateway.wharf.internal"}, nil, g.cfg.Now(), 7*24*time.Hour)
		if err != nil {
			return nil, err
		}
		g.cert, g.certFP = &c, fp
		g.serverTLS = &tls.Config{
			MinVersion:   tls.VersionTLS13,
			NextProtos:   []string{wire.ALPN},
			Certificates: []tls.Certificate{c},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    ca.Pool(),
			// Agents keep no sessions to resume (a reconnection proves its
			// certificate again), so a ticket would be sealed, sent and
			// buffered by every connection for nothing.
			SessionTicketsDisabled: true,
		}
	}
	return g.serverTLS, nil
}

// catchUpWait bounds the node's first consistent read (catchUp), and so
// how long a handshake waits for it.
const catchUpWait = 15 * time.Second

// catchUp lets handshakes in once this node's replica holds what the
// cluster had committed when the node started: a consistent read, which
// waits for a leader. A node that has just restarted replays its log
// only once it knows the leader or is elected, and a fleet of agents
// come back at once would take the CPU from that replay with their
// handshakes and delay it by seconds, while each of them waits for it
// anyway (agentOf checks a host the replica does not hold yet with the
// same read). Should the read fail (no quorum within the cluster's
// wait), handshakes go ahead: agents of the hosts the replica holds
// connect as they did.
func (g *Gateway) catchUp(ctx context.Context) {
	defer g.caughtUpOnce.Do(func() { close(g.caughtUp) })
	ctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	start := time.Now()
	if err := g.cfg.Cluster.ConsistentRead(ctx); err != nil {
		if ctx.Err() == nil || time.Since(start) >= catchUpWait {
			g.log.Warn("agents let in before this node's replica is known to be current", "err", err, "waited", time.Since(start).Round(time.Millisecond))
		}
		return
	}
	g.log.Debug("replica current; agents let in", "waited", time.Since(start).Round(time.Millisecond))
}

// awaitCaughtUp waits for catchUp, ctx or catchUpWait.
func (g *Gateway) awaitCaughtUp(ctx context.Context) error {
	t := time.NewTimer(catchUpWait)
	defer t.Stop()
	select {
	case <-g.caughtUp:
		return nil
	case <-t.C:
		return nil // catchUp has not run: a gateway not served yet
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitCA waits until the replica holds the agent CA, ctx ends or caWait
// has passed, whichever comes first. It wakes on the CA's table and on a
// restore of the store, so thousands of waiting handshakes cost no reads
// while nothing changes.
func (g *Gateway) awaitCA(ctx context.Context) (*pki.CA, string, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, caWait)
	defer cancel()
	for {
		ws := memdb.NewWatchSet()
		rec, err := g.cfg.Store.Watch(ws).AgentCA(ws)
		if err != nil {
			return nil, "", err
		}
		if rec != nil {
			return g.caWithFingerprint()
		}
		if ws.WatchCtx(ctx) != nil {
			return nil, "", fmt.Errorf("%w (waited %s)", errNoCA, time.Since(start).Round(time.Millisecond))
		}
	}
}

// Run accepts connections until ctx ends.
func (g *Gateway) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer g.closeTransport() //nolint:errcheck
	defer g.ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.catchUp(ctx)
	}()
	errc := make(chan error, acceptors)
	for range acceptors {
		go func() { errc <- g.accept(ctx, &wg) }()
	}
	err := <-errc
	g.ln.Close() // ends the other acceptors
	for range acceptors - 1 {
		<-errc
	}
	return err
}

// acceptors is how many goroutines accept connections at once. quic-go
// queues at most 32 connections whose handshake is done and refuses the
// next (CONNECTION_REFUSED); after a node's restart hundreds finish
// together, while a single accepting goroutine waits its turn behind
// them. A connection handed to a goroutine already waiting takes no
// place in the queue.
const acceptors = 16

// accept serves the connections it accepts until the listener fails or
// ctx ends (nil then).
func (g *Gateway) accept(ctx context.Context, wg *sync.WaitGroup) error {
	for {
		conn, err := g.ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		if g.accepted != nil {
			g.accepted()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.serveConn(ctx, conn)
		}()
	}
}

func (g *Gateway) serveConn(ctx context.Context, conn *quic.Conn) {
	g.connections.Add(1)
	stop := context.AfterFunc(ctx, func() {
		conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeShutdown), "hub node stopping")
	})
	defer stop()
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		go g.serveStream(ctx, conn, st)
	}
}

func (g *Gateway) serveStream(ctx context.Context, conn *quic.Conn, st *quic.Stream) {
	var kind [1]byte
	if _, err := io.ReadFull(st, kind[:]); err != nil {
		st.CancelRead(quic.StreamErrorCode(wire.CodeProtocol))
		return
	}
	s := wire.NewStream(st, 0)
	var err error
	switch wire.StreamKind(kind[0]) {
	case wire.StreamEnroll:
		err = g.enroll(ctx, s)
		st.Close()
		return
	case wire.StreamRenew:
		err = g.renew(conn, s)
		if err == nil {
			st.Close()
			return
		}
	case wire.StreamControl:
		err = g.control(ctx, conn, s)
	case wire.StreamLogs:
		err = g.logs(ctx, conn, s)
	default:
		err = fmt.Errorf("%w: stream kind %d", wire.ErrUnknownMessage, kind[0])
	}
	code := closeCode(err)
	if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
		g.log.Debug("agent stream closed", "remote", conn.RemoteAddr(), "err", err)
		_ = s.Send(&wire.Envelope{Msg: &wire.Envelope_Error{Error: &wire.Error{Code: uint32(code), Message: err.Error()}}})
		conn.CloseWithError(quic.ApplicationErrorCode(code), err.Error())
	}
}

// logs answers one agent's log batches in order, each once it is kept.
func (g *Gateway) logs(ctx context.Context, conn *quic.Conn, s *wire.Stream) error {
	id, err := g.agentOf(conn)
	if err != nil {
		return err
	}
	for {
		env, err := s.Recv()
		if err != nil {
			return err
		}
		b := env.GetLogBatch()
		if b == nil {
			return fmt.Errorf("%w: want LogBatch on the logs stream", wire.ErrUnknownMessage)
		}
		g.logBatches.Add(1)
		ack := &wire.LogAck{Id: b.Id}
		if g.cfg.Logs == nil {
			ack.Error = "this hub node keeps no logs"
		} else if err := g.cfg.Logs.Accept(ctx, id, b); err != nil {
			ack.Error = err.Error()
		}
		if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_LogAck{LogAck: ack}}); err != nil {
			return err
		}
	}
}

// codeError carries the wire code to close with.
type codeError struct {
	code wire.Code
	err  error
}

func (e codeError) Error() string { return e.err.Error() }
func (e codeError) Unwrap() error { return e.err }

// closeCode is the wire code to close a stream or connection with for err.
func closeCode(err error) wire.Code {
	var ce codeError
	if errors.As(err, &ce) {
		return ce.code
	}
	return wire.CodeOf(err)
}

func unauthorized(format string, args ...any) error {
	return codeError{wire.CodeUnauthorized, fmt.Errorf(format, args...)}
}

func newHostID() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "h-" + hex.EncodeToString(b)
}

func (g *Gateway) apply(ctx context.Context, t state.MessageType, req any) error {
	msg, err := state.Encode(t, req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	idx, err := g.cfg.Cluster.Apply(ctx, msg)
	if err != nil {
		return err
	}
	return g.cfg.Store.WaitIndex(ctx, idx)
}

// errCutOff refuses the agents of a cutoff drill's target: they retry
// until the drill ends.
var errCutOff = codeError{wire.CodeUnavailable, errors.New("a drill cuts this host off from the hub; retry later")}

// agentOf returns the identity of a connection's verified agent
// certificate, if its host still exists.
func (g *Gateway) agentOf(conn *quic.Conn) (pki.AgentIdentity, error) {
	chains := conn.ConnectionState().TLS.VerifiedChains
	if len(chains) == 0 {
		return pki.AgentIdentity{}, unauthorized("this stream needs an agent certificate")
	}
	id, err := pki.IdentityFromCert(chains[0][0])
	if err != nil {
		return id, unauthorized("%v", err)
	}
	if g.cfg.Store.Snapshot().CutOff(nil, id.HostID) {
		return id, errCutOff
	}
	if h, _ := g.cfg.Store.Snapshot().Host(nil, id.HostID); h != nil {
		// Known here. A removal this replica has not applied yet is caught
		// at the next connection; the liveness of a removed host no longer
		// matters.
		return id, nil
	}
	// Unknown here: removed, or enrolled after what this replica has
	// applied (a node that just restarted or joined). Only an up-to-date
	// replica may say "removed"; otherwise the agent retries.
	ctx, cancel := context.WithTimeout(conn.Context(), 2*time.Second)
	err = g.cfg.Cluster.ConsistentRead(ctx)
	cancel()
	if err != nil {
		return id, codeError{wire.CodeUnavailable, fmt.Errorf("this hub node cannot check host %s yet: %v", id.HostID, err)}
	}
	if h, _ := g.cfg.Store.Snapshot().Host(nil, id.HostID); h == nil {
		return id, unauthorized("host %s was removed; enrol it again", id.HostID)
	}
	return id, nil
}

// renew issues a fresh certificate, for the same identity, to an agent
// whose current one is still valid.
func (g *Gateway) renew(conn *quic.Conn, s *wire.Stream) error {
	id, err := g.agentOf(conn)
	if err != nil {
		return err
	}
	env, err := s.Recv()
	if err != nil {
		return err
	}
	req := env.GetRenewRequest()
	if req == nil {
		return fmt.Errorf("%w: want RenewRequest", wire.ErrUnknownMessage)
	}
	ca, err := g.ca()
	if err != nil {
		return codeError{wire.CodeInternal, err}
	}
	cert, err := ca.SignAgentCSR(req.CsrDer, id, g.cfg.Now().UTC(), g.cfg.CertTTL)
	if err != nil {
		return codeError{wire.CodeProtocol, err}
	}
	g.log.Debug("agent certificate renewed", "host", id.HostID)
	return s.Send(&wire.Envelope{Msg: &wire.Envelope_RenewResponse{RenewResponse: &wire.RenewResponse{CertPem: cert}}})
}

// control serves an agent's control stream: Hello, then heartbeats.
func (g *Gateway) control(ctx context.Context, conn *quic.Conn, s *wire.Stream) error {
	id, err := g.agentOf(conn)
	if err != nil {
		return err
	}
	env, err := s.Recv()
	if err != nil {
		return err
	}
	hello := env.GetHello()
	if hello == nil {
		return fmt.Errorf("%w: want Hello", wire.ErrUnknownMessage)
	}
	protocol, err := negotiate(hello)
	if err != nil {
		return err
	}
	if hello.HostId != id.HostID {
		return unauthorized("hello names host %s, the certificate %s", hello.HostId, id.HostID)
	}
	defer g.trackConn(id.HostID, conn)()
	welcome := &wire.Welcome{ProtocolVersion: protocol, HubNode: g.cfg.NodeName, HeartbeatIntervalMs: g.cfg.HeartbeatInterval.Milliseconds()}
	if g.cfg.Usage != nil {
		// Also says that this node takes usage reports.
		hour := g.cfg.UsageHour
		if hour <= 0 {
			hour = time.Hour
		}
		welcome.UsageHourSeconds = int64(hour / time.Second)
	}
	if g.cfg.Peers != nil {
		welcome.HubAddrs = g.cfg.Peers.GatewayAddrs()
	}
	// The hub nodes the agent was last told of: heartbeat acks name them
	// again when they change.
	hubAddrs := welcome.HubAddrs
	welcome.GossipKey, welcome.PoolPeers = g.poolGossip(id)
	if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_Welcome{Welcome: welcome}}); err != nil {
		return err
	}
	g.log.Debug("agent connected", "host", id.HostID, "remote", conn.RemoteAddr())
	notAfter := conn.ConnectionState().TLS.VerifiedChains[0][0].NotAfter
	pctx, stopPush := context.WithCancel(ctx)
	defer stopPush()
	push := g.startPush(pctx, s, id, protocol, hello.LastAssignmentVersion, func(err error) {
		g.log.Debug("assignments and routes", "host", id.HostID, "err", err)
		conn.CloseWithError(quic.ApplicationErrorCode(closeCode(err)), err.Error())
	})
	defer push.end()
	// Status reports are committed in order, off the control loop: one
	// report's commit never delays a heartbeat's ack. Their goroutine runs
	// only while reports wait, so the idle hosts of a big fleet hold none.
	reports := &lane[*wire.StatusReport]{limit: 64, run: func(r *wire.StatusReport) { g.reportStatus(ctx, id, r) }}
	usage := make(chan struct{}, maxUsageCommits)
	// Inventories too, newest first: a cluster resends its inventory
	// whenever its capacity changes, and an older one committed after a
	// newer one would undo it. Only the newest waiting one matters.
	inventories := &lane[*wire.Inventory]{limit: 1, newest: true, run: func(in *wire.Inventory) { g.updateInventory(ctx, id, in) }}
	for {
		env, err := s.Recv()
		if err != nil {
			return err
		}
		switch m := env.Msg.(type) {
		case *wire.Envelope_Heartbeat:
			g.heartbeats.Add(1)
			g.seenMu.Lock()
			c := g.seen[id.HostID]
			if c == nil {
				c = &agentConn{}
				g.seen[id.HostID] = c
			}
			c.heartbeat, c.certNotAfter, c.pool = g.cfg.Now(), notAfter, id.Pool
			g.seenMu.Unlock()
			ack := &wire.HeartbeatAck{Seq: m.Heartbeat.Seq, HubUnixMs: g.cfg.Now().UnixMilli(), LeaseMs: g.cfg.QuorumWindow.Milliseconds(),
				QuorumBacked: g.cfg.Cluster.LeaderContact() < g.cfg.QuorumWindow}
			if m.Heartbeat.Seq <= 5 || m.Heartbeat.Seq%10 == 0 {
				if len(welcome.GossipKey) > 0 {
					ack.PoolPeers = g.poolPeers(id)
				}
				if g.cfg.Peers != nil {
					if addrs := g.cfg.Peers.GatewayAddrs(); !sameAddrs(addrs, hubAddrs) {
						ack.HubAddrs, hubAddrs = addrs, addrs
					}
				}
			}
			if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_HeartbeatAck{HeartbeatAck: ack}}); err != nil {
				return err
			}
		case *wire.Envelope_Inventory:
			inventories.push(m.Inventory)
		case *wire.Envelope_GossipReport:
			g.peerReport(id, m.GossipReport)
		case *wire.Envelope_StatusReport:
			if !reports.push(m.StatusReport) {
				return codeError{wire.CodeProtocol, errors.New("instance status reports arrive faster than they can be committed")}
			}
		case *wire.Envelope_AssignmentAck:
			g.acked(id.HostID, m.AssignmentAck.Version)
		case *wire.Envelope_RouteAck:
			g.routeAcked(id.HostID, m.RouteAck.Version)
			if m.RouteAck.WantWhole {
				push.sendWhole()
			}
		case *wire.Envelope_MetricsReport:
			if g.cfg.Metrics != nil {
				g.cfg.Metrics.Report(id, m.MetricsReport)
			}
		case *wire.Envelope_AccessStats:
			if g.cfg.Access != nil {
				g.cfg.Access.Report(id, m.AccessStats)
			}
		case *wire.Envelope_RateSignal:
			if g.cfg.Access != nil {
				g.cfg.Access.Signal(id, m.RateSignal)
			}
		case *wire.Envelope_UsageReport:
			// Off the control loop: the commit waits for a batch. The
			// agent sends one report at a time (and again only after a
			// while without an ack); past a few in flight, one is left
			// unanswered, and the agent sends it again later.
			if g.cfg.Usage == nil {
				continue
			}
			select {
			case usage <- struct{}{}:
				go func(r *wire.UsageReport) {
					defer func() { <-usage }()
					g.commitUsage(pctx, s, id, r)
				}(m.UsageReport)
			default:
			}
		default:
			return fmt.Errorf("%w: %T on the control stream", wire.ErrUnknownMessage, m)
		}
	}
}

// maxUsageCommits bounds the usage reports of one connection being
// committed at once.
const maxUsageCommits = 4

// commitUsage commits an agent's usage report and acknowledges it once
// committed; on failure the agent sends it again later.
func (g *Gateway) commitUsage(ctx context.Context, s *wire.Stream, id pki.AgentIdentity, r *wire.UsageReport) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := g.cfg.Usage.Commit(ctx, id, r); err != nil {
		if ctx.Err() == nil {
			g.log.Debug("usage report not committed (the agent sends it again)", "host", id.HostID, "seq", r.Seq, "err", err)
		}
		return
	}
	_ = s.Send(&wire.Envelope{Msg: &wire.Envelope_UsageAck{UsageAck: &wire.UsageAck{Seq: r.Seq}}})
}

// maxPeerViews bounds how many peers one gossip report may describe.
const maxPeerViews = 1024

// updateInventory commits an agent's inventory when it differs from the
// stored one (off the control loop: first in each connection, and when a
// cluster's capacity changes).
func (g *Gateway) updateInventory(ctx context.Context, id pki.AgentIdentity, in *wire.Inventory) {
	inv := inventoryOf(in)
	h, err := g.cfg.Store.Snapshot().Host(nil, id.HostID)
	if err != nil || h == nil || reflect.DeepEqual(h.Inventory, inv) {
		return
	}
	if err := g.apply(ctx, state.HostInventoryType, &state.HostInventoryRequest{ID: id.HostID, Inventory: inv}); err != nil && ctx.Err() == nil {
		g.log.Warn("host inventory", "host", id.HostID, "err", err)
	}
}

func inventoryOf(in *wire.Inventory) state.Inventory {
	if in == nil {
		return state.Inventory{}
	}
	return state.Inventory{Hostname: in.Hostname, OS: in.Os, Arch: in.Arch, CPUs: int(in.Cpus), MemoryBytes: in.MemoryBytes, DiskBytes: in.DiskBytes,
		Addresses: in.Addresses, Drivers: in.Drivers, Provider: in.Provider, Region: in.Region, Zone: in.Zone, Labels: in.Labels,
		GossipAddr: in.GossipAddr, Advertise: in.Advertise, AgentVersion: in.AgentVersion, Kind: in.Kind, CPUMillis: int(in.CpuMillis)}
}

// sameAddrs tells whether a and b name the same addresses, in any order.
func sameAddrs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[string]bool, len(a))
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}
