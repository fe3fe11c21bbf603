// Package alerting runs the alert rules (hub/alert) on the leader: it
// computes each rule's metric from the state, the routers' counts and the
// metrics series, and reports firings and resolutions as events and
// signed webhooks.
package alerting

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/wharf-platform/wharf/hub/alert"
	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/series"
	"github.com/wharf-platform/wharf/hub/state"
)

// The leader evaluates every rule every few seconds from the series, traffic
// counts and state it holds, and reports each firing and resolution as an
// event and (when the rule has one) a signed webhook. A new leader starts
// with no rule firing: a condition that still holds fires again after its
// `for`.
const (
	every       = 5 * time.Second
	cpuWindow   = time.Minute // CPU rates are taken over this window
	notifyLimit = 2 * time.Minute
)

// Snapshotter hands out read-only views of the state store.
type Snapshotter interface {
	Snapshot() *state.Snapshot
}

// Traffic is the leader's routers' counts.
type Traffic interface {
	QPS(app string, now time.Time, d time.Duration) float64
}

// Series is the leader's metrics series.
type Series interface {
	Query(match func(series.Owner) bool, from, to time.Time, step time.Duration) []series.Series
}

// Events records an event through Raft, best effort.
type Events interface {
	Record(ctx context.Context, ev state.Event)
}

// Cluster tells whether this node leads and reaches the leader.
type Cluster interface {
	IsLeader() bool
	cluster.LeaderCaller
}

// Config is what the alert runner needs; every field is required
// but Logger (nil discards).
type Config struct {
	State   Snapshotter
	Traffic Traffic
	Series  Series
	Events  Events
	Cluster Cluster
	Logger  *slog.Logger
}

// Runner evaluates the rules while this node leads, and answers which
// are firing from any node.
type Runner struct {
	cfg Config
	log *slog.Logger
	// eval is the leader's evaluator, nil while this node does not lead.
	eval atomic.Pointer[alert.Evaluator]
	// notifier's default client follows no redirects (a 3xx would turn
	// the POST into a GET).
	notifier alert.Notifier
}

// New returns the node's alert runner; Run it while this node leads.
func New(cfg Config) *Runner {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg, log: cfg.Logger}
}

// firingRPC asks the leader for the ids of the rules firing.
var firingRPC = cluster.RPC[struct{}, []string]{Name: "alerts-firing", Req: cluster.None{}, Resp: cluster.JSON[[]string]{}}

// Handlers are the runner's RPCs, for cluster.Cluster.Handle.
func (x *Runner) Handlers() []cluster.Handler {
	return []cluster.Handler{firingRPC.Serve(func(ctx context.Context, _ struct{}) ([]string, error) { return x.Firing(ctx) })}
}

// Run evaluates the rules every few seconds until ctx ends.
func (x *Runner) Run(ctx context.Context) error {
	eval := alert.NewEvaluator()
	x.eval.Store(eval)
	defer x.eval.Store(nil)
	t := time.NewTicker(every)
	defer t.Stop()
	known := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		rules, err := x.cfg.State.Snapshot().Alerts(nil)
		if err != nil {
			continue
		}
		seen := map[string]bool{}
		for _, r := range rules {
			seen[r.ID] = true
			known[r.ID] = true
			rule, err := ruleOf(r.AlertRule)
			if err != nil {
				x.log.Debug("alert rule skipped", "err", err) // the API validated it: a newer build's rule
				continue
			}
			v, ok := x.value(rule, now)
			if tr := eval.Observe(rule, now, v, ok); tr != nil {
				x.transition(ctx, *tr)
			}
		}
		for id := range known {
			if !seen[id] {
				delete(known, id)
				eval.Forget(id, now) // deleted: no resolution to send
			}
		}
	}
}

func (x *Runner) transition(ctx context.Context, tr alert.Transition) {
	r := tr.Rule
	subject := r.Tenant + "/" + r.App
	if r.Pool != "" {
		subject = "pool " + r.Pool
	}
	msg := fmt.Sprintf("alert %s on %s: %s %s %s (value %.4g)", r.ID, subject, r.Metric, r.Condition(), tr.State, tr.Value)
	x.log.Info("alert", "rule", r.ID, "state", tr.State, "value", tr.Value)
	go x.cfg.Events.Record(context.WithoutCancel(ctx), state.Event{Type: "alert." + string(tr.State), Subject: subject, Pool: r.Pool, Message: msg})
	if r.Webhook != "" {
		go func() {
			nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyLimit)
			defer cancel()
			if err := x.notifier.Notify(nctx, r.Webhook, r.Secret, tr); err != nil {
				x.log.Warn("alert webhook", "rule", r.ID, "err", err)
				x.cfg.Events.Record(nctx, state.Event{Type: "alert.webhook_failed", Subject: subject, Pool: r.Pool,
					Message: fmt.Sprintf("alert %s: webhook notification (%s) failed: %v", r.ID, tr.State, err)})
			}
		}()
	}
}

