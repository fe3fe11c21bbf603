// Package hub is the composition root of a hub node: it wires the state
// store and FSM, the Raft/gossip cluster and the HTTP API together, and runs
// them. Nothing else in the hub constructs those parts.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wharf-platform/wharf/hub/api"
	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/gateway"
	"github.com/wharf-platform/wharf/hub/liveness"
	"github.com/wharf-platform/wharf/hub/logs"
	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/hub/planner"
	"github.com/wharf-platform/wharf/hub/series"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/traffic"
	"github.com/wharf-platform/wharf/installer"
)

// Hub is one running hub node.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	store   *state.Store
	cluster *cluster.Cluster
	api     *api.Server
	gateway *gateway.Gateway
	// liveness decides host states while this node leads.
	liveness *liveness.Tracker
	httpLn   net.Listener
	httpSrv  *http.Server
	running  chan struct{} // closed when Run starts: the node is wired
	// traffic sums the routers' access counts while this node leads;
	// relay holds those of this node's agents until sent to the leader.
	traffic traffic.Store
	relay   trafficRelay
	series  *series.Store // instances' and hosts' metrics while this node leads
	// logs keeps the lines this node's agents shipped and the copies
	// other nodes replicated here.
	logs      *logstore.Store
	logSvc    *logs.Service
	logCounts logs.Counts
	events    eventLog
	plans     *planner.Metrics
	drains    *drainer
	alerts    atomic.Pointer[alerting] // while this node leads
}

// Run starts a hub node and runs it until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	h, err := New(cfg)
	if err != nil {
		return err
	}
	return h.Run(ctx)
}

