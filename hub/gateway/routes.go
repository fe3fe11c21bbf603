package gateway

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// routeTables keeps each pool's route table for the pool's agents
// connected here. One watcher per pool rebuilds it when what it is made
// of changes, and wakes the pool's pushers (push.go) when it publishes a
// new table: a write wakes one goroutine per pool, not one per agent (with
// thousands of agents, a wake of every agent per host write was a fifth
// of the node's CPU while they enrolled).
type routeTables struct {
	mu    sync.Mutex
	pools map[string]*poolFeed
}

// poolFeed is one pool's table and its watcher, which runs while agents
// of the pool are connected here.
type poolFeed struct {
	latest  *poolTable // under routeTables.mu
	agents  int
	pushers map[*pusher]bool // under routeTables.mu: woken by a new table
	stop    context.CancelFunc
	done    chan struct{} // closed when the watcher has stopped
}

// poolTable is a pool's table as of a store index; next is closed when
// a newer table replaces it. A feed's first poolTable has no table yet.
type poolTable struct {
	index uint64 // store index the table was checked against
	table *wire.RouteTable
	// The table in its envelope, encoded once for all the pool's agents
	// (a table of 1,000 apps of 50 instances is ~1.8 MB, and encoding it
	// takes ~9 ms), when the first of them needs it whole (wholeFrames):
	// one frame, or the parts of a table past the agents' frame limit
	// (wire.SplitRouteTable). Agents that follow the deltas never do.
	wholeOnce sync.Once
	frames    [][]byte
	framesErr error
	// size is about the table's encoded size: its apps' and
	// certificates' encodings summed.
	size int
	next chan struct{}

	// memo is what the table was built from, for the next build (owned
	// by the feed's watcher, under routeTables.mu).
	memo *routeMemo

	// What deltas are made of (routedelta.go): the table by app, its
	// certificates encoded, and what the last tables changed.
	parts   map[string]*appPart
	certs   []byte
	history []tableChange
	deltaMu sync.Mutex
	deltas  map[uint64][][]byte // delta frames by base version, made when first asked
}

// routeInputs are the tables a route table is built from.
var routeInputs = []string{state.TableApps, state.TableInstances, state.TableRoutes, state.TableCerts, state.TableHosts, state.TableDrills}

// joinRoutes returns the feed of pool, starting its watcher for the first
// agent; leave when the agent's session ends.
func (g *Gateway) joinRoutes(pool string) (f *poolFeed, leave func()) {
	g.routes.mu.Lock()
	defer g.routes.mu.Unlock()
	if g.routes.pools == nil {
		g.routes.pools = map[string]*poolFeed{}
	}
	f = g.routes.pools[pool]
	if f == nil {
		ctx, stop := context.WithCancel(context.Background())
		f = &poolFeed{latest: &poolTable{next: make(chan struct{})}, stop: stop, done: make(chan struct{})}
		g.routes.pools[pool] = f
		go g.watchRoutes(ctx, f, pool)
	}
	f.agents++
	return f, func() {
		g.routes.mu.Lock()
		defer g.routes.mu.Unlock()
		if f.agents--; f.agents == 0 {
			f.stop()
			if g.routes.pools[pool] == f {
				delete(g.routes.pools, pool)
			}
		}
	}
}

func (g *Gateway) current(f *poolFeed) *poolTable {
	g.routes.mu.Lock()
	defer g.routes.mu.Unlock()
	return f.latest
}

