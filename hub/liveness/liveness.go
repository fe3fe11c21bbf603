// Package liveness decides, on the leader, whether hosts are ready, suspect
// or down from the heartbeats every hub node's gateway receives and from what
// agents' pool peers see over gossip. State changes go through Raft. Every
// node reports what its gateway saw to the leader (Reporter).
package liveness

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

// Config configures a tracker.
type Config struct {
	SuspectAfter time.Duration
	DownAfter    time.Duration
	Store        *state.Store
	// Apply commits a state command (the tracker runs on the leader).
	Apply func(ctx context.Context, msg []byte) (uint64, error)
	// Now: nil means time.Now. Every time the tracker compares is its own.
	Now    func() time.Time
	Logger *slog.Logger
}

// Tracker merges heartbeat reports and moves host states.
type Tracker struct {
	cfg   Config
	mu    sync.Mutex
	hosts map[string]*seen
	gen   uint64 // evaluate's looks: a host not seen in the last is removed

	// listed is the hosts table as evaluate last listed it, at the
	// table's index listedAt: while no write touches the table (a fleet
	// of steady agents writes none), a look reuses it instead of walking
	// the store's tree of every host five times a second. Used by Run's
	// goroutine only.
	listed   []*state.Host
	listedAt uint64
	listedOK bool
	// listedSeen holds, under mu, the entry of each host of listed: built
	// when listed is, and valid as long (an entry goes only with a host
	// gone from listed).
	listedSeen []*seen
}

// seen is what the tracker knows of one host, on its own clock.
type seen struct {
	heartbeat    time.Time // last heartbeat any hub node received
	node         string    // the hub node that received it
	certNotAfter time.Time // the certificate the agent connected with
	peerAlive    time.Time // last time a pool peer reported it alive
	peerDead     time.Time // last time a pool peer reported it dead
	routeCurrent bool      // its router serves its node's latest table ...
	routeAt      time.Time // ... as of this report
	gen          uint64    // the last look that found the host
}

// New returns a tracker.
func New(cfg Config) *Tracker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Tracker{cfg: cfg, hosts: map[string]*seen{}}
}

// Report is what a hub node sends the leader about the hosts connected to
// it. Times are ages in ms on the sender's clock, not timestamps, so hub
// nodes' clocks need not agree.
type Report struct {
	Node string `json:"node,omitempty"`
	// AgesMs: host id -> how long ago its last heartbeat arrived.
	AgesMs map[string]int64 `json:"ages_ms"`
	// CertTTLMs: host id -> how long the certificate it connected with
	// stays valid.
	CertTTLMs map[string]int64 `json:"cert_ttl_ms,omitempty"`
	// PeerAliveAgesMs and PeerDeadAgesMs: host id -> how long ago one of
	// its pool peers last reported it alive (or dead) over gossip.
	PeerAliveAgesMs map[string]int64 `json:"peer_alive_ages_ms,omitempty"`
	PeerDeadAgesMs  map[string]int64 `json:"peer_dead_ages_ms,omitempty"`
	// RouteCurrent: host id -> whether its router serves the latest route
	// table the reporting node made for its pool.
	RouteCurrent map[string]bool `json:"route_current,omitempty"`
}

func (t *Tracker) host(id string) *seen {
	s := t.hosts[id]
	if s == nil {
		s = &seen{}
		t.hosts[id] = s
	}
	return s
}

func ago(now time.Time, ms int64) time.Time { return now.Add(-time.Duration(ms) * time.Millisecond) }

// Observe merges a report received now.
func (t *Tracker) Observe(r Report) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, age := range r.AgesMs {
		s := t.host(id)
		if at := ago(now, age); at.After(s.heartbeat) {
			s.heartbeat, s.node = at, r.Node
			if ttl, ok := r.CertTTLMs[id]; ok {
				s.certNotAfter = now.Add(time.Duration(ttl) * time.Millisecond)
			}
		}
	}
	for id, age := range r.PeerAliveAgesMs {
		if s, at := t.host(id), ago(now, age); at.After(s.peerAlive) {
			s.peerAlive = at
		}
	}
	for id, cur := range r.RouteCurrent {
		s := t.host(id)
		s.routeCurrent, s.routeAt = cur, now
	}
	for id, age := range r.PeerDeadAgesMs {
		if s, at := t.host(id), ago(now, age); at.After(s.peerDead) {
			s.peerDead = at
		}
	}
}

