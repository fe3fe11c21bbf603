// Package routes connects the agent's router to the hub: it makes the
// router of the configured addresses, applies the route tables the hub
// pushes (versioned, each acknowledged with the version served), sends
// the router's per-app counts back after heartbeats (for the traffic
// relay as they are, and for metering as usage reports kept until the hub
// commits them: usage.go), and writes its access lines to the host's log
// buffer.
package routes

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/router"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Config configures Routes.
type Config struct {
	// HTTPAddr and HTTPSAddr are where the router serves the pool's
	// routes ("" serves none; both "": no router); TCP routes listen on
	// the HTTP address's host.
	HTTPAddr, HTTPSAddr string
	// OnRoutes, when set, is told the route table version the router
	// serves each time a table is applied (benchmarks).
	OnRoutes func(version uint64)
	// DataDir keeps the usage counts the hub has not committed yet
	// (usage.json); "" keeps them in memory only.
	DataDir string
	Logger  *slog.Logger
}

// Routes is the agent's router and what feeds it.
type Routes struct {
	router   *router.Router // nil without router addresses
	access   *access
	onRoutes func(version uint64)
	usage    *ledger
	log      *slog.Logger

	mu sync.Mutex
	// recent are the router's finished seconds not yet sent to the
	// traffic relay (the last recentSeconds of them).
	recent []router.AppSecond
	// metered: the hub node of the session takes usage reports.
	metered bool
	// protocol is the session's protocol version (from its Welcome).
	protocol uint32

	// table is the whole table last applied, which a delta changes;
	// parts the parts of one sent in parts so far; converted its apps
	// in the router's form (all owned by the control stream's handlers).
	table     *wire.RouteTable
	parts     wire.RouteParts
	converted converted
}

// recentSeconds is how old a second the traffic relay is still sent; the
// relay is about now, metering keeps every count.
const recentSeconds = 10

// New makes the router of cfg; it serves once Run runs, with an empty
// table until the hub's first push.
func New(cfg Config) (*Routes, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Routes{access: newAccess(), onRoutes: cfg.OnRoutes, log: cfg.Logger}
	if cfg.HTTPAddr == "" && cfg.HTTPSAddr == "" {
		r.usage, _ = openLedger("")
		return r, nil
	}
	var err error
	if r.usage, err = openLedger(cfg.DataDir); err != nil {
		return nil, err
	}
	bind := "0.0.0.0"
	if cfg.HTTPAddr != "" {
		h, _, err := net.SplitHostPort(cfg.HTTPAddr)
		if err != nil {
			return nil, fmt.Errorf("--router-http-addr: %w", err)
		}
		if h != "" {
			bind = h
		}
	}
	r.router, err = router.New(router.Config{HTTPAddr: cfg.HTTPAddr, HTTPSAddr: cfg.HTTPSAddr, TCPBind: bind,
		Logger: cfg.Logger.With("component", "router"), AccessLog: r.access.add})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Run serves the routes until ctx ends, and each second moves the
// router's finished seconds into the usage ledger (connected or not) and
// saves it; without a router it returns at once.
func (r *Routes) Run(ctx context.Context) error {
	if r.router == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-ctx.Done():
				r.collect()
				_ = r.usage.save()
				return
			case <-t.C:
			}
			r.collect()
			if err := r.usage.save(); err != nil && !failing {
				r.log.Warn("save usage counts (kept in memory, retried)", "err", err)
				failing = true
			} else if err == nil {
				failing = false
			}
		}
	}()
	return r.router.Run(ctx)
}

// collect takes the router's finished seconds: into the usage ledger, and
// the recent ones for the traffic relay.
func (r *Routes) collect() {
	if r.router == nil {
		return
	}
	secs := r.router.TakeStats()
	r.usage.add(secs)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recent = append(r.recent, secs...)
	cut := time.Now().Unix() - recentSeconds
	r.recent = slices.DeleteFunc(r.recent, func(s router.AppSecond) bool { return s.Unix < cut })
}

// takeRecent returns, and forgets, the seconds for the traffic relay.
func (r *Routes) takeRecent() []router.AppSecond {
	r.collect()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.recent
	r.recent = nil
	return out
}

// UsageUnacked returns the requests counted for metering that the hub
// has not acknowledged as committed yet.
func (r *Routes) UsageUnacked() uint64 { return r.usage.unacked() }

// routerTable converts a pushed table.
func routerTable(t *wire.RouteTable) *router.Table {
	out, _ := convertTable(t, converted{})
	return out
}

