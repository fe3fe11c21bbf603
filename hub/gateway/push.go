package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// What the gateway pushes down the agents' control streams (assignments
// and route tables) is driven by one watch of the tables they are made of
// for the whole node (runPushes), not by a watch and two goroutines per
// connection: with thousands of agents connected, one write to a route
// input (the hosts table among them) woke a goroutine of every connection,
// and two idle goroutines per connection cost their stacks, which the GC
// goal doubles. A connection holds a goroutine only while it has something
// to send.

// pushers are the connections pushed to.
type pushers struct {
	mu    sync.Mutex
	conns map[*pushConn]struct{}
	kick  chan struct{} // cap 1: a connection was registered
}

// pushConn is one agent's control connection as runPushes sees it.
type pushConn struct {
	id       pki.AgentIdentity
	protocol uint32
	send     func(*wire.Envelope) error
	// fail ends the connection (the host was removed or cut off, a send
	// failed).
	fail func(error)

	// Only runPushes reads and writes these.
	hostWatch memdb.WatchSet // fires when the host record next changes
	applied   uint64         // assignment version the agent has
	last      *wire.Assignments
	regIndex  uint64 // registries index last was built at
	routeSent uint64 // route table version sent

	mu      sync.Mutex
	assign  *wire.Assignments // newest waiting to be sent
	routes  *wire.RouteTable  // newest waiting to be sent
	sending bool              // a goroutine is sending them
	done    bool              // the connection ended
}

// register adds a connection to be pushed to, starting with the current
// assignments unless the agent already applied them (applied), and the
// current route table; the returned func removes it.
func (g *Gateway) register(c *pushConn) func() {
	p := &g.push
	p.mu.Lock()
	if p.conns == nil {
		p.conns = map[*pushConn]struct{}{}
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	select {
	case p.kickCh() <- struct{}{}:
	default:
	}
	return func() { p.remove(c) }
}

// remove stops pushing to c.
func (p *pushers) remove(c *pushConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.mu.Lock()
	c.done = true
	c.mu.Unlock()
}

func (p *pushers) kickCh() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kick == nil {
		p.kick = make(chan struct{}, 1)
	}
	return p.kick
}

// all returns the registered connections.
func (p *pushers) all() []*pushConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	conns := make([]*pushConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	return conns
}

// assignTables are the tables besides the hosts' own records that change
// every connected agent's assignments: cutoff drills and registries.
var assignTables = []string{state.TableDrills, state.TableRegistries}

// runPushes pushes to the registered connections until ctx ends. Each
// pass looks at every connection, cheaply: it rebuilds assignments only
// for hosts whose record changed (each host's own watch, checked without
// blocking) or, when drills or registries changed, for all; route tables
// once per pool.
func (g *Gateway) runPushes(ctx context.Context) {
	kick := g.push.kickCh()
	var assignIdx uint64 // index of assignTables at the last pass
	for ctx.Err() == nil {
		start := time.Now()
		ws := memdb.NewWatchSet()
		snap := g.cfg.Store.Snapshot()
		aIdx := snap.WatchTables(ws, assignTables...)
		snap.WatchTables(ws, state.TableHosts) // each host's own watch tells which
		tables := map[string]*wire.RouteTable{}
		for _, c := range g.push.all() {
			if err := g.pushAssignments(snap, c, aIdx != assignIdx); err != nil {
				g.push.remove(c)
				c.fail(err)
				continue
			}
			t, ok := tables[c.id.Pool]
			if !ok {
				var err error
				if t, err = g.routeTable(snap, ws, c.id.Pool); err != nil {
					g.log.Warn("routes", "pool", c.id.Pool, "err", err)
				}
				tables[c.id.Pool] = t
			}
			if t != nil && t.Version != c.routeSent {
				c.routeSent = t.Version
				c.queue(nil, t)
			}
		}
		assignIdx = aIdx
		// A pass over many connections costs: the next one waits for a
		// multiple of it, so a burst of writes (thousands of agents
		// enrolling) is taken in few passes.
		pause := 3 * time.Since(start)
		wctx, cancel := context.WithCancel(ctx)
		select {
		case <-ws.WatchCh(wctx):
		case <-kick:
		case <-ctx.Done():
		}
		cancel()
		if pause > time.Millisecond {
			select {
			case <-time.After(min(pause, time.Second)):
			case <-ctx.Done():
			}
		}
	}
}

