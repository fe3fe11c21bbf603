// Package api serves the hub's REST API under /v1: JSON in and out,
// bearer-token auth with tenant-scoped roles, linearizable or stale reads,
// blocking queries, and writes committed through the cluster.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-platform/wharf/hub/billing"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/seal"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/providers"
)

// Cluster is what the API needs of the hub cluster.
type Cluster interface {
	// Apply commits a state command (state.Encode) and returns its Raft
	// index and the FSM's answer (nil or *state.Error).
	Apply(ctx context.Context, msg []byte) (uint64, error)
	// ConsistentRead returns once the local store holds every write
	// acknowledged before the call.
	ConsistentRead(ctx context.Context) error
	// Status describes the node and the cluster.
	Status() apitypes.Status
	// EntryFormat is the newest log entry format every voter reads
	// (state.EntryFormat): the form commands are written in.
	EntryFormat() int
}

// Config configures the API server.
type Config struct {
	Store   *state.Store
	Cluster Cluster
	// Logger: nil discards.
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies. Zero means 1 MiB.
	MaxBodyBytes int64
	// Registry, when set, receives the API's metrics.
	Registry prometheus.Registerer
	// Now returns the time stamped into commands. nil means time.Now.
	Now func() time.Time
	// Traffic, when set, serves GET /v1/apps/{name}/stats.
	Traffic TrafficReader
	// Metrics, when set, serves the metrics reads.
	Metrics MetricsReader
	// Logs, when set, reads apps' logs for GET /v1/apps/{name}/logs.
	Logs LogReader
	// Alerts, when set, tells which alert rules fire.
	Alerts AlertReader
	// Usage, when set, serves GET /v1/usage.
	Usage UsageReader
	// AppsDomain is the parent of apps' default routes
	// (<app>.<tenant>.<apps-domain>). Empty means "localhost".
	AppsDomain string
	// NodeName is sent in the X-Wharf-Node header of every answer.
	NodeName string
	// Forward, when set, may send write requests to the leader.
	Forward Forwarder
	// Hosts, when set, tells what the leader knows of hosts' connections,
	// for GET /v1/hosts/{id}.
	Hosts HostConns
	// Keys seal provider credentials before they are committed. Nil:
	// provider accounts cannot be written.
	Keys *seal.Keyring
	// ProviderCheckTimeout bounds the credential check of a provider
	// account write. Zero means 15 s.
	ProviderCheckTimeout time.Duration
	// OpenProvider opens an account for its credential check. Nil means
	// providers.Open (the types built into the binary).
	OpenProvider func(providers.Account) (providers.Provider, error)
	// Billing prices usage for bills and invoices. Nil: a biller that sees
	// no usage (plans and fees only).
	Billing Biller
	// Audit, when set, records every mutating request (audit.go); the
	// answer waits for the entry's commit.
	Audit Auditor
	// Autoscale, when set, tells what the autoscaler sees of an app.
	Autoscale AutoscaleReader
	// Exec, when set, runs commands in instances (exec.go).
	Exec Execer
}

// AutoscaleReader returns what the leader's autoscaler last saw of an app
// ("tenant/app") and wanted for it.
type AutoscaleReader interface {
	Status(ctx context.Context, app string) (apitypes.AutoscaleStatus, error)
}

// TrafficReader returns an app's ("tenant/app") per-second router counts
// since a time.
type TrafficReader interface {
	Since(ctx context.Context, app string, since time.Time) ([]apitypes.TrafficSecond, error)
}

// MetricsReader returns an app's ("tenant/app") or a host's series
// between from and to, every step (zero: every point).
type MetricsReader interface {
	Query(ctx context.Context, app, host string, from, to time.Time, step time.Duration) ([]apitypes.MetricSeries, error)
}

// AlertReader returns the ids of the alert rules firing now (the leader's
// evaluator).
type AlertReader interface {
	Firing(ctx context.Context) ([]string, error)
}

// Forwarder may send a write request to the leader, which then answers it
// (so a follower need not wait to apply the write itself before
// answering). It returns whether it did. Requests it forwarded carry the
// ForwardedHeader and are never forwarded again.
type Forwarder interface {
	Forward(w http.ResponseWriter, r *http.Request) bool
}

// HostConns tells what the leader knows of a host's connection.
type HostConns interface {
	HostConn(ctx context.Context, hostID string) (HostConn, error)
}

// LogReader reads an app's logs (merged across the hub nodes) and hands
// them to emit in time order, saying whether older matching lines were
// left out (an answer's size cap); with q.Follow it goes on with new lines
// until ctx ends.
type LogReader interface {
	Read(ctx context.Context, q apitypes.LogQuery, emit func(lines []apitypes.LogLine, truncated bool) error) error
}

// HostConn is a host's connection as the leader knows it; nil times are
// unknown.
type HostConn struct {
	LastHeartbeat *time.Time
	HubNode       string
	CertNotAfter  *time.Time
}

