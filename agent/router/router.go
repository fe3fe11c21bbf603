// Package router is the agent's data plane: an HTTP,
// HTTPS and TCP reverse proxy whose table the hub pushes. A table maps
// domains and path prefixes, and router TCP ports, to apps; an app is its
// ready instances (anywhere: this host or others) and, during a canary,
// the share of traffic per version. Apply swaps the whole table
// atomically; in-flight requests finish on the instances they started on.
//
// The package knows nothing of the hub, protobuf or QUIC.
package router

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a router.
type Config struct {
	HTTPAddr  string // "" = no HTTP listener; ":0" picks a port
	HTTPSAddr string // "" = no HTTPS listener
	TCPBind   string // host TCP routes listen on; "" = all addresses
	Logger    *slog.Logger
	// AccessLog, when set, is called for each finished HTTP request and
	// TCP connection.
	AccessLog func(AccessEntry)
	// DialTimeout bounds a connection to an instance. Zero: 2 s.
	DialTimeout time.Duration
	// HeaderTimeout bounds the reading of a request's head once its
	// first byte arrived. Zero: 10 s.
	HeaderTimeout time.Duration
	// IdleTimeout closes a client connection idle this long between
	// requests. Zero: 120 s.
	IdleTimeout time.Duration
	// Clock: nil means time.Now (stats use it).
	Clock func() time.Time
	// MaxHeld bounds the requests held at once, over all apps, while
	// their app has no ready instance (App.Hold); more are answered 503
	// with Retry-After. Zero: 1000.
	MaxHeld int
}

// Table is everything a router serves, replaced whole by Apply.
type Table struct {
	Version uint64
	Apps    []App
	HTTP    []HTTPRoute
	TCP     []TCPRoute
	Certs   []Cert
}

// App is one app's ready instances. Weights (version -> weight), when set,
// split traffic between versions; a version without instances gives its
// share to the others.
type App struct {
	Key      string // "tenant/app"
	Backends []Backend
	Weights  map[uint32]uint32
	// Hold: while the app has no ready instance (it scaled to zero), a
	// request waits up to this long for one (counted as held, which
	// wakes the app) instead of a 503. Zero: no wait.
	Hold time.Duration
}

// Backend is one ready instance.
type Backend struct {
	Instance string
	Addr     string // IP:PORT
	Version  uint32
}

// HTTPRoute sends a domain and path prefix to an app.
type HTTPRoute struct {
	Host string
	Path string // prefix on segment boundaries; "" or "/" = everything
	App  string
}

// TCPRoute sends a router port to an app.
type TCPRoute struct {
	Port int
	App  string
}

// Cert is a certificate served by SNI for Domain ("*.example.com" covers
// one label under example.com).
type Cert struct {
	Domain          string
	CertPEM, KeyPEM []byte
}

// AccessEntry describes one finished request or TCP connection.
type AccessEntry struct {
	App, Instance, Method, Host, Path, RemoteAddr, RequestID string
	Status                                                   int
	BytesOut                                                 int64
	Duration                                                 time.Duration
	Time                                                     time.Time
	TCP                                                      bool
}

// AppSecond is one app's traffic in one second.
type AppSecond struct {
	App                                                   string
	Unix                                                  int64
	Requests                                              uint64
	Status1xx, Status2xx, Status3xx, Status4xx, Status5xx uint64
	BytesOut                                              uint64
	LatencyBuckets                                        []uint64 // per LatencyBounds, then one unbounded
	// Held counts the requests that began waiting in this second for
	// an instance of the app to become ready, and those that went on
	// waiting (each second): the hub wakes an app scaled to zero when it
	// sees them, and keeps it awake while they wait.
	Held uint64
}

// LatencyBounds are the upper bounds of the latency histogram's buckets.
var LatencyBounds = []time.Duration{time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 5 * time.Second}

// Router serves a table.
type Router struct {
	cfg             Config
	log             *slog.Logger
	table           atomic.Pointer[compiled]
	httpLn, httpsLn net.Listener
	transport       *http.Transport
	proxy           *httputil.ReverseProxy // upgrades, HTTP/2, bodies of unknown length
	dialer          *net.Dialer
	pool            backendPool // the fast path's keep-alive connections
	front           front       // the plain HTTP listener's own server

	mu     sync.Mutex // TCP listeners
	tcp    map[int]*tcpListener
	relays relayer // TCP routes' connections

	stats stats
	held  atomic.Int64 // requests waiting for an instance
	wg    sync.WaitGroup
}

