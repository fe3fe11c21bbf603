package kubernetes

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/wharf-platform/wharf/agent/driver"
)

// capacityWatch holds the cluster's capacity as the node informer last
// computed it.
type capacityWatch struct {
	mu      sync.Mutex
	current driver.Capacity
	changed chan struct{} // one pending signal at most
}

// Capacity returns the allocatable CPU and memory of the nodes that are
// Ready and not cordoned.
func (d *Driver) Capacity() driver.Capacity {
	d.capacity.mu.Lock()
	defer d.capacity.mu.Unlock()
	return d.capacity.current
}

// CapacityChanged is signalled after Capacity changed.
func (d *Driver) CapacityChanged() <-chan struct{} { return d.capacity.changed }

// nodesChanged recomputes the capacity from the node cache and signals a
// change.
func (d *Driver) nodesChanged() {
	nodes, err := d.nodes.List(labels.Everything())
	if err != nil {
		return
	}
	c := capacityOf(nodes)
	d.capacity.mu.Lock()
	same := c == d.capacity.current
	d.capacity.current = c
	d.capacity.mu.Unlock()
	// A node's going also changes what its Pods are: waiters look again.
	d.broadcast()
	if same {
		return
	}
	d.log.Info("cluster capacity", "nodes", c.Nodes, "cpu_millis", c.CPUMillis, "memory_bytes", c.MemoryBytes)
	select {
	case d.capacity.changed <- struct{}{}:
	default:
	}
}

// capacityOf sums the allocatable CPU (millicores) and memory of the
// nodes that can take new Pods: Ready, and not cordoned.
func capacityOf(nodes []*corev1.Node) driver.Capacity {
	var c driver.Capacity
	for _, n := range nodes {
		if !schedulable(n) {
			continue
		}
		c.Nodes++
		c.CPUMillis += n.Status.Allocatable.Cpu().MilliValue()
		if m := n.Status.Allocatable.Memory().Value(); m > 0 {
			c.MemoryBytes += uint64(m)
		}
	}
	return c
}

// schedulable reports whether a node is Ready and not cordoned.
func schedulable(n *corev1.Node) bool {
	return !n.Spec.Unschedulable && nodeReady(n)
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeState looks up the node p is bound to.
func (d *Driver) nodeState(p *corev1.Pod) nodeState {
	if p.Spec.NodeName == "" {
		return nodeNone
	}
	if _, err := d.nodes.Get(p.Spec.NodeName); err != nil {
		return nodeGone
	}
	return nodePresent
}

// nodeConfirms reports whether p's kubelet can confirm its deletion: p is
// bound to a node that exists and is Ready. Otherwise nothing will, and
// the Pod is deleted at once.
func (d *Driver) nodeConfirms(p *corev1.Pod) bool {
	if p.Spec.NodeName == "" {
		return false
	}
	n, err := d.nodes.Get(p.Spec.NodeName)
	return err == nil && nodeReady(n)
}
