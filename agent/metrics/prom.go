package metrics

import (
	"fmt"

	cadvisormetrics "github.com/google/cadvisor/lib/metrics"
	info "github.com/google/cadvisor/lib/model"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// Prometheus label names of the instance series.
const (
	promInstance = "instance"
	promApp      = "app"
	promTenant   = "tenant"
)

// newPromCollector returns cAdvisor's own Prometheus collector, reading
// through instanceProvider so that it sees this host's instances only, each
// labelled instance, app and tenant.
func newPromCollector(c *Collector) prometheus.Collector {
	return cadvisormetrics.NewPrometheusCollector(instanceProvider{c}, promLabels, metricSet(), clock.RealClock{}, query)
}

// promLabels is the collector's ContainerLabelsFunc: instanceProvider has
// replaced each container's labels by its identity.
func promLabels(ci *info.ContainerInfo) map[string]string {
	return map[string]string{
		promInstance: ci.Spec.Labels[promInstance],
		promApp:      ci.Spec.Labels[promApp],
		promTenant:   ci.Spec.Labels[promTenant],
	}
}

// instanceProvider is the infoProvider of cAdvisor's Prometheus collector:
// the running manager's containers, filtered down to this host's instances.
type instanceProvider struct{ c *Collector }

func (p instanceProvider) GetRequestedContainersInfo(name string, opts info.RequestOptions) (map[string]*info.ContainerInfo, error) {
	m := p.c.manager()
	if m == nil {
		return map[string]*info.ContainerInfo{}, nil
	}
	all, err := m.GetRequestedContainersInfo(name, opts)
	if err != nil && len(all) == 0 {
		return nil, fmt.Errorf("metrics: cadvisor containers: %w", err)
	}
	// A partial failure still returns the other containers; the collector
	// would drop them all on an error.
	return filterInstances(all, p.c.identifier()), nil
}

// filterInstances keeps the identified containers (one per instance: the
// freshest) and replaces their labels by the identity, which promLabels
// reads. The infos are cAdvisor's copies for this request; their label
// maps are not touched, only replaced.
func filterInstances(all map[string]*info.ContainerInfo, identify identifyFunc) map[string]*info.ContainerInfo {
	out := make(map[string]*info.ContainerInfo)
	byID := map[string]string{} // instance -> container name in out
	for name, ci := range all {
		if ci == nil {
			continue
		}
		ident, ok := identify(name, &ci.Spec)
		if !ok {
			continue
		}
		if prev, dup := byID[ident.Instance]; dup {
			if !newer(ci, out[prev]) {
				continue
			}
			delete(out, prev)
		}
		cp := *ci
		cp.Spec.Labels = map[string]string{promInstance: ident.Instance, promApp: ident.App, promTenant: ident.Tenant}
		cp.Spec.Envs = nil
		out[name] = &cp
		byID[ident.Instance] = name
	}
	return out
}

func newer(a, b *info.ContainerInfo) bool {
	sa, sb := lastStats(a.Stats), lastStats(b.Stats)
	switch {
	case sa == nil:
		return false
	case sb == nil:
		return true
	}
	return sa.Timestamp.After(sb.Timestamp)
}

func (p instanceProvider) GetVersionInfo() (*info.VersionInfo, error) {
	if m := p.c.manager(); m != nil {
		return m.GetVersionInfo()
	}
	return &info.VersionInfo{}, nil
}

func (p instanceProvider) GetMachineInfo() (*info.MachineInfo, error) {
	if m := p.c.manager(); m != nil {
		return m.GetMachineInfo()
	}
	return &info.MachineInfo{}, nil
}