// New binds the router's listeners; Run serves them.
func New(cfg Config) (*Router, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	if cfg.MaxHeld == 0 {
		cfg.MaxHeld = 1000
	}
	r := &Router{cfg: cfg, log: cfg.Logger, tcp: map[int]*tcpListener{}}
	r.table.Store(compile(&Table{}, nil, nil))
	r.dialer = &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	r.transport = &http.Transport{
		DialContext:         r.dialer.DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	r.proxy = &httputil.ReverseProxy{
		Rewrite:       r.rewrite,
		Transport:     r.transport,
		ErrorHandler:  r.proxyError,
		FlushInterval: -1, // stream: long polls, server-sent events
	}
	var err error
	if cfg.HTTPAddr != "" {
		if r.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("router http: %w", err)
		}
		r.front = front{idle: map[*frontConn]bool{},
			fallback: &connListener{addr: r.httpLn.Addr(), ch: make(chan net.Conn), closed: make(chan struct{})}}
	}
	if cfg.HTTPSAddr != "" {
		if r.httpsLn, err = net.Listen("tcp", cfg.HTTPSAddr); err != nil {
			if r.httpLn != nil {
				r.httpLn.Close()
			}
			return nil, fmt.Errorf("router https: %w", err)
		}
	}
	return r, nil
}

// Addr returns the bound HTTP and HTTPS addresses (nil when none).
func (r *Router) Addr() (httpAddr, httpsAddr net.Addr) {
	if r.httpLn != nil {
		httpAddr = r.httpLn.Addr()
	}
	if r.httpsLn != nil {
		httpsAddr = r.httpsLn.Addr()
	}
	return httpAddr, httpsAddr
}

// Version is the version of the table being served.
func (r *Router) Version() uint64 { return r.table.Load().version }

// Run serves until ctx ends, then lets in-flight requests finish (at most
// 10 s) and closes every listener.
func (r *Router) Run(ctx context.Context) error {
	var servers []*http.Server
	serve := func(ln net.Listener, tlsOn bool) {
		srv := &http.Server{Handler: r, ReadHeaderTimeout: r.cfg.HeaderTimeout, IdleTimeout: r.cfg.IdleTimeout,
			ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelDebug)}
		if tlsOn {
			// ServeTLS adds HTTP/2 (h2 by ALPN) to this config.
			srv.TLSConfig = &tls.Config{GetCertificate: r.certificate, MinVersion: tls.VersionTLS12}
		}
		servers = append(servers, srv)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			var err error
			if tlsOn {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.log.Warn("router listener", "err", err)
			}
		}()
	}
	if r.httpLn != nil {
		// Requests the fast server does not handle reach ServeHTTP
		// through net/http, on connections it hands over.
		serve(r.front.fallback, false)
		r.wg.Add(1)
		go r.serveFront(r.httpLn)
	}
	if r.httpsLn != nil {
		serve(r.httpsLn, true)
	}
	<-ctx.Done()
	if r.httpLn != nil {
		r.httpLn.Close()
		r.shutdownFront(10 * time.Second)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	r.mu.Lock()
	for port, l := range r.tcp {
		l.close()
		delete(r.tcp, port)
	}
	r.mu.Unlock()
	r.relays.close() // ends the TCP connections: their goroutines return
	r.wg.Wait()
	r.transport.CloseIdleConnections()
	r.pool.closeAll()
	return nil
}

// compiled is a table ready for lookups.
type compiled struct {
	version uint64
	hosts   map[string][]HTTPRoute // by host, longest path first
	// http is the table's routes hosts was built from: a table passing
	// the same slice again keeps hosts.
	http  []HTTPRoute
	apps  map[string]*appState
	certs map[string]*tls.Certificate
	// certSrc is what certs were parsed from, by domain: the next table
	// reuses a certificate whose PEM is the same.
	certSrc map[string]Cert
	// changed is closed when a newer table replaces this one (held
	// requests look again).
	changed chan struct{}
}

// appState picks backends for one app: smooth weighted round-robin over
// versions, then round-robin within the version. A table that leaves
// the app as it was keeps its state, and one that changes it carries
// each version's place in the rotation over: a busy cluster's tables
// change many times a second, and starting every app's rotation over at
// its first instance each time would send it most of the requests.
type appState struct {
	key      string
	hold     time.Duration
	src      App // what the state was compiled from
	mu       sync.Mutex
	versions []*versionSet
}

// same reports whether a compiles to st.
func (st *appState) same(a *App) bool {
	if a.Hold != st.hold || len(a.Backends) != len(st.src.Backends) || !maps.Equal(a.Weights, st.src.Weights) {
		return false
	}
	// The agent passes an app it did not convert again as it was.
	if len(a.Backends) > 0 && &a.Backends[0] == &st.src.Backends[0] {
		return true
	}
	return slices.Equal(a.Backends, st.src.Backends)
}

