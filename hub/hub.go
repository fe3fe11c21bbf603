// Package hub is the composition root of a hub node: it builds the state
// store and FSM, the Raft/gossip cluster, the feature services and the
// agent gateway and HTTP API that front them, in that order, and runs them:
// some for the node's life, the others while it leads. Nothing else in the
// hub constructs those parts, and no feature lives here.
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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wharf-platform/wharf/hub/accounts"
	"github.com/wharf-platform/wharf/hub/alert/alerting"
	"github.com/wharf-platform/wharf/hub/api"
	"github.com/wharf-platform/wharf/hub/audit"
	"github.com/wharf-platform/wharf/hub/autoscale"
	"github.com/wharf-platform/wharf/hub/billing"
	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/console"
	"github.com/wharf-platform/wharf/hub/drain"
	"github.com/wharf-platform/wharf/hub/drill"
	"github.com/wharf-platform/wharf/hub/gateway"
	"github.com/wharf-platform/wharf/hub/liveness"
	"github.com/wharf-platform/wharf/hub/logs"
	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/hub/planner"
	"github.com/wharf-platform/wharf/hub/provision"
	"github.com/wharf-platform/wharf/hub/registryauth"
	"github.com/wharf-platform/wharf/hub/reseal"
	"github.com/wharf-platform/wharf/hub/series"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/traffic"
	"github.com/wharf-platform/wharf/installer"
	"github.com/wharf-platform/wharf/providers"
)

// QuorumWindow: a hub node acks heartbeats as lease renewals only while
// it has heard from the leader within this.
const QuorumWindow = planner.QuorumWindow

// FenceStopGrace is how long an agent's stop of a fenced instance may take.
const FenceStopGrace = planner.FenceStopGrace

// rpcAPI is the internal RPC that carries followers' write requests.
const rpcAPI = "api"