// New builds a hub node and binds its listeners (so addresses with port 0
// are resolved when it returns); Run starts serving.
func New(cfg Config) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	id, err := nodeID(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("node id: %w", err)
	}
	if cfg.NodeName == "" {
		cfg.NodeName = defaultNodeName(id)
	}
	key, err := clusterKey(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("node", cfg.NodeName)

	store, err := state.NewStore()
	if err != nil {
		return nil, err
	}
	fsm := state.NewFSM(store, log.With("component", "fsm"))

	// Everything bound or opened so far is released if New fails.
	var closers []func() error
	ok := false
	defer func() {
		if !ok {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen http %s: %w", cfg.HTTPAddr, err)
	}
	closers = append(closers, httpLn.Close)
	// The gateway's socket is bound first: gossip tells the other nodes
	// its address, and the gateway needs the cluster.
	udp, err := listenUDP(cfg.QUICAddr)
	if err != nil {
		return nil, err
	}
	closers = append(closers, udp.Close)
	resetKey, err := quicResetKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	logStore, err := logstore.Open(logstore.Config{Dir: filepath.Join(cfg.DataDir, "logs"), Default: cfg.LogRetention, Logger: log.With("component", "logstore"),
		TenantLimits: logs.TenantRetention(store)})
	if err != nil {
		return nil, fmt.Errorf("log store: %w", err)
	}
	closers = append(closers, logStore.Close)

	h := &Hub{cfg: cfg, log: log, store: store, httpLn: httpLn, running: make(chan struct{}), series: series.NewStore(0), plans: planner.NewMetrics(), logs: logStore}
	ccfg := cluster.DefaultConfig()
	ccfg.NodeID = id
	ccfg.NodeName = cfg.NodeName
	ccfg.Datacenter = cfg.Datacenter
	ccfg.DataDir = cfg.DataDir
	ccfg.BootstrapExpect = cfg.BootstrapExpect
	ccfg.Join = cfg.Join
	ccfg.Key = key
	ccfg.RaftAddr = cfg.RaftAddr
	ccfg.GossipAddr = cfg.GossipAddr
	ccfg.Advertise = cfg.Advertise
	ccfg.HTTPAddr = advertisedAddr(cfg.Advertise, httpLn.Addr().String())
	ccfg.Extra = map[string]string{metaQUIC: advertisedAddr(cfg.Advertise, udp.LocalAddr().String())}
	ccfg.FSM = fsm
	ccfg.Logger = log.With("component", "cluster")
	ccfg.OnLeader = h.leaderDuties
	if t := cfg.Tuning; t != nil {
		tune(&ccfg, t)
	}
	cl, err := cluster.New(ccfg)
	if err != nil {
		return nil, err
	}
	closers = append(closers, cl.Shutdown)
	h.cluster = cl
	h.events = eventLog{apply: cl, log: log.With("component", "events")}

	h.liveness = liveness.New(liveness.Config{
		SuspectAfter: cfg.SuspectAfter,
		DownAfter:    cfg.DownAfter,
		Store:        store,
		Apply:        cl.Apply,
		Logger:       log.With("component", "liveness"),
	})
	h.logSvc = logs.New(logs.Config{State: store, Store: logStore, Peers: cl, Events: h.events, Counts: &h.logCounts, Logger: log.With("component", "logs")})
	h.drains = newDrainer(h)
	err = cl.Handle(append(h.logSvc.Handlers(),
		cluster.Raw(rpcLiveness, h.liveness.Handler()),
		cluster.Raw(rpcHostInfo, h.liveness.InfoHandler()),
		cluster.Raw(rpcTraffic, h.trafficHandler()),
		cluster.Raw(rpcTrafficQuery, h.trafficQueryHandler()),
		cluster.Raw(rpcMetrics, h.metricsHandler()),
		cluster.Raw(rpcMetricsQuery, h.metricsQueryHandler()),
		cluster.Raw(rpcAlertsFiring, h.alertsFiringHandler()),
		// Writes forwarded by followers, answered by this node's API when it
		// leads (the API is built last, hence the indirection).
		cluster.Raw(rpcAPI, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-h.running:
				h.api.Handler().ServeHTTP(w, r)
			case <-r.Context().Done():
			}
		})),
	)...)
	if err != nil {
		return nil, err
	}

	gw, err := gateway.New(gateway.Config{
		Conn:           udp,
		ResetKey:       resetKey,
		NodeName:       cfg.NodeName,
		Store:          store,
		Apply:          cl.Apply,
		Logger:         log.With("component", "gateway"),
		CertTTL:        agentCertTTL(cfg.Tuning),
		HubAddrs:       func() []string { return h.gatewayAddrs("") },
		ConsistentRead: cl.ConsistentRead,
		AppsDomain:     cfg.AppsDomain,
		AccessStats:    h.accessStats,
		MetricsReport:  h.metricsReport,
		Logs:           h.logSvc,
		QuorumBacked:   func() bool { return cl.LeaderContact() < QuorumWindow },
		QuorumWindow:   QuorumWindow,
	})
	if err != nil {
		return nil, err
	}
	closers = append(closers, gw.Close)
	h.gateway = gw

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), instanceCollector{h.series})
	h.logCounts.Register(reg, logStore)
	h.registerInternals(reg)
	srv, err := api.New(api.Config{
		Store:        store,
		Cluster:      cl,
		Logger:       log.With("component", "api"),
		Registry:     reg,
		NodeName:     cfg.NodeName,
		AppsDomain:   cfg.AppsDomain,
		Forward:      func(w http.ResponseWriter, r *http.Request) bool { return cl.ProxyToLeader(w, r, rpcAPI) },
		HostConn:     h.hostConn,
		Traffic:      h.appTraffic,
		Metrics:      h.metrics,
		Logs:         h.logSvc,
		FiringAlerts: h.firingAlerts,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	inst := installer.Handler(h.gatewayAddrs)
	mux.Handle("GET /install.sh", inst)
	mux.Handle("GET /download/", inst)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", srv.Handler())

	h.api = srv
	h.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	ok = true
	return h, nil
}

// listenUDP binds the agent gateway's socket.
func listenUDP(addr string) (*net.UDPConn, error) {
	uaddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("quic address %s: %w", addr, err)
	}
	udp, err := net.ListenUDP("udp", uaddr)
	if err != nil {
		return nil, fmt.Errorf("listen quic %s: %w", addr, err)
	}
	return udp, nil
}

func tune(c *cluster.Config, t *Tuning) {
	if t.HeartbeatTimeout > 0 {
		c.HeartbeatTimeout = t.HeartbeatTimeout
	}
	if t.ElectionTimeout > 0 {
		c.ElectionTimeout = t.ElectionTimeout
	}
	if t.LeaderLeaseTimeout > 0 {
		c.LeaderLeaseTimeout = t.LeaderLeaseTimeout
	}
	if t.CommitTimeout > 0 {
		c.CommitTimeout = t.CommitTimeout
	}
	if t.DeadServerGrace > 0 {
		c.DeadServerGrace = t.DeadServerGrace
	}
	if t.SnapshotThreshold > 0 {
		c.SnapshotThreshold = t.SnapshotThreshold
	}
	c.Blocked = t.Blocked
}

