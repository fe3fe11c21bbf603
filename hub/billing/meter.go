package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

// State is the meter's view of this node's state replica.
type State interface {
	Snapshot() *state.Snapshot
}

// Committer commits a state command through Raft (a follower forwards it
// to the leader) and returns the FSM's answer (nil or *state.Error).
type Committer interface {
	Apply(ctx context.Context, msg []byte) (uint64, error)
}

// MeterConfig configures a Meter.
type MeterConfig struct {
	// State is this node's replica (required).
	State State
	// Commit commits the hours the leader closes (required by Run).
	Commit Committer
	// Hour is the length of a metered hour. Zero means time.Hour, which is
	// what production always uses (hours are UTC hours); tests shorten it
	// to see hours close in seconds. It must be a whole number of seconds.
	Hour time.Duration
	// Grace is how long after an hour ends the leader waits before it
	// closes it, so that counts still on their way count in it. Zero
	// means 30 s, or a tenth of Hour when that is shorter.
	Grace time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics, when set, receives the closer's metrics.
	Metrics *Metrics
	// Logger: nil discards.
	Logger *slog.Logger
}

// Meter reads usage and, on the leader, closes hours (Run).
type Meter struct {
	cfg MeterConfig
	log *slog.Logger
}

// NewMeter returns a meter.
func NewMeter(cfg MeterConfig) (*Meter, error) {
	if cfg.State == nil {
		return nil, errors.New("billing: the meter needs the state")
	}
	if cfg.Hour == 0 {
		cfg.Hour = time.Hour
	}
	if cfg.Hour < time.Second || cfg.Hour%time.Second != 0 {
		return nil, fmt.Errorf("billing: hour %s is not a whole number of seconds", cfg.Hour)
	}
	if cfg.Grace == 0 {
		cfg.Grace = min(30*time.Second, cfg.Hour/10)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Meter{cfg: cfg, log: cfg.Logger}, nil
}

// Hour returns the length of a metered hour.
func (m *Meter) Hour() time.Duration { return m.cfg.Hour }

// ClosedThrough returns the end of the last closed hour (zero: none):
// usage before it is final.
func (m *Meter) ClosedThrough() (time.Time, error) {
	closed, _, err := m.cfg.State.Snapshot().MeterState()
	if err != nil || closed == 0 {
		return time.Time{}, err
	}
	return time.Unix(closed, 0).UTC(), nil
}

// Usage returns what a tenant ("" for every tenant) used per app and hour
// in the hours that start in [from, to) (from is rounded down to its
// hour): closed hours as committed (Final), the open ones computed from
// the state up to now (not Final; the hour that holds now counts up to
// now). Rows are sorted by tenant, app and hour and never overlap; apps
// without usage in an hour have no row for it. Deleted apps and tenants
// keep their rows.
func (m *Meter) Usage(ctx context.Context, tenant string, from, to time.Time) ([]Usage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if to.Before(from) {
		return nil, fmt.Errorf("usage from %s to %s: from is after to", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	hour := int64(m.cfg.Hour / time.Second)
	lo := from.Unix() - mod(from.Unix(), hour)
	hi := to.Unix()
	if to.Nanosecond() != 0 {
		hi++
	}
	snap := m.cfg.State.Snapshot()
	closed, err := snap.ClosedUsage(nil, tenant, lo, hi)
	if err != nil {
		return nil, err
	}
	open, err := snap.OpenUsage(tenant, m.cfg.Now().Unix(), hour)
	if err != nil {
		return nil, err
	}
	out := make([]Usage, 0, len(closed)+len(open))
	for _, rows := range [][]*state.UsageRow{closed, open} {
		for _, r := range rows {
			if r.Start >= lo && r.Start < hi {
				out = append(out, fromRow(r))
			}
		}
	}
	sortUsage(out)
	return out, nil
}

func fromRow(r *state.UsageRow) Usage {
	return Usage{
		Tenant: r.Tenant, App: r.App,
		From: time.Unix(r.Start, 0).UTC(), To: time.Unix(r.End, 0).UTC(),
		InstanceSeconds: r.InstanceSeconds, CPUMilliSeconds: r.CPUMilliSeconds, MemoryMBSeconds: r.MemoryMBSeconds,
		Requests: r.Requests, EgressBytes: r.EgressBytes, LogBytes: r.LogBytes,
		Final: r.Final,
	}
}

// mod is a non-negative remainder.
func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}