// NodeHeader names the hub node that answered.
const NodeHeader = "X-Wharf-Node"

// ForwardedHeader marks a request a follower forwarded to the leader.
const ForwardedHeader = "X-Wharf-Forwarded"

// Server is the REST API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []string
	latency *prometheus.HistogramVec
	reads   *readGate // linearizable-read barriers, shared
	// instances shares app instance lists between watchers.
	instances instancesCache
}

// New returns an API server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Cluster == nil {
		return nil, errors.New("api: Store and Cluster are required")
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AppsDomain == "" {
		cfg.AppsDomain = "localhost"
	}
	if cfg.OpenProvider == nil {
		cfg.OpenProvider = providers.Open
	}
	if cfg.Billing == nil {
		cfg.Billing = billing.NewBiller(billing.BillerConfig{State: cfg.Store, Now: cfg.Now})
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), reads: newReadGate(cfg.Cluster.ConsistentRead, 10*time.Second)}
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wharf_api_request_duration_seconds",
		Help:    "REST API request latency by route and status code.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"route", "code"})
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(s.latency); err != nil {
			return nil, fmt.Errorf("api metrics: %w", err)
		}
	}
	s.register()
	return s, nil
}

// handler is an API handler: it writes a successful answer or returns an
// error, which is written as JSON with its status.
type handler func(w http.ResponseWriter, r *http.Request, p *principal) error

// access says who may call a route at all; finer checks are in handlers.
type access int

const (
	public access = iota // no token
	authed               // any valid token
)

func (s *Server) handle(pattern string, a access, h handler) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		if r.Method != http.MethodGet && s.cfg.Forward != nil && r.Header.Get(ForwardedHeader) == "" {
			r.Header.Set(ForwardedHeader, "1")
			if s.cfg.Forward.Forward(sw, r) {
				s.latency.WithLabelValues(pattern, strconv.Itoa(sw.status())).Observe(time.Since(start).Seconds())
				return
			}
			r.Header.Del(ForwardedHeader)
		}
		if s.cfg.NodeName != "" {
			w.Header().Set(NodeHeader, s.cfg.NodeName)
		}
		var p *principal
		out, aw := s.auditing(sw, r, func(aw *auditWriter) { s.finishAudit(aw, r) })
		var err error
		if a == authed {
			p, err = s.authenticate(r)
		}
		if aw != nil {
			aw.p, aw.pattern = p, pattern
		}
		if err == nil {
			err = h(out, r, p)
		}
		began := sw.code // the status sent, else held with the answer for its audit entry
		if began == 0 && aw != nil {
			began = aw.code
		}
		switch {
		case err == nil:
		case began != 0:
			// The answer had begun when the handler failed, most often
			// writing to a client that left: an error now would only be
			// appended to the answer's body.
			s.log.Debug("request failed after its answer began", "method", r.Method, "path", r.URL.Path, "status", began, "err", err)
		default:
			s.writeError(out, r, err)
		}
		if aw != nil && !aw.done {
			s.finishAudit(aw, r)
		}
		s.latency.WithLabelValues(pattern, strconv.Itoa(sw.status())).Observe(time.Since(start).Seconds())
	})
}