// clusterKey returns the raw cluster key: the configured one, else one kept
// in the data dir, else (single-node clusters only) a new one.
func clusterKey(cfg Config) ([]byte, error) {
	if cfg.ClusterKey != "" {
		return cluster.ParseKey(cfg.ClusterKey)
	}
	s, err := loadOrCreate(cfg.DataDir, "cluster-key", func() (string, error) {
		if cfg.BootstrapExpect != 1 {
			return "", errors.New("--cluster-key (or WHARF_CLUSTER_KEY) is required unless --bootstrap-expect is 1; make one with `wharf keygen`")
		}
		return cluster.GenerateKey(), nil
	})
	if err != nil {
		return nil, err
	}
	return cluster.ParseKey(s)
}

// rpcAPI is the internal RPC that carries followers' write requests.
const rpcAPI = "api"

// QuorumWindow: a hub node acks heartbeats as lease renewals only while
// it has heard from the leader within this.
const QuorumWindow = planner.QuorumWindow

// FenceStopGrace is how long an agent's stop of a fenced instance may take.
const FenceStopGrace = planner.FenceStopGrace

// metaQUIC is the gossip metadata key of a node's agent gateway address.
const metaQUIC = "quic"

// gatewayAddrs lists every hub node's agent gateway address, this one
// first. Without --advertise and bound to all interfaces, this node's is
// reached by the host name the client used to reach the API.
func (h *Hub) gatewayAddrs(requestHost string) []string {
	self := advertisedAddr(h.cfg.Advertise, h.gateway.Addr())
	if host, port, err := net.SplitHostPort(h.gateway.Addr()); err == nil && h.cfg.Advertise == "" {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() && requestHost != "" {
			self = net.JoinHostPort(requestHost, port)
		}
	}
	out := []string{self}
	for _, m := range h.cluster.Members() {
		if a := m.Extra[metaQUIC]; a != "" && a != self && m.Alive {
			out = append(out, a)
		}
	}
	return out
}

// advertisedAddr turns a bound address into one other hosts can use.
func advertisedAddr(advertise, bound string) string {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if advertise != "" {
		host = advertise
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// HTTPAddr returns the address the API listens on.
func (h *Hub) HTTPAddr() string { return h.httpLn.Addr().String() }

// QUICAddr returns the agent gateway's address.
func (h *Hub) QUICAddr() string { return h.gateway.Addr() }

// Cluster returns the node's cluster membership (for tests and status).
func (h *Hub) Cluster() *cluster.Cluster { return h.cluster }

// Store returns the node's local state store replica.
func (h *Hub) Store() *state.Store { return h.store }

// LogStats returns the size of this node's log store.
func (h *Hub) LogStats() logstore.Stats { return h.logs.Stats() }

// Name returns the node's name.
func (h *Hub) Name() string { return h.cfg.NodeName }

// Run serves until ctx ends, then stops the HTTP server and the cluster.
func (h *Hub) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	close(h.running)
	defer h.logs.Close()
	// Requests (log follows) end with the node.
	h.httpSrv.BaseContext = func(net.Listener) context.Context { return ctx }
	errc := make(chan error, 6)
	go func() { errc <- h.cluster.Run(ctx) }()
	go func() { errc <- h.gateway.Run(ctx) }()
	go func() { errc <- h.reportHeartbeats(ctx) }()
	go func() { errc <- h.relayTraffic(ctx) }()
	go func() { errc <- h.drains.run(ctx) }()
	go func() {
		err := h.httpSrv.Serve(h.httpLn)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	h.log.Info("hub started", "http", h.HTTPAddr(), "quic", h.gateway.Addr(), "raft", h.cluster.RaftAddr(), "gossip", h.cluster.GossipAddr(), "datacenter", h.cfg.Datacenter)

	var first error
	remaining := 6
	select {
	case <-ctx.Done():
	case first = <-errc:
		remaining--
	}
	cancel()
	shutCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = h.httpSrv.Shutdown(shutCtx)
	for ; remaining > 0; remaining-- {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	h.log.Info("hub stopped")
	return first
}

func agentCertTTL(t *Tuning) time.Duration {
	if t == nil {
		return 0 // the gateway's default
	}
	return t.AgentCertTTL
}
