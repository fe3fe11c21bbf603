package hub

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

// watchDrills runs on the leader and measures the running drill (at most
// one runs at a time): from its start, the time until the hub noticed the
// target lost (cutoff) or started moving off it (evacuate), until every
// app that ran there had its instances placed elsewhere, until those were
// ready, until every router outside the target served a table with them,
// and the requests that failed meanwhile (5xx answers of those apps in
// the routers' counts). Milestones are committed as they are reached.
func (h *Hub) watchDrills(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var readyAt time.Time // when this leader saw the replacements ready
	var routeFor string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		snap := h.store.Snapshot()
		ds, err := snap.Drills(nil)
		if err != nil {
			continue
		}
		for _, d := range ds {
			if d.State != state.DrillRunning {
				continue
			}
			if routeFor != d.ID {
				routeFor, readyAt = d.ID, time.Time{}
			}
			r := h.measureDrill(snap, d, time.Now(), &readyAt)
			if r.DetectedMs == d.DetectedMs && r.ScheduledMs == d.ScheduledMs && r.ReadyMs == d.ReadyMs && r.RoutedMs == d.RoutedMs && r.FailedRequests == d.FailedRequests {
				continue
			}
			msg, err := state.Encode(state.DrillReportType, r)
			if err == nil {
				actx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err = h.cluster.Apply(actx, msg)
				cancel()
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				h.log.Warn("drill report", "drill", d.ID, "err", err)
			}
		}
	}
}

// measureDrill returns the drill's report as of now.
func (h *Hub) measureDrill(snap *state.Snapshot, d *state.Drill, now time.Time, readyAtp *time.Time) *state.DrillReportRequest {
	readyAt := *readyAtp
	r := &state.DrillReportRequest{ID: d.ID, DetectedMs: d.DetectedMs, ScheduledMs: d.ScheduledMs, ReadyMs: d.ReadyMs, RoutedMs: d.RoutedMs}
	since := max(0, now.Sub(d.StartedAt).Milliseconds())
	hosts, err := snap.Hosts(nil)
	if err != nil {
		return r
	}
	target := map[string]bool{}
	for _, id := range d.Hosts {
		target[id] = true
	}
	if r.DetectedMs < 0 {
		lost := true
		for _, hst := range hosts {
			if target[hst.ID] && hst.State == state.HostReady {
				lost = false
			}
		}
		switch {
		case d.Mode == state.DrillEvacuate:
			r.DetectedMs = 0 // the drain began in the drill's own Raft write
		case lost:
			r.DetectedMs = since
		}
	}
	if r.DetectedMs >= 0 && (r.ScheduledMs < 0 || r.ReadyMs < 0) {
		placed, ready := true, true
		for key := range d.Instances {
			tenant, name, _ := cutKey(key)
			a, err := snap.App(nil, tenant, name)
			if err != nil || a == nil {
				continue // deleted meanwhile: nothing to wait for
			}
			is, err := snap.AppInstances(nil, tenant, name)
			if err != nil {
				return r
			}
			elsewhere, readyElsewhere := 0, 0
			for _, i := range is {
				if i.Desired == state.DesiredRun && !target[i.Host] {
					elsewhere++
					if i.Ready {
						readyElsewhere++
					}
				}
			}
			want := 1
			if a.Spec.Instances != nil {
				want = *a.Spec.Instances
			}
			placed = placed && elsewhere >= want
			ready = ready && readyElsewhere >= want
		}
		if placed && r.ScheduledMs < 0 {
			r.ScheduledMs = since
		}
		if ready && r.ReadyMs < 0 {
			r.ReadyMs = since
		}
	}
	if r.ReadyMs >= 0 && r.RoutedMs < 0 {
		// Every router outside the target (that ever acked a table) must
		// serve its node's latest table, as reported after readiness.
		if readyAt.IsZero() {
			*readyAtp = now
			readyAt = now
		}
		routed := true
		for _, hst := range hosts {
			if target[hst.ID] || hst.State != state.HostReady {
				continue
			}
			if info := h.liveness.Info(hst.ID); !info.RouteAt.IsZero() && (!info.RouteCurrent || !info.RouteAt.After(readyAt)) {
				routed = false
			}
		}
		if routed {
			r.RoutedMs = since
		}
	}
	var failed uint64
	for key := range d.Instances {
		for _, s := range h.traffic.Since(key, d.StartedAt) {
			if len(s.Status) == 5 {
				failed += s.Status[4]
			}
		}
	}
	r.FailedRequests = failed
	return r
}

func cutKey(key string) (string, string, bool) { return strings.Cut(key, "/") }