// pushAssignments queues the host's assignments when they changed (the
// host's AssignIndex moved, or, with others set, the registries changed
// what they carry) and returns the error that ends the connection when
// the host was removed or is cut off.
//
// Registry credentials are not kept on the agent's disk: a new connection
// gets the current set again when any instance carries some, and a change
// of the tenants' registries re-sends the set (same version) when it
// changes what the host's instances carry.
func (g *Gateway) pushAssignments(snap *state.Snapshot, c *pushConn, others bool) error {
	first := c.hostWatch == nil
	if !first && !others && !fired(c.hostWatch) {
		return nil
	}
	ws := memdb.NewWatchSet()
	h, err := snap.Host(ws, c.id.HostID)
	if err != nil {
		return err
	}
	c.hostWatch = ws
	if h == nil {
		return unauthorized("host %s was removed; enrol it again", c.id.HostID)
	}
	if snap.CutOff(nil, c.id.HostID) {
		return errCutOff
	}
	ri := snap.Index(state.TableRegistries)
	if h.AssignIndex == c.applied && !first && ri == c.regIndex {
		return nil
	}
	a, err := g.assignments(snap, h, c.protocol)
	if err != nil {
		return err
	}
	if h.AssignIndex != c.applied || (first && carriesAuth(a)) || (!first && !proto.Equal(a, c.last)) {
		c.queue(a, nil)
	}
	c.applied, c.last, c.regIndex = h.AssignIndex, a, ri
	return nil
}

// fired tells, without blocking, whether a channel of ws was closed.
func fired(ws memdb.WatchSet) bool {
	for ch := range ws {
		select {
		case <-ch:
			return true
		default:
		}
	}
	return false
}

// queue makes a (or t) the next to be sent, replacing one not sent yet
// (each is a whole set: the newest says everything), and starts a
// goroutine to send it when none is.
func (c *pushConn) queue(a *wire.Assignments, t *wire.RouteTable) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	if a != nil {
		c.assign = a
	}
	if t != nil {
		c.routes = t
	}
	if c.sending {
		return
	}
	c.sending = true
	go c.flush()
}

// flush sends what is queued until nothing is.
func (c *pushConn) flush() {
	for {
		c.mu.Lock()
		a, t := c.assign, c.routes
		c.assign, c.routes = nil, nil
		if c.done || (a == nil && t == nil) {
			c.sending = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		var err error
		if a != nil {
			err = c.send(&wire.Envelope{Msg: &wire.Envelope_Assignments{Assignments: a}})
		}
		if t != nil && err == nil {
			err = c.send(&wire.Envelope{Msg: &wire.Envelope_RouteTable{RouteTable: t}})
		}
		if err != nil {
			c.mu.Lock()
			c.sending, c.done = false, true
			c.mu.Unlock()
			c.fail(err)
			return
		}
	}
}

// latest hands the newest value put to do, one at a time and in order, on
// a goroutine that exists only while a value waits: a connection that
// rarely has one costs no goroutine in between.
type latest[T any] struct {
	mu      sync.Mutex
	next    T
	waiting bool
	running bool
}

// put makes v the next value done, replacing one waiting.
func (l *latest[T]) put(v T, do func(T)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next, l.waiting = v, true
	if l.running {
		return
	}
	l.running = true
	go func() {
		for {
			l.mu.Lock()
			if !l.waiting {
				l.running = false
				l.mu.Unlock()
				return
			}
			v := l.next
			var zero T
			l.next, l.waiting = zero, false
			l.mu.Unlock()
			do(v)
		}
	}()
}