// converted is the router's form of the last table applied: its apps by
// the pushed app they were converted from (a delta keeps the apps it does
// not name, wire.ApplyRouteDelta, and they are not converted again), and
// its HTTP routes, which a table that routes the same keeps (the router
// then keeps its index of them too).
type converted struct {
	apps map[*wire.RouteApp]router.App
	http []router.HTTPRoute
}

// convertTable converts t, reusing what prev converted; it returns the
// table and what the next conversion reuses.
func convertTable(t *wire.RouteTable, prev converted) (*router.Table, converted) {
	out := &router.Table{Version: t.Version, Apps: make([]router.App, 0, len(t.Apps))}
	next := converted{apps: make(map[*wire.RouteApp]router.App, len(t.Apps))}
	for _, a := range t.Apps {
		ra, ok := prev.apps[a]
		if !ok {
			ra = router.App{Key: a.Key, Hold: time.Duration(a.HoldMs) * time.Millisecond}
			for _, b := range a.Backends {
				ra.Backends = append(ra.Backends, router.Backend{Instance: b.Instance, Addr: b.Addr, Version: b.Version})
			}
			if len(a.Weights) > 0 {
				ra.Weights = make(map[uint32]uint32, len(a.Weights))
				for v, w := range a.Weights {
					ra.Weights[v] = w
				}
			}
		}
		next.apps[a] = ra
		out.Apps = append(out.Apps, ra)
	}
	if sameRoutes(t.Http, prev.http) {
		out.HTTP = prev.http
	} else {
		for _, r := range t.Http {
			out.HTTP = append(out.HTTP, router.HTTPRoute{Host: r.Host, Path: r.Path, App: r.App})
		}
	}
	next.http = out.HTTP
	for _, r := range t.Tcp {
		out.TCP = append(out.TCP, router.TCPRoute{Port: int(r.Port), App: r.App})
	}
	for _, c := range t.Certs {
		out.Certs = append(out.Certs, router.Cert{Domain: c.Domain, CertPEM: c.CertPem, KeyPEM: c.KeyPem})
	}
	return out, next
}

// sameRoutes reports whether pushed routes are, in order, the converted
// ones.
func sameRoutes(pushed []*wire.HTTPRoute, conv []router.HTTPRoute) bool {
	if len(pushed) != len(conv) || len(pushed) == 0 {
		return false
	}
	for i, r := range pushed {
		if c := conv[i]; r.Host != c.Host || r.Path != c.Path || r.App != c.App {
			return false
		}
	}
	return true
}

// apply gives r a pushed table and reports the version it now
// serves; a table it refuses in part (a TCP port taken on this host)
// still serves the rest. A table older than the one served (from a hub
// node behind the cluster) is not applied: it would route to instances
// since stopped. Without a router the version is acknowledged as is.
func (rs *Routes) apply(t *wire.RouteTable) uint64 {
	r, log := rs.router, rs.log
	if r == nil {
		return t.Version
	}
	if served := r.Version(); t.Version < served {
		log.Debug("route table older than the one served, not applied", "version", t.Version, "served", served)
		return served
	}
	tbl, conv := convertTable(t, rs.converted)
	if err := r.Apply(tbl); err != nil {
		log.Warn("route table", "version", t.Version, "err", err)
	} else {
		rs.converted = conv
	}
	r.SetSignalRates(signalRates(t))
	return r.Version()
}

// signalRates are a pushed table's signal rates, by app.
func signalRates(t *wire.RouteTable) map[string]uint32 {
	out := map[string]uint32{}
	for _, a := range t.Apps {
		if a.SignalRps > 0 {
			out[a.Key] = a.SignalRps
		}
	}
	return out
}

// rateSignal converts the router's bursts for the hub; nil when there
// are none.
func rateSignal(bs []router.Burst) *wire.Envelope {
	if len(bs) == 0 {
		return nil
	}
	out := &wire.RateSignal{}
	for _, b := range bs {
		out.Apps = append(out.Apps, &wire.AppRate{App: b.App, Unix: b.Unix, Requests: b.Requests,
			ElapsedMs: uint32(b.Elapsed / time.Millisecond), SignalRps: b.Rate})
	}
	return &wire.Envelope{Msg: &wire.Envelope_RateSignal{RateSignal: out}}
}

// accessStats converts the router's finished seconds for the hub; nil
// when there are none.
func accessStats(secs []router.AppSecond) *wire.AccessStats {
	if len(secs) == 0 {
		return nil
	}
	bounds := make([]float64, len(router.LatencyBounds))
	for i, b := range router.LatencyBounds {
		bounds[i] = float64(b) / float64(time.Millisecond)
	}
	out := &wire.AccessStats{}
	for _, s := range secs {
		out.Seconds = append(out.Seconds, &wire.AppSecond{App: s.App, Unix: s.Unix, Requests: s.Requests,
			Status: []uint64{s.Status1xx, s.Status2xx, s.Status3xx, s.Status4xx, s.Status5xx}, BytesOut: s.BytesOut,
			Latency: s.LatencyBuckets, LatencyBoundsMs: bounds, Held: s.Held})
	}
	return out
}

