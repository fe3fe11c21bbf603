package agent

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/wharf-platform/wharf/agent/router"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// The agent's router serves its pool's routes (DESIGN.md section 4): the
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

// applyRoutes gives the router a pushed table and reports the version it
// now serves; a table it refuses in part (a TCP port taken on this host)
// still serves the rest.
func (a *Agent) applyRoutes(t *wire.RouteTable) uint64 {
	if a.router == nil {
		return t.Version
	}
	if err := a.router.Apply(routerTable(t)); err != nil {
		a.log.Warn("route table", "version", t.Version, "err", err)
	}
	if a.cfg.OnRoutes != nil {
		a.cfg.OnRoutes(a.router.Version())
	}
	return a.router.Version()
}

// accessStats takes the router's finished seconds for the hub; nil when
// there are none.
func (a *Agent) accessStats() *wire.AccessStats {
	if a.router == nil {
		return nil
	}
	secs := a.router.TakeStats()
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

// runRouter serves until ctx ends.
func (a *Agent) runRouter(ctx context.Context) error {
	if a.router == nil {
		return nil
	}
	return a.router.Run(ctx)
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

// metricsReport returns the collector's latest sample when it is newer
// than *last (nil otherwise).
func (a *Agent) metricsReport(last *time.Time) *wire.MetricsReport {
	c := a.metrics.Load()
	if c == nil {
		return nil
	}
	s := c.Latest()
	if s.Time.IsZero() || !s.Time.After(*last) {
		return nil
	}
	*last = s.Time
	h := s.Host
	r := &wire.MetricsReport{UnixMs: s.Time.UnixMilli(), Host: &wire.HostMetrics{CpuSeconds: h.CPUSeconds, MemoryTotal: h.MemoryTotal,
		MemoryUsed: h.MemoryUsed, DiskTotal: h.DiskTotal, DiskUsed: h.DiskUsed, NetRxBytes: h.NetRxBytes, NetTxBytes: h.NetTxBytes}}
	for _, i := range s.Instances {
		r.Instances = append(r.Instances, &wire.InstanceMetrics{Instance: i.Instance, App: i.App, Tenant: i.Tenant, UnixMs: i.Timestamp.UnixMilli(),
			CpuSeconds: i.CPUSeconds, MemoryWorkingSet: i.MemoryWorkingSet, MemoryUsage: i.MemoryUsage, NetRxBytes: i.NetRxBytes,
			NetTxBytes: i.NetTxBytes, FsUsageBytes: i.FsUsageBytes})
	}
	return r
}
