// Package agent is the Wharf agent: it enrols with a join token, then keeps
// one QUIC connection to a hub node, sending heartbeats (and, in later
// issues, running assignments, shipping logs and metrics, routing).
package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/lease"
	"github.com/wharf-platform/wharf/agent/router"
	"github.com/wharf-platform/wharf/internal/atomicfile"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Config configures an agent.
type Config struct {
	// Hubs lists hub nodes' gateway (QUIC) addresses. Required.
	Hubs []string
	// Token is the join token; needed only until the agent has enrolled.
	Token string
	// DataDir keeps the agent's identity. Required.
	DataDir string
	// Pool, when set, must be the join token's pool.
	Pool string
	// Name is the host's name in its pool. "" means the hostname.
	Name string
	// Labels are reported in the inventory.
	Labels map[string]string
	// Provider, Region and Zone are reported in the inventory as given.
	Provider, Region, Zone string
	// Drivers lists the drivers this agent can run instances with.
	Drivers []string
	// GossipAddr is where the pool gossip listens. "" runs none.
	GossipAddr string
	// LocalAddr serves /healthz and /metrics. "" serves nothing.
	LocalAddr string
	// NewDriver makes the driver that runs the host's instances, once the
	// host id is known (drivers label what they run with it). Nil: this
	// agent runs none.
	NewDriver func(hostID string) (driver.Driver, error)
	// Advertise is the address other hosts use to reach this host's
	// instances. "" means the host's first address.
	Advertise string
	// Logger: nil discards.
	Logger *slog.Logger
	// OnAck, when set, is told each heartbeat's round trip (benchmarks).
	OnAck func(rtt time.Duration)
	// DrainDelay is how long an instance the hub unassigned keeps running
	// after it was ready, while routers drop it (deregistration delay).
	// Zero: 2 s; negative: none.
	DrainDelay time.Duration
	// Metrics samples the host and the instances (embedded cAdvisor; one
	// per process) every MetricsInterval (zero: 10 s) and sends the
	// samples to the hub. Off in the zero Config (the binary's --metrics
	// defaults to on).
	Metrics         bool
	MetricsInterval time.Duration
	// LogBufferBytes bounds the on-disk buffer of instance output not yet
	// acknowledged by the hub (DataDir/logs). Zero: 256 MiB. When it is
	// full the oldest lines are dropped and the drop is reported.
	LogBufferBytes int64
	// OnRoutes, when set, is told the route table version the router
	// serves each time a table is applied (benchmarks).
	OnRoutes func(version uint64)
	// RouterHTTPAddr and RouterHTTPSAddr are where the router serves the
	// pool's routes ("" serves none); TCP routes listen on the HTTP
	// address's host.
	RouterHTTPAddr, RouterHTTPSAddr string
	// Protocols are the protocol versions the agent offers the hub. Zero:
	// those this build speaks (tests offer others to act as an older or a
	// newer agent).
	Protocols wire.Range
}

// Agent is a running agent. New wires its parts; what the fields below
// "state" hold changes while it runs.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	lease  *lease.Lease
	router *router.Router // nil without router addresses
	access *accessLines   // the router's access lines, on their way to the log buffer

	// State.
	id        atomic.Pointer[identity] // nil until enrolled
	host      atomic.Pointer[host]     // nil until enrolled, and without a driver
	connected atomic.Bool
	acked     atomic.Uint64            // heartbeats acknowledged, for tests and /healthz
	hubs      atomic.Pointer[[]string] // the configured hubs plus those Welcome named
	rotations atomic.Uint64
	gossip    atomic.Pointer[gossip] // nil until the pool's key is known
	cut       atomic.Bool            // fault injection: no hub reachable
	hub       atomic.Value           // string: the hub node of the current session
}

// errCut ends sessions while the agent is cut off from the hub.
var errCut = errors.New("cut off from the hub (fault injection)")

// CutHub cuts this agent off from every hub node (true) or heals the cut,
// while its pool gossip goes on: for tests of partitions, as a network
// namespace would, in one process.
func (a *Agent) CutHub(cut bool) { a.cut.Store(cut) }

