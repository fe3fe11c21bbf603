package autoscale

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/series"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/traffic"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Snapshotter hands out read-only views of the state store.
type Snapshotter interface {
	Snapshot() *state.Snapshot
}

// Committer commits a state command through Raft.
type Committer interface {
	Apply(ctx context.Context, msg []byte) (uint64, error)
}

// Traffic is the leader's routers' counts, per app ("tenant/app") per
// second.
type Traffic interface {
	Since(app string, since time.Time) []traffic.Second
}

// Signals are the routers' bursts, signalled within the second they
// start (traffic.Service on the leader).
type Signals interface {
	Bursts() <-chan traffic.Burst
}

// Series is the leader's recent instance metrics.
type Series interface {
	Query(match func(series.Owner) bool, from, to time.Time, step time.Duration) []series.Series
}

// Cluster is what Status needs to ask the leader.
type Cluster interface {
	IsLeader() bool
	cluster.LeaderCaller
}

// Config is what the runner needs; State, Commit, Traffic and Series are
// required.
type Config struct {
	State   Snapshotter
	Commit  Committer
	Traffic Traffic
	Series  Series
	// Cluster, when set, lets Status on a follower ask the leader.
	Cluster Cluster
	// Signals, when set, makes a router's burst decided on at once
	// instead of at the next tick, a second or more after the counts
	// show it.
	Signals Signals
	// Now is the clock (nil: time.Now); Tick how often apps are looked at
	// (zero: 1 s).
	Now    func() time.Time
	Tick   time.Duration
	Logger *slog.Logger
}

// trafficLag is how far behind the routers' counts reach the leader.
const trafficLag = 2 * time.Second

// signalWait is how long a round on a burst waits for the other
// routers' signals of it (the load of one burst is spread over routers
// that each signal their part within the same moment): one decision for
// the whole, not one per router.
const signalWait = 100 * time.Millisecond

// Runner decides the counts of autoscaled apps while this node leads.
type Runner struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	status map[string]apitypes.AutoscaleStatus // the last round's view, by "tenant/app"
}

// New returns the runner; Run it while this node leads.
func New(cfg Config) *Runner {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	return &Runner{cfg: cfg, log: cfg.Logger, status: map[string]apitypes.AutoscaleStatus{}}
}

// appMemory is what one term remembers of one app.
type appMemory struct {
	st          State
	lastRequest time.Time
	lastErr     string
	// bursts are the routers' latest signals, by router host.
	bursts map[string]traffic.Burst
}

// Run decides every Tick until ctx ends (the term). Its memory starts
// afresh each term from the committed counts.
func (r *Runner) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Tick)
	defer t.Stop()
	mem := map[string]*appMemory{}
	defer func() {
		r.mu.Lock()
		r.status = map[string]apitypes.AutoscaleStatus{}
		r.mu.Unlock()
	}()
	var signals <-chan traffic.Burst
	if r.cfg.Signals != nil {
		signals = r.cfg.Signals.Bursts()
	}
	for {
		r.round(ctx, mem)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case b := <-signals:
			take(mem, b)
			wait := time.NewTimer(signalWait)
		gather:
			for {
				select {
				case <-ctx.Done():
					wait.Stop()
					return nil
				case b := <-signals:
					take(mem, b)
				case <-wait.C:
					break gather
				}
			}
		}
	}
}

// take keeps a router's burst signal for its app's next round (a signal
// for an app that is not autoscaled is dropped).
func take(mem map[string]*appMemory, b traffic.Burst) {
	m := mem[b.App]
	if m == nil {
		return
	}
	if m.bursts == nil {
		m.bursts = map[string]traffic.Burst{}
	}
	if old, ok := m.bursts[b.Host]; !ok || b.Unix >= old.Unix {
		m.bursts[b.Host] = b
	}
}