// watchRoutes rebuilds pool's table whenever its inputs change, until ctx
// ends. Its version is the store index of the last change that altered
// it, so an unrelated write (a heartbeat's host update, say) publishes
// nothing.
//
// A build starts no sooner after the last one ended than that one took.
// Small tables build in microseconds and this changes nothing for them;
// a table of 1,000 apps of 50 instances took ~15 ms, and a busy cluster
// changes what it is made of with almost every write: without a pause,
// the feed of each pool with agents here would take a whole core, and
// send every table to every agent of the pool.
func (g *Gateway) watchRoutes(ctx context.Context, f *poolFeed, pool string) {
	defer close(f.done)
	var next time.Time // the next build's earliest start
	for ctx.Err() == nil {
		if wait := time.Until(next); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		ws := memdb.NewWatchSet()
		snap := g.cfg.Store.Watch(ws)
		idx := snap.WatchTables(ws, routeInputs...)
		start := time.Now()
		err := g.refreshRoutes(f, snap, idx, pool)
		end := time.Now()
		next = end.Add(end.Sub(start))
		if err != nil {
			g.log.Warn("route table", "pool", pool, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		ws.WatchCtx(ctx) //nolint:errcheck // ends with ctx
	}
}

// refreshRoutes publishes pool's table as of snap (index idx) when it
// differs from the latest.
func (g *Gateway) refreshRoutes(f *poolFeed, snap *state.Snapshot, idx uint64, pool string) error {
	cur := g.current(f)
	if cur.table != nil && cur.index >= idx {
		return nil
	}
	g.routes.mu.Lock()
	prev := cur.memo
	g.routes.mu.Unlock()
	t, memo, err := g.buildRoutes(snap, pool, g.cfg.AppsDomain, prev)
	if err != nil {
		return err
	}
	parts := memo.parts()
	certs, err := certsSum(t)
	if err != nil {
		return err
	}
	var change tableChange
	if cur.table != nil {
		change = diffParts(cur, parts, certs)
		if len(change.apps) == 0 && !change.certs {
			g.routes.mu.Lock()
			cur.index, cur.memo = idx, memo
			g.routes.mu.Unlock()
			return nil
		}
	}
	t.Version = idx
	size := len(certs)
	for _, p := range parts {
		size += len(p.sum)
	}
	g.routes.mu.Lock()
	defer g.routes.mu.Unlock()
	pt := &poolTable{index: idx, table: t, size: size, next: make(chan struct{}), memo: memo, parts: parts, certs: certs}
	if cur.table != nil {
		pt.history = append(cur.history[max(0, len(cur.history)-(keptChanges-1)):len(cur.history):len(cur.history)], change)
	}
	f.latest = pt
	close(cur.next)
	for p := range f.pushers {
		p.kick()
	}
	return nil
}

// wholeFrames returns the frames of pt's whole table, encoded by the
// first caller. A table that cannot be sent (an app's routes past a
// frame alone, or more parts than an agent joins) is logged once; the
// pool's routers keep the table they hold.
func (pt *poolTable) wholeFrames(g *Gateway, pool string) ([][]byte, error) {
	pt.wholeOnce.Do(func() {
		pt.frames, pt.framesErr = tableFrames(pt.table, g.maxTableFrame)
		if pt.framesErr != nil {
			g.log.Warn("route table not sent; the pool's routers keep the one they hold", "pool", pool, "version", pt.table.Version, "err", pt.framesErr)
		}
	})
	return pt.frames, pt.framesErr
}

// tableFrames encodes t as the frames it is sent in: one, or its parts
// when it is larger than limit (the agents' frame limit: they refuse a
// larger frame and reconnect).
func tableFrames(t *wire.RouteTable, limit int) ([][]byte, error) {
	parts, err := wire.SplitRouteTable(t, limit)
	if err != nil {
		return nil, err
	}
	frames := make([][]byte, len(parts))
	for i, part := range parts {
		if frames[i], err = wire.EncodeFrame(&wire.Envelope{Msg: &wire.Envelope_RouteTable{RouteTable: part}}); err != nil {
			return nil, err
		}
	}
	return frames, nil
}

// framesSize is the bytes of frames.
func framesSize(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	return n
}

// buildRouteTable makes the route table of a pool's routers: the routes
// of every app that lists the pool in pools or failover_pools, names no
// pools at all, or has instances on the pool's hosts, each to the app's
// ready instances wherever they run (not on hosts known down).
func buildRouteTable(snap *state.Snapshot, pool, appsDomain string) (*wire.RouteTable, error) {
	t, _, err := buildRoutes(snap, pool, appsDomain, nil)
	return t, err
}

// routeMemo is what a pool's table was built from: the next build
// rebuilds only the parts of apps whose record or instances changed
// since (a busy cluster changes a few apps a write; at 1,000 apps of 50
// instances a whole build took ~15 ms), and every part when the routes
// or the hosts known down changed.
type routeMemo struct {
	routes uint64          // the routes table's index
	down   map[string]bool // the hosts known down
	apps   map[string]*builtApp
}

// builtApp is one app's part of a table, and what it was built from:
// the app's record (never changed once stored: a write stores a copy)
// and the index of its instances (state.AppInstancesIndex).
type builtApp struct {
	rec       *state.App
	instances uint64
	part      *appPart // nil: not routed on the pool
}

// buildRoutes is buildRouteTable, reusing the parts of prev (nil: none)
// that still hold. It returns the table and what the next build reuses.
func buildRoutes(snap *state.Snapshot, pool, appsDomain string, prev *routeMemo) (*wire.RouteTable, *routeMemo, error) {
	// Instances on lost hosts (down, or held by a cutoff drill) get no
	// traffic: whatever they last reported no longer holds.
	down, err := snap.LostHosts(nil)
	if err != nil {
		return nil, nil, err
	}
	memo := &routeMemo{routes: snap.Index(state.TableRoutes), down: down}
	if prev != nil && (prev.routes != memo.routes || !maps.Equal(prev.down, down)) {
		prev = nil
	}
	apps, err := snap.Apps(nil, "")
	if err != nil {
		return nil, nil, err
	}
	memo.apps = make(map[string]*builtApp, len(apps))
	pools := map[string]string{} // host -> pool, read when asked
	t := &wire.RouteTable{}
	for _, a := range apps {
		key := a.Tenant + "/" + a.Name
		inst := snap.AppInstancesIndex(nil, a.Tenant, a.Name)
		b := prev.reuse(key, a, inst)
		if b == nil {
			part, err := routeApp(snap, a, key, pool, appsDomain, down, pools)
			if err != nil {
				return nil, nil, err
			}
			b = &builtApp{rec: a, instances: inst, part: part}
		}
		memo.apps[key] = b
		if p := b.part; p != nil {
			t.Apps = append(t.Apps, p.app)
			t.Http = append(t.Http, p.http...)
			t.Tcp = append(t.Tcp, p.tcp...)
		}
	}
	certs, err := snap.Certs(nil)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range certs {
		if servesCert(t.Http, c) {
			t.Certs = append(t.Certs, &wire.RouteCert{Domain: c.Domain, CertPem: c.CertPEM, KeyPem: c.KeyPEM})
		}
	}
	wire.SortRouteTable(t)
	return t, memo, nil
}

// reuse returns the app's build in m when it was built from the same
// record and instances.
func (m *routeMemo) reuse(key string, a *state.App, instances uint64) *builtApp {
	if m == nil {
		return nil
	}
	if b := m.apps[key]; b != nil && b.rec == a && b.instances == instances {
		return b
	}
	return nil
}

// parts returns the parts of the apps routed, by app.
func (m *routeMemo) parts() map[string]*appPart {
	out := make(map[string]*appPart, len(m.apps))
	for k, b := range m.apps {
		if b.part != nil {
			out[k] = b.part
		}
	}
	return out
}

// routeApp builds a's part of pool's table (nil: a is not routed there),
// its routes in order, and its encoding. pools caches hosts' pools.
func routeApp(snap *state.Snapshot, a *state.App, key, pool, appsDomain string, down map[string]bool, pools map[string]string) (*appPart, error) {
	is, err := snap.AppInstances(nil, a.Tenant, a.Name)
	if err != nil {
		return nil, err
	}
	if len(a.Spec.Pools) > 0 && !slices.Contains(a.Spec.Pools, pool) && !slices.Contains(a.Spec.FailoverPools, pool) {
		// Routed here only with an instance on the pool's hosts.
		in := false
		for _, i := range is {
			p, ok := pools[i.Host]
			if !ok {
				h, err := snap.Host(nil, i.Host)
				if err != nil {
					return nil, err
				}
				if h != nil {
					p = h.Pool
				}
				pools[i.Host] = p
			}
			if in = p == pool; in {
				break
			}
		}
		if !in {
			return nil, nil
		}
	}
	ra := &wire.RouteApp{Key: key, HoldMs: holdMs(a), SignalRps: signalRps(a)}
	for _, i := range is {
		if i.Desired == state.DesiredRun && i.Ready && i.Address != "" && !down[i.Host] {
			ra.Backends = append(ra.Backends, &wire.Backend{Instance: i.ID, Addr: i.Address, Version: uint32(i.Version)})
		}
	}
	if st := a.Spec.Strategy; a.CanaryFrom != 0 && st != nil && st.Weight > 0 && st.Weight < 100 {
		ra.Weights = map[uint32]uint32{uint32(a.Version): uint32(st.Weight), uint32(a.CanaryFrom): uint32(100 - st.Weight)}
	}
	p := &appPart{app: ra, http: []*wire.HTTPRoute{{Host: a.Name + "." + a.Tenant + "." + appsDomain, Path: "/", App: key}}}
	rs, err := snap.AppRoutes(nil, a.Tenant, a.Name)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r.TCP {
			p.tcp = append(p.tcp, &wire.TCPRoute{Port: uint32(r.Port), App: key})
		} else {
			p.http = append(p.http, &wire.HTTPRoute{Host: r.Host, Path: r.Path, App: key})
		}
	}
	// The part's routes in the table's order, so that its encoding (what
	// tells a changed part) does not depend on the order rows were read.
	one := &wire.RouteTable{Apps: []*wire.RouteApp{ra}, Http: p.http, Tcp: p.tcp}
	wire.SortRouteTable(one)
	p.sum, err = proto.MarshalOptions{Deterministic: true}.Marshal(one)
	return p, err
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

// routeVersionCached is the version of the latest table this node made for
// pool (0: none yet). Callers hold seenMu; it takes only the table lock.
func (g *Gateway) routeVersionCached(pool string) uint64 {
	g.routes.mu.Lock()
	defer g.routes.mu.Unlock()
	if f := g.routes.pools[pool]; f != nil && f.latest.table != nil {
		return f.latest.table.Version
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