// ErrEnrollRefused is returned when the hub refuses the join token: the
// agent exits non-zero with the hub's one-line reason.
var ErrEnrollRefused = errors.New("enrolment refused")

// New checks the config and loads (or, with a token, prepares to make) the
// agent's identity.
func New(cfg Config) (*Agent, error) {
	if len(cfg.Hubs) == 0 {
		return nil, errors.New("--hub is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("--data-dir is required")
	}
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, err
		}
		cfg.Name = h
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	id, err := loadIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if id == nil && cfg.Token == "" {
		return nil, errors.New("this agent has not enrolled yet: give --token")
	}
	access := newAccessLines()
	r, err := newRouter(cfg, access)
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, lease: lease.Open(cfg.DataDir), router: r, access: access}
	a.id.Store(id)
	hubs := append([]string(nil), cfg.Hubs...)
	if b, err := os.ReadFile(filepath.Join(cfg.DataDir, fileHubs)); err == nil {
		hubs = mergeHubs(hubs, strings.Fields(string(b)))
	}
	a.hubs.Store(&hubs)
	return a, nil
}

// HostID returns the agent's host id ("" before enrolment).
func (a *Agent) HostID() string {
	if id := a.id.Load(); id != nil {
		return id.HostID
	}
	return ""
}

// Acked returns how many heartbeats the hub has acknowledged.
func (a *Agent) Acked() uint64 { return a.acked.Load() }

// Run enrols if needed, then runs the agent's parts until ctx ends: the
// router (from the start, with an empty table until the hub's first
// push), the local endpoints, the host's instances, the pool gossip and
// the connection to a hub node.
func (a *Agent) Run(ctx context.Context) error {
	var rr []runner
	if a.router != nil {
		rr = append(rr, bestEffort(a.log, "router", a.router))
	}
	rr = append(rr, runFunc(a.runEnrolled))
	return runAll(ctx, rr...)
}

