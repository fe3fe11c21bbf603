package workload

import (
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/metrics"
)

type fakeSampler struct {
	mu sync.Mutex
	s  metrics.Sample
}

func (f *fakeSampler) Latest() metrics.Sample {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.s
}

func (f *fakeSampler) set(s metrics.Sample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.s = s
}

// TestMetricsSentOncePerSample: after a heartbeat the newest sample goes
// up once; nothing before the first sample or while it is unchanged; a
// new session (a new hub node) gets the newest again.
func TestMetricsSentOncePerSample(t *testing.T) {
	src := &fakeSampler{}
	c := control.New()
	registerMetrics(c, src)
	feed := c.Feeds()[0]
	now := time.Now()
	if m := feed.Tick(now); m != nil {
		t.Fatalf("sent %v before any sample", m)
	}
	at := time.Unix(1_800_000_000, 0)
	src.set(metrics.Sample{Time: at, Host: metrics.HostStats{CPUSeconds: 12.5, MemoryTotal: 8 << 30},
		Instances: []metrics.InstanceStats{{Instance: "i1", App: "a", Tenant: "t", Timestamp: at, MemoryWorkingSet: 1 << 20}}})
	r := feed.Tick(now).GetMetricsReport()
	if r == nil || r.UnixMs != at.UnixMilli() || r.Host.CpuSeconds != 12.5 || r.Host.MemoryTotal != 8<<30 ||
		len(r.Instances) != 1 || r.Instances[0].Instance != "i1" || r.Instances[0].MemoryWorkingSet != 1<<20 {
		t.Fatalf("report %v", r)
	}
	if m := feed.Tick(now); m != nil {
		t.Fatalf("the same sample sent twice: %v", m)
	}
	if r := c.Feeds()[0].Tick(now).GetMetricsReport(); r == nil || r.UnixMs != at.UnixMilli() {
		t.Fatalf("a new session got %v, want the newest sample", r)
	}
}

// TestPartialSampleLeavesHostOut: a partial sample (only the instances
// the hub scales on CPU or memory, read afresh between full samples)
// carries no host stats, which would be the last full sample's again.
func TestPartialSampleLeavesHostOut(t *testing.T) {
	src := &fakeSampler{}
	c := control.New()
	registerMetrics(c, src)
	feed := c.Feeds()[0]
	at := time.Unix(1_800_000_000, 0)
	src.set(metrics.Sample{Time: at, Partial: true, Host: metrics.HostStats{CPUSeconds: 12.5},
		Instances: []metrics.InstanceStats{{Instance: "i1", Timestamp: at, CPUSeconds: 3}}})
	r := feed.Tick(time.Now()).GetMetricsReport()
	if r == nil || r.Host != nil || len(r.Instances) != 1 || r.Instances[0].CpuSeconds != 3 {
		t.Fatalf("partial report %v, want the instance and no host", r)
	}
}