// value computes a rule's metric now; false when there is no data.
func (x *Runner) value(r alert.Rule, now time.Time) (float64, bool) {
	snap := x.cfg.State.Snapshot()
	th := r.Above
	if th == nil {
		th = r.Below
	}
	percent := th != nil && th.Unit == "%"
	if r.Pool != "" {
		return x.poolValue(snap, r, now, percent)
	}
	app := r.Tenant + "/" + r.App
	switch r.Metric {
	case alert.MetricQPS:
		return x.cfg.Traffic.QPS(app, now, 10*time.Second), true
	case alert.MetricRestarts:
		insts, err := snap.AppInstances(nil, r.Tenant, r.App)
		if err != nil {
			return 0, false
		}
		n := 0
		for _, in := range insts {
			n += in.RestartsSince(now.Add(-time.Duration(r.For)))
		}
		return float64(n), true
	case alert.MetricCPU, alert.MetricMemory:
		var limit float64 // per instance: cores, or bytes
		if ap, _ := snap.App(nil, r.Tenant, r.App); ap != nil {
			if v, _ := snap.AppVersion(nil, r.Tenant, r.App, ap.Version); v != nil {
				if r.Metric == alert.MetricCPU {
					limit = float64(v.Spec.CPU) / 1000
				} else {
					limit = float64(v.Spec.Memory) * (1 << 20)
				}
			}
		}
		if r.Metric == alert.MetricCPU && limit == 0 {
			limit = 1 // unlimited: percent of one core
		}
		if percent && limit == 0 {
			return 0, false // memory percent of no limit
		}
		var sum float64
		n := 0
		for _, s := range x.cfg.Series.Query(func(o series.Owner) bool { return o.Kind == "instance" && o.App == app }, now.Add(-cpuWindow), now, 0) {
			v, ok := seriesValue(s.Metrics, r.Metric)
			if !ok {
				continue
			}
			if percent {
				v = v / limit * 100
			}
			sum += v
			n++
		}
		if n == 0 {
			return 0, false
		}
		return sum / float64(n), true
	}
	return 0, false
}

// seriesValue is an instance's CPU (cores: the counter's rate over the
// points) or memory (latest working set bytes).
func seriesValue(m map[string][]series.Point, metric alert.Metric) (float64, bool) {
	if metric == alert.MetricMemory {
		pts := m[series.MemoryWorkingSet]
		if len(pts) == 0 {
			return 0, false
		}
		return pts[len(pts)-1].Value, true
	}
	pts := m[series.CPUSeconds]
	if len(pts) < 2 {
		return 0, false
	}
	first, last := pts[0], pts[len(pts)-1]
	if last.Unix <= first.Unix || last.Value < first.Value {
		return 0, false
	}
	return (last.Value - first.Value) / float64(last.Unix-first.Unix), true
}

// poolValue is a pool rule's metric: hosts down, or the hosts' average
// CPU (percent of their cores) or memory use.
func (x *Runner) poolValue(snap *state.Snapshot, r alert.Rule, now time.Time, percent bool) (float64, bool) {
	hosts, err := snap.PoolHosts(nil, r.Pool)
	if err != nil {
		return 0, false
	}
	if r.Metric == alert.MetricHostDown {
		n := 0
		for _, x := range hosts {
			if x.State == state.HostDown {
				n++
			}
		}
		return float64(n), true
	}
	cpus := map[string]float64{}
	for _, x := range hosts {
		cpus[x.ID] = float64(max(x.Inventory.CPUs, 1))
	}
	var sum float64
	n := 0
	for _, s := range x.cfg.Series.Query(func(o series.Owner) bool { _, ok := cpus[o.ID]; return o.Kind == "host" && ok }, now.Add(-cpuWindow), now, 0) {
		switch r.Metric {
		case alert.MetricCPU:
			pts := s.Metrics["wharf_host_cpu_seconds_total"]
			if len(pts) < 2 || pts[len(pts)-1].Unix <= pts[0].Unix {
				continue
			}
			rate := (pts[len(pts)-1].Value - pts[0].Value) / float64(pts[len(pts)-1].Unix-pts[0].Unix)
			sum += rate / cpus[s.ID] * 100
		case alert.MetricMemory:
			used, total := s.Metrics["wharf_host_memory_used_bytes"], s.Metrics["wharf_host_memory_total_bytes"]
			if len(used) == 0 || len(total) == 0 {
				continue
			}
			v := used[len(used)-1].Value
			if percent {
				if total[len(total)-1].Value <= 0 {
					continue
				}
				v = v / total[len(total)-1].Value * 100
			}
			sum += v
		default:
			continue
		}
		n++
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// Firing returns the ids of the rules firing now, as the leader's
// evaluator has them.
func (x *Runner) Firing(ctx context.Context) ([]string, error) {
	if !x.cfg.Cluster.IsLeader() {
		return firingRPC.CallLeader(ctx, x.cfg.Cluster, struct{}{})
	}
	ids := []string{}
	if e := x.eval.Load(); e != nil {
		for _, t := range e.Active() {
			ids = append(ids, t.Rule.ID)
		}
	}
	return ids, nil
}

// ruleOf reads a stored rule back into the evaluator's terms.
func ruleOf(r state.AlertRule) (alert.Rule, error) {
	out := alert.Rule{ID: r.ID, Tenant: r.Tenant, App: r.App, Pool: r.Pool, Metric: alert.Metric(r.Metric), For: alert.Duration(r.For),
		Webhook: r.Webhook, Secret: r.Secret}
	for _, t := range []struct {
		text string
		dst  **alert.Threshold
	}{{r.Above, &out.Above}, {r.Below, &out.Below}} {
		if t.text == "" {
			continue
		}
		th, err := alert.ParseThreshold(t.text)
		if err != nil {
			return alert.Rule{}, fmt.Errorf("alert rule %s: %w", r.ID, err)
		}
		*t.dst = &th
	}
	return out, out.Validate()
}