// runEnrolled enrols if needed, then runs what needs the host id.
func (a *Agent) runEnrolled(ctx context.Context) error {
	if err := a.enrollLoop(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	h, err := a.newHost(a.HostID())
	if err != nil {
		return err
	}
	var rr []runner
	if a.cfg.LocalAddr != "" {
		rr = append(rr, runFunc(a.serveLocal))
	}
	if h != nil {
		a.host.Store(h)
		rr = append(rr, h)
	}
	if key := loadGossipKey(a.cfg.DataDir); key != nil {
		a.ensureGossip(key, nil)
	}
	rr = append(rr, runFunc(a.stopGossip), runFunc(a.connect))
	return runAll(ctx, rr...)
}

// enrollLoop enrols unless the agent has an identity: a refusal ends the
// agent, an unreachable or overloaded hub is retried with backoff.
func (a *Agent) enrollLoop(ctx context.Context) error {
	for wait := time.Second; a.id.Load() == nil; wait = min(wait*2, 30*time.Second) {
		err := a.enroll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil || errors.Is(err, ErrEnrollRefused) {
			return err
		}
		sleep := time.Duration(rand.Int64N(int64(wait)))
		a.log.Warn("enrolment", "err", err, "retry_in", sleep.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(sleep):
		}
	}
	return nil
}

// stopGossip stops the pool gossip when ctx ends.
func (a *Agent) stopGossip(ctx context.Context) error {
	<-ctx.Done()
	if g := a.gossip.Load(); g != nil {
		g.stop()
	}
	return nil
}

// connect stays connected to a hub node until ctx ends, reconnecting with
// jittered exponential backoff; it fails only when retrying cannot help.
func (a *Agent) connect(ctx context.Context) error {
	// Full jitter, starting at 1 s: a hub node that restarts is not met by
	// all its agents at the same instant.
	const firstBackoff = time.Second
	backoff := firstBackoff
	for i := 0; ctx.Err() == nil; i++ {
		hubs := *a.hubs.Load()
		hub := hubs[i%len(hubs)]
		err := a.session(ctx, hub)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errRotated) {
			i-- // same hub, new certificate, at once
			continue
		}
		var ae *quic.ApplicationError
		if errors.As(err, &ae) && wire.Code(ae.ErrorCode) == wire.CodeUnauthorized {
			return fmt.Errorf("hub %s refused this agent: %s", hub, ae.ErrorMessage)
		}
		fatal, hubTooOld := versionRefusal(hub, err)
		if fatal != nil {
			return fatal
		}
		if a.connected.Swap(false) {
			backoff = firstBackoff
		}
		sleep := time.Duration(rand.Int64N(int64(backoff)))
		if hubTooOld != "" {
			a.log.Warn("hub too old for this agent; retrying, as a rolling upgrade of the hub may be under way", "hub", hub, "reason", hubTooOld, "retry_in", sleep.Round(time.Millisecond))
		} else {
			a.log.Warn("hub connection lost", "hub", hub, "err", err, "retry_in", sleep.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(sleep):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	return nil
}

func (a *Agent) dial(ctx context.Context, hub string, fingerprint string, cert *tls.Certificate) (*quic.Conn, error) {
	tc := pki.PinnedTLSConfig(fingerprint, []string{wire.ALPN})
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	// Generous: after a hub restart thousands of agents handshake at once.
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return quic.DialAddr(dctx, hub, tc, &quic.Config{MaxIdleTimeout: 30 * time.Second, KeepAlivePeriod: 10 * time.Second})
}

func openStream(ctx context.Context, conn *quic.Conn, kind wire.StreamKind) (*quic.Stream, error) {
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := st.Write([]byte{byte(kind)}); err != nil {
		return nil, err
	}
	return st, nil
}

// answerTimeout bounds the wait for the hub's answer on a new stream.
const answerTimeout = 15 * time.Second

// exchange opens a stream of kind, sends req and returns the stream and the
// first answer. An Error answer becomes a *quic.ApplicationError.
func exchange(ctx context.Context, conn *quic.Conn, kind wire.StreamKind, req *wire.Envelope) (*wire.Stream, *wire.Envelope, error) {
	st, err := openStream(ctx, conn, kind)
	if err != nil {
		return nil, nil, err
	}
	s := wire.NewStream(st, 0)
	if err := s.Send(req); err != nil {
		return nil, nil, err
	}
	// A hub node that accepted the connection but never answers (overloaded,
	// or without a leader for too long) must not hold the agent forever.
	st.SetReadDeadline(time.Now().Add(answerTimeout))
	env, err := s.Recv()
	if err != nil {
		return nil, nil, err
	}
	st.SetReadDeadline(time.Time{})
	if e := env.GetError(); e != nil {
		return nil, nil, &quic.ApplicationError{ErrorCode: quic.ApplicationErrorCode(e.Code), ErrorMessage: e.Message}
	}
	return s, env, nil
}

// enroll exchanges the join token and a CSR for a certificate.
func (a *Agent) enroll(ctx context.Context) error {
	tok, err := pki.ParseJoinToken(a.cfg.Token)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrEnrollRefused, err)
	}
	key, keyPEM, err := pki.NewAgentKey()
	if err != nil {
		return err
	}
	csr, err := pki.CreateCSR(key, a.cfg.Name)
	if err != nil {
		return err
	}
	var lastErr error
	for _, hub := range *a.hubs.Load() {
		conn, err := a.dial(ctx, hub, tok.CAFingerprint, nil)
		if err != nil {
			if errors.Is(err, pki.ErrCAMismatch) {
				return fmt.Errorf("%w: hub %s: %v", ErrEnrollRefused, hub, err)
			}
			lastErr = err
			continue
		}
		resp, err := a.enrollOn(ctx, conn, tok, csr)
		conn.CloseWithError(0, "")
		if err != nil {
			lastErr = err
			continue
		}
		if resp.Error != nil {
			if wire.Code(resp.Error.Code) != wire.CodeUnauthorized {
				lastErr = fmt.Errorf("hub %s: %s", hub, resp.Error.Message) // not a refusal: retry
				continue
			}
			return fmt.Errorf("%w: %s", ErrEnrollRefused, resp.Error.Message)
		}
		if ca, err := pki.ParseCertPEM(resp.CaPem); err != nil || pki.Fingerprint(ca) != tok.CAFingerprint {
			return fmt.Errorf("%w: the hub sent a CA that is not the pinned one", ErrEnrollRefused)
		}
		if err := saveIdentity(a.cfg.DataDir, resp.HostId, keyPEM, resp.CertPem, resp.CaPem); err != nil {
			return err
		}
		id, err := loadIdentity(a.cfg.DataDir)
		if err != nil {
			return err
		}
		a.id.Store(id)
		a.log.Info("enrolled", "host", resp.HostId, "hub", hub)
		return nil
	}
	return fmt.Errorf("enrol: no hub answered: %w", lastErr)
}

func (a *Agent) enrollOn(ctx context.Context, conn *quic.Conn, tok pki.JoinToken, csr []byte) (*wire.EnrollResponse, error) {
	req := &wire.EnrollRequest{JoinTokenId: tok.ID, JoinTokenSecret: tok.Secret, CsrDer: csr, Name: a.cfg.Name, Pool: a.cfg.Pool, Inventory: a.inventory()}
	_, env, err := exchange(ctx, conn, wire.StreamEnroll, &wire.Envelope{Msg: &wire.Envelope_EnrollRequest{EnrollRequest: req}})
	var ae *quic.ApplicationError
	if errors.As(err, &ae) {
		return &wire.EnrollResponse{Error: &wire.Error{Code: uint32(ae.ErrorCode), Message: ae.ErrorMessage}}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := env.GetEnrollResponse()
	if resp == nil {
		return nil, fmt.Errorf("%w: want EnrollResponse", wire.ErrUnknownMessage)
	}
	return resp, nil
}

// ensureGossip starts the pool gossip with key if it does not run yet,
// and joins peers.
func (a *Agent) ensureGossip(key []byte, peers []string) {
	if a.cfg.GossipAddr == "" || len(key) == 0 {
		return
	}
	g := a.gossip.Load()
	if g == nil {
		var err error
		g, err = startGossip(a.HostID(), a.cfg.GossipAddr, a.cfg.Advertise, key, a.log)
		if err != nil {
			a.log.Warn("pool gossip", "err", err)
			return
		}
		a.gossip.Store(g)
		if err := saveGossipKey(a.cfg.DataDir, key); err != nil {
			a.log.Warn("keep the gossip key", "err", err)
		}
		a.log.Info("pool gossip started", "addr", g.Addr())
	}
	g.join(peers)
}

// GossipAddr returns where the pool gossip listens ("" when it does not).
func (a *Agent) GossipAddr() string {
	if g := a.gossip.Load(); g != nil {
		return g.Addr()
	}
	return ""
}

// gossipReportEvery is how often the gossip view is sent even unchanged,
// so that the hub's evidence of "peers see it alive" stays fresh.
const gossipReportEvery = 2 * time.Second

// session runs one connection: Hello, Welcome, heartbeats.
func (a *Agent) session(ctx context.Context, hub string) error {
	if a.cut.Load() {
		return errCut
	}
	id := a.id.Load()
	conn, err := a.dial(ctx, hub, id.CAFP, &id.Cert)
	if err != nil {
		return err
	}
	defer conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeShutdown), "agent stopping")
	hello := a.hello(id.HostID)
	s, env, err := exchange(ctx, conn, wire.StreamControl, &wire.Envelope{Msg: &wire.Envelope_Hello{Hello: hello}})
	if err != nil {
		return err
	}
	welcome := env.GetWelcome()
	if welcome == nil {
		return fmt.Errorf("%w: want Welcome", wire.ErrUnknownMessage)
	}
	if err := a.checkWelcome(welcome); err != nil {
		return err
	}
	a.connected.Store(true)
	a.learnHubs(welcome.HubAddrs)
	a.ensureGossip(welcome.GossipKey, welcome.PoolPeers)
	if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_Inventory{Inventory: a.inventory()}}); err != nil {
		return err
	}
	var statusCh <-chan struct{}
	h := a.host.Load()
	if h != nil {
		statusCh = h.sup.Changed()
		if r := h.sup.Report(true); len(r.Instances) > 0 {
			if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_StatusReport{StatusReport: r}}); err != nil {
				return err
			}
		}
	}
	a.log.Info("connected", "hub", hub, "node", welcome.HubNode)
	a.hub.Store(hub)
	if h != nil {
		ls := h.logs
		lctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); a.shipLogs(lctx, ls, conn) }()
		defer func() { stop(); <-done }()
	}
	interval := time.Duration(welcome.HeartbeatIntervalMs) * time.Millisecond
	if interval <= 0 {
		interval = time.Second
	}
	errc := make(chan error, 1)
	sent := &sendTimes{at: map[uint64]time.Time{}}
	// A hub node killed without a word (or cut off) leaves the QUIC
	// connection open until its idle timeout; missing acknowledgements
	// tell sooner.
	silentAfter := max(5*interval, 5*time.Second)
	var lastAck atomic.Int64
	lastAck.Store(time.Now().UnixNano())
	go func() {
		for {
			env, err := s.Recv()
			if err != nil {
				errc <- err
				return
			}
			switch m := env.Msg.(type) {
			case *wire.Envelope_HeartbeatAck:
				a.acked.Add(1)
				lastAck.Store(time.Now().UnixNano())
				if g := a.gossip.Load(); g != nil && len(m.HeartbeatAck.PoolPeers) > 0 {
					go g.join(m.HeartbeatAck.PoolPeers)
				}
				t := sent.take(m.HeartbeatAck.Seq)
				if m.HeartbeatAck.QuorumBacked && !t.IsZero() {
					if err := a.lease.Renew(time.Since(t)); err != nil {
						a.log.Warn("lease renewed in memory only", "err", err)
					}
				}
				if a.cfg.OnAck != nil && !t.IsZero() {
					a.cfg.OnAck(time.Since(t))
				}
			case *wire.Envelope_Assignments:
				if h == nil {
					continue
				}
				if err := h.sup.Assign(m.Assignments); err != nil {
					a.log.Warn("keep assignments", "err", err)
					continue
				}
				a.log.Debug("assignments", "version", m.Assignments.Version, "instances", len(m.Assignments.Instances))
				if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_AssignmentAck{AssignmentAck: &wire.AssignmentAck{Version: m.Assignments.Version}}}); err != nil {
					errc <- err
					return
				}
			case *wire.Envelope_RouteTable:
				v := a.applyRoutes(m.RouteTable)
				if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_RouteAck{RouteAck: &wire.RouteAck{Version: v}}}); err != nil {
					errc <- err
					return
				}
			case *wire.Envelope_Error:
				errc <- &quic.ApplicationError{ErrorCode: quic.ApplicationErrorCode(m.Error.Code), ErrorMessage: m.Error.Message}
				return
			}
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	renew := time.NewTimer(time.Until(renewAt(id.Cert.Leaf)))
	defer renew.Stop()
	var lastFull, lastMetrics time.Time
	for seq := uint64(1); ; seq++ {
		if a.cut.Load() {
			return errCut
		}
		now := time.Now()
		if since := now.Sub(time.Unix(0, lastAck.Load())); since > silentAfter {
			return fmt.Errorf("hub node %s silent for %s", hub, since.Round(time.Millisecond))
		}
		sent.put(seq, now)
		hb := &wire.Heartbeat{Seq: seq, SentUnixMs: now.UnixMilli()}
		if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_Heartbeat{Heartbeat: hb}}); err != nil {
			return err
		}
		if m := a.metricsReport(&lastMetrics); m != nil {
			if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_MetricsReport{MetricsReport: m}}); err != nil {
				return err
			}
		}
		if st := a.accessStats(); st != nil {
			if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_AccessStats{AccessStats: st}}); err != nil {
				return err
			}
		}
		if g := a.gossip.Load(); g != nil {
			full := now.Sub(lastFull) >= gossipReportEvery
			if r := g.report(full); r != nil {
				if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_GossipReport{GossipReport: r}}); err != nil {
					return err
				}
			}
			if full {
				lastFull = now
			}
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case err := <-errc:
				return err
			case <-statusCh:
				if r := h.sup.Report(false); len(r.Instances) > 0 {
					if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_StatusReport{StatusReport: r}}); err != nil {
						return err
					}
				}
			case <-renew.C:
				if err := a.renew(ctx, conn); err != nil {
					a.log.Warn("certificate renewal", "err", err)
					renew.Reset(10 * time.Second)
					continue
				}
				return errRotated
			case <-t.C:
				break wait
			}
		}
	}
}

