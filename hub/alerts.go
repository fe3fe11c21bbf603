package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/wharf-platform/wharf/hub/alert"
	"github.com/wharf-platform/wharf/hub/series"
	"github.com/wharf-platform/wharf/hub/state"
)

// Alerts: the leader evaluates every rule every alertEvery from the
// series, traffic counts and state it holds, and reports each firing and
// resolution as an event and (when the rule has one) a signed webhook.
// A new leader starts with no rule firing: a condition that still holds
// fires again after its `for`.
const (
	alertEvery       = 5 * time.Second
	rpcAlertsFiring  = "alerts-firing"
	alertCPUWindow   = time.Minute // CPU rates are taken over this window
	alertNotifyLimit = 2 * time.Minute
)

type alerting struct {
	eval     *alert.Evaluator
	notifier *alert.Notifier
}

func newAlerting() *alerting {
	// The notifier's default client follows no redirects (a 3xx would
	// turn the POST into a GET).
	return &alerting{eval: alert.NewEvaluator(), notifier: &alert.Notifier{}}
}

// runAlerts evaluates the rules while this node leads.
func (h *Hub) runAlerts(ctx context.Context) {
	a := newAlerting()
	h.alerts.Store(a)
	defer h.alerts.Store(nil)
	t := time.NewTicker(alertEvery)
	defer t.Stop()
	known := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		rules, err := h.store.Snapshot().Alerts(nil)
		if err != nil {
			continue
		}
		seen := map[string]bool{}
		for _, r := range rules {
			seen[r.ID] = true
			known[r.ID] = true
			v, ok := h.alertValue(r.Rule, now)
			if tr := a.eval.Observe(r.Rule, now, v, ok); tr != nil {
				h.alertTransition(ctx, a, *tr)
			}
		}
		for id := range known {
			if !seen[id] {
				delete(known, id)
				a.eval.Forget(id, now) // deleted: no resolution to send
			}
		}
	}
}

func (h *Hub) alertTransition(ctx context.Context, a *alerting, tr alert.Transition) {
	r := tr.Rule
	subject := r.Tenant + "/" + r.App
	if r.Pool != "" {
		subject = "pool " + r.Pool
	}
	msg := fmt.Sprintf("alert %s on %s: %s %s %s (value %.4g)", r.ID, subject, r.Metric, r.Condition(), tr.State, tr.Value)
	h.log.Info("alert", "rule", r.ID, "state", tr.State, "value", tr.Value)
	go h.events.Record(context.WithoutCancel(ctx), state.Event{Type: "alert." + string(tr.State), Subject: subject, Pool: r.Pool, Message: msg})
	if r.Webhook != "" {
		go func() {
			nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), alertNotifyLimit)
			defer cancel()
			if err := a.notifier.Notify(nctx, r.Webhook, r.Secret, tr); err != nil {
				h.log.Warn("alert webhook", "rule", r.ID, "err", err)
				h.events.Record(nctx, state.Event{Type: "alert.webhook_failed", Subject: subject, Pool: r.Pool,
					Message: fmt.Sprintf("alert %s: webhook notification (%s) failed: %v", r.ID, tr.State, err)})
			}
		}()
	}
}

// alertValue computes a rule's metric now; false when there is no data.
func (h *Hub) alertValue(r alert.Rule, now time.Time) (float64, bool) {
	snap := h.store.Snapshot()
	th := r.Above
	if th == nil {
		th = r.Below
	}
	percent := th != nil && th.Unit == "%"
	if r.Pool != "" {
		return h.poolValue(snap, r, now, percent)
	}
	app := r.Tenant + "/" + r.App
	switch r.Metric {
	case alert.MetricQPS:
		return h.traffic.QPS(app, now, 10*time.Second), true
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
		for _, s := range h.series.Query(func(o series.Owner) bool { return o.Kind == "instance" && o.App == app }, now.Add(-alertCPUWindow), now, 0) {
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
func (h *Hub) poolValue(snap *state.Snapshot, r alert.Rule, now time.Time, percent bool) (float64, bool) {
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
	for _, s := range h.series.Query(func(o series.Owner) bool { _, ok := cpus[o.ID]; return o.Kind == "host" && ok }, now.Add(-alertCPUWindow), now, 0) {
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

// firingAlerts answers the API's list: the leader's firing rule ids.
func (h *Hub) firingAlerts(ctx context.Context) ([]string, error) {
	if !h.cluster.IsLeader() {
		b, err := h.cluster.CallLeader(ctx, rpcAlertsFiring, nil)
		if err != nil {
			return nil, err
		}
		var ids []string
		return ids, json.Unmarshal(b, &ids)
	}
	ids := []string{}
	if a := h.alerts.Load(); a != nil {
		for _, t := range a.eval.Active() {
			ids = append(ids, t.Rule.ID)
		}
	}
	return ids, nil
}

func (h *Hub) alertsFiringHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids, err := h.firingAlerts(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(ids)
	})
}
