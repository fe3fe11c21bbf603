package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/providers"
)

// Provisioner is the leader's loop that keeps provisioned pools' machines.
// Run it while this node leads; Wake it when machines, hosts, pools,
// accounts or pending instances change.
type Provisioner struct {
	cfg  Config
	log  *slog.Logger
	m    *Metrics
	wake chan struct{}
	wg   sync.WaitGroup // actions in flight

	// mu guards what follows; it is never held across a cloud call or a
	// store call.
	mu       sync.Mutex
	started  time.Time
	seq      uint64          // orders view reads, listings and actions' ends
	inflight map[string]bool // action keys: a machine id, "list/"+account, "shape/"+pool, "orphan/"+account+"/"+provider id
	running  int
	accounts map[string]*account           // by name
	clients  map[string]providers.Provider // the accounts this round may call
	lists    map[string]*listing           // by account name
	shapes   map[string]shapeEntry
	// doneSeq is, per machine id, seq when its last action ended;
	// deletingSeq when this node first saw it deleting without a cloud id.
	// A deletion looks the machine up by its tag in a listing begun after
	// both, so no create of this node can still land unseen.
	doneSeq     map[string]uint64
	deletingSeq map[string]uint64
	// orphans is when each unknown cloud machine ("account/provider id")
	// was first seen.
	orphans map[string]time.Time
	// told is, per event subject, the error last recorded as an event,
	// so that a failure is told once, not once per retry.
	told      map[string]string
	seenReady map[string]bool
}

// account is an open provider account with its backoff.
type account struct {
	version uint64
	prov    providers.Provider
	delay   time.Duration // the last backoff; 0 after a success
	until   time.Time     // no call before
	bumped  time.Time     // when delay last grew: failures of calls begun before it are one failure
	// refused is the account's bad-credentials error while it pauses the
	// account: machines waiting for a create fail with it.
	refused error
}

// listing is an account's machines as one List call saw them.
type listing struct {
	version  uint64 // the account's
	startSeq uint64
	doneSeq  uint64
	at       time.Time
	machines []providers.Machine
	deleted  map[string]bool // provider ids this node deleted since
}

type shapeEntry struct {
	key string // the pool's and the account's versions
	r   providers.Resources
	ok  bool
}

// New returns a Provisioner; cfg must Validate.
func New(cfg Config) (*Provisioner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Provisioner{cfg: cfg, log: cfg.Logger, m: cfg.Metrics, wake: make(chan struct{}, 1)}
	p.reset()
	return p, nil
}

// reset forgets what a previous term learnt: a new term redoes everything
// from the state and the clouds' listings.
func (p *Provisioner) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started = p.cfg.Now()
	p.inflight, p.accounts, p.lists = map[string]bool{}, map[string]*account{}, map[string]*listing{}
	p.shapes, p.doneSeq, p.deletingSeq = map[string]shapeEntry{}, map[string]uint64{}, map[string]uint64{}
	p.orphans, p.told, p.seenReady = map[string]time.Time{}, map[string]string{}, map[string]bool{}
}

// Wake makes the loop look at the state now rather than at its next
// tick. It never blocks. The hub calls it on changes to machines, hosts,
// pools, provider accounts and apps' pending instances.
func (p *Provisioner) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run keeps provisioned pools' machines until ctx ends (the end of this
// node's term), then waits for its cloud calls to return (they share ctx)
// and returns nil. It starts from the state alone: a Provisioner may Run
// again in a later term, one Run at a time.
func (p *Provisioner) Run(ctx context.Context) error {
	p.reset()
	ctx, cancel := context.WithCancel(ctx)
	defer p.wg.Wait()
	defer cancel()
	t := time.NewTicker(p.cfg.Tick)
	defer t.Stop()
	for {
		p.round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-p.wake:
		}
	}
}

// round reads the state once, decides, and acts: store writes inline,
// cloud calls started in the background (bounded, one per machine).
func (p *Provisioner) round(ctx context.Context) {
	// Numbered before the read: an action that ends after this number
	// may have written what the view does not show.
	p.mu.Lock()
	p.seq++
	viewSeq := p.seq
	p.mu.Unlock()
	vctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	v, err := p.cfg.Store.View(vctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("read state", "err", err)
		}
		return
	}
	now := p.cfg.Now()
	x := newIndex(v)
	p.m.count(v.Machines)
	p.observeReady(v)
	p.syncAccounts(ctx, x, now)
	p.callable(now)
	p.listDue(ctx, x, now)
	for _, m := range v.Machines {
		if !p.busy(m.ID, viewSeq) {
			p.machine(ctx, x, m, now)
		}
	}
	for _, pool := range v.Pools {
		if pool.Provision != nil {
			p.pool(ctx, x, pool, now)
		}
	}
	p.collect(ctx, x, now, viewSeq)
	p.prune(x)
}

// index is a View with lookups.
type index struct {
	v        *View
	accounts map[string]*state.ProviderAccount
	pools    map[string]*state.Pool
	machines map[string]*state.Machine
	byPool   map[string][]*state.Machine
	hosts    map[string]*state.Host
	hostOf   map[string]*state.Host // by machine id
	byCloud  map[string]*state.Machine
}

