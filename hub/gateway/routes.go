package gateway

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// routeTables builds each pool's route table once per change of what it
// is made of, for all the pool's agents connected here.
type routeTables struct {
	mu    sync.Mutex
	pools map[string]*poolTable
}

type poolTable struct {
	index uint64 // store index the table was checked against
	body  []byte // the table without its version, to tell real changes
	table *wire.RouteTable
}

// routeInputs are the tables a route table is built from.
var routeInputs = []string{state.TableApps, state.TableInstances, state.TableRoutes, state.TableCerts, state.TableHosts, state.TableDrills}

// routeTable returns pool's current route table, adding to ws a watch on
// its inputs. Its version is the store index of the last change that
// altered it, so an unrelated write (a heartbeat's host update, say)
// pushes nothing.
func (g *Gateway) routeTable(snap *state.Snapshot, ws memdb.WatchSet, pool string) (*wire.RouteTable, error) {
	idx := snap.WatchTables(ws, routeInputs...)
	g.routes.mu.Lock()
	defer g.routes.mu.Unlock()
	pt := g.routes.pools[pool]
	if pt != nil && pt.index >= idx {
		return pt.table, nil
	}
	t, err := buildRouteTable(snap, pool, g.cfg.AppsDomain)
	if err != nil {
		return nil, err
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(t)
	if err != nil {
		return nil, err
	}
	if pt != nil && bytes.Equal(body, pt.body) {
		pt.index = idx
		return pt.table, nil
	}
	t.Version = idx
	if g.routes.pools == nil {
		g.routes.pools = map[string]*poolTable{}
	}
	g.routes.pools[pool] = &poolTable{index: idx, body: body, table: t}
	return t, nil
}

// buildRouteTable makes the route table of a pool's routers: the routes
// of every app that lists the pool in pools or failover_pools, names no
// pools at all, or has instances on the pool's hosts, each to the app's
// ready instances wherever they run (not on hosts known down).
func buildRouteTable(snap *state.Snapshot, pool, appsDomain string) (*wire.RouteTable, error) {
	hosts, err := snap.Hosts(nil)
	if err != nil {
		return nil, err
	}
	// Instances on lost hosts (down, or held by a cutoff drill) get no
	// traffic: whatever they last reported no longer holds.
	down, err := snap.LostHosts(nil)
	if err != nil {
		return nil, err
	}
	present := map[string]bool{} // apps with an instance in the pool
	for _, h := range hosts {
		if h.Pool != pool {
			continue
		}
		is, err := snap.HostInstances(nil, h.ID)
		if err != nil {
			return nil, err
		}
		for _, i := range is {
			present[i.Tenant+"/"+i.App] = true
		}
	}
	apps, err := snap.Apps(nil, "")
	if err != nil {
		return nil, err
	}
	t := &wire.RouteTable{}
	for _, a := range apps {
		key := a.Tenant + "/" + a.Name
		if len(a.Spec.Pools) > 0 && !slices.Contains(a.Spec.Pools, pool) && !slices.Contains(a.Spec.FailoverPools, pool) && !present[key] {
			continue
		}
		ra := &wire.RouteApp{Key: key, HoldMs: holdMs(a), SignalRps: signalRps(a)}
		is, err := snap.AppInstances(nil, a.Tenant, a.Name)
		if err != nil {
			return nil, err
		}
		for _, i := range is {
			if i.Desired == state.DesiredRun && i.Ready && i.Address != "" && !down[i.Host] {
				ra.Backends = append(ra.Backends, &wire.Backend{Instance: i.ID, Addr: i.Address, Version: uint32(i.Version)})
			}
		}
		if st := a.Spec.Strategy; a.CanaryFrom != 0 && st != nil && st.Weight > 0 && st.Weight < 100 {
			ra.Weights = map[uint32]uint32{uint32(a.Version): uint32(st.Weight), uint32(a.CanaryFrom): uint32(100 - st.Weight)}
		}
		t.Apps = append(t.Apps, ra)
		t.Http = append(t.Http, &wire.HTTPRoute{Host: a.Name + "." + a.Tenant + "." + appsDomain, Path: "/", App: key})
		rs, err := snap.AppRoutes(nil, a.Tenant, a.Name)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.TCP {
				t.Tcp = append(t.Tcp, &wire.TCPRoute{Port: uint32(r.Port), App: key})
			} else {
				t.Http = append(t.Http, &wire.HTTPRoute{Host: r.Host, Path: r.Path, App: key})
			}
		}
	}
	certs, err := snap.Certs(nil)
	if err != nil {
		return nil, err
	}
	for _, c := range certs {
		if servesCert(t.Http, c) {
			t.Certs = append(t.Certs, &wire.RouteCert{Domain: c.Domain, CertPem: c.CertPEM, KeyPem: c.KeyPEM})
		}
	}
	slices.SortFunc(t.Http, func(a, b *wire.HTTPRoute) int {
		return strings.Compare(a.Host+" "+a.Path, b.Host+" "+b.Path)
	})
	slices.SortFunc(t.Tcp, func(a, b *wire.TCPRoute) int { return int(a.Port) - int(b.Port) })
	return t, nil
}

