package billing

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-platform/wharf/hub/state"
)

// Metrics are the hour closer's, across this node's terms as leader.
type Metrics struct {
	lastClosed prometheus.Gauge
	duration   prometheus.Histogram
	failures   prometheus.Counter
}

// NewMetrics returns zeroed metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		lastClosed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_metering_last_closed_hour_seconds",
			Help: "End (Unix seconds) of the last hour closed: every hour before it is final.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wharf_metering_close_duration_seconds",
			Help:    "Time to commit the close of one hour (the Raft round trip and the FSM's sums).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1 ms to ~8 s
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wharf_metering_close_failures_total",
			Help: "Closes of an hour that failed and were retried.",
		}),
	}
}

// Register exports the metrics on reg.
func (m *Metrics) Register(reg prometheus.Registerer) {
	reg.MustRegister(m.lastClosed, m.duration, m.failures)
}

// Run closes hours while this node leads (until ctx ends): every hour
// that ended more than Grace ago, one at a time and in order, so that
// after downtime it catches up hour by hour. What is closed is read from
// the state, so a new leader resumes after the last hour committed.
func (m *Meter) Run(ctx context.Context) error {
	if m.cfg.Commit == nil {
		return errors.New("billing: the meter needs a committer to close hours")
	}
	tick := min(m.cfg.Grace, m.cfg.Hour/4, 10*time.Second)
	tick = max(tick, 50*time.Millisecond)
	failures := 0
	for {
		closed, err := m.closeNext(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			if m.cfg.Metrics != nil {
				m.cfg.Metrics.failures.Inc()
			}
			if failures == 1 || failures%10 == 0 {
				m.log.Warn("close an hour", "err", err, "failures", failures)
			}
		case err == nil:
			failures = 0
		}
		if closed && err == nil {
			continue // catching up
		}
		wait := tick
		if err != nil {
			wait = min(tick, time.Second)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// closeNext closes the next hour if it is due, and says whether it did.
func (m *Meter) closeNext(ctx context.Context) (bool, error) {
	from, ok, err := m.NextHour()
	if err != nil || !ok {
		return false, err
	}
	to := from.Add(m.cfg.Hour)
	if m.cfg.Now().Before(to.Add(m.cfg.Grace)) {
		return false, nil
	}
	msg, err := state.Encode(state.CloseHourType, &state.CloseHourRequest{From: from, To: to, Time: m.cfg.Now().UTC()})
	if err != nil {
		return false, err
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := m.cfg.Commit.Apply(cctx, msg); err != nil {
		return false, err
	}
	if mt := m.cfg.Metrics; mt != nil {
		mt.duration.Observe(time.Since(start).Seconds())
		mt.lastClosed.Set(float64(to.Unix()))
	}
	m.log.Debug("hour closed", "from", from, "to", to, "took", time.Since(start))
	return true, nil
}

// NextHour returns the start of the next hour to close, from this node's
// replica: where the last close ended, or (before the first close) the
// hour of the earliest usage; ok is false when nothing was ever metered.
func (m *Meter) NextHour() (from time.Time, ok bool, err error) {
	closed, earliest, err := m.cfg.State.Snapshot().MeterState()
	if err != nil {
		return time.Time{}, false, err
	}
	switch {
	case closed != 0:
		return time.Unix(closed, 0).UTC(), true, nil
	case earliest != 0:
		hour := int64(m.cfg.Hour / time.Second)
		return time.Unix(earliest-mod(earliest, hour), 0).UTC(), true, nil
	}
	return time.Time{}, false, nil
}

func sortUsage(us []Usage) {
	sort.Slice(us, func(i, j int) bool {
		a, b := us[i], us[j]
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		if a.App != b.App {
			return a.App < b.App
		}
		return a.From.Before(b.From)
	})
}
