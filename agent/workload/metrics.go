package workload

import (
	"time"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/metrics"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// sampler is the metrics collector as the control stream sees it.
type sampler interface {
	Latest() metrics.Sample
}

// metricsReport returns c's latest sample when it is newer than *last
// (nil otherwise).
func metricsReport(c sampler, last *time.Time) *wire.MetricsReport {
	s := c.Latest()
	if s.Time.IsZero() || !s.Time.After(*last) {
		return nil
	}
	*last = s.Time
	h := s.Host
	r := &wire.MetricsReport{UnixMs: s.Time.UnixMilli()}
	if !s.Partial { // a partial sample's host stats are the last full one's
		r.Host = &wire.HostMetrics{CpuSeconds: h.CPUSeconds, MemoryTotal: h.MemoryTotal,
			MemoryUsed: h.MemoryUsed, DiskTotal: h.DiskTotal, DiskUsed: h.DiskUsed, NetRxBytes: h.NetRxBytes, NetTxBytes: h.NetTxBytes}
	}
	for _, i := range s.Instances {
		r.Instances = append(r.Instances, &wire.InstanceMetrics{Instance: i.Instance, App: i.App, Tenant: i.Tenant, UnixMs: i.Timestamp.UnixMilli(),
			CpuSeconds: i.CPUSeconds, MemoryWorkingSet: i.MemoryWorkingSet, MemoryUsage: i.MemoryUsage, NetRxBytes: i.NetRxBytes,
			NetTxBytes: i.NetTxBytes, FsUsageBytes: i.FsUsageBytes})
	}
	return r
}

// registerMetrics sends m's newest sample after a heartbeat, once per
// sample (the newest again to each new hub node).
func registerMetrics(c *control.Control, m sampler) {
	c.Send(func() control.Feed {
		var last time.Time
		return control.Feed{Tick: func(time.Time) *wire.Envelope {
			if r := metricsReport(m, &last); r != nil {
				return &wire.Envelope{Msg: &wire.Envelope_MetricsReport{MetricsReport: r}}
			}
			return nil
		}}
	})
}
