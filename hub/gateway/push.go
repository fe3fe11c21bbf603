package gateway

import (
	"context"
	"sync"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// A connected agent is sent, on its control stream:
//
//   - the full set of instances it should run whenever that set changes
//     (the host's AssignIndex moves), starting with the current one
//     unless the agent already applied it, and never one older than the
//     agent's (a replica behind the cluster waits until it catches up).
//     A host removed while connected is cut off as soon as this replica
//     applies the removal. Registry credentials are not kept on the
//     agent's disk: a new connection gets the current set again when any
//     instance carries some, and a change of the tenants' registries
//     re-sends the set (same version) when it changes what the host's
//     instances carry.
//   - its pool's route table whenever that changes (the pool's feed,
//     routes.go).
//
// No goroutine waits per agent for these. One watcher per node reads the
// store's log of changes, which names every host whose record a command
// wrote or removed, and wakes the pushers of those hosts; a pool's route
// feed wakes its pool's pushers when it publishes a table. A woken
// pusher runs a goroutine until it has nothing left to send. With
// thousands of idle agents on a node, a goroutine parked per agent was a
// stack and a watch set each, for nothing.

// pushes is the node's pushers, by host, and the watcher of the log of
// changes, which runs while any agent is connected here.
type pushes struct {
	mu    sync.Mutex
	hosts map[string][]*pusher // an agent reconnecting may briefly have two
	n     int
	stop  context.CancelFunc
}

// pusher is one agent session's push state.
type pusher struct {
	g        *Gateway
	ctx      context.Context // the session's
	s        *wire.Stream
	id       pki.AgentIdentity
	protocol uint32
	feed     *poolFeed
	leave    func()      // leaves the feed
	fail     func(error) // ends the session when a push fails

	mu      sync.Mutex
	running bool // a goroutine is pushing
	again   bool // something changed while it was
	ended   bool
	whole   bool // the agent asked for a whole route table

	// Owned by the running goroutine.
	first            bool
	applied          uint64 // the set the agent holds
	last             *wire.Assignments
	regIndex, routes uint64
	partsRefused     bool // a table was not sent: in parts, past the agent's protocol
}

// startPush starts pushing to the agent of id over s, whose last applied
// set is applied, until ctx ends or end is called. A failed push (the
// host removed or cut off, the stream broken) is given to fail, once.
func (g *Gateway) startPush(ctx context.Context, s *wire.Stream, id pki.AgentIdentity, protocol uint32, applied uint64, fail func(error)) *pusher {
	p := &pusher{g: g, ctx: ctx, s: s, id: id, protocol: protocol, fail: fail, first: true, applied: applied}
	f, leave := g.joinRoutes(id.Pool)
	p.feed = f
	g.routes.mu.Lock()
	if f.pushers == nil {
		f.pushers = map[*pusher]bool{}
	}
	f.pushers[p] = true
	g.routes.mu.Unlock()
	p.leave = leave
	g.addPusher(p)
	p.kick()
	return p
}

// end stops pushing.
func (p *pusher) end() {
	p.mu.Lock()
	p.ended = true
	p.mu.Unlock()
	p.g.removePusher(p)
	p.g.routes.mu.Lock()
	delete(p.feed.pushers, p)
	p.g.routes.mu.Unlock()
	p.leave()
}

// sendWhole has the next route table go whole: the agent could not apply
// a delta.
func (p *pusher) sendWhole() {
	p.mu.Lock()
	p.whole = true
	p.mu.Unlock()
	p.kick()
}

// addPusher registers p, starting the node's watcher for the first one.
// The watcher starts from the store as it is now, before p's first pass
// reads it, so that no change falls between the two.
func (g *Gateway) addPusher(p *pusher) {
	ps := &g.pushes
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.hosts == nil {
		ps.hosts = map[string][]*pusher{}
	}
	ps.hosts[p.id.HostID] = append(ps.hosts[p.id.HostID], p)
	if ps.n++; ps.n == 1 {
		// A previous watcher may not have seen its end yet: it stops at
		// its next wake, and a kick it gives meanwhile is only one more.
		ctx, stop := context.WithCancel(context.Background())
		ps.stop = stop
		go g.watchHosts(ctx, g.cfg.Store.Snapshot())
	}
}

func (g *Gateway) removePusher(p *pusher) {
	ps := &g.pushes
	ps.mu.Lock()
	defer ps.mu.Unlock()
	list := ps.hosts[p.id.HostID]
	for i, q := range list {
		if q == p {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(ps.hosts, p.id.HostID)
	} else {
		ps.hosts[p.id.HostID] = list
	}
	if ps.n--; ps.n == 0 {
		ps.stop()
	}
}

// watchHosts wakes the pushers of every host the log of changes names
// after the store's state in from, and every pusher when the log falls
// short (a restore, or a watcher left far behind) or when what every
// host's set depends on changes (the tenants' registries, the drills
// that cut hosts off), until ctx ends.
func (g *Gateway) watchHosts(ctx context.Context, from *state.Snapshot) {
	ps := &g.pushes
	since := from.LatestIndex()
	regs, drills := from.Index(state.TableRegistries), from.Index(state.TableDrills)
	for ctx.Err() == nil {
		ws := memdb.NewWatchSet()
		snap := g.cfg.Store.Watch(ws)
		idx := snap.LatestIndex()
		r := snap.WatchTables(ws, state.TableRegistries)
		d := snap.WatchTables(ws, state.TableDrills)
		all := r != regs || d != drills
		regs, drills = r, d
		ps.mu.Lock()
		if !all {
			known, err := snap.ChangedSince(ws, since, nil, func(host string) {
				for _, p := range ps.hosts[host] {
					p.kick()
				}
			})
			all = err != nil || !known
			if err != nil {
				g.log.Warn("log of changes", "err", err)
			}
		}
		if all {
			if err := snap.WatchChanges(ws); err != nil {
				g.log.Warn("log of changes", "err", err)
			}
			for _, list := range ps.hosts {
				for _, p := range list {
					p.kick()
				}
			}
		}
		ps.mu.Unlock()
		since = idx
		ws.WatchCtx(ctx) //nolint:errcheck // ends with ctx
	}
}

// kick has p push what changed: now, or again after the push running.
func (p *pusher) kick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	if p.running {
		p.again = true
		return
	}
	p.running = true
	go p.run()
}

// run pushes until nothing changed since its last pass.
func (p *pusher) run() {
	for {
		err := p.pass()
		p.mu.Lock()
		if err != nil && p.ctx.Err() == nil && !p.ended {
			p.ended = true
			p.mu.Unlock()
			p.fail(err)
			p.mu.Lock()
		}
		if !p.again || p.ended {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.again = false
		p.mu.Unlock()
	}
}

// pass sends what changed since the last: the host's set, and its pool's
// route table.
func (p *pusher) pass() error {
	if p.ctx.Err() != nil {
		return nil
	}
	p.mu.Lock()
	if p.whole {
		p.whole, p.routes = false, 0
	}
	p.mu.Unlock()
	g := p.g
	snap := g.cfg.Store.Snapshot()
	h, err := snap.Host(nil, p.id.HostID)
	if err != nil {
		return err
	}
	if h == nil {
		return unauthorized("host %s was removed; enrol it again", p.id.HostID)
	}
	if snap.CutOff(nil, p.id.HostID) {
		return errCutOff
	}
	ri := snap.Index(state.TableRegistries)
	// behind: the agent applied a newer set than this replica holds (from
	// another node, or from this one before it restarted from an older
	// snapshot), and sending this one would undo instances. The set goes
	// once this node catches up (the log names the host again).
	behind := h.AssignIndex < p.applied
	if !behind && (h.AssignIndex != p.applied || p.first || ri != p.regIndex) {
		a, err := g.assignments(snap, h, p.protocol)
		if err != nil {
			return err
		}
		send := h.AssignIndex != p.applied || (p.first && carriesAuth(a)) || (!p.first && !proto.Equal(a, p.last))
		if send {
			if err := p.s.Send(&wire.Envelope{Msg: &wire.Envelope_Assignments{Assignments: a}}); err != nil {
				return err
			}
		}
		p.applied, p.last, p.regIndex, p.first = h.AssignIndex, a, ri, false
	}
	pt := g.current(p.feed)
	if pt.table != nil && pt.table.Version != p.routes {
		var frames [][]byte
		if p.routes != 0 && p.protocol >= wire.ProtocolRouteDeltas {
			// The agent holds the table sent last (a stream delivers in
			// order, and an agent applies every table it is sent).
			frames = pt.deltaFrom(p.routes, g.maxTableFrame)
		}
		if frames == nil {
			var err error
			if frames, err = pt.wholeFrames(g, p.id.Pool); err != nil {
				return nil // logged once for the table
			}
		}
		if len(frames) > 1 && p.protocol < wire.ProtocolRouteParts {
			// Its router keeps the table it holds.
			if !p.partsRefused {
				g.log.Warn("route table not sent: it is past one frame, and the agent's protocol takes no table in parts; upgrade the agent",
					"host", p.id.HostID, "protocol", p.protocol, "version", pt.table.Version, "parts", len(frames))
				p.partsRefused = true
			}
			return nil
		}
		for _, f := range frames {
			if err := p.s.SendFrame(f); err != nil {
				return err
			}
		}
		p.routes = pt.table.Version
	}
	return nil
}
