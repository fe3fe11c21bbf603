package kubernetes_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/kubernetes"
	"github.com/wharf-platform/wharf/e2e/kubeenv"
)

// The tests of this package share one cluster with one real node (a
// kubelet with a containerd of its own), started by the first test that
// needs it; the capacity tests start their own, of fake nodes.
var (
	clusterOnce sync.Once
	cluster     *kubeenv.Cluster
	clusterErr  error
	stopCluster = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopCluster()
	drivertest.Cleanup()
	os.Exit(code)
}

// kube returns the shared cluster, or skips (fails with
// WHARF_REQUIRE_KUBE=1) when the machine cannot run one.
func kube(t *testing.T) *kubeenv.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no cluster")
	}
	clusterOnce.Do(func() { cluster, stopCluster, clusterErr = kubeenv.StartShared(kubeenv.Options{Nodes: 1}) })
	kubeenv.Check(t, clusterErr)
	return cluster
}

func restConfig(t testing.TB, c *kubeenv.Cluster) *rest.Config {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// newDriver returns a driver for hostID on c whose Pods, whatever a test
// leaves behind, are deleted at the end of the test (by the host's label
// only), and closed then.
func newDriver(t *testing.T, c *kubeenv.Cluster, cfg kubernetes.Config) *kubernetes.Driver {
	t.Helper()
	if cfg.REST == nil {
		cfg.REST = restConfig(t, c)
	}
	d, err := kubernetes.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pods, err := d.Client().CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: kubernetes.LabelHost + "=" + cfg.HostID})
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		zero := int64(0)
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				t.Errorf("cleanup: pod %s/%s of host %s left behind", p.Namespace, p.Name, cfg.HostID)
			}
			_ = d.Client().CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}
		d.Close()
	})
	return d
}

// dockerClient returns a client of the local Docker daemon, which builds
// the test app's image; it skips (fails with WHARF_REQUIRE_DOCKER=1)
// without one.
func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	d, err := docker.New(docker.Config{HostID: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := d.Ping(ctx); err != nil {
		if os.Getenv("WHARF_REQUIRE_DOCKER") == "1" {
			t.Fatalf("WHARF_REQUIRE_DOCKER=1 and no daemon: %v", err)
		}
		t.Skipf("no docker daemon to build the test app's image: %v", err)
	}
	return d.Client()
}

// testImage builds the test app's image with Docker and imports it into
// the cluster's nodes (which pull from no registry).
func testImage(t *testing.T, c *kubeenv.Cluster) string {
	t.Helper()
	image := drivertest.BuildTestAppImage(t, dockerClient(t))
	c.ImportImage(t, image)
	return image
}

func TestConformance(t *testing.T) {
	c := kube(t)
	var image string
	drivertest.Run(t, func(t *testing.T, hostID string) driver.Driver {
		return newDriver(t, c, kubernetes.Config{HostID: hostID})
	}, drivertest.AppUnderTest{
		Setup:           func(t *testing.T) { image = testImage(t, c) },
		Image:           drivertest.TestAppImage,
		ContainerPort:   8080,
		PortEnv:         drivertest.PortEnvContainerPort,
		Hostname:        true,
		RuntimeRestarts: true,
		MergedStreams:   true,
	})
	if image != drivertest.TestAppImage {
		t.Errorf("the suite ran %s, the cluster has %s", drivertest.TestAppImage, image)
	}
}

// TestPodShape: the Pod of an instance is named by its id in wharf-<tenant>
// (made with the label wharf.tenant), carries the wharf labels, requests
// and limits of the spec, PORT, imagePullPolicy IfNotPresent, restartPolicy
// Always, and a readiness probe from the health check that decides Ready.
func TestPodShape(t *testing.T) {
	c := kube(t)
	image := testImage(t, c)
	host := drivertest.NewID("host-")
	d := newDriver(t, c, kubernetes.Config{HostID: host})
	tenant := drivertest.NewID("t")
	spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Tenant: tenant, App: "web", Version: 3, Image: image,
		Env: map[string]string{"FAIL_HEALTH": "1"}, CPU: 250, Memory: 64,
		Ports:  []driver.Port{{Name: "http", ContainerPort: 8080}},
		Health: &driver.Health{HTTP: "/healthz", Interval: time.Second, Timeout: time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background(), spec.InstanceID, 5*time.Second) })
	if st.State != driver.StateRunning || !st.Routable {
		t.Fatalf("start: %+v", st)
	}

	ns, err := d.Client().CoreV1().Namespaces().Get(ctx, "wharf-"+tenant, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("tenant namespace: %v", err)
	}
	if ns.Labels[kubernetes.LabelTenant] != tenant {
		t.Errorf("namespace labels %v, want wharf.tenant=%s", ns.Labels, tenant)
	}
	p, err := d.Client().CoreV1().Pods(ns.Name).Get(ctx, spec.InstanceID, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pod: %v", err)
	}
	want := map[string]string{"wharf.instance": spec.InstanceID, "wharf.app": "web", "wharf.tenant": tenant, "wharf.host": host, "wharf.version": "3"}
	for k, v := range want {
		if p.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, p.Labels[k], v)
		}
	}
	ctr := p.Spec.Containers[0]
	if p.Spec.RestartPolicy != corev1.RestartPolicyAlways || ctr.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("restartPolicy %s, imagePullPolicy %s", p.Spec.RestartPolicy, ctr.ImagePullPolicy)
	}
	for _, rl := range []corev1.ResourceList{ctr.Resources.Requests, ctr.Resources.Limits} {
		if rl.Cpu().MilliValue() != 250 || rl.Memory().Value() != 64<<20 {
			t.Errorf("resources %v, want cpu 250m, memory 64Mi", rl)
		}
	}
	if pr := ctr.ReadinessProbe; pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != "/healthz" || pr.HTTPGet.Port.IntValue() != 8080 {
		t.Errorf("readiness probe %+v, want GET /healthz on 8080", pr)
	}
	if st.Address != p.Status.PodIP+":8080" {
		t.Errorf("address %s, pod IP %s", st.Address, p.Status.PodIP)
	}

	// FAIL_HEALTH=1: the probe fails, so the Pod runs but is not ready,
	// for as long as one cares to look.
	time.Sleep(3 * time.Second)
	if in, err := d.Inspect(ctx, spec.InstanceID); err != nil || in.State != driver.StateRunning || d.Ready(in) {
		t.Errorf("inspect with a failing health check: %+v, %v; want running, not ready", in, err)
	}

	// The same spec with a passing check: ready once the probe passes.
	ok := spec
	ok.InstanceID, ok.Env = drivertest.NewID("i-"), nil
	st2, err := d.Start(ctx, ok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background(), ok.InstanceID, 5*time.Second) })
	drivertest.WaitFor(t, 30*time.Second, func() (bool, string) {
		in, err := d.Inspect(ctx, ok.InstanceID)
		return err == nil && d.Ready(in), fmt.Sprintf("inspect: %+v, %v", in, err)
	})
	if st2.Address == st.Address {
		t.Errorf("two Pods share the address %s", st.Address)
	}
}

