// Package drill measures failover drills on the leader: from a drill's
// start, the time until the hub noticed the target lost, placed and
// readied the replacements and routed to them, and the requests that
// failed meanwhile.
package drill

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/hub/liveness"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/traffic"
)

// Snapshotter hands out read-only views of the state store.
type Snapshotter interface {
	Snapshot() *state.Snapshot
}

// Committer commits a state command through Raft.
type Committer interface {
	Apply(ctx context.Context, msg []byte) (uint64, error)
}

// Routes tells what the leader knows of a host's connection (which route
// table its router serves, and since when).
type Routes interface {
	Info(host string) liveness.Info
}

// Traffic is the leader's routers' counts.
type Traffic interface {
	Since(app string, since time.Time) []traffic.Second
}

// Config is what the drill runner needs; every field is required but
// Logger (nil discards).
type Config struct {
	State   Snapshotter
	Commit  Committer
	Routes  Routes
	Traffic Traffic
	Logger  *slog.Logger
}

// Runner measures the running drill while this node leads.
type Runner struct {
	cfg Config
	log *slog.Logger
}

// New returns the drill runner; Run it while this node leads.
func New(cfg Config) *Runner {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg, log: cfg.Logger}
}

// Run measures the running drill (at most
// one runs at a time): from its start, the time until the hub noticed the
// target lost (cutoff) or started moving off it (evacuate), until every
// app that ran there had its instances placed elsewhere, until those were
// ready, until every router outside the target served a table with them,
// and the requests that failed meanwhile (5xx answers of those apps in
// the routers' counts). Milestones are committed as they are reached.
func (h *Runner) Run(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var readyAt time.Time // when this leader saw the replacements ready
	var routeFor string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		snap := h.cfg.State.Snapshot()
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
				_, err = h.cfg.Commit.Apply(actx, msg)
				cancel()
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				h.log.Warn("drill report", "drill", d.ID, "err", err)
			}
		}
	}
}

// measureDrill returns the drill's report as of now.
func (h *Runner) measureDrill(snap *state.Snapshot, d *state.Drill, now time.Time, readyAtp *time.Time) *state.DrillReportRequest {
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
			if info := h.cfg.Routes.Info(hst.ID); !info.RouteAt.IsZero() && (!info.RouteCurrent || !info.RouteAt.After(readyAt)) {
				routed = false
			}
		}
		if routed {
			r.RoutedMs = since
		}
	}
	var failed uint64
	for key := range d.Instances {
		for _, s := range h.cfg.Traffic.Since(key, d.StartedAt) {
			if len(s.Status) == 5 {
				failed += s.Status[4]
			}
		}
	}
	r.FailedRequests = failed
	return r
}

func cutKey(key string) (string, string, bool) { return strings.Cut(key, "/") }