// Routes lists every route pattern, for tests that must cover them all.
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// Handler returns the API's http.Handler; it answers /v1/ paths it does not
// know with JSON 404 or 405.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := s.mux.Handler(r); pattern != "" {
			s.mux.ServeHTTP(w, r)
			return
		}
		for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
			alt := r.Clone(r.Context())
			alt.Method = m
			if _, pattern := s.mux.Handler(alt); pattern != "" {
				s.writeError(w, r, &apitypes.Error{Status: http.StatusMethodNotAllowed, Message: fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)})
				return
			}
		}
		s.writeError(w, r, &apitypes.Error{Status: http.StatusNotFound, Message: "no such endpoint: " + r.URL.Path})
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming answers through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (an exec's
// WebSocket hijacks it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

func (s *Server) register() {
	s.handle("GET /v1/status", public, s.status)
	s.handle("POST /v1/bootstrap", public, s.bootstrap)

	s.handle("GET /v1/tenants", authed, s.listTenants)
	s.handle("POST /v1/tenants", authed, s.createTenant)
	s.handle("GET /v1/tenants/{name}", authed, s.getTenant)
	s.handle("DELETE /v1/tenants/{name}", authed, s.deleteTenant)

	s.handle("GET /v1/tokens", authed, s.listTokens)
	s.handle("POST /v1/tokens", authed, s.createToken)
	s.handle("GET /v1/tokens/self", authed, s.selfToken)
	s.handle("GET /v1/tokens/{id}", authed, s.getToken)
	s.handle("DELETE /v1/tokens/{id}", authed, s.deleteToken)

	s.handle("GET /v1/pools", authed, s.listPools)
	s.handle("POST /v1/pools", authed, s.createPool)
	s.handle("GET /v1/pools/{name}", authed, s.getPool)
	s.handle("PUT /v1/pools/{name}", authed, s.putPool)
	s.handle("DELETE /v1/pools/{name}", authed, s.deletePool)

	s.handle("GET /v1/providers", authed, s.listProviders)
	s.handle("POST /v1/providers", authed, s.createProvider)
	s.handle("GET /v1/providers/{name}", authed, s.getProvider)
	s.handle("PUT /v1/providers/{name}", authed, s.putProvider)
	s.handle("DELETE /v1/providers/{name}", authed, s.deleteProvider)
	s.handle("GET /v1/machines", authed, s.listMachines)
	s.handle("GET /v1/registries", authed, s.listRegistries)
	s.handle("POST /v1/registries", authed, s.putRegistry)
	s.handle("DELETE /v1/registries/{server}", authed, s.deleteRegistry)

	s.handle("GET /v1/apps", authed, s.listApps)
	s.handle("POST /v1/apps", authed, s.createApp)
	s.handle("GET /v1/apps/{name}", authed, s.getApp)
	s.handle("PUT /v1/apps/{name}", authed, s.putApp)
	s.handle("DELETE /v1/apps/{name}", authed, s.deleteApp)
	s.handle("POST /v1/apps/{name}/scale", authed, s.scaleApp)
	s.handle("POST /v1/apps/{name}/rollback", authed, s.rollbackApp)
	s.handle("GET /v1/apps/{name}/versions", authed, s.appVersions)
	s.handle("GET /v1/apps/{name}/history", authed, s.appHistory)
	s.handle("GET /v1/apps/{name}/routes", authed, s.appRoutes)
	s.handle("GET /v1/apps/{name}/stats", authed, s.appStats)
	s.handle("GET /v1/usage", authed, s.usage)
	s.handle("GET /v1/apps/{name}/metrics", authed, s.appMetrics)
	s.handle("GET /v1/apps/{name}/logs", authed, s.appLogs)
	s.handle("POST /v1/apps/{name}/log-drains", authed, s.addLogDrain)
	s.handle("GET /v1/apps/{name}/log-drains", authed, s.listLogDrains)
	s.handle("DELETE /v1/apps/{name}/log-drains/{id}", authed, s.deleteLogDrain)
	s.handle("POST /v1/alerts", authed, s.addAlert)
	s.handle("GET /v1/alerts", authed, s.listAlerts)
	s.handle("DELETE /v1/alerts/{id}", authed, s.deleteAlert)
	s.handle("GET /v1/hosts/{id}/metrics", authed, s.hostMetrics)
	s.handle("POST /v1/apps/{name}/failback", authed, s.failbackApp)
	s.handle("POST /v1/drills", authed, s.startDrill)
	s.handle("GET /v1/drills", authed, s.listDrills)
	s.handle("GET /v1/drills/{id}", authed, s.getDrill)
	s.handle("POST /v1/drills/{id}/end", authed, s.endDrill)
	s.handle("POST /v1/apps/{name}/routes", authed, s.addRoute)
	s.handle("DELETE /v1/apps/{name}/routes/{id}", authed, s.deleteRoute)
	s.handle("GET /v1/routes", authed, s.listRoutes)
	s.handle("GET /v1/certs", authed, s.listCerts)
	s.handle("POST /v1/certs", authed, s.putCert)
	s.handle("DELETE /v1/certs/{domain}", authed, s.deleteCert)
	s.handle("GET /v1/apps/{name}/instances", authed, s.appInstances)
	s.handle("POST /v1/apps/{name}/promote", authed, s.promoteApp)
	s.handle("POST /v1/apps/{name}/abort", authed, s.abortApp)
	s.handle("GET /v1/apps/{name}/autoscale", authed, s.getAutoscale)
	s.handle("PUT /v1/apps/{name}/autoscale", authed, s.putAutoscale)
	s.handle("DELETE /v1/apps/{name}/autoscale", authed, s.deleteAutoscale)
	s.handle("GET /v1/apps/{name}/exec", authed, s.execApp)

	s.handle("GET /v1/join-tokens", authed, s.listJoinTokens)
	s.handle("POST /v1/join-tokens", authed, s.createJoinToken)
	s.handle("DELETE /v1/join-tokens/{id}", authed, s.deleteJoinToken)

	s.handle("GET /v1/hosts", authed, s.listHosts)
	s.handle("GET /v1/hosts/{id}", authed, s.getHost)
	s.handle("POST /v1/hosts/{id}/drain", authed, s.drainHost)
	s.handle("DELETE /v1/hosts/{id}", authed, s.deleteHost)

	s.handle("GET /v1/events", authed, s.listEvents)
	s.registerBilling()
	s.registerDay2()
	s.registerSecrets()
}
