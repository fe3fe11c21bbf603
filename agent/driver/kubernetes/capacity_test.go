package kubernetes_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/kubernetes"
	"github.com/wharf-platform/wharf/e2e/kubeenv"
)

// fakeCluster starts a cluster of its own whose nodes are fake (no
// kubelet: Pods bound to them stay pending): fake-a 2.5 cores 4 GiB,
// fake-b 4 cores 8 GiB, fake-c 1 core 2 GiB.
func fakeCluster(t *testing.T) *kubeenv.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no cluster")
	}
	return kubeenv.Start(t, kubeenv.Options{FakeNodes: []kubeenv.FakeNode{
		{Name: "fake-a", CPU: "2500m", Memory: "4Gi"},
		{Name: "fake-b", CPU: "4", Memory: "8Gi"},
		{Name: "fake-c", CPU: "1", Memory: "2Gi"},
	}})
}

// waitCapacity waits until d reports the capacity want and its change was
// signalled since the last call.
func waitCapacity(t *testing.T, d *kubernetes.Driver, want driver.Capacity) {
	t.Helper()
	signalled := false
	drivertest.WaitFor(t, 60*time.Second, func() (bool, string) {
		select {
		case <-d.CapacityChanged():
			signalled = true
		default:
		}
		got := d.Capacity()
		return got == want && signalled, fmt.Sprintf("capacity %+v (change signalled: %v), want %+v", got, signalled, want)
	})
}

// TestCapacityFollowsNodes: the capacity is the allocatable of the nodes
// that are Ready and not cordoned, and every change (NotReady, cordoned,
// Ready again, deleted, joined) is signalled.
func TestCapacityFollowsNodes(t *testing.T) {
	c := fakeCluster(t)
	d := newDriver(t, c, kubernetes.Config{HostID: drivertest.NewID("host-")})
	const gi = 1 << 30
	waitCapacity(t, d, driver.Capacity{CPUMillis: 7500, MemoryBytes: 14 * gi, Nodes: 3})

	c.SetNodeReady(t, "fake-b", false)
	waitCapacity(t, d, driver.Capacity{CPUMillis: 3500, MemoryBytes: 6 * gi, Nodes: 2})

	if out, err := c.Kubectl(t, "cordon", "fake-c"); err != nil {
		t.Fatalf("cordon: %v\n%s", err, out)
	}
	waitCapacity(t, d, driver.Capacity{CPUMillis: 2500, MemoryBytes: 4 * gi, Nodes: 1})

	c.SetNodeReady(t, "fake-b", true)
	waitCapacity(t, d, driver.Capacity{CPUMillis: 6500, MemoryBytes: 12 * gi, Nodes: 2})

	if out, err := c.Kubectl(t, "delete", "node", "fake-a"); err != nil {
		t.Fatalf("delete node: %v\n%s", err, out)
	}
	waitCapacity(t, d, driver.Capacity{CPUMillis: 4000, MemoryBytes: 8 * gi, Nodes: 1})

	// A new driver (a restarted agent) knows the capacity from its start.
	d2 := newDriver(t, c, kubernetes.Config{HostID: drivertest.NewID("host-")})
	if got := d2.Capacity(); got != (driver.Capacity{CPUMillis: 4000, MemoryBytes: 8 * gi, Nodes: 1}) {
		t.Errorf("a new driver's capacity: %+v", got)
	}

	// A node joins: the capacity rises by its allocatable.
	c.AddFakeNode(t, kubeenv.FakeNode{Name: "fake-d", CPU: "1500m", Memory: "3Gi"})
	waitCapacity(t, d, driver.Capacity{CPUMillis: 5500, MemoryBytes: 11 * gi, Nodes: 2})
}