func newIndex(v *View) *index {
	x := &index{v: v, accounts: map[string]*state.ProviderAccount{}, pools: map[string]*state.Pool{},
		machines: map[string]*state.Machine{}, byPool: map[string][]*state.Machine{}, hosts: map[string]*state.Host{},
		hostOf: map[string]*state.Host{}, byCloud: map[string]*state.Machine{}}
	for _, a := range v.Accounts {
		x.accounts[a.Name] = a
	}
	for _, p := range v.Pools {
		x.pools[p.Name] = p
	}
	for _, h := range v.Hosts {
		x.hosts[h.ID] = h
		if h.Machine != "" {
			x.hostOf[h.Machine] = h
		}
	}
	for _, m := range v.Machines {
		x.machines[m.ID] = m
		x.byPool[m.Pool] = append(x.byPool[m.Pool], m)
		if h := x.hosts[m.Host]; h != nil && x.hostOf[m.ID] == nil {
			x.hostOf[m.ID] = h
		}
		if m.ProviderID != "" {
			x.byCloud[m.Provider+"/"+m.ProviderID] = m
		}
	}
	return x
}

// busy reports whether an action for key is in flight, or ended after
// the view numbered viewSeq was read (the view is stale for it).
func (p *Provisioner) busy(key string, viewSeq uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inflight[key] || p.doneSeq[key] > viewSeq
}

// start runs f in the background under key unless an action with that
// key is in flight or Parallel actions are; it reports whether it did.
func (p *Provisioner) start(ctx context.Context, key string, f func(ctx context.Context)) bool {
	p.mu.Lock()
	if p.inflight[key] || p.running >= p.cfg.Parallel || ctx.Err() != nil {
		p.mu.Unlock()
		return false
	}
	p.inflight[key] = true
	p.running++
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		defer p.Wake()
		defer func() {
			p.mu.Lock()
			delete(p.inflight, key)
			p.running--
			p.seq++
			p.doneSeq[key] = p.seq
			p.mu.Unlock()
		}()
		f(ctx)
	}()
	return true
}

// write runs one store write with a timeout; a conflict (the state moved
// on since the view) is expected and only logged at debug level.
func (p *Provisioner) write(ctx context.Context, what string, f func(ctx context.Context) error) bool {
	wctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	defer cancel()
	err := f(wctx)
	switch {
	case err == nil:
		return true
	case ctx.Err() != nil:
	case isConflict(err):
		p.log.Debug("state moved on; deciding again", "write", what, "err", err)
	default:
		p.log.Warn("write state", "write", what, "err", err)
	}
	return false
}

// set moves a machine on, guarded by its state in the view.
func (p *Provisioner) set(ctx context.Context, m *state.Machine, to, errText string, now time.Time) bool {
	c := Change{ID: m.ID, From: m.State, State: to, Error: errText, Time: now}
	ok := p.write(ctx, "machine "+m.ID+" "+m.State+"→"+to, func(ctx context.Context) error { return p.cfg.Store.SetMachine(ctx, c) })
	if ok && to != m.State {
		p.log.Info("machine", "id", m.ID, "pool", m.Pool, "from", m.State, "to", to, "error", errText)
	}
	return ok
}

// observeReady records the create-to-ready time of machines that became
// ready during this term, whoever moved them (this loop or the FSM), and
// forgets their pools' last failure.
func (p *Provisioner) observeReady(v *View) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range v.Machines {
		if m.State != state.MachineReady || p.seenReady[m.ID] {
			continue
		}
		p.seenReady[m.ID] = true
		if !m.StateSince.Before(p.started) && !m.CreatedAt.IsZero() {
			p.m.ready.Observe(m.StateSince.Sub(m.CreatedAt).Seconds())
			delete(p.told, m.Pool) // the pool works again: its next failure is news
		}
	}
}

// prune forgets what concerns machines and accounts that are gone.
func (p *Provisioner) prune(x *index) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.seenReady {
		if x.machines[id] == nil {
			delete(p.seenReady, id)
		}
	}
	for id := range p.deletingSeq {
		if x.machines[id] == nil {
			delete(p.deletingSeq, id)
		}
	}
	for key := range p.doneSeq {
		if x.machines[key] == nil && !p.inflight[key] {
			delete(p.doneSeq, key)
		}
	}
	for name := range p.accounts {
		if x.accounts[name] == nil {
			delete(p.accounts, name)
			delete(p.lists, name)
		}
	}
	for pool := range p.shapes {
		if x.pools[pool] == nil {
			delete(p.shapes, pool)
		}
	}
}

// newMachineID names a machine after its pool: it is also its cloud's
// client token (EC2 takes up to 64 ASCII characters) and often its
// hostname.
func newMachineID(pool string) string {
	if len(pool) > 40 {
		pool = pool[:40]
	}
	return pool + "-" + randomHex(5)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