// Hub is one running hub node.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	store   *state.Store
	cluster *cluster.Cluster
	gateway *gateway.Gateway
	api     *api.Server
	logs    *logstore.Store
	usage   *billing.Counter
	httpLn  net.Listener
	httpSrv *http.Server
	running chan struct{} // closed when Run starts: the node is wired
	// node runs for the node's life; leader, afresh each term as leader.
	node, leader []task
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
	keys, err := dataKeys(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("node", cfg.NodeName)
	logger := func(component string) *slog.Logger { return log.With("component", component) }

	store, err := state.NewStore()
	if err != nil {
		return nil, err
	}
	fsm := state.NewFSM(store, logger("fsm"))

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
	logStore, err := logstore.Open(logstore.Config{Dir: filepath.Join(cfg.DataDir, "logs"), Default: cfg.LogRetention, Logger: logger("logstore"),
		TenantLimits: logs.TenantRetention(store)})
	if err != nil {
		return nil, fmt.Errorf("log store: %w", err)
	}
	closers = append(closers, logStore.Close)

	h := &Hub{cfg: cfg, log: log, store: store, logs: logStore, httpLn: httpLn, running: make(chan struct{})}
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
	ccfg.Logger = logger("cluster")
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

	// The features.
	events := eventLog{apply: cl, log: logger("events")}
	tracker := liveness.New(liveness.Config{SuspectAfter: cfg.SuspectAfter, DownAfter: cfg.DownAfter, Store: store, Apply: cl.Apply, Logger: logger("liveness")})
	var logCounts logs.Counts
	usageCounts, err := billing.NewCounter(billing.CounterConfig{Node: cfg.NodeName, State: store, Commit: cl, Hour: meterHour(cfg.Tuning), Logger: logger("metering")})
	if err != nil {
		return nil, err
	}
	h.usage = usageCounts
	meterMetrics := billing.NewMetrics()
	meter, err := billing.NewMeter(billing.MeterConfig{State: store, Commit: cl, Hour: meterHour(cfg.Tuning), Metrics: meterMetrics, Logger: logger("metering")})
	if err != nil {
		return nil, err
	}
	logSvc := logs.New(logs.Config{State: store, Store: logStore, Peers: cl, Events: events, Counts: &logCounts, Usage: meteredLogs{usageCounts}, Logger: logger("logs")})
	trafficSvc := traffic.NewService(cl, logger("traffic"))
	metricsSvc := series.NewService(cl, logger("metrics"))
	alerts := alerting.New(alerting.Config{State: store, Traffic: trafficSvc.Store(), Series: metricsSvc.Store(), Events: events, Cluster: cl, Logger: logger("alerts")})
	plans := planner.NewMetrics()
	biller, budgets := newBilling(store, cl, meter, keys, logger("billing"))
	autoscaler := autoscale.New(autoscale.Config{State: store, Commit: cl, Traffic: trafficSvc.Store(), Series: metricsSvc.Store(), Cluster: cl, Signals: trafficSvc, Logger: logger("autoscale")})
	rpcs := [][]cluster.Handler{tracker.Handlers(), logSvc.Handlers(), trafficSvc.Handlers(), metricsSvc.Handlers(), alerts.Handlers(), autoscaler.Handlers(),
		// Writes forwarded by followers, answered by this node's API when
		// it leads (the API is built last, hence the indirection).
		{cluster.Raw(rpcAPI, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-h.running:
				h.api.Handler().ServeHTTP(w, r)
			case <-r.Context().Done():
			}
		}))}}
	for _, hs := range rpcs {
		if err := cl.Handle(hs...); err != nil {
			return nil, err
		}
	}

	gw, err := gateway.New(gateway.Config{
		Conn:         udp,
		ResetKey:     resetKey,
		NodeName:     cfg.NodeName,
		Store:        store,
		Cluster:      cl,
		Logger:       logger("gateway"),
		CertTTL:      agentCertTTL(cfg.Tuning),
		Peers:        gatewayPeers{h},
		AppsDomain:   cfg.AppsDomain,
		Access:       trafficSvc,
		Usage:        meteredUsage{counter: usageCounts, state: store},
		UsageHour:    meterHour(cfg.Tuning),
		Metrics:      metricsSvc,
		Logs:         logSvc,
		QuorumWindow: QuorumWindow,
		Secrets:      keys,
		Registries:   registryauth.Finder{Keys: keys},
	})
	if err != nil {
		return nil, err
	}
	closers = append(closers, gw.Close)
	h.gateway = gw

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), series.Collector{Store: metricsSvc.Store()})
	logCounts.Register(reg, logStore)
	plans.Register(reg)
	meterMetrics.Register(reg)
	cl.Register(reg)
	gw.Register(reg)
	auditLog, err := audit.New(audit.Config{Cluster: cl, Logger: logger("audit"), Registry: reg})
	if err != nil {
		return nil, err
	}
	srv, err := api.New(api.Config{
		Audit:        auditLog,
		Store:        store,
		Cluster:      cl,
		Logger:       logger("api"),
		Registry:     reg,
		NodeName:     cfg.NodeName,
		AppsDomain:   cfg.AppsDomain,
		Forward:      leaderProxy{cl},
		Hosts:        hostConns{tracker, cl},
		Traffic:      trafficSvc,
		Metrics:      metricsSvc,
		Logs:         logSvc,
		Alerts:       alerts,
		Usage:        meter,
		Keys:         keys,
		OpenProvider: openProvider(cfg.Tuning),
		Billing:      biller,
		Autoscale:    autoscaler,
		Exec:         execRoute{gw: gw, cl: cl},
	})
	if err != nil {
		return nil, err
	}
	h.api = srv
	mux := http.NewServeMux()
	inst := installer.Handler(h.gatewayAddrs, agentBinary(cfg.Tuning))
	mux.Handle("GET /install.sh", inst)
	mux.Handle("GET /download/", inst)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	con, err := console.New(console.Config{API: srv.Handler(), Logger: logger("console")})
	if err != nil {
		return nil, err
	}
	mux.Handle("GET /{$}", con.Handler())
	mux.Handle("/ui/", con.Handler())
	mux.Handle("/", srv.Handler())
	h.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	h.node = []task{
		{"cluster", cl},
		{"gateway", gw},
		{"http", runFunc(h.serveHTTP)},
		{"heartbeat reports", &liveness.Reporter{Node: cfg.NodeName, Gateway: gw, Cluster: cl, Tracker: tracker, Logger: logger("liveness")}},
		{"traffic relay", trafficSvc},
		{"usage counts", usageCounts},
		{"metrics relay", metricsSvc},
		{"log drains", drain.NewRunner(drain.RunnerConfig{State: store, Lines: logStore, Events: events, Dir: filepath.Join(cfg.DataDir, "drains"), Logger: logger("drains")})},
	}
	provMetrics := provision.NewMetrics()
	provMetrics.Register(reg)
	prov := provisioner{state: store, cfg: provision.Config{
		Store:    &provisionStore{state: store, commit: cl, keys: keys, events: events, open: openProvider(cfg.Tuning)},
		UserData: h.machineUserData,
		Metrics:  provMetrics,
		Logger:   logger("provision"),
	}}
	if t := cfg.Tuning; t != nil {
		prov.cfg.OrphanGrace, prov.cfg.ListEvery = t.OrphanGrace, t.ProvisionListEvery
	}
	h.leader = []task{
		{"agent CA", agentCA{state: store, commit: cl, log: log}},
		{"liveness", tracker},
		{"planner", planner.New(planner.Config{State: store, Plans: cl, Leases: tracker, Metrics: plans, Logger: logger("planner")})},
		{"alerts", alerts},
		{"metering", meter},
		{"re-sealing", &reseal.Runner{State: store, Keys: keys, Commit: cl, Logger: logger("reseal"),
			Kinds: []reseal.Kind{accounts.Credentials{}, accounts.AppSecrets{}, registryauth.Passwords{}}}},
		{"provisioning", prov},
		{"budgets", budgets},
		{"autoscaler", autoscaler},
		{"drills", drill.New(drill.Config{State: store, Commit: cl, Routes: tracker, Traffic: trafficSvc.Store(), Logger: logger("drills")})},
	}
	ok = true
	return h, nil
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

