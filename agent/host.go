package agent

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

// host is what runs the host's instances: built once the host id is
// known, since drivers label what they run with it.
type host struct {
	drv     driver.Driver
	sup     *supervisor.Supervisor
	buf     *logship.Buffer
	logs    *logs.Shipper
	metrics *metrics.Collector // nil unless Config.Metrics
	runners []run.Runner
}

// newHost wires the driver, the supervisor, the log buffer and shipper
// and the metrics collector of an enrolled agent; nil without a driver.
func (a *Agent) newHost(hostID string) (*host, error) {
	if a.cfg.NewDriver == nil {
		return nil, nil
	}
	drv, err := a.cfg.NewDriver(hostID)
	if err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	advertise := a.cfg.Advertise
	if h, _, err := net.SplitHostPort(advertise); err == nil {
		advertise = h
	}
	drain := a.cfg.DrainDelay
	if drain == 0 {
		drain = 2 * time.Second
	}
	h := &host{drv: drv}
	h.sup = supervisor.New(supervisor.Config{Driver: drv, Dir: a.cfg.DataDir, Advertise: advertise, DrainDelay: max(drain, 0), Lease: a.lease,
		Logger: a.log.With("component", "supervisor")})
	if a.cfg.Metrics {
		h.metrics, err = metrics.New(metrics.Config{HostID: hostID, Interval: a.cfg.MetricsInterval, Logger: a.log.With("component", "metrics"),
			ExecCgroups: func() map[string]string { return h.sup.ExecCgroups(hostID) }, ExecLabels: h.sup.ExecLabels})
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	h.buf, err = logship.Open(logship.Config{Dir: filepath.Join(a.cfg.DataDir, "logs"), MaxBytes: a.cfg.LogBufferBytes,
		Logger: a.log.With("component", "logship")})
	if err != nil {
		return nil, fmt.Errorf("log buffer: %w", err)
	}
	h.logs = logs.New(h.buf, drv, a.log.With("component", "logs"))
	h.runners = []run.Runner{
		h.sup,
		run.Func(func(ctx context.Context) error { h.logs.CaptureWanted(ctx, h.sup.Wanted); return nil }),
		run.Func(func(ctx context.Context) error { a.access.run(ctx, h.buf, hostID, a.log.Warn); return nil }),
	}
	if h.metrics != nil {
		h.runners = append(h.runners, run.BestEffort(a.log, "metrics", h.metrics))
	}
	return h, nil
}

// Run runs the host's parts until ctx ends, then closes the log buffer.
func (h *host) Run(ctx context.Context) error {
	defer h.buf.Close()
	return run.All(ctx, h.runners...)
}

// register makes the hub's assignments the supervisor's (acknowledged
// once kept on disk), reports the instances' status (all of it to a new
// hub node, then what changed) and ships the logs on each connection.
func (h *host) register(c *control.Control, log *slog.Logger) {
	c.Handle(&wire.Envelope_Assignments{}, func(_ context.Context, in control.Inbound) error {
		m := in.Env.GetAssignments()
		if err := h.sup.Assign(m); err != nil {
			log.Warn("keep assignments", "err", err)
			return nil
		}
		log.Debug("assignments", "version", m.Version, "instances", len(m.Instances))
		return in.Reply(&wire.Envelope{Msg: &wire.Envelope_AssignmentAck{AssignmentAck: &wire.AssignmentAck{Version: m.Version}}})
	})
	report := func(full bool) func() *wire.Envelope {
		return func() *wire.Envelope {
			if r := h.sup.Report(full); len(r.Instances) > 0 {
				return &wire.Envelope{Msg: &wire.Envelope_StatusReport{StatusReport: r}}
			}
			return nil
		}
	}
	c.Send(func() control.Feed {
		return control.Feed{First: report(true), Changed: h.sup.Changed(), OnChange: report(false), Conn: h.logs.ShipOn}
	})
}
