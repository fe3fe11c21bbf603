package kubernetes_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/kubernetes"
)

// TestFailedPodReplaced: a running Pod that its kubelet fails (here: an
// activeDeadlineSeconds put on it, which the kubelet enforces as it
// would an eviction, phase Failed) is reported exited, not running or
// pending, and Start replaces it with a new Pod of the same name that
// runs.
func TestFailedPodReplaced(t *testing.T) {
	c := kube(t)
	image := testImage(t, c)
	d := newDriver(t, c, kubernetes.Config{HostID: drivertest.NewID("host-")})
	spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Tenant: "acme", App: "doomed", Version: 1, Image: image,
		Ports: []driver.Port{{ContainerPort: 8080}}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := d.Start(ctx, spec)
	if err != nil || st.State != driver.StateRunning {
		t.Fatalf("start: %+v, %v", st, err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background(), spec.InstanceID, time.Second) })
	pods := d.Client().CoreV1().Pods(kubernetes.Namespace(spec.Tenant))
	first, err := pods.Get(ctx, spec.InstanceID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Patch(ctx, spec.InstanceID, types.MergePatchType, []byte(`{"spec":{"activeDeadlineSeconds":1}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch activeDeadlineSeconds: %v", err)
	}
	drivertest.WaitFor(t, 60*time.Second, func() (bool, string) {
		in, err := d.Inspect(ctx, spec.InstanceID)
		return err == nil && in.State == driver.StateExited, fmt.Sprintf("inspect of a failed Pod: %+v, %v", in, err)
	})
	p, err := pods.Get(ctx, spec.InstanceID, metav1.GetOptions{})
	if err != nil || p.Status.Phase != corev1.PodFailed {
		t.Fatalf("the Pod after its deadline: %v, %v; want phase Failed", p.Status.Phase, err)
	}
	if ls, err := d.List(ctx); err != nil || len(ls) != 1 || ls[0].State != driver.StateExited {
		t.Errorf("list: %+v, %v; want the instance exited", ls, err)
	}

	again, err := d.Start(ctx, spec)
	if err != nil || again.State != driver.StateRunning {
		t.Fatalf("start after the Pod failed: %+v, %v", again, err)
	}
	p, err = pods.Get(ctx, spec.InstanceID, metav1.GetOptions{})
	if err != nil || p.UID == first.UID || p.Spec.ActiveDeadlineSeconds != nil {
		t.Fatalf("start after the Pod failed did not make a new Pod: %v", err)
	}
}

// TestGonePodsExited, on fake nodes: a Pod evicted (phase Failed, reason
// Evicted, as a kubelet under pressure writes it) and a Pod whose node
// was deleted are both reported exited; Start replaces each with a new
// Pod of the same name, and Stop removes it at once (nothing ran).
func TestGonePodsExited(t *testing.T) {
	c := fakeCluster(t)
	d := newDriver(t, c, kubernetes.Config{HostID: drivertest.NewID("host-"), StartWait: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods := d.Client().CoreV1().Pods("wharf-acme")
	scheduled := func(spec driver.Spec) *corev1.Pod {
		t.Helper()
		if st, err := d.Start(ctx, spec); err != nil || st.State != driver.StatePending {
			t.Fatalf("start on a fake node: %+v, %v; want pending", st, err)
		}
		var p *corev1.Pod
		drivertest.WaitFor(t, 30*time.Second, func() (bool, string) {
			var err error
			p, err = pods.Get(ctx, spec.InstanceID, metav1.GetOptions{})
			return err == nil && p.Spec.NodeName != "", fmt.Sprintf("pod not scheduled: %v", err)
		})
		return p
	}
	replaced := func(spec driver.Spec, old *corev1.Pod, what string) {
		t.Helper()
		drivertest.WaitFor(t, 30*time.Second, func() (bool, string) {
			st, err := d.Inspect(ctx, spec.InstanceID)
			return err == nil && st.State == driver.StateExited, fmt.Sprintf("inspect after %s: %+v, %v", what, st, err)
		})
		if st, err := d.Start(ctx, spec); err != nil || st.State != driver.StatePending {
			t.Fatalf("start after %s: %+v, %v; want pending", what, st, err)
		}
		p, err := pods.Get(ctx, spec.InstanceID, metav1.GetOptions{})
		if err != nil || p.UID == old.UID {
			t.Fatalf("start after %s did not replace the Pod: %v", what, err)
		}
		t0 := time.Now()
		if err := d.Stop(ctx, spec.InstanceID, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(t0); el > 5*time.Second {
			t.Errorf("stop of a Pod that never ran took %v", el)
		}
		if _, err := d.Inspect(ctx, spec.InstanceID); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("inspect after stop: %v", err)
		}
	}
	spec := func(app string) driver.Spec {
		return driver.Spec{InstanceID: drivertest.NewID("i-"), Tenant: "acme", App: app, Version: 1, Image: drivertest.TestAppImage,
			Ports: []driver.Port{{ContainerPort: 8080}}}
	}

	evicted := spec("evicted")
	p := scheduled(evicted)
	status := `{"status":{"phase":"Failed","reason":"Evicted","message":"The node was low on resource: memory."}}`
	if _, err := pods.Patch(ctx, p.Name, types.MergePatchType, []byte(status), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("evict: %v", err)
	}
	replaced(evicted, p, "its eviction")

	orphan := spec("orphan")
	p = scheduled(orphan)
	if out, err := c.Kubectl(t, "delete", "node", p.Spec.NodeName); err != nil {
		t.Fatalf("delete node: %v\n%s", err, out)
	}
	replaced(orphan, p, "its node's deletion")
}