type versionSet struct {
	version  uint32
	weight   int
	current  int
	backends []Backend
	next     int
}

// carryRotation starts each of st's versions where old's same version
// was in its rotation: on from the instance that was next, where it still
// is.
func (st *appState) carryRotation(old *appState) {
	old.mu.Lock()
	defer old.mu.Unlock()
	for _, vs := range st.versions {
		i := slices.IndexFunc(old.versions, func(ov *versionSet) bool { return ov.version == vs.version })
		if i < 0 {
			continue
		}
		ov := old.versions[i]
		vs.next, vs.current = ov.next, ov.current
		if n := len(ov.backends); n > 0 {
			want := ov.backends[ov.next%n].Instance
			if j := slices.IndexFunc(vs.backends, func(b Backend) bool { return b.Instance == want }); j >= 0 {
				vs.next = j
			}
		}
	}
}

// compile makes t ready for lookups, keeping the apps' states of prev
// (nil: none).
func compile(t *Table, certs map[string]*tls.Certificate, prev *compiled) *compiled {
	c := &compiled{version: t.Version, http: t.HTTP, apps: make(map[string]*appState, len(t.Apps)), certs: certs, changed: make(chan struct{})}
	for i := range t.Apps {
		a := &t.Apps[i]
		var old *appState
		if prev != nil {
			old = prev.apps[a.Key]
		}
		if old != nil && old.same(a) {
			c.apps[a.Key] = old
			continue
		}
		st := &appState{key: a.Key, hold: a.Hold, src: *a}
		by := map[uint32]*versionSet{}
		for _, b := range a.Backends {
			vs := by[b.Version]
			if vs == nil {
				vs = &versionSet{version: b.Version, weight: 1}
				by[b.Version] = vs
				st.versions = append(st.versions, vs)
			}
			vs.backends = append(vs.backends, b)
		}
		for _, vs := range st.versions {
			if len(a.Weights) > 0 {
				vs.weight = int(a.Weights[vs.version])
			} else {
				vs.weight = len(vs.backends) // equal per instance
			}
		}
		sort.Slice(st.versions, func(i, j int) bool { return st.versions[i].version < st.versions[j].version })
		if old != nil {
			st.carryRotation(old)
		}
		c.apps[a.Key] = st
	}
	if prev != nil && len(t.HTTP) > 0 && len(prev.http) == len(t.HTTP) && &prev.http[0] == &t.HTTP[0] {
		c.hosts = prev.hosts // the same routes: hosts is never changed once built
		return c
	}
	c.hosts = map[string][]HTTPRoute{}
	for _, rt := range t.HTTP {
		h := strings.ToLower(rt.Host)
		if rt.Path == "" {
			rt.Path = "/"
		}
		c.hosts[h] = append(c.hosts[h], rt)
	}
	for h, rs := range c.hosts {
		sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].Path) > len(rs[j].Path) })
		c.hosts[h] = rs
	}
	return c
}

// pick returns a backend of the app other than avoid ("" for any).
func (a *appState) pick(avoid string) (Backend, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for tries := 0; tries < 2; tries++ {
		// Smooth weighted round-robin over versions with weight.
		var best *versionSet
		total := 0
		for _, vs := range a.versions {
			if vs.weight <= 0 || len(vs.backends) == 0 {
				continue
			}
			vs.current += vs.weight
			total += vs.weight
			if best == nil || vs.current > best.current {
				best = vs
			}
		}
		if best == nil {
			return Backend{}, false
		}
		best.current -= total
		for k := 0; k < len(best.backends); k++ {
			b := best.backends[best.next%len(best.backends)]
			best.next++
			if b.Instance != avoid {
				return b, true
			}
		}
	}
	return Backend{}, false
}

// Apply serves t from now on. Certificates that do not parse refuse the
// whole table; a TCP port that cannot be bound is reported in the error
// while everything else (its route excepted) is served. The router keeps
// t's apps' backends and its HTTP routes: a caller must not change them
// afterwards (an app passed again with the same backends slice, and
// routes passed again as the same slice, are taken as unchanged).
func (r *Router) Apply(t *Table) error {
	prev := r.table.Load()
	certs, src := map[string]*tls.Certificate{}, map[string]Cert{}
	for _, c := range t.Certs {
		d := strings.ToLower(c.Domain)
		// A certificate unchanged is not parsed again (a key's parse is
		// most of a millisecond).
		if old, ok := prev.certSrc[d]; ok && bytes.Equal(old.CertPEM, c.CertPEM) && bytes.Equal(old.KeyPEM, c.KeyPEM) {
			certs[d], src[d] = prev.certs[d], c
			continue
		}
		pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			return fmt.Errorf("certificate for %s: %w", c.Domain, err)
		}
		certs[d], src[d] = &pair, c
	}
	next := compile(t, certs, prev)
	next.certSrc = src
	close(r.table.Swap(next).changed)
	return r.applyTCP(t.TCP)
}