// Info is what the leader knows of a host's connection right now.
type Info struct {
	LastHeartbeat time.Time `json:"last_heartbeat"`
	HubNode       string    `json:"hub_node"`
	CertNotAfter  time.Time `json:"cert_not_after"`
	RouteCurrent  bool      `json:"route_current,omitempty"`
	RouteAt       time.Time `json:"route_at,omitzero"`
}

// Info returns what the tracker knows of host id (zero when nothing).
func (t *Tracker) Info(id string) Info {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.hosts[id]
	if s == nil {
		return Info{}
	}
	return Info{LastHeartbeat: s.heartbeat, HubNode: s.node, CertNotAfter: s.certNotAfter, RouteCurrent: s.routeCurrent, RouteAt: s.routeAt}
}

// LastHeartbeat returns when host id last renewed its lease, as far as
// this tracker knows (zero: not while it ran).
func (t *Tracker) LastHeartbeat(id string) time.Time { return t.Info(id).LastHeartbeat }

// Observed is what the tracker knows about one host at one moment. A
// duration below zero means "never".
type Observed struct {
	Since     time.Duration // since the last heartbeat any hub node received
	PeerAlive time.Duration // since a pool peer last reported it alive
	PeerDead  time.Duration // since a pool peer last reported it dead
}

// PeerWordFresh is how long a pool peer's "alive" counts: agents repeat
// their view every 2 s, so a few of those, and never less than
// --suspect-after.
const PeerWordFresh = 6 * time.Second

// Verdict is a host's liveness state and disconnected flag.
type Verdict struct {
	State        string
	Disconnected bool
}

// Next returns the verdict for a host in current state, given what was
// observed. Only the heartbeat-driven states move; draining and drained are
// the admin's, though their disconnected flag follows the evidence.
//
//   - Heartbeats within suspectAfter: ready, connected.
//   - Silent for suspectAfter: suspect; for downAfter: down. A down host
//     comes back only with a fresh heartbeat.
//   - Silent for suspectAfter/2 while a pool peer's latest word is that the
//     agent is dead: down at once (gossip confirmed the crash).
//   - Silent for suspectAfter while a pool peer's latest word, from within
//     PeerWordFresh, is that it is alive: disconnected (a partition between
//     the host and the hub, not a crash).
func Next(current string, o Observed, suspectAfter, downAfter time.Duration) Verdict {
	aliveNewer := o.PeerAlive >= 0 && (o.PeerDead < 0 || o.PeerAlive < o.PeerDead)
	deadNewer := o.PeerDead >= 0 && (o.PeerAlive < 0 || o.PeerDead < o.PeerAlive)
	peersSeeIt := aliveNewer && o.PeerAlive < max(suspectAfter, PeerWordFresh)
	peersConfirmDead := deadNewer && o.PeerDead < downAfter
	v := Verdict{State: current, Disconnected: o.Since >= suspectAfter && peersSeeIt}
	switch current {
	case state.HostReady, state.HostSuspect, state.HostDown:
	default:
		return v
	}
	switch {
	case o.Since >= downAfter:
		v.State = state.HostDown
	case peersConfirmDead && o.Since >= suspectAfter/2:
		v.State = state.HostDown
	case o.Since >= suspectAfter:
		if current != state.HostDown { // back only with a fresh heartbeat
			v.State = state.HostSuspect
		}
	default:
		v.State = state.HostReady
	}
	return v
}

// Run evaluates hosts until ctx ends (the leader's term). A new term starts
// by crediting every host with a heartbeat now, so a leader change never
// marks hosts down by itself.
func (t *Tracker) Run(ctx context.Context) error {
	start := t.cfg.Now()
	hosts, _ := t.cfg.Store.Snapshot().Hosts(nil)
	t.mu.Lock()
	for _, h := range hosts {
		if s := t.host(h.ID); start.After(s.heartbeat) && h.State != state.HostDown {
			s.heartbeat = start
		}
	}
	t.mu.Unlock()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		t.evaluate(ctx)
	}
}

func since(now, t time.Time) time.Duration {
	if t.IsZero() {
		return -1
	}
	return now.Sub(t)
}

// maxChanges bounds the host state changes committed in one Raft entry
// (a change is ~100 bytes of JSON).
const maxChanges = 1000