// shipLogs ships logs on conn until ctx ends, opening a new logs stream
// after a refused batch.
func (a *Agent) shipLogs(ctx context.Context, ls *logShipper, conn *quic.Conn) {
	for ctx.Err() == nil {
		err := ls.ship(ctx, conn)
		if ctx.Err() != nil || conn.Context().Err() != nil {
			return
		}
		a.log.Warn("log shipping", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// errRotated ends a session whose certificate was renewed: QUIC has no
// post-handshake client auth, so the agent reconnects with the new one.
var errRotated = errors.New("certificate renewed")

// renewAt is two thirds into a certificate's lifetime (counted from its
// issue, not from its backdated start).
func renewAt(c *x509.Certificate) time.Time {
	issued := c.NotBefore.Add(pki.Backdate)
	return issued.Add(c.NotAfter.Sub(issued) * 2 / 3)
}

// renew asks the hub, over the current mTLS connection, for a certificate
// for a new key, and keeps both on disk.
func (a *Agent) renew(ctx context.Context, conn *quic.Conn) error {
	key, keyPEM, err := pki.NewAgentKey()
	if err != nil {
		return err
	}
	csr, err := pki.CreateCSR(key, a.cfg.Name)
	if err != nil {
		return err
	}
	_, env, err := exchange(ctx, conn, wire.StreamRenew, &wire.Envelope{Msg: &wire.Envelope_RenewRequest{RenewRequest: &wire.RenewRequest{CsrDer: csr}}})
	if err != nil {
		return err
	}
	resp := env.GetRenewResponse()
	if resp == nil {
		return fmt.Errorf("%w: want RenewResponse", wire.ErrUnknownMessage)
	}
	old := a.id.Load()
	if err := saveIdentity(a.cfg.DataDir, old.HostID, keyPEM, resp.CertPem, old.CAPEM); err != nil {
		return err
	}
	id, err := loadIdentity(a.cfg.DataDir)
	if err != nil {
		return err
	}
	a.id.Store(id)
	a.rotations.Add(1)
	a.log.Info("certificate renewed", "until", id.Cert.Leaf.NotAfter)
	return nil
}

// Rotations returns how many times the agent renewed its certificate.
func (a *Agent) Rotations() uint64 { return a.rotations.Load() }

// sendTimes remembers when recent heartbeats were sent (monotonic clock), to
// time their acknowledgements.
type sendTimes struct {
	mu sync.Mutex
	at map[uint64]time.Time
}

func (s *sendTimes) put(seq uint64, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at[seq] = t
	delete(s.at, seq-64) // unacknowledged ones do not pile up
}

func (s *sendTimes) take(seq uint64) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.at[seq]
	delete(s.at, seq)
	return t
}

// fileHubs keeps the hub addresses the agent learnt, for after a restart.
const fileHubs = "hubs"

// Hubs returns the hub addresses the agent knows.
func (a *Agent) Hubs() []string { return append([]string(nil), *a.hubs.Load()...) }

// learnHubs adds the hub nodes a Welcome named and remembers them on disk.
func (a *Agent) learnHubs(addrs []string) {
	old := *a.hubs.Load()
	merged := mergeHubs(old, addrs)
	if len(merged) == len(old) {
		return
	}
	a.hubs.Store(&merged)
	if err := atomicfile.Write(filepath.Join(a.cfg.DataDir, fileHubs), []byte(strings.Join(merged, "\n")+"\n"), 0o600); err != nil {
		a.log.Warn("hub addresses not remembered on disk", "err", err)
	}
}

// mergeHubs appends to a the addresses of b it lacks, keeping a's order.
func mergeHubs(a, b []string) []string {
	out := append([]string(nil), a...)
	seen := map[string]bool{}
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
