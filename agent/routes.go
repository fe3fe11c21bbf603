package agent

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

// The agent's router serves its pool's routes: the
// hub pushes the table, versioned; the agent applies it and acknowledges,
// and sends the router's per-app counts back once a second.

// newRouter makes the router of cfg, nil when it serves nothing; its
// access lines go to access.
func newRouter(cfg Config, access *accessLines) (*router.Router, error) {
	if cfg.RouterHTTPAddr == "" && cfg.RouterHTTPSAddr == "" {
		return nil, nil
	}
	bind := "0.0.0.0"
	if cfg.RouterHTTPAddr != "" {
		h, _, err := net.SplitHostPort(cfg.RouterHTTPAddr)
		if err != nil {
			return nil, fmt.Errorf("--router-http-addr: %w", err)
		}
		if h != "" {
			bind = h
		}
	}
	return router.New(router.Config{HTTPAddr: cfg.RouterHTTPAddr, HTTPSAddr: cfg.RouterHTTPSAddr, TCPBind: bind,
		Logger: cfg.Logger.With("component", "router"), AccessLog: access.add})
}

// routerTable converts a pushed table.
func routerTable(t *wire.RouteTable) *router.Table {
	out := &router.Table{Version: t.Version}
	for _, a := range t.Apps {
		ra := router.App{Key: a.Key}
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

// applyRoutes gives r a pushed table and reports the version it now
// serves; a table it refuses in part (a TCP port taken on this host)
// still serves the rest. Without a router the version is acknowledged as
// is.
func applyRoutes(r *router.Router, t *wire.RouteTable, log *slog.Logger) uint64 {
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
			Latency: s.LatencyBuckets, LatencyBoundsMs: bounds})
	}
	return out
}

// RouterAddrs returns the router's bound HTTP and HTTPS addresses ("" when
// it serves none).
func (a *Agent) RouterAddrs() (string, string) {
	if a.router == nil {
		return "", ""
	}
	h, s := a.router.Addr()
	str := func(x net.Addr) string {
		if x == nil {
			return ""
		}
		return x.String()
	}
	return str(h), str(s)
}

// RouterVersion returns the version of the route table the router serves
// (0 before the first, or without a router).
func (a *Agent) RouterVersion() uint64 {
	if a.router == nil {
		return 0
	}
	return a.router.Version()
}

// registerRoutes gives r the tables the hub pushes (each acknowledged
// with the version served; onRoutes, when set, is told it too) and sends
// its per-app counts after each heartbeat.
func registerRoutes(c *control.Control, r *router.Router, onRoutes func(version uint64), log *slog.Logger) {
	c.Handle(&wire.Envelope_RouteTable{}, func(_ context.Context, in control.Inbound) error {
		v := applyRoutes(r, in.Env.GetRouteTable(), log)
		if r != nil && onRoutes != nil {
			onRoutes(v)
		}
		return in.Reply(&wire.Envelope{Msg: &wire.Envelope_RouteAck{RouteAck: &wire.RouteAck{Version: v}}})
	})
	c.Send(func() control.Feed {
		return control.Feed{Tick: func(time.Time) *wire.Envelope {
			if st := accessStats(r); st != nil {
				return &wire.Envelope{Msg: &wire.Envelope_AccessStats{AccessStats: st}}
			}
			return nil
		}}
	})
}
