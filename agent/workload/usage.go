package workload

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/metrics"
)

// usageSampler samples the instances through their driver's runtime
// (driver.UsageReporter) every interval, for drivers whose instances the
// embedded cAdvisor cannot see. Samples carry no host stats: the host is
// not this machine.
type usageSampler struct {
	src      driver.UsageReporter
	interval time.Duration
	log      *slog.Logger

	mu     sync.Mutex
	latest metrics.Sample
	failed bool // the last round failed (logged once until one works)
}

func newUsageSampler(src driver.UsageReporter, interval time.Duration, log *slog.Logger) *usageSampler {
	if interval <= 0 {
		interval = metrics.DefaultInterval
	}
	return &usageSampler{src: src, interval: interval, log: log}
}

// Latest returns the last sample; the zero Sample before the first one.
func (u *usageSampler) Latest() metrics.Sample {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.latest
}

// Run samples until ctx ends.
func (u *usageSampler) Run(ctx context.Context) error {
	t := time.NewTicker(u.interval)
	defer t.Stop()
	for {
		u.sample(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (u *usageSampler) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, u.interval)
	defer cancel()
	us, err := u.src.Usage(ctx)
	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil {
		if !u.failed && ctx.Err() == nil {
			u.log.Warn("sample instances", "err", err)
		}
		u.failed = true
		return
	}
	u.failed = false
	if len(us) == 0 {
		return
	}
	s := metrics.Sample{Time: time.Now()}
	for _, x := range us {
		s.Instances = append(s.Instances, metrics.InstanceStats{Instance: x.InstanceID, App: x.App, Tenant: x.Tenant, Timestamp: x.Time,
			CPUSeconds: x.CPUSeconds, MemoryWorkingSet: x.MemoryWorkingSet, MemoryUsage: x.MemoryWorkingSet})
	}
	slices.SortFunc(s.Instances, func(a, b metrics.InstanceStats) int { return strings.Compare(a.Instance, b.Instance) })
	u.latest = s
}