// round decides once for every autoscaled app.
func (r *Runner) round(ctx context.Context, mem map[string]*appMemory) {
	now := r.cfg.Now()
	snap := r.cfg.State.Snapshot()
	apps, err := snap.Apps(nil, "")
	if err != nil {
		r.log.Warn("list apps", "err", err)
		return
	}
	seen := map[string]bool{}
	status := map[string]apitypes.AutoscaleStatus{}
	for _, a := range apps {
		if a.Spec.Autoscale == nil || a.Spec.Instances == nil {
			continue
		}
		key := a.Tenant + "/" + a.Name
		seen[key] = true
		m := mem[key]
		if m == nil {
			m = &appMemory{st: NewState(now, *a.Spec.Instances)}
			mem[key] = m
		}
		p := PolicyAt(a.Spec.Autoscale, now)
		o := r.observe(snap, a, p, now, m)
		d, st := Decide(now, p, o, m.st)
		m.st = st
		status[key] = statusOf(p, o, d)
		if d.Instances == *a.Spec.Instances {
			continue
		}
		if err := r.commit(ctx, a, d, now); err != nil {
			if msg := err.Error(); msg != m.lastErr && ctx.Err() == nil {
				r.log.Warn("autoscale", "app", key, "from", *a.Spec.Instances, "to", d.Instances, "err", err)
				m.lastErr = msg
			}
			continue
		}
		m.lastErr = ""
		r.log.Info("autoscaled", "app", key, "from", *a.Spec.Instances, "to", d.Instances, "reason", d.Reason)
	}
	for key := range mem {
		if !seen[key] {
			delete(mem, key)
		}
	}
	r.mu.Lock()
	r.status = status
	r.mu.Unlock()
}

