package kubernetes

import (
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/wharf-platform/wharf/agent/driver"
)

// Namespace returns the namespace of a tenant's Pods.
func Namespace(tenant string) string { return NamespacePrefix + tenant }

// portName is what Kubernetes accepts as a container port's name (an
// IANA service name); other names are left out rather than refused.
var portName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$`)

// podFor makes the Pod that runs spec on the host hostID.
func podFor(spec driver.Spec, hostID string, extra map[string]string) *corev1.Pod {
	l := maps.Clone(extra)
	if l == nil {
		l = map[string]string{}
	}
	l[LabelInstance] = spec.InstanceID
	l[LabelApp] = spec.App
	l[LabelTenant] = spec.Tenant
	l[LabelHost] = hostID
	l[LabelVersion] = strconv.Itoa(spec.Version)

	c := corev1.Container{
		Name:            containerName,
		Image:           spec.Image,
		Command:         slices.Clone(spec.Command),
		ImagePullPolicy: corev1.PullIfNotPresent,
		// The instance's output is its log: the last lines of a crash
		// are in it already.
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}
	env := maps.Clone(spec.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, spec.Secrets)
	for _, p := range spec.Ports {
		cp := corev1.ContainerPort{ContainerPort: int32(p.ContainerPort), Protocol: corev1.ProtocolTCP}
		if strings.EqualFold(p.Protocol, "udp") {
			cp.Protocol = corev1.ProtocolUDP
		}
		if name := strings.ToLower(p.Name); portName.MatchString(name) && strings.ContainsAny(name, "abcdefghijklmnopqrstuvwxyz") &&
			!strings.Contains(name, "--") && !slices.ContainsFunc(c.Ports, func(o corev1.ContainerPort) bool { return o.Name == name }) {
			cp.Name = name
		}
		if p.HostPort > 0 {
			cp.HostPort = int32(p.HostPort)
		}
		c.Ports = append(c.Ports, cp)
	}
	if len(spec.Ports) > 0 {
		env["PORT"] = strconv.Itoa(spec.Ports[0].ContainerPort)
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: env[k]})
	}
	if spec.CPU > 0 || spec.Memory > 0 {
		rl := corev1.ResourceList{}
		if spec.CPU > 0 {
			rl[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(spec.CPU), resource.DecimalSI)
		}
		if spec.Memory > 0 {
			rl[corev1.ResourceMemory] = *resource.NewQuantity(int64(spec.Memory)<<20, resource.BinarySI)
		}
		c.Resources = corev1.ResourceRequirements{Requests: rl, Limits: rl.DeepCopy()}
	}
	c.ReadinessProbe = probeFor(spec)

	no := false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: spec.InstanceID, Namespace: Namespace(spec.Tenant), Labels: l},
		Spec: corev1.PodSpec{
			Containers:    []corev1.Container{c},
			RestartPolicy: corev1.RestartPolicyAlways,
			// An instance gets no credentials to the cluster and no
			// variables of the namespace's Services.
			AutomountServiceAccountToken: &no,
			EnableServiceLinks:           &no,
		},
	}
}

// probeFor makes the readiness probe of spec's health check (nil without
// one). Kubernetes counts in whole seconds: intervals and timeouts are
// rounded up, to at least one.
func probeFor(spec driver.Spec) *corev1.Probe {
	h := spec.Health
	if h == nil {
		return nil
	}
	p := &corev1.Probe{
		PeriodSeconds:    seconds(h.Interval, 2*time.Second),
		TimeoutSeconds:   seconds(h.Timeout, 2*time.Second),
		SuccessThreshold: 1,
		FailureThreshold: 3,
	}
	switch {
	case len(h.Command) > 0:
		p.Exec = &corev1.ExecAction{Command: slices.Clone(h.Command)}
	case h.TCP > 0:
		p.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(h.TCP))}
	case h.HTTP != "":
		port := h.Port
		if port == 0 && len(spec.Ports) > 0 {
			port = spec.Ports[0].ContainerPort
		}
		if port == 0 {
			return nil
		}
		path := h.HTTP
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		p.HTTPGet = &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(int32(port))}
	default:
		return nil
	}
	return p
}

func seconds(d, def time.Duration) int32 {
	if d <= 0 {
		d = def
	}
	return int32(max(1, (d+time.Second-1)/time.Second))
}

// nodeState is what the driver knows of the node a Pod is bound to.
type nodeState int

const (
	nodeNone    nodeState = iota // the Pod is not bound yet
	nodePresent                  // its node exists
	nodeGone                     // its node was deleted
)

// statusOf reports a Pod as the driver contract sees it.
func statusOf(p *corev1.Pod, node nodeState) driver.Status {
	st := driver.Status{InstanceID: p.Name, Tenant: p.Labels[LabelTenant], App: p.Labels[LabelApp], Routable: true}
	st.Version, _ = strconv.Atoi(p.Labels[LabelVersion])
	if p.Status.StartTime != nil {
		st.StartedAt = p.Status.StartTime.Time
	}
	cs := containerStatus(p)
	if cs != nil {
		st.Restarts = int(cs.RestartCount)
		if r := cs.State.Running; r != nil {
			st.StartedAt = r.StartedAt.Time
		}
	}
	if p.Status.PodIP != "" && len(p.Spec.Containers) > 0 {
		st.Ports = map[int]int{}
		for _, cp := range p.Spec.Containers[0].Ports {
			st.Ports[int(cp.ContainerPort)] = int(cp.ContainerPort)
		}
		if ps := p.Spec.Containers[0].Ports; len(ps) > 0 {
			st.Address = net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(ps[0].ContainerPort)))
		}
	}
	switch {
	case p.DeletionTimestamp != nil, p.Status.Phase == corev1.PodFailed, p.Status.Phase == corev1.PodSucceeded, node == nodeGone:
		// On its way out, failed, evicted or orphaned: nothing Kubernetes
		// will bring back under this name.
		st.State, st.ExitCode = driver.StateExited, -1
		if t := terminated(cs); t != nil {
			st.ExitCode = int(t.ExitCode)
			st.FinishedAt = t.FinishedAt.Time
		}
		if st.FinishedAt.IsZero() && p.DeletionTimestamp != nil {
			st.FinishedAt = p.DeletionTimestamp.Time
		}
	case p.Status.Phase == corev1.PodRunning:
		st.State = driver.StateRunning
		st.Ready = podReady(p)
	default: // Pending (not scheduled, pulling, creating), Unknown
		st.State = driver.StatePending
		st.Waiting = startError(p)
	}
	return st
}

// containerStatus returns the status of the Pod's container, nil before
// the kubelet reported one.
func containerStatus(p *corev1.Pod) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == containerName {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// terminated returns how the container last ended, nil when unknown.
func terminated(cs *corev1.ContainerStatus) *corev1.ContainerStateTerminated {
	if cs == nil {
		return nil
	}
	if cs.State.Terminated != nil {
		return cs.State.Terminated
	}
	return cs.LastTerminationState.Terminated
}

// podReady reports the Pod's Ready condition.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// running reports whether Start may return: the Pod runs, or it is
// something Start must replace or give up on.
func running(p *corev1.Pod) bool {
	return p != nil && p.Status.Phase != corev1.PodPending && p.Status.Phase != ""
}
