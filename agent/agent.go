// Package agent is the Wharf agent's composition root: New wires the
// features (the driver and supervisor, the router, log capture and
// shipping, metrics, the pool gossip, the local endpoints) and Run runs
// them. The agent enrols with a join token, then keeps one QUIC
// connection to a hub node, whose control stream it dispatches to the
// features that registered for each message kind.
package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/gossip"
	"github.com/wharf-platform/wharf/agent/lease"
	"github.com/wharf-platform/wharf/agent/router"
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
	// MachineID is the provisioned machine this host runs on, as its
	// install said; the hub checks it against the join token's machine.
	// "" for hosts enrolled by hand.
	MachineID string
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
	gossip    atomic.Pointer[gossip.Member] // nil until the pool's key is known
	cut       atomic.Bool                   // fault injection: no hub reachable
	hub       atomic.Value                  // string: the hub node of the current session
}

// CutHub cuts this agent off from every hub node (true) or heals the cut,
// while its pool gossip goes on: for tests of partitions, as a network
// namespace would, in one process.
func (a *Agent) CutHub(cut bool) { a.cut.Store(cut) }

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
	if key := gossip.LoadKey(a.cfg.DataDir); key != nil {
		a.ensureGossip(key, nil)
	}
	ctl := a.newControl(h)
	rr = append(rr, runFunc(a.stopGossip), runFunc(func(ctx context.Context) error { return a.connect(ctx, ctl) }))
	return runAll(ctx, rr...)
}

// newControl registers with the hub sessions what each feature handles
// and sends: the order is that of the first messages of a session.
func (a *Agent) newControl(h *host) *control {
	c := newControl()
	a.handleSession(c)
	a.registerHubs(c)
	a.registerGossip(c)
	registerLease(c, a.lease, a.log)
	a.registerInventory(c)
	if h != nil {
		h.register(c, a.log)
		if h.metrics != nil {
			registerMetrics(c, h.metrics)
		}
	}
	registerRoutes(c, a.router, a.cfg.OnRoutes, a.log)
	return c
}
