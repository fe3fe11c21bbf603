package metrics

import (
	"path"
	"slices"
	"strings"
	"time"

	info "github.com/google/cadvisor/lib/model"
)

// identity names the instance a cAdvisor container stands for.
type identity struct {
	Instance, App, Tenant string
}

// identifyFunc tells whether the cAdvisor container name (with its spec)
// is an instance of this host, and which.
type identifyFunc func(name string, spec *info.ContainerSpec) (identity, bool)

// identifier returns an identifyFunc for the current exec instances
// (ExecCgroups is read once, here).
func (c *Collector) identifier() identifyFunc {
	var exec map[string]string // cgroup -> instance id
	if c.cfg.ExecCgroups != nil {
		ids := c.cfg.ExecCgroups()
		exec = make(map[string]string, len(ids))
		for id, p := range ids {
			exec[cleanCgroup(p)] = id
		}
	}
	return newIdentifier(c.cfg.HostID, exec, c.cfg.ExecLabels)
}

// newIdentifier matches Docker containers by their wharf labels and exec
// instances by their cgroup (exec: cleaned cgroup path -> instance id).
func newIdentifier(hostID string, exec map[string]string, execLabels func(string) (string, string)) identifyFunc {
	return func(name string, spec *info.ContainerSpec) (identity, bool) {
		if name == "/" {
			return identity{}, false
		}
		if spec != nil && spec.Labels != nil {
			if spec.Labels[LabelHost] == hostID && spec.Labels[LabelInstance] != "" {
				return identity{
					Instance: spec.Labels[LabelInstance],
					App:      spec.Labels[LabelApp],
					Tenant:   spec.Labels[LabelTenant],
				}, true
			}
			if spec.Labels[LabelHost] != "" {
				return identity{}, false // another host's instance
			}
		}
		id, ok := exec[cleanCgroup(name)]
		if !ok {
			return identity{}, false
		}
		ident := identity{Instance: id}
		if execLabels != nil {
			ident.App, ident.Tenant = execLabels(id)
		}
		return ident, true
	}
}

// cleanCgroup brings a cgroup path to cAdvisor's container name form:
// absolute, cleaned, no trailing slash.
func cleanCgroup(p string) string {
	return path.Clean("/" + strings.TrimSpace(p))
}

// buildSample turns cAdvisor's container infos into a Sample: the root
// container "/" is the host, identified containers are instances. When one
// instance shows up twice (a container replaced between housekeepings),
// the freshest stats win.
func buildSample(now time.Time, infos map[string]info.ContainerInfo, identify identifyFunc) Sample {
	s := Sample{Time: now}
	byID := map[string]InstanceStats{}
	for name, ci := range infos {
		st := lastStats(ci.Stats)
		if name == "/" {
			if st != nil {
				s.Host = hostStats(st)
			}
			continue
		}
		ident, ok := identify(name, &ci.Spec)
		if !ok || st == nil {
			continue
		}
		is := instanceStats(ident, st)
		if old, dup := byID[is.Instance]; dup && old.Timestamp.After(is.Timestamp) {
			continue
		}
		byID[is.Instance] = is
	}
	for _, is := range byID {
		s.Instances = append(s.Instances, is)
	}
	slices.SortFunc(s.Instances, func(a, b InstanceStats) int { return strings.Compare(a.Instance, b.Instance) })
	return s
}

// instanceNames maps the instances in infos to their cAdvisor container
// names (the freshest, when one shows up twice).
func instanceNames(infos map[string]info.ContainerInfo, identify identifyFunc) map[string]string {
	out := map[string]string{}
	seen := map[string]time.Time{}
	for name, ci := range infos {
		st := lastStats(ci.Stats)
		if name == "/" || st == nil {
			continue
		}
		if ident, ok := identify(name, &ci.Spec); ok && !seen[ident.Instance].After(st.Timestamp) {
			out[ident.Instance], seen[ident.Instance] = name, st.Timestamp
		}
	}
	return out
}

func lastStats(st []*info.ContainerStats) *info.ContainerStats {
	if len(st) == 0 {
		return nil
	}
	return st[len(st)-1]
}

func instanceStats(ident identity, st *info.ContainerStats) InstanceStats {
	is := InstanceStats{Instance: ident.Instance, App: ident.App, Tenant: ident.Tenant, Timestamp: st.Timestamp}
	if st.Cpu != nil {
		is.CPUSeconds = float64(st.Cpu.Usage.Total) / 1e9
	}
	if st.Memory != nil {
		is.MemoryWorkingSet, is.MemoryUsage = st.Memory.WorkingSet, st.Memory.Usage
	}
	is.NetRxBytes, is.NetTxBytes = netBytes(st.Network)
	for _, fs := range st.Filesystem {
		is.FsUsageBytes += fs.Usage
	}
	return is
}

func hostStats(st *info.ContainerStats) HostStats {
	var h HostStats
	if st.Cpu != nil {
		h.CPUSeconds = float64(st.Cpu.Usage.Total) / 1e9
	}
	if st.Memory != nil {
		h.MemoryUsed = st.Memory.WorkingSet
	}
	h.NetRxBytes, h.NetTxBytes = netBytes(st.Network)
	return h
}

// netBytes sums received and transmitted bytes over all interfaces, as
// container_network_*_bytes_total series summed by interface would.
func netBytes(n *info.NetworkStats) (rx, tx uint64) {
	if n == nil {
		return 0, 0
	}
	if len(n.Interfaces) == 0 {
		return n.RxBytes, n.TxBytes
	}
	for _, i := range n.Interfaces {
		rx += i.RxBytes
		tx += i.TxBytes
	}
	return rx, tx
}
