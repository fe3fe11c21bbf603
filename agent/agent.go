// Package agent is the Wharf agent's composition root. New constructs
// the parts that live from the start (the identity, the hub addresses,
// the router, the fencing lease); Run enrols if needed (agent/identity),
// then runs what needs the host id (the workload, the pool gossip, the
// local endpoints) and keeps one session with a hub node at a time,
// dispatching its control stream to the features that registered each
// message kind (agent/control). --stop-instances stops a host's
// instances without a hub, before its data dir is wiped.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/driver"
	agentexec "github.com/wharf-platform/wharf/agent/exec"
	"github.com/wharf-platform/wharf/agent/gossip"
	"github.com/wharf-platform/wharf/agent/hubs"
	"github.com/wharf-platform/wharf/agent/identity"
	"github.com/wharf-platform/wharf/agent/inventory"
	"github.com/wharf-platform/wharf/agent/lease"
	"github.com/wharf-platform/wharf/agent/local"
	"github.com/wharf-platform/wharf/agent/routes"
	"github.com/wharf-platform/wharf/agent/run"
	"github.com/wharf-platform/wharf/agent/workload"
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

// ErrEnrollRefused is returned when the hub refuses the join token: the
// agent exits non-zero with the hub's one-line reason.
var ErrEnrollRefused = identity.ErrRefused

// Agent is a running agent. New wires its parts; what the fields below
// "state" hold changes while it runs.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	id     *identity.Keeper
	hubs   *hubs.List // the configured hubs plus those Welcome named
	inv    inventory.Config
	lease  *lease.Lease
	routes *routes.Routes

	// State.
	work        atomic.Pointer[workload.Workload] // nil until enrolled, and without a driver
	gossip      atomic.Pointer[gossip.Pool]       // nil until enrolled
	connected   atomic.Bool
	ackedBefore atomic.Uint64 // acked when the current session was welcomed
	acked       atomic.Uint64 // heartbeats acknowledged, for tests and /healthz
	cut         atomic.Bool   // fault injection: no hub reachable
	hub         atomic.Value  // string: the hub node of the current session
}

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
	id, err := identity.Open(cfg.DataDir, cfg.Name, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if id.Current() == nil && cfg.Token == "" {
		return nil, errors.New("this agent has not enrolled yet: give --token")
	}
	r, err := routes.New(routes.Config{HTTPAddr: cfg.RouterHTTPAddr, HTTPSAddr: cfg.RouterHTTPSAddr, OnRoutes: cfg.OnRoutes, DataDir: cfg.DataDir, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	inv := inventory.Config{DataDir: cfg.DataDir, Drivers: cfg.Drivers, Provider: cfg.Provider, Region: cfg.Region, Zone: cfg.Zone,
		Labels: cfg.Labels, Advertise: cfg.Advertise, Kind: kindOf(cfg.Drivers)}
	return &Agent{cfg: cfg, log: cfg.Logger, id: id, hubs: hubs.Open(cfg.DataDir, cfg.Hubs, cfg.Logger), inv: inv,
		lease: lease.Open(cfg.DataDir), routes: r}, nil
}

// Run enrols if needed, then runs the agent's parts until ctx ends: the
// router (from the start, with an empty table until the hub's first
// push), the local endpoints, the host's instances, the pool gossip and
// the connection to a hub node.
func (a *Agent) Run(ctx context.Context) error {
	defer a.lease.Close()
	return run.All(ctx, run.BestEffort(a.log, "router", a.routes), run.Func(a.runEnrolled))
}

// runEnrolled enrols if needed, then runs what needs the host id.
func (a *Agent) runEnrolled(ctx context.Context) error {
	e := identity.Enrolment{Token: a.cfg.Token, Pool: a.cfg.Pool, MachineID: a.cfg.MachineID, Hubs: a.hubs.All(), Inventory: inventory.Of(a.inv, "")}
	if err := a.id.Enroll(ctx, e); err != nil || ctx.Err() != nil {
		return err
	}
	w, drv, err := a.newWorkload(a.HostID())
	if err != nil {
		return err
	}
	advertise := a.cfg.Advertise
	if addrs := inventory.Addresses(); advertise == "" && len(addrs) > 0 {
		advertise = addrs[0]
	}
	g := gossip.NewPool(gossip.PoolConfig{HostID: a.HostID(), Addr: a.cfg.GossipAddr, Advertise: advertise, Dir: a.cfg.DataDir, Logger: a.log})
	a.gossip.Store(g)
	g.Start(gossip.LoadKey(a.cfg.DataDir), nil)
	rr := []run.Runner{g}
	if a.cfg.LocalAddr != "" {
		rr = append(rr, run.Func(func(ctx context.Context) error { return local.Serve(ctx, a.cfg.LocalAddr, a.status, a.log) }))
	}
	if w != nil {
		a.work.Store(w)
		rr = append(rr, w)
	}
	capacity, _ := drv.(driver.CapacityReporter)
	ctl := a.newControl(w, g, capacity)
	agentexec.New(drv, a.log).Register(ctl)
	rr = append(rr, run.Func(func(ctx context.Context) error { return a.connect(ctx, ctl) }))
	return run.All(ctx, rr...)
}

// newWorkload makes what runs the host's instances, and its driver, once
// the host id is known (drivers label what they run with it); nil without
// a driver.
func (a *Agent) newWorkload(hostID string) (*workload.Workload, driver.Driver, error) {
	if a.cfg.NewDriver == nil {
		return nil, nil, nil
	}
	drv, err := a.cfg.NewDriver(hostID)
	if err != nil {
		return nil, nil, fmt.Errorf("driver: %w", err)
	}
	w, err := workload.New(workload.Config{HostID: hostID, Driver: drv, DataDir: a.cfg.DataDir, Advertise: a.cfg.Advertise,
		DrainDelay: a.cfg.DrainDelay, Lease: a.lease, Metrics: a.cfg.Metrics, MetricsInterval: a.cfg.MetricsInterval,
		LogBufferBytes: a.cfg.LogBufferBytes, Lines: a.routes, Logger: a.log})
	return w, drv, err
}

// newControl registers with the hub sessions what each feature handles
// and sends: the order is that of the first messages of a session. A
// driver whose host is a cluster (capacity non-nil) makes the inventory
// report its capacity.
func (a *Agent) newControl(w *workload.Workload, g *gossip.Pool, capacity driver.CapacityReporter) *control.Control {
	c := control.New()
	a.handleSession(c)
	a.hubs.Register(c)
	g.Register(c)
	registerLease(c, a.lease, a.log)
	inventory.Register(c, a.inv, g, capacity)
	if w != nil {
		w.Register(c)
	}
	a.routes.Register(c)
	return c
}

// Health is what GET /healthz on the agent's local address answers.
type Health = local.Health

// status is what the local endpoints show.
func (a *Agent) status() local.Status {
	s := local.Status{Health: Health{HostID: a.HostID(), Connected: a.connected.Load(), Acked: a.acked.Load(), Hubs: a.Hubs()},
		CertRotations: a.id.Rotations()}
	if s.Connected {
		s.Hub, _ = a.hub.Load().(string)
	}
	if g := a.gossip.Load(); g != nil {
		s.Gossip, s.GossipPeers = g.Addr(), g.Peers()
	}
	if w := a.work.Load(); w != nil {
		st, captured := w.LogStats()
		s.LogsUnacked, s.LogsDropped, s.LogsCaptured = st.Unacked, st.Dropped, captured
	}
	if id := a.id.Current(); id != nil && id.Cert.Leaf != nil {
		s.CertNotAfter = id.Cert.Leaf.NotAfter
	}
	return s
}