// TestPendingIsNotFailed: a Pod no node can take (it asks for more CPU
// than any has) is pending, without error, for Start, Inspect and List,
// and Stop removes it.
func TestPendingIsNotFailed(t *testing.T) {
	c := kube(t)
	d := newDriver(t, c, kubernetes.Config{HostID: drivertest.NewID("host-"), StartWait: time.Second})
	spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Tenant: "acme", App: "big", Version: 1, Image: drivertest.TestAppImage,
		CPU: 1_000_000, Ports: []driver.Port{{ContainerPort: 8080}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := d.Start(ctx, spec)
	if err != nil || st.State != driver.StatePending {
		t.Fatalf("start: %+v, %v; want pending, no error", st, err)
	}
	time.Sleep(2 * time.Second)
	if in, err := d.Inspect(ctx, spec.InstanceID); err != nil || in.State != driver.StatePending {
		t.Errorf("inspect: %+v, %v; want pending", in, err)
	}
	if ls, _ := d.List(ctx); len(ls) != 1 || ls[0].State != driver.StatePending {
		t.Errorf("list: %+v", ls)
	}
	if err := d.Stop(ctx, spec.InstanceID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Inspect(ctx, spec.InstanceID); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("inspect after stop: %v", err)
	}
}

// TestCommandOnlyRefused: an app with only a command does not run on a
// cluster; the start error says why and nothing is created.
func TestCommandOnlyRefused(t *testing.T) {
	c := kube(t)
	d := newDriver(t, c, kubernetes.Config{HostID: drivertest.NewID("host-")})
	spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Tenant: "acme", App: "job", Version: 1, Command: []string{"/bin/job"}}
	_, err := d.Start(context.Background(), spec)
	if !errors.Is(err, driver.ErrStartFailed) {
		t.Fatalf("start of a command-only spec: %v, want ErrStartFailed", err)
	}
	if _, err := d.Inspect(context.Background(), spec.InstanceID); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("inspect: %v, want ErrNotFound", err)
	}
}

// TestMissingImage: an image no node has and none can pull fails Start
// with ErrImagePull (the kubelet's words), and Inspect says why the
// pending instance waits; Stop removes it.
func TestMissingImage(t *testing.T) {
	c := kube(t)
	d := newDriver(t, c, kubernetes.Config{HostID: drivertest.NewID("host-"), StartWait: 90 * time.Second})
	spec := driver.Spec{InstanceID: drivertest.NewID("i-"), Tenant: "acme", App: "gone", Version: 1, Image: "registry.invalid/wharf/none:v1",
		Ports: []driver.Port{{ContainerPort: 8080}}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := d.Start(ctx, spec)
	if !errors.Is(err, driver.ErrImagePull) {
		t.Fatalf("start with a missing image: %v, want ErrImagePull", err)
	}
	in, err := d.Inspect(ctx, spec.InstanceID)
	if err != nil || in.State != driver.StatePending || !errors.Is(in.Waiting, driver.ErrImagePull) {
		t.Errorf("inspect: %+v, %v; want pending, waiting for its image", in, err)
	}
	if err := d.Stop(ctx, spec.InstanceID, time.Second); err != nil {
		t.Fatal(err)
	}
}