// Addrs returns the router's bound HTTP and HTTPS addresses ("" when it
// serves none).
func (r *Routes) Addrs() (string, string) {
	if r.router == nil {
		return "", ""
	}
	h, s := r.router.Addr()
	str := func(x net.Addr) string {
		if x == nil {
			return ""
		}
		return x.String()
	}
	return str(h), str(s)
}

// Version returns the version of the route table the router serves (0
// before the first, or without a router).
func (r *Routes) Version() uint64 {
	if r.router == nil {
		return 0
	}
	return r.router.Version()
}

// Register gives the router the tables the hub pushes (each acknowledged
// with the version served; OnRoutes, when set, is told it too) and sends
// its per-app counts after each heartbeat: to the traffic relay, and as
// usage reports until acknowledged; a burst within the current second
// goes up at once (RateSignal, on protocol 4 and up).
func (r *Routes) Register(c *control.Control) {
	c.Handle(&wire.Envelope_Welcome{}, func(_ context.Context, in control.Inbound) error {
		secs := in.Env.GetWelcome().GetUsageHourSeconds()
		if secs > 0 {
			r.usage.setHour(secs)
		}
		r.mu.Lock()
		r.metered = secs > 0
		r.protocol = in.Env.GetWelcome().GetProtocolVersion()
		r.mu.Unlock()
		// A new session: the parts of a table a lost one was sending
		// will not be finished.
		r.parts.Reset()
		return nil
	})
	c.Handle(&wire.Envelope_UsageAck{}, func(_ context.Context, in control.Inbound) error {
		r.usage.acked(in.Env.GetUsageAck().GetSeq())
		return nil
	})
	c.Handle(&wire.Envelope_RouteTable{}, func(_ context.Context, in control.Inbound) error {
		// A table sent in parts is applied once all are in; only then is
		// it acknowledged.
		t, err := r.parts.Add(in.Env.GetRouteTable())
		if err != nil || t == nil {
			return err
		}
		if t.GetBaseVersion() != 0 {
			whole, err := wire.ApplyRouteDelta(r.table, t)
			if err != nil {
				// Not the table this one changes: serve on, and ask for
				// a whole one.
				r.log.Debug("route table delta not applied; asking for a whole table", "err", err)
				return in.Reply(&wire.Envelope{Msg: &wire.Envelope_RouteAck{RouteAck: &wire.RouteAck{Version: r.Version(), WantWhole: true}}})
			}
			t = whole
		}
		v := r.apply(t)
		if v == t.Version {
			r.table = t
		}
		if r.router != nil && r.onRoutes != nil {
			r.onRoutes(v)
		}
		return in.Reply(&wire.Envelope{Msg: &wire.Envelope_RouteAck{RouteAck: &wire.RouteAck{Version: v}}})
	})
	c.Send(func() control.Feed {
		return control.Feed{Tick: func(time.Time) *wire.Envelope {
			if st := accessStats(r.takeRecent()); st != nil {
				return &wire.Envelope{Msg: &wire.Envelope_AccessStats{AccessStats: st}}
			}
			return nil
		}}
	})
	c.Send(func() control.Feed {
		// A burst goes up the moment the router sees it, to a hub node
		// that takes it (an older one would close the stream on it).
		r.mu.Lock()
		protocol := r.protocol
		r.mu.Unlock()
		if r.router == nil || protocol < wire.ProtocolRateSignal {
			return control.Feed{}
		}
		return control.Feed{Changed: r.router.Bursts(), OnChange: func() *wire.Envelope { return rateSignal(r.router.TakeBursts()) }}
	})
	c.Send(func() control.Feed {
		// What this session sent: a new session sends the report again.
		var sentSeq uint64
		var sentAt time.Time
		r.mu.Lock()
		metered := r.metered
		r.mu.Unlock()
		return control.Feed{Tick: func(now time.Time) *wire.Envelope {
			if !metered {
				return nil // a hub node too old for usage reports: the ledger keeps them
			}
			rep, err := r.usage.report()
			if err != nil {
				r.log.Warn("usage report not sent: it cannot be saved", "err", err)
				return nil
			}
			if rep == nil || (rep.Seq == sentSeq && now.Sub(sentAt) < resendAfter) {
				return nil
			}
			sentSeq, sentAt = rep.Seq, now
			return &wire.Envelope{Msg: &wire.Envelope_UsageReport{UsageReport: rep}}
		}}
	})
}
