package kubernetes

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	metricsv1beta1 "k8s.io/metrics/pkg/client/clientset/versioned/typed/metrics/v1beta1"

	"github.com/wharf-platform/wharf/agent/driver"
)

// metricsGroupVersion is the resource metrics API (metrics-server).
const metricsGroupVersion = "metrics.k8s.io/v1beta1"

// metricsRecheck is how often a cluster without the metrics API is asked
// again whether it has one now.
const metricsRecheck = 5 * time.Minute

// podMetrics reads the metrics API, when the cluster serves it, and turns
// its rates into the counters the agent reports.
type podMetrics struct {
	log  *slog.Logger
	disc discovery.DiscoveryInterface
	mc   metricsv1beta1.MetricsV1beta1Interface // nil when the client could not be made

	mu        sync.Mutex
	served    bool
	checkedAt time.Time
	cpu       map[string]cpuCounter // per instance
}

// cpuCounter integrates a Pod's CPU rate into CPU seconds.
type cpuCounter struct {
	seconds float64
	at      time.Time // the metrics API's timestamp of the last rate added
}

func newPodMetrics(rc *rest.Config, log *slog.Logger) *podMetrics {
	m := &podMetrics{log: log, cpu: map[string]cpuCounter{}}
	if d, err := discovery.NewDiscoveryClientForConfig(rc); err == nil {
		m.disc = d
	}
	if c, err := metricsv1beta1.NewForConfig(rc); err == nil {
		m.mc = c
	}
	return m
}

// available reports whether the cluster serves the metrics API, asking
// discovery at most every metricsRecheck.
func (m *podMetrics) available(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.disc == nil || m.mc == nil {
		return false
	}
	if !m.checkedAt.IsZero() && now.Sub(m.checkedAt) < metricsRecheck {
		return m.served
	}
	m.checkedAt = now
	_, err := m.disc.ServerResourcesForGroupVersion(metricsGroupVersion)
	served := err == nil
	if served != m.served {
		m.log.Info("metrics API", "served", served)
	}
	m.served = served
	return served
}

// Usage reports each instance's resource use from the metrics API: CPU
// seconds (the API's rates added up over time, so the first sample of an
// instance counts from its window), memory working set. Without the
// metrics API it reports nothing, and no error.
func (d *Driver) Usage(ctx context.Context) ([]driver.Usage, error) {
	m := d.metrics
	if m == nil || !m.available(time.Now()) {
		return nil, nil
	}
	sel := labels.Set{LabelHost: d.cfg.HostID}.AsSelector().String()
	list, err := m.mc.PodMetricses(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if apierrors.IsNotFound(err) {
		m.mu.Lock()
		m.served, m.checkedAt = false, time.Now()
		m.mu.Unlock()
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes: pod metrics: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []driver.Usage
	for _, pm := range list.Items {
		id := pm.Labels[LabelInstance]
		if id == "" {
			id = pm.Name
		}
		var cores float64
		var mem int64
		for _, c := range pm.Containers {
			cores += float64(c.Usage.Cpu().MilliValue()) / 1000
			mem += c.Usage.Memory().Value()
		}
		seen[id] = true
		ctr := m.cpu[id]
		at := pm.Timestamp.Time
		switch {
		case ctr.at.IsZero():
			ctr.seconds = cores * pm.Window.Duration.Seconds()
		case at.After(ctr.at):
			ctr.seconds += cores * at.Sub(ctr.at).Seconds()
		}
		if at.After(ctr.at) {
			ctr.at = at
		}
		m.cpu[id] = ctr
		out = append(out, driver.Usage{InstanceID: id, App: pm.Labels[LabelApp], Tenant: pm.Labels[LabelTenant], Time: ctr.at,
			CPUSeconds: ctr.seconds, MemoryWorkingSet: uint64(max(mem, 0))})
	}
	for id := range m.cpu {
		if !seen[id] {
			delete(m.cpu, id)
		}
	}
	return out, nil
}