// ServeHTTP implements http.Handler.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := r.cfg.Clock()
	tbl := r.table.Load()
	host := strings.ToLower(req.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	id := req.Header.Get("X-Request-Id")
	if id == "" || len(id) > 128 || strings.ContainsAny(id, " \t\r\n") {
		id = newRequestID()
		req.Header["X-Request-Id"] = []string{id}
	}
	w.Header()["X-Request-Id"] = []string{id}
	app := tbl.route(host, req.URL.Path)
	if app == nil {
		http.Error(w, "no route for "+host, http.StatusNotFound)
		return
	}
	r.stats.arrive(app.key, start.Unix())
	b, ok := app.pick("")
	rw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
	full := false
	if !ok && app.hold > 0 {
		app, b, ok, full = r.wait(req, host, app)
	}
	var tg *target
	switch {
	case full:
		rw.Header().Set("Retry-After", "1")
		http.Error(rw, "too many requests wait for an instance of "+app.key, http.StatusServiceUnavailable)
		rw.status = http.StatusServiceUnavailable
	case !ok:
		http.Error(rw, "no ready instance of "+app.key, http.StatusServiceUnavailable)
		rw.status = http.StatusServiceUnavailable
	default:
		proto := "http"
		if req.TLS != nil {
			proto = "https"
		}
		tg = &target{app: app, backend: b, proto: proto}
		if fastPathOK(req) {
			r.forward(rw, req, tg, id)
		} else {
			r.proxy.ServeHTTP(rw, req.WithContext(context.WithValue(req.Context(), targetKey{}, tg)))
		}
	}
	d := r.cfg.Clock().Sub(start)
	r.stats.add(app.key, start.Unix(), rw.status, rw.n, d)
	if r.cfg.AccessLog != nil {
		inst := ""
		if tg != nil {
			inst = tg.backend.Instance
		}
		r.cfg.AccessLog(AccessEntry{App: app.key, Instance: inst, Method: req.Method, Host: host, Path: req.URL.Path, RemoteAddr: req.RemoteAddr,
			RequestID: id, Status: rw.status, BytesOut: rw.n, Duration: d, Time: start, TCP: false})
	}
}

type targetKey struct{}

type target struct {
	app     *appState
	backend Backend
	proto   string
	retried bool
}

func (r *Router) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(targetKey{}).(*target)
	pr.SetURL(&url.URL{Scheme: "http", Host: t.backend.Addr})
	pr.Out.Host = pr.In.Host // the app sees the name it was called by
	pr.SetXForwarded()
	pr.Out.Header.Set("X-Forwarded-Proto", t.proto)
	pr.Out.Header.Set("X-Request-Id", pr.In.Header.Get("X-Request-Id"))
}

// proxyError retries, once and on another instance, an idempotent request
// without a body whose connection could not be made; anything else is 502.
func (r *Router) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	t := req.Context().Value(targetKey{}).(*target)
	var op *net.OpError
	dialFailed := errors.As(err, &op) && op.Op == "dial"
	if dialFailed && !t.retried && idempotent(req.Method) && (req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0) {
		if b, ok := t.app.pick(t.backend.Instance); ok && b.Instance != t.backend.Instance {
			t.backend, t.retried = b, true
			r.proxy.ServeHTTP(w, req)
			return
		}
	}
	r.log.Debug("proxy", "app", t.app.key, "instance", t.backend.Instance, "err", err)
	w.WriteHeader(http.StatusBadGateway)
}

func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// pathMatches reports whether p is under prefix on a segment boundary.
func pathMatches(p, prefix string) bool {
	if prefix == "/" || prefix == "" {
		return true
	}
	return p == prefix || (strings.HasPrefix(p, prefix) && p[len(prefix)] == '/')
}

// certificate picks the certificate for a handshake's SNI: exact, then a
// wildcard one label up; no default.
func (r *Router) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	certs := r.table.Load().certs
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if c := certs[name]; c != nil {
		return c, nil
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if c := certs["*."+parent]; c != nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no certificate for %q", hello.ServerName)
}

// countingWriter records the status and the bytes written to the client.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
	wrote  bool
}

func (c *countingWriter) WriteHeader(code int) {
	if !c.wrote {
		c.status, c.wrote = code, true
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	c.wrote = true
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController (and the proxy's upgrade handling)
// reach the connection.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
