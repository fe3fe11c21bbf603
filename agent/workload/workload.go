// Package workload runs an enrolled host's instances: the driver, the
// supervisor that converges the host to the hub's assignments, the
// capture, on-disk buffer and shipping of the instances' output, and the
// metrics collector; and their part of the control stream (assignments
// down, status, logs and samples up).
package workload

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/logs"
	"github.com/wharf-platform/wharf/agent/logship"
	"github.com/wharf-platform/wharf/agent/metrics"
	"github.com/wharf-platform/wharf/agent/run"
	"github.com/wharf-platform/wharf/agent/supervisor"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Lines writes log lines that are no instance's output (the router's
// access lines) to the host's log buffer until ctx ends.
type Lines interface {
	WriteLines(ctx context.Context, buf *logship.Buffer, hostID string)
}

// Config configures a Workload.
type Config struct {
	// HostID is the enrolled host's id.
	HostID string
	// Driver runs the instances. Required.
	Driver driver.Driver
	// DataDir keeps the assignments and the log buffer (DataDir/logs).
	DataDir string
	// Advertise is the address other hosts reach the instances at (a
	// port is ignored; "": the driver's).
	Advertise string
	// DrainDelay is how long an instance the hub unassigned keeps running
	// after it was ready, while routers drop it. Zero: 2 s; negative:
	// none.
	DrainDelay time.Duration
	// Lease fences instances of failover.mode fenced.
	Lease supervisor.Lease
	// Metrics samples the host and the instances every MetricsInterval
	// (zero: 10 s).
	Metrics         bool
	MetricsInterval time.Duration
	// LogBufferBytes bounds the log buffer. Zero: 256 MiB.
	LogBufferBytes int64
	// Lines, when set, writes lines of its own to the log buffer.
	Lines  Lines
	Logger *slog.Logger
}

// Workload is what runs the host's instances.
type Workload struct {
	sup     *supervisor.Supervisor
	buf     *logship.Buffer
	logs    *logs.Shipper
	metrics sampler // nil unless Config.Metrics
	runners []run.Runner
	log     *slog.Logger
}

// New wires the supervisor, the log buffer and shipper and the metrics
// collector around cfg.Driver.
func New(cfg Config) (*Workload, error) {
	advertise := cfg.Advertise
	if h, _, err := net.SplitHostPort(advertise); err == nil {
		advertise = h
	}
	drain := cfg.DrainDelay
	if drain == 0 {
		drain = 2 * time.Second
	}
	log := cfg.Logger
	w := &Workload{log: log}
	w.sup = supervisor.New(supervisor.Config{Driver: cfg.Driver, Dir: cfg.DataDir, Advertise: advertise, DrainDelay: max(drain, 0), Lease: cfg.Lease,
		Logger: log.With("component", "supervisor")})
	var err error
	if ur, ok := cfg.Driver.(driver.UsageReporter); ok && cfg.Metrics {
		// The instances run elsewhere (a cluster's nodes): their runtime
		// measures them, and this machine is not the host.
		u := newUsageSampler(ur, cfg.MetricsInterval, log.With("component", "metrics"))
		w.metrics = u
		w.runners = append(w.runners, u)
	} else if cfg.Metrics {
		var c *metrics.Collector
		c, err = metrics.New(metrics.Config{HostID: cfg.HostID, Interval: cfg.MetricsInterval, Logger: log.With("component", "metrics"),
			ExecCgroups: func() map[string]string { return w.sup.ExecCgroups(cfg.HostID) }, ExecLabels: w.sup.ExecLabels, Fast: w.fastMetrics})
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		w.metrics = c
		w.runners = append(w.runners, run.BestEffort(log, "metrics", c))
	}
	w.buf, err = logship.Open(logship.Config{Dir: filepath.Join(cfg.DataDir, "logs"), MaxBytes: cfg.LogBufferBytes,
		Logger: log.With("component", "logship")})
	if err != nil {
		return nil, fmt.Errorf("log buffer: %w", err)
	}
	w.logs = logs.New(w.buf, cfg.Driver, log.With("component", "logs"))
	w.runners = append(w.runners,
		w.sup,
		run.Func(func(ctx context.Context) error { w.logs.CaptureWanted(ctx, w.sup.Wanted); return nil }),
	)
	if cfg.Lines != nil {
		w.runners = append(w.runners, run.Func(func(ctx context.Context) error { cfg.Lines.WriteLines(ctx, w.buf, cfg.HostID); return nil }))
	}
	return w, nil
}

// fastMetrics reports whether the hub wants an instance's stats every
// second (its app scales on CPU or memory).
func (w *Workload) fastMetrics(id string) bool {
	for _, in := range w.sup.Wanted() {
		if in.Id == id {
			return in.FastMetrics
		}
	}
	return false
}

// Run runs the parts until ctx ends, then closes the log buffer.
func (w *Workload) Run(ctx context.Context) error {
	defer w.buf.Close()
	return run.All(ctx, w.runners...)
}

// Applied returns the version of the assignments kept on disk.
func (w *Workload) Applied() uint64 { return w.sup.Applied() }

// LogStats returns the log buffer's counts, and how many lines were
// captured since the agent started.
func (w *Workload) LogStats() (st logship.Stats, captured uint64) {
	return w.buf.Stats(), w.logs.Captured()
}

// Register makes the hub's assignments the supervisor's (acknowledged
// once kept on disk), reports the instances' status (all of it to a new
// hub node, then what changed), ships the logs on each connection and
// sends the metrics samples.
func (w *Workload) Register(c *control.Control) {
	c.Handle(&wire.Envelope_Assignments{}, func(_ context.Context, in control.Inbound) error {
		m := in.Env.GetAssignments()
		if err := w.sup.Assign(m); err != nil {
			w.log.Warn("keep assignments", "err", err)
			return nil
		}
		w.log.Debug("assignments", "version", m.Version, "instances", len(m.Instances))
		return in.Reply(&wire.Envelope{Msg: &wire.Envelope_AssignmentAck{AssignmentAck: &wire.AssignmentAck{Version: m.Version}}})
	})
	report := func(full bool) func() *wire.Envelope {
		return func() *wire.Envelope {
			if r := w.sup.Report(full); len(r.Instances) > 0 {
				return &wire.Envelope{Msg: &wire.Envelope_StatusReport{StatusReport: r}}
			}
			return nil
		}
	}
	c.Send(func() control.Feed {
		return control.Feed{First: report(true), Changed: w.sup.Changed(), OnChange: report(false), Conn: w.logs.ShipOn}
	})
	if w.metrics != nil {
		registerMetrics(c, w.metrics)
	}
}
