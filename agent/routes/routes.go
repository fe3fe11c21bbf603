// Package routes connects the agent's router to the hub: it makes the
// router of the configured addresses, applies the route tables the hub
// pushes (versioned, each acknowledged with the version served), sends
// the router's per-app counts back after heartbeats, and writes its
// access lines to the host's log buffer.
package routes

import (
	"context"
	"fmt"
	"log/slog"
	"net"
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
	Logger   *slog.Logger
}

// Routes is the agent's router and what feeds it.
type Routes struct {
	router   *router.Router // nil without router addresses
	access   *access
	onRoutes func(version uint64)
	log      *slog.Logger
}

// New makes the router of cfg; it serves once Run runs, with an empty
// table until the hub's first push.
func New(cfg Config) (*Routes, error) {
	r := &Routes{access: newAccess(), onRoutes: cfg.OnRoutes, log: cfg.Logger}
	if cfg.HTTPAddr == "" && cfg.HTTPSAddr == "" {
		return r, nil
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
	var err error
	r.router, err = router.New(router.Config{HTTPAddr: cfg.HTTPAddr, HTTPSAddr: cfg.HTTPSAddr, TCPBind: bind,
		Logger: cfg.Logger.With("component", "router"), AccessLog: r.access.add})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Run serves the routes until ctx ends; without a router it returns at
// once.
func (r *Routes) Run(ctx context.Context) error {
	if r.router == nil {
		return nil
	}
	return r.router.Run(ctx)
}

// routerTable converts a pushed table.
func routerTable(t *wire.RouteTable) *router.Table {
	out := &router.Table{Version: t.Version}
	for _, a := range t.Apps {
		ra := router.App{Key: a.Key, Hold: time.Duration(a.HoldMs) * time.Millisecond}
		for _, b := range a.Backends {
			ra.Backends = append(ra.Backends, router.Backend{Instance: b.Instance, Addr: b.Addr, Version: b.Version})
		}
		if len(a.Weights) > 0 {
			ra.Weights = make(map[uint32]uint32, len(a.Weights))
			for v, w := range a.Weights {
				ra.Weights[v] = w
			}
		}
		out.Apps = append(out.Apps, ra)
	}
	for _, r := range t.Http {
		out.HTTP = append(out.HTTP, router.HTTPRoute{Host: r.Host, Path: r.Path, App: r.App})
	}
	for _, r := range t.Tcp {
		out.TCP = append(out.TCP, router.TCPRoute{Port: int(r.Port), App: r.App})
	}
	for _, c := range t.Certs {
		out.Certs = append(out.Certs, router.Cert{Domain: c.Domain, CertPEM: c.CertPem, KeyPEM: c.KeyPem})
	}
	return out
}

// apply gives r a pushed table and reports the version it now
// serves; a table it refuses in part (a TCP port taken on this host)
// still serves the rest. Without a router the version is acknowledged as
// is.
func apply(r *router.Router, t *wire.RouteTable, log *slog.Logger) uint64 {
	if r == nil {
		return t.Version
	}
	if err := r.Apply(routerTable(t)); err != nil {
		log.Warn("route table", "version", t.Version, "err", err)
	}
	return r.Version()
}

// accessStats takes the router's finished seconds for the hub; nil when
// there are none.
func accessStats(r *router.Router) *wire.AccessStats {
	if r == nil {
		return nil
	}
	secs := r.TakeStats()
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
// its per-app counts after each heartbeat.
func (r *Routes) Register(c *control.Control) {
	c.Handle(&wire.Envelope_RouteTable{}, func(_ context.Context, in control.Inbound) error {
		v := apply(r.router, in.Env.GetRouteTable(), r.log)
		if r.router != nil && r.onRoutes != nil {
			r.onRoutes(v)
		}
		return in.Reply(&wire.Envelope{Msg: &wire.Envelope_RouteAck{RouteAck: &wire.RouteAck{Version: v}}})
	})
	c.Send(func() control.Feed {
		return control.Feed{Tick: func(time.Time) *wire.Envelope {
			if st := accessStats(r.router); st != nil {
				return &wire.Envelope{Msg: &wire.Envelope_AccessStats{AccessStats: st}}
			}
			return nil
		}}
	})
}