// LogStore is this node's store of app log lines (tests feed it lines
// the way the log service keeps an agent's).
func (h *Hub) LogStore() *logstore.Store { return h.logs }

// UsageReportsPending returns how many agents' usage reports this node
// holds that are not committed yet (for tests).
func (h *Hub) UsageReportsPending() int { return h.usage.Reports() }

// Name returns the node's name.
func (h *Hub) Name() string { return h.cfg.NodeName }

// Run serves until ctx ends or a part of the node stops, then stops the
// rest (the cluster last shuts itself down) and closes the log store.
func (h *Hub) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	close(h.running)
	defer h.logs.Close()
	// Requests (log follows) end with the node.
	h.httpSrv.BaseContext = func(net.Listener) context.Context { return ctx }
	h.log.Info("hub started", "http", h.HTTPAddr(), "quic", h.gateway.Addr(), "raft", h.cluster.RaftAddr(), "gossip", h.cluster.GossipAddr(), "datacenter", h.cfg.Datacenter)
	err := runAll(ctx, h.node)
	h.log.Info("hub stopped")
	return err
}

// serveHTTP serves the API until ctx ends, then shuts the server down.
func (h *Hub) serveHTTP(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- h.httpSrv.Serve(h.httpLn) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return err
	case <-ctx.Done():
	}
	shutCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = h.httpSrv.Shutdown(shutCtx)
	<-errc
	return nil
}

// openProvider is the opener of a test's fake cloud, nil in production.
// openProvider opens provider accounts: the clouds built into the binary,
// unless a test's Tuning brings a fake one.
func openProvider(t *Tuning) func(providers.Account) (providers.Provider, error) {
	if t == nil || t.OpenProvider == nil {
		return providers.Open
	}
	return t.OpenProvider
}

// agentBinary is the binary served to installs: "" for this process's own.
func agentBinary(t *Tuning) string {
	if t == nil {
		return ""
	}
	return t.AgentBinary
}

func agentCertTTL(t *Tuning) time.Duration {
	if t == nil {
		return 0 // the gateway's default
	}
	return t.AgentCertTTL
}