// evaluate judges every host from what the tracker knows now and commits
// the changes of this look together: one entry per maxChanges hosts, not
// one per host, so that a datacenter falling silent is marked suspect and
// down in a few commits instead of thousands in a row.
func (t *Tracker) evaluate(ctx context.Context) {
	snap := t.cfg.Store.Snapshot()
	hosts, relisted, err := t.hostsOf(snap)
	if err != nil {
		return
	}
	now := t.cfg.Now()
	var changes []state.HostStateChange
	t.mu.Lock()
	t.gen++
	if relisted || len(t.listedSeen) != len(hosts) {
		t.listedSeen = t.listedSeen[:0]
		for _, h := range hosts {
			t.listedSeen = append(t.listedSeen, t.host(h.ID))
		}
	}
	for i, h := range hosts {
		s := t.listedSeen[i]
		s.gen = t.gen
		heartbeat := s.heartbeat
		if heartbeat.IsZero() {
			heartbeat = h.EnrolledAt // enrolled, never heard from
		}
		o := Observed{Since: now.Sub(heartbeat), PeerAlive: since(now, s.peerAlive), PeerDead: since(now, s.peerDead)}
		v := Next(h.State, o, t.cfg.SuspectAfter, t.cfg.DownAfter)
		if v.State == h.State && v.Disconnected == h.Disconnected {
			continue
		}
		reason := "heartbeats resumed"
		switch {
		case v.State == state.HostDown && o.Since < t.cfg.DownAfter:
			reason = "no heartbeat for " + o.Since.Round(100*time.Millisecond).String() + " and its pool peers confirm the agent dead"
		case v.State != state.HostReady:
			reason = "no heartbeat for " + o.Since.Round(100*time.Millisecond).String()
		}
		changes = append(changes, state.HostStateChange{ID: h.ID, State: v.State, Disconnected: v.Disconnected, Reason: reason, From: h.State})
	}
	// Entries of hosts no longer in the store (or never in it: reports
	// name what agents say), when there are any.
	if relisted || len(t.hosts) != len(hosts) {
		for id, s := range t.hosts {
			if s.gen != t.gen {
				delete(t.hosts, id)
			}
		}
	}
	t.mu.Unlock()
	for len(changes) > 0 {
		n := min(len(changes), maxChanges)
		t.commit(ctx, snap, changes[:n], now)
		changes = changes[n:]
	}
}

// hostsOf returns the hosts of snap, listed again (relisted) only when
// the hosts table has been written since the last list. Records are
// immutable, so an unchanged table index means the same records.
func (t *Tracker) hostsOf(snap *state.Snapshot) (hosts []*state.Host, relisted bool, err error) {
	at := snap.Index(state.TableHosts)
	if t.listedOK && at == t.listedAt {
		return t.listed, false, nil
	}
	if hosts, err = snap.Hosts(nil); err != nil {
		return nil, false, err
	}
	t.listed, t.listedAt, t.listedOK = hosts, at, true
	return hosts, true, nil
}

// commit commits one batch of state changes and logs those that took: a
// change made from an older look than the state it meets (an admin drained
// the host meanwhile) is skipped by the FSM and judged again at the next
// tick, from the new state.
func (t *Tracker) commit(ctx context.Context, before *state.Snapshot, changes []state.HostStateChange, now time.Time) {
	msg, err := state.Encode(state.HostStatesType, &state.HostStatesRequest{Changes: changes, Time: now.UTC()})
	if err != nil {
		t.cfg.Logger.Warn("host states", "err", err)
		return
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = t.cfg.Apply(actx, msg)
	cancel()
	if err != nil {
		t.cfg.Logger.Warn("host states", "hosts", len(changes), "err", err)
		return
	}
	after := t.cfg.Store.Snapshot()
	for _, c := range changes {
		h, _ := after.Host(nil, c.ID)
		if h == nil || h.State != c.State || h.Disconnected != c.Disconnected {
			t.cfg.Logger.Debug("host state changed meanwhile", "host", c.ID, "to", c.State)
			continue
		}
		name := c.ID
		if old, _ := before.Host(nil, c.ID); old != nil {
			name = old.Name
		}
		t.cfg.Logger.Info("host state", "host", name, "from", c.From, "to", c.State, "disconnected", c.Disconnected, "reason", c.Reason)
	}
}