// servesCert reports whether a certificate belongs in a table: one of its
// routes is on the certificate's domain, or under its wildcard, and of the
// certificate's tenant.
func servesCert(routes []*wire.HTTPRoute, c *state.Cert) bool {
	for _, r := range routes {
		if !strings.HasPrefix(r.App, c.Tenant+"/") {
			continue
		}
		if r.Host == c.Domain {
			return true
		}
		if _, parent, ok := strings.Cut(r.Host, "."); ok && "*."+parent == c.Domain {
			return true
		}
	}
	return false
}

func (g *Gateway) routeAcked(hostID string, version uint64) {
	g.seenMu.Lock()
	defer g.seenMu.Unlock()
	if c := g.seen[hostID]; c != nil && version > c.routeAcked {
		c.routeAcked = version
	}
}

// RouteAcked returns the route table version a host's router last
// acknowledged on this node (0: none).
func (g *Gateway) RouteAcked(hostID string) uint64 {
	g.seenMu.Lock()
	defer g.seenMu.Unlock()
	if c := g.seen[hostID]; c != nil {
		return c.routeAcked
	}
	return 0
}

// RouteVersion returns the current route table version of a pool's
// routers.
func (g *Gateway) RouteVersion(pool string) (uint64, error) {
	t, err := g.routeTable(g.cfg.Store.Snapshot(), memdb.NewWatchSet(), pool)
	if err != nil {
		return 0, err
	}
	return t.Version, nil
}

// routeVersionCached is the version of the latest table this node made for
// pool (0: none yet). Callers hold seenMu; it takes only the table lock.
func (g *Gateway) routeVersionCached(pool string) uint64 {
	g.routes.mu.Lock()
	defer g.routes.mu.Unlock()
	if pt := g.routes.pools[pool]; pt != nil {
		return pt.table.Version
	}
	return 0
}

// holdMs is how long routers hold a request for an app without a ready
// instance: an app that may scale to zero wakes for it.
func holdMs(a *state.App) uint32 {
	if as := a.Spec.Autoscale; as != nil && (as.Min == 0 || slices.ContainsFunc(as.Schedules, func(s state.AutoscaleSchedule) bool { return s.Min == 0 })) {
		return uint32(ZeroHold / time.Millisecond)
	}
	return 0
}

// signalRps is the rate at which a router signals a burst of a's at once
// (RateSignal): for a QPS policy, twice what the committed count serves,
// where the autoscaler panics; for any policy at zero instances, the
// first request, which wakes it. 0: none.
func signalRps(a *state.App) uint32 {
	as := a.Spec.Autoscale
	if as == nil || a.Spec.Instances == nil {
		return 0
	}
	n := *a.Spec.Instances
	switch {
	case n == 0:
		return 1
	case as.QPS > 0:
		return uint32(min(2*int64(as.QPS)*int64(n), 1<<31))
	}
	return 0
}

// ZeroHold is how long a router holds a request for an app scaled to zero.
const ZeroHold = 30 * time.Second
