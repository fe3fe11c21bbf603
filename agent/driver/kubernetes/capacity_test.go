package kubernetes_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
// Ready again, deleted) is signalled.
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

	// An instance whose node is deleted is exited (the agent then starts
	// it again: a new Pod, the same name).
	spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Tenant: "acme", App: "web", Version: 1, Image: drivertest.TestAppImage,
		Ports: []driver.Port{{ContainerPort: 8080}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d3 := newDriver(t, c, kubernetes.Config{HostID: drivertest.NewID("host-"), StartWait: time.Second})
	if st, err := d3.Start(ctx, spec); err != nil || st.State != driver.StatePending {
		t.Fatalf("start on a fake node: %+v, %v; want pending", st, err)
	}
	var node string
	drivertest.WaitFor(t, 30*time.Second, func() (bool, string) {
		p, err := d3.Client().CoreV1().Pods("wharf-acme").Get(ctx, spec.InstanceID, metav1.GetOptions{})
		if err == nil {
			node = p.Spec.NodeName
		}
		return node != "", fmt.Sprintf("pod not scheduled: %v", err)
	})
	first, _ := d3.Client().CoreV1().Pods("wharf-acme").Get(ctx, spec.InstanceID, metav1.GetOptions{})
	if out, err := c.Kubectl(t, "delete", "node", node); err != nil {
		t.Fatalf("delete node: %v\n%s", err, out)
	}
	drivertest.WaitFor(t, 30*time.Second, func() (bool, string) {
		st, err := d3.Inspect(ctx, spec.InstanceID)
		return err == nil && st.State == driver.StateExited, fmt.Sprintf("inspect after its node went: %+v, %v", st, err)
	})
	if st, err := d3.Start(ctx, spec); err != nil || st.State != driver.StatePending {
		t.Fatalf("start again: %+v, %v; want pending", st, err)
	}
	again, err := d3.Client().CoreV1().Pods("wharf-acme").Get(ctx, spec.InstanceID, metav1.GetOptions{})
	if err != nil || again.UID == first.UID {
		t.Errorf("start after the node went did not replace the Pod: %v", err)
	}
	if err := d3.Stop(ctx, spec.InstanceID, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := d3.Inspect(ctx, spec.InstanceID); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("inspect after stop: %v", err)
	}
}
