package kubernetes

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wharf-platform/wharf/agent/driver"
)

// TestStatusOf: how a Pod's phase, conditions and node map to the driver
// contract.
func TestStatusOf(t *testing.T) {
	started := metav1.NewTime(time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC))
	base := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "i-1", Labels: map[string]string{LabelTenant: "acme", LabelApp: "web", LabelVersion: "4"}},
			Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: containerName,
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 9090}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.7",
				ContainerStatuses: []corev1.ContainerStatus{{Name: containerName, RestartCount: 2,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}}},
		}
	}
	ready := func(p *corev1.Pod) *corev1.Pod {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		return p
	}
	tests := []struct {
		name  string
		pod   *corev1.Pod
		node  nodeState
		state driver.State
		ready bool
		code  int
	}{
		{"running, ready", ready(base()), nodePresent, driver.StateRunning, true, 0},
		{"running, not ready", base(), nodePresent, driver.StateRunning, false, 0},
		{"unscheduled", func() *corev1.Pod {
			p := base()
			p.Spec.NodeName, p.Status = "", corev1.PodStatus{Phase: corev1.PodPending}
			return p
		}(),
			nodeNone, driver.StatePending, false, 0},
		{"pulling", func() *corev1.Pod { p := base(); p.Status.Phase = corev1.PodPending; return p }(), nodePresent, driver.StatePending, false, 0},
		{"unknown phase", func() *corev1.Pod { p := base(); p.Status.Phase = corev1.PodUnknown; return p }(), nodePresent, driver.StatePending, false, 0},
		{"failed", func() *corev1.Pod {
			p := base()
			p.Status.Phase = corev1.PodFailed
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}}
			return p
		}(), nodePresent, driver.StateExited, false, 3},
		{"evicted", func() *corev1.Pod {
			p := base()
			p.Status = corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}
			return p
		}(), nodePresent, driver.StateExited, false, -1},
		{"node gone", ready(base()), nodeGone, driver.StateExited, false, -1},
		{"being deleted", func() *corev1.Pod { p := ready(base()); now := metav1.Now(); p.DeletionTimestamp = &now; return p }(),
			nodePresent, driver.StateExited, false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := statusOf(tt.pod, tt.node)
			if st.State != tt.state || st.Ready != tt.ready || st.ExitCode != tt.code {
				t.Fatalf("state %s ready %v code %d, want %s %v %d", st.State, st.Ready, st.ExitCode, tt.state, tt.ready, tt.code)
			}
			if st.InstanceID != "i-1" || st.Tenant != "acme" || st.App != "web" || st.Version != 4 || !st.Routable {
				t.Fatalf("names %+v", st)
			}
			if tt.pod.Status.PodIP != "" && (st.Address != "10.244.0.7:8080" || st.Ports[9090] != 9090) {
				t.Fatalf("address %s ports %v", st.Address, st.Ports)
			}
		})
	}
	if st := statusOf(base(), nodePresent); st.Restarts != 2 || !st.StartedAt.Equal(started.Time) {
		t.Fatalf("restarts %d started %v", st.Restarts, st.StartedAt)
	}
}

// TestPodFor: labels, resources, env, ports, probe and policies of the
// Pod of a spec.
func TestPodFor(t *testing.T) {
	spec := driver.Spec{InstanceID: "i-9", Tenant: "acme", App: "web", Version: 2, Image: "web:2", Command: []string{"/web", "-v"},
		Env: map[string]string{"B": "2", "A": "1", "PORT": "1"}, CPU: 1500, Memory: 300,
		Ports:  []driver.Port{{Name: "HTTP", ContainerPort: 8080}, {Name: "bad_name", ContainerPort: 53, Protocol: "udp", HostPort: 5353}},
		Health: &driver.Health{TCP: 8080, Interval: 1500 * time.Millisecond}}
	p := podFor(spec, "h-1", map[string]string{"team": "x", LabelHost: "spoof"})
	if p.Name != "i-9" || p.Namespace != "wharf-acme" {
		t.Fatalf("pod %s/%s", p.Namespace, p.Name)
	}
	if p.Labels[LabelHost] != "h-1" || p.Labels["team"] != "x" || p.Labels[LabelVersion] != "2" || p.Labels[LabelInstance] != "i-9" {
		t.Fatalf("labels %v", p.Labels)
	}
	c := p.Spec.Containers[0]
	if c.Image != "web:2" || len(c.Command) != 2 || c.ImagePullPolicy != corev1.PullIfNotPresent || p.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Fatalf("container %+v", c)
	}
	var env []string
	for _, e := range c.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	if got := len(env); got != 3 || env[0] != "A=1" || env[1] != "B=2" || env[2] != "PORT=8080" {
		t.Fatalf("env %v: sorted, PORT the first container port", env)
	}
	if c.Ports[0].Name != "http" || c.Ports[1].Name != "" || c.Ports[1].Protocol != corev1.ProtocolUDP || c.Ports[1].HostPort != 5353 {
		t.Fatalf("ports %+v", c.Ports)
	}
	if !c.Resources.Requests.Cpu().Equal(resource.MustParse("1500m")) || !c.Resources.Limits.Memory().Equal(resource.MustParse("300Mi")) {
		t.Fatalf("resources %+v", c.Resources)
	}
	if pr := c.ReadinessProbe; pr == nil || pr.TCPSocket == nil || pr.TCPSocket.Port.IntValue() != 8080 || pr.PeriodSeconds != 2 {
		t.Fatalf("probe %+v", pr)
	}
	if *p.Spec.AutomountServiceAccountToken || *p.Spec.EnableServiceLinks {
		t.Fatal("an instance gets cluster credentials or service links")
	}
	spec.Health, spec.CPU, spec.Memory = nil, 0, 0
	if p := podFor(spec, "h-1", nil); p.Spec.Containers[0].ReadinessProbe != nil || len(p.Spec.Containers[0].Resources.Limits) != 0 {
		t.Fatal("probe or limits without a health check or resources")
	}
}

// TestCapacityOf: Ready and not cordoned nodes count, with millicores
// exact.
func TestCapacityOf(t *testing.T) {
	node := func(cpu, mem string, ready, cordoned bool) *corev1.Node {
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		return &corev1.Node{Spec: corev1.NodeSpec{Unschedulable: cordoned}, Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}}}
	}
	got := capacityOf([]*corev1.Node{node("2500m", "4Gi", true, false), node("4", "8Gi", true, false),
		node("8", "16Gi", false, false), node("8", "16Gi", true, true), {}})
	if want := (driver.Capacity{CPUMillis: 6500, MemoryBytes: 12 << 30, Nodes: 2}); got != want {
		t.Fatalf("capacity %+v, want %+v", got, want)
	}
}

// TestParseLine: the log API's timestamped lines.
func TestParseLine(t *testing.T) {
	l, ok := parseLine("2026-12-04T20:01:02.123456789Z hello world\r\n")
	if !ok || l.Line != "hello world" || l.Stream != "stdout" || l.Time.Nanosecond() != 123456789 {
		t.Fatalf("%+v %v", l, ok)
	}
	if l, ok := parseLine("2026-12-04T20:01:02Z \n"); !ok || l.Line != "" {
		t.Fatalf("empty line: %+v %v", l, ok)
	}
	if _, ok := parseLine("not a time\n"); ok {
		t.Fatal("a line without a time parsed")
	}
}