func (r *Runner) commit(ctx context.Context, a *state.App, d Decision, now time.Time) error {
	msg, err := state.Encode(state.AutoscaleType, &state.AutoscaleRequest{Tenant: a.Tenant, Name: a.Name, Instances: d.Instances, Reason: d.Reason, Time: now.UTC()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = r.cfg.Commit.Apply(ctx, msg)
	if errors.Is(err, state.ErrConflict) {
		return nil // the policy was removed meanwhile: nothing to do
	}
	return err
}

// observe gathers what Decide needs of app a.
func (r *Runner) observe(snap *state.Snapshot, a *state.App, p Policy, now time.Time, m *appMemory) Observed {
	key := a.Tenant + "/" + a.Name
	o := Observed{Current: *a.Spec.Instances, CPU: -1, PanicCPU: -1, Memory: -1}

	// Routed requests: a router reports a second after it ends, with its
	// next heartbeat, and the hub node relays it within a second more, so
	// the window ends trafficLag before now (the newest seconds would
	// read as quiet). The latest second with a request is remembered.
	end := now.Add(-trafficLag).Unix()
	secs := r.cfg.Traffic.Since(key, now.Add(-p.Window-trafficLag-time.Second))
	var n, panicN uint64
	pw := int64(PanicWindow(p.Window) / time.Second)
	for _, s := range secs {
		if s.Requests+s.Held > 0 && time.Unix(s.Unix, 0).After(m.lastRequest) {
			m.lastRequest = time.Unix(s.Unix, 0)
		}
		if s.Unix >= end || s.Unix < end-int64(p.Window/time.Second) {
			continue
		}
		n += s.Requests
		if s.Unix >= end-pw {
			panicN += s.Requests
		}
	}
	o.QPS = float64(n) / p.Window.Seconds()
	o.PanicQPS = float64(panicN) / float64(pw)
	// The routers' signals tell of the seconds the window does not show
	// yet; older ones are in the counts by now.
	for h, b := range m.bursts {
		if b.Unix < end {
			delete(m.bursts, h)
			continue
		}
		o.SignalQPS += b.Rate()
		if at := time.Unix(b.Unix, 0); at.After(m.lastRequest) {
			m.lastRequest = at
		}
	}
	o.LastRequest = m.lastRequest

	// Instances: the ready ones carry the load; another version's mean a
	// rollout is under way.
	insts, _ := snap.AppInstances(nil, a.Tenant, a.Name)
	lost, _ := snap.LostHosts(nil)
	ready := map[string]bool{}
	hosts := map[string]bool{}
	for _, i := range insts {
		if !i.Live() {
			continue
		}
		hosts[i.Host] = true
		if i.Ready && !lost[i.Host] {
			ready[i.ID] = true
		}
		if i.Version != a.Version && o.Hold == HoldNone {
			o.Hold, o.HoldReason = HoldDown, "a rollout to version "+strconv.Itoa(a.Version)+" is under way"
		}
	}
	if a.CanaryFrom != 0 {
		o.Hold, o.HoldReason = HoldDown, "a canary of version "+strconv.Itoa(a.Version)+" is under way"
	}
	if d := drillOn(snap, a, hosts); d != "" {
		o.Hold, o.HoldReason = HoldAll, "drill "+d+" is running on its hosts"
	}
	o.Ready = len(ready)

	if (p.CPU > 0 || p.Memory > 0) && len(ready) > 0 {
		o.CPU, o.PanicCPU, o.Memory = r.usage(key, ready, a.Spec, p.Window, now)
	}
	return o
}

// usage returns the ready instances' mean CPU over the window and over
// the panic window, and their mean memory working set, in percent of the
// app's limits (negative: unknown).
func (r *Runner) usage(key string, ready map[string]bool, spec state.AppSpec, window time.Duration, now time.Time) (cpu, panicCPU, mem float64) {
	// Samples come every 1 to 10 s: look back far enough for two.
	from := now.Add(-window - 20*time.Second)
	ss := r.cfg.Series.Query(func(o series.Owner) bool { return o.Kind == "instance" && o.App == key && ready[o.ID] }, from, now, 0)
	var cpus, panics, mems []float64
	for _, s := range ss {
		if v, ok := rate(s.Metrics[series.CPUSeconds], now.Add(-window)); ok && spec.CPU > 0 {
			cpus = append(cpus, v*1000/float64(spec.CPU)*100)
		}
		if v, ok := rate(s.Metrics[series.CPUSeconds], now.Add(-PanicWindow(window))); ok && spec.CPU > 0 {
			panics = append(panics, v*1000/float64(spec.CPU)*100)
		}
		if pts := s.Metrics[series.MemoryWorkingSet]; len(pts) > 0 && spec.Memory > 0 {
			mems = append(mems, pts[len(pts)-1].Value/float64(spec.Memory<<20)*100)
		}
	}
	return mean(cpus), mean(panics), mean(mems)
}

// rate is a counter's increase per second from the first point at or
// after since (or the one before, when that is the last) to the last.
func rate(pts []series.Point, since time.Time) (float64, bool) {
	if len(pts) < 2 {
		return 0, false
	}
	last := pts[len(pts)-1]
	i := slices.IndexFunc(pts, func(p series.Point) bool { return p.Unix >= since.Unix() })
	if i < 0 || i == len(pts)-1 {
		i = len(pts) - 2
	}
	first := pts[i]
	dt := float64(last.Unix - first.Unix)
	if dt <= 0 || last.Value < first.Value {
		return 0, false
	}
	return (last.Value - first.Value) / dt, true
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// drillOn returns the id of a running drill on a host the app runs on or
// on one of its pools, or "".
func drillOn(snap *state.Snapshot, a *state.App, hosts map[string]bool) string {
	ds, err := snap.Drills(nil)
	if err != nil {
		return ""
	}
	for _, d := range ds {
		if d.State != state.DrillRunning {
			continue
		}
		if slices.Contains(a.Spec.Pools, d.Pool) || slices.ContainsFunc(d.Hosts, func(h string) bool { return hosts[h] }) {
			return d.ID
		}
		if d.Instances[a.Tenant+"/"+a.Name] > 0 {
			return d.ID
		}
	}
	return ""
}
