package docker

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/wharf-platform/wharf/agent/driver"
)

// Labels every container of this driver carries. LabelHost scopes List to one
// agent, so several agents can share one daemon.
const (
	LabelInstance = "wharf.instance"
	LabelApp      = "wharf.app"
	LabelTenant   = "wharf.tenant"
	LabelHost     = "wharf.host"
	LabelVersion  = "wharf.version"
	// LabelPort holds the first port ("8080/tcp"), whose host port becomes
	// Status.Address; the daemon keeps ports in an unordered map.
	LabelPort = "wharf.port"
)

// containerName is the container's name for an instance: instance ids are
// unique in the cluster, so the name is unique on any daemon.
func containerName(instanceID string) string { return "wharf-" + instanceID }

func labels(hostID string, extra map[string]string, spec driver.Spec) map[string]string {
	l := make(map[string]string, len(extra)+6)
	for k, v := range extra {
		l[k] = v
	}
	l[LabelInstance] = spec.InstanceID
	l[LabelApp] = spec.App
	l[LabelTenant] = spec.Tenant
	l[LabelHost] = hostID
	l[LabelVersion] = strconv.Itoa(spec.Version)
	if len(spec.Ports) > 0 {
		l[LabelPort] = portKey(spec.Ports[0])
	}
	return l
}

// hostFilter selects the containers of one host.
func hostFilter(hostID string) client.Filters {
	return make(client.Filters).Add("label", LabelHost+"="+hostID)
}

// nanoCPUs converts millicores to the daemon's billionths of a CPU.
func nanoCPUs(millicores int) int64 { return int64(millicores) * 1_000_000 }

// bootNanoCPUs is the limit an instance boots with (driver.BootLimit).
func bootNanoCPUs(millicores int) int64 { return nanoCPUs(driver.BootLimit(millicores)) }

// memoryBytes converts MB (MiB, as everywhere in Wharf) to bytes.
func memoryBytes(mb int) int64 { return int64(mb) << 20 }

func protocol(p driver.Port) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return strings.ToLower(p.Protocol)
}

func portKey(p driver.Port) string { return fmt.Sprintf("%d/%s", p.ContainerPort, protocol(p)) }

// env is the container's environment, sorted: the spec's variables and PORT,
// the first port's container port (the app listens inside its own network
// namespace; Docker maps the host port to it).
func env(spec driver.Spec) []string {
	m := make(map[string]string, len(spec.Env)+1)
	for k, v := range spec.Env {
		m[k] = v
	}
	for k, v := range spec.Secrets {
		m[k] = v
	}
	if len(spec.Ports) > 0 {
		m["PORT"] = strconv.Itoa(spec.Ports[0].ContainerPort)
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// ports publishes every port of spec on publishIP, on an ephemeral host port
// unless the spec fixes one.
func ports(spec driver.Spec, publishIP netip.Addr) (network.PortSet, network.PortMap, error) {
	set := network.PortSet{}
	bindings := network.PortMap{}
	for _, p := range spec.Ports {
		if p.ContainerPort <= 0 || p.ContainerPort > 65535 {
			return nil, nil, fmt.Errorf("port %q: container port %d out of range", p.Name, p.ContainerPort)
		}
		port, err := network.ParsePort(portKey(p))
		if err != nil {
			return nil, nil, fmt.Errorf("port %q: %w", p.Name, err)
		}
		host := ""
		if p.HostPort != 0 {
			host = strconv.Itoa(p.HostPort)
		}
		set[port] = struct{}{}
		bindings[port] = append(bindings[port], network.PortBinding{HostIP: publishIP, HostPort: host})
	}
	return set, bindings, nil
}

// state maps the daemon's container state to the driver's.
func state(s container.ContainerState) driver.State {
	switch s {
	case container.StateRunning, container.StatePaused, container.StateRestarting:
		return driver.StateRunning
	case container.StateCreated:
		return driver.StateCreated
	default: // exited, dead, removing
		return driver.StateExited
	}
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// status builds an instance's Status from the daemon's view of its container.
func status(c container.InspectResponse) driver.Status {
	var l map[string]string
	if c.Config != nil {
		l = c.Config.Labels
	}
	v, _ := strconv.Atoi(l[LabelVersion])
	st := driver.Status{
		InstanceID: l[LabelInstance],
		Tenant:     l[LabelTenant],
		App:        l[LabelApp],
		Version:    v,
		State:      driver.StateCreated,
	}
	if c.State != nil {
		st.State = state(c.State.Status)
		st.ExitCode = c.State.ExitCode
		st.StartedAt = parseTime(c.State.StartedAt)
		st.FinishedAt = parseTime(c.State.FinishedAt)
		if st.State == driver.StateRunning {
			st.FinishedAt = time.Time{} // the previous run's
		}
	}
	if c.NetworkSettings == nil || st.State != driver.StateRunning {
		return st
	}
	for port, bs := range c.NetworkSettings.Ports {
		b, ok := firstBinding(bs)
		if !ok {
			continue
		}
		hp, err := strconv.Atoi(b.HostPort)
		if err != nil {
			continue
		}
		if st.Ports == nil {
			st.Ports = map[int]int{}
		}
		st.Ports[int(port.Num())] = hp
		if port.String() == l[LabelPort] {
			st.Address = net.JoinHostPort(dialable(b.HostIP), b.HostPort)
		}
	}
	return st
}

// firstBinding prefers an IPv4 binding: with 0.0.0.0 newer daemons report a
// second binding on ::.
func firstBinding(bs []network.PortBinding) (network.PortBinding, bool) {
	for _, b := range bs {
		if b.HostPort != "" && (!b.HostIP.IsValid() || b.HostIP.Is4()) {
			return b, true
		}
	}
	for _, b := range bs {
		if b.HostPort != "" {
			return b, true
		}
	}
	return network.PortBinding{}, false
}

// dialable turns a wildcard bind address into loopback, which reaches it
// from the host; the agent replaces it with its advertise address anyway.
func dialable(ip netip.Addr) string {
	if !ip.IsValid() || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return ip.String()
}
