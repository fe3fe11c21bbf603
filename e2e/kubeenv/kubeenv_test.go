package kubeenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/hub/hubtest/deadline"
)

func TestMain(m *testing.M) {
	code := m.Run()
	drivertest.Cleanup()
	os.Exit(code)
}

const deploymentManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: smoke
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: ` + drivertest.TestAppImage + `
        imagePullPolicy: IfNotPresent
`

// TestControlPlane starts a control plane with fake nodes and checks what
// the kubernetes driver's tests rely on: versions, RBAC with a
// ServiceAccount's token, server-side dry runs, Deployments turned into
// scheduled Pods, fake nodes' capacity, NotReady and lost heartbeats; then
// that Stop leaves no process and no file behind.
func TestControlPlane(t *testing.T) {
	began := time.Now()
	c := Start(t, Options{
		FakeNodes:              []FakeNode{{Name: "fake-0", CPU: "3", Memory: "5Gi"}, {Name: "fake-1"}},
		NodeMonitorGracePeriod: 8 * time.Second,
	})
	t.Logf("control plane with 2 fake nodes ready in %v", time.Since(began).Round(time.Millisecond))
	kubectl := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := c.Kubectl(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	t.Run("version", func(t *testing.T) {
		var v struct {
			Client struct{ GitVersion string } `json:"clientVersion"`
			Server struct{ GitVersion string } `json:"serverVersion"`
		}
		if err := json.Unmarshal([]byte(kubectl(t, "version", "-o", "json")), &v); err != nil {
			t.Fatal(err)
		}
		if v.Client.GitVersion != Version || v.Server.GitVersion != Version {
			t.Fatalf("kubectl %q, API server %q, want %s", v.Client.GitVersion, v.Server.GitVersion, Version)
		}
	})

	kubectl(t, "create", "namespace", "smoke")

	t.Run("server-side dry run", func(t *testing.T) {
		out, err := c.KubectlStdin(t, deploymentManifest, "apply", "--server-side", "--dry-run=server", "-f", "-")
		if err != nil || !strings.Contains(out, "serverside-applied (server dry run)") {
			t.Fatalf("apply --server-side --dry-run=server: %q %v", out, err)
		}
		if _, err := c.Kubectl(t, "-n", "smoke", "get", "deployment", "web"); err == nil {
			t.Fatal("a dry run created the deployment")
		}
	})

	t.Run("service account RBAC", func(t *testing.T) {
		kc := c.KubeconfigFor(t, "smoke", "reader")
		if _, err := c.Kubectl(t, "--kubeconfig", kc, "-n", "smoke", "get", "pods"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
			t.Fatalf("a ServiceAccount without a role listed pods: %v", err)
		}
		kubectl(t, "-n", "smoke", "create", "rolebinding", "reader", "--clusterrole=view", "--serviceaccount=smoke:reader")
		if err := waitUntil(deadline.Scale(10*time.Second), func() bool {
			_, err := c.Kubectl(t, "--kubeconfig", kc, "-n", "smoke", "get", "pods")
			return err == nil
		}); err != nil {
			t.Fatal("the ServiceAccount cannot list pods after a view rolebinding")
		}
	})

	t.Run("fake nodes", func(t *testing.T) {
		if got := kubectl(t, "get", "node", "fake-0", "-o", "jsonpath={.status.allocatable.cpu} {.status.allocatable.memory}"); got != "3 5Gi" {
			t.Fatalf("fake-0 allocatable %q, want 3 5Gi", got)
		}
		c.SetNodeReady(t, "fake-0", false)
		if err := waitUntil(deadline.Scale(30*time.Second), func() bool {
			out, _ := c.Kubectl(t, "get", "node", "fake-0", "-o", "jsonpath={.spec.taints[*].key}")
			return strings.Contains(out, "node.kubernetes.io/not-ready")
		}); err != nil {
			t.Fatal("a NotReady fake node was not tainted not-ready by the controller-manager")
		}
		kubectl(t, "cordon", "fake-0")
		if got := kubectl(t, "get", "node", "fake-0", "-o", "jsonpath={.spec.unschedulable}"); got != "true" {
			t.Fatalf("cordoned fake-0: unschedulable %q", got)
		}
	})

	t.Run("deployment pods scheduled", func(t *testing.T) {
		// The controllers and the scheduler at work: the Deployment's
		// Pods are created and bound to the one schedulable node.
		if _, err := c.KubectlStdin(t, deploymentManifest, "apply", "-f", "-"); err != nil {
			t.Fatal(err)
		}
		if err := waitUntil(deadline.Scale(60*time.Second), func() bool {
			out, _ := c.Kubectl(t, "-n", "smoke", "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].spec.nodeName}")
			return out == "fake-1 fake-1"
		}); err != nil {
			out, _ := c.Kubectl(t, "-n", "smoke", "get", "pods", "-o", "wide")
			t.Fatalf("the Deployment's 2 Pods were not bound to fake-1:\n%s", out)
		}
	})

	t.Run("lost heartbeat", func(t *testing.T) {
		c.StopHeartbeat(t, "fake-1")
		if err := waitUntil(deadline.Scale(40*time.Second), func() bool {
			out, _ := c.Kubectl(t, "get", "node", "fake-1", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			return out == "Unknown"
		}); err != nil {
			t.Fatal("fake-1 without heartbeats did not become Ready=Unknown")
		}
	})

	pids := componentPIDs(t, c.Dir, 4)
	c.Stop()
	checkStopped(t, c, pids)
}

// TestRealNode runs a Pod of a locally built image on a real kubelet: it
// becomes Ready (an HTTP readiness probe from the kubelet), its IP answers
// HTTP from the test process, its logs are read through the API server;
// then Stop leaves no process, mount, cgroup or bridge behind.
func TestRealNode(t *testing.T) {
	// Not yet working here: the kubelet registers and the node becomes
	// Ready, but runc fails to create the Pod sandbox ("can't get final
	// child's PID from pipe: EOF"), and the kubelet refuses 127.0.0.1 as
	// the node IP. Both are written up in e2e/kube/README.md.
	if os.Getenv("WHARF_KUBE_REAL_NODE") != "1" {
		t.Skip("real kubelet Pods do not start on this machine yet (see e2e/kube/README.md); WHARF_KUBE_REAL_NODE=1 runs the test")
	}
	cli := dockerClient(t)
	began := time.Now()
	c := Start(t, Options{Nodes: 1})
	t.Logf("cluster with a real node ready in %v", time.Since(began).Round(time.Millisecond))

	image := drivertest.BuildTestAppImage(t, cli)
	c.ImportImage(t, image)
	pod := `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
spec:
  containers:
  - name: web
    image: ` + image + `
    imagePullPolicy: IfNotPresent
    env:
    - name: PORT
      value: "8080"
    readinessProbe:
      httpGet:
        path: /healthz
        port: 8080
      periodSeconds: 1
`
	if _, err := c.KubectlStdin(t, pod, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	wait := deadline.Scale(90 * time.Second).String()
	if out, err := c.Kubectl(t, "wait", "--for=condition=Ready", "pod/web", "--timeout="+wait); err != nil {
		desc, _ := c.Kubectl(t, "describe", "pod", "web")
		t.Fatalf("%v\n%s\n%s", err, out, desc)
	}
	out, err := c.Kubectl(t, "get", "pod", "web", "-o", "jsonpath={.status.podIP} {.spec.nodeName}")
	if err != nil {
		t.Fatal(err)
	}
	ip, nodeName, _ := strings.Cut(out, " ")
	if !strings.HasPrefix(ip, "10.244.") || nodeName != "node-0" {
		t.Fatalf("pod IP %q on %q, want one of 10.244.0.0/16 on node-0", ip, nodeName)
	}
	// The Pod IP answers from the root namespace (the test process).
	if body := get(t, "http://"+ip+":8080/"); !strings.Contains(body, "instance=web") {
		t.Fatalf("GET / on the pod: %q, want instance=web", body)
	}
	get(t, "http://"+ip+":8080/log?line=kubeenv-smoke-line")
	// Logs through the API server, which reads them from the kubelet.
	if err := waitUntil(deadline.Scale(20*time.Second), func() bool {
		out, err := c.Kubectl(t, "logs", "web")
		return err == nil && strings.Contains(out, "kubeenv-smoke-line")
	}); err != nil {
		out, err := c.Kubectl(t, "logs", "web")
		t.Fatalf("kubectl logs web has no kubeenv-smoke-line: %q %v", out, err)
	}

	// The processes of the cluster and of its Pods, then Stop.
	pids := componentPIDs(t, c.Dir, 7)
	nd := c.nodes[0]
	for _, h := range cgroupHierarchies() {
		_ = filepath.WalkDir(filepath.Join(h, nd.cgroupRoot), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Name() == "cgroup.procs" {
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					var pid int
					if _, err := fmt.Sscan(f, &pid); err == nil {
						pids = append(pids, pid)
					}
				}
			}
			return nil
		})
	}
	c.Stop()
	checkStopped(t, c, pids)
	for _, h := range cgroupHierarchies() {
		if _, err := os.Stat(filepath.Join(h, nd.cgroupRoot)); err == nil {
			t.Errorf("cgroup %s remains after Stop", filepath.Join(h, nd.cgroupRoot))
		}
	}
	if out, err := exec.Command("ip", "link", "show", nd.bridge).CombinedOutput(); err == nil {
		t.Errorf("bridge %s remains after Stop: %s", nd.bridge, out)
	}
}

// checkStopped fails the test if a process of pids runs, or the cluster's
// directory or a mount under it remains.
func checkStopped(t *testing.T, c *Cluster, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			t.Errorf("process %d (%s) still running after Stop", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Stop: %v", c.Dir, err)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), c.Dir) {
		t.Errorf("mounts under %s remain after Stop", c.Dir)
	}
}

// componentPIDs lists the processes whose command line names dir (the
// cluster's components and its containerd shims): at least min of them.
func componentPIDs(t *testing.T, dir string, min int) []int {
	t.Helper()
	out, err := exec.Command("pgrep", "-f", dir).Output()
	if err != nil {
		t.Fatalf("pgrep: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	if len(pids) < min {
		t.Fatalf("only %d processes name %s, want at least %d: %v", len(pids), dir, min, pids)
	}
	return pids
}

// dockerClient returns a client of the local Docker daemon (which builds
// the test image), or skips the test when none answers (fails instead with
// WHARF_REQUIRE_DOCKER=1).
func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		if os.Getenv("WHARF_REQUIRE_DOCKER") == "1" {
			t.Fatalf("WHARF_REQUIRE_DOCKER=1 and no Docker daemon: %v", err)
		}
		t.Skipf("no Docker daemon to build the test image: %v", err)
	}
	return cli
}

func get(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline.Scale(10*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v %s", url, resp.StatusCode, err, b)
	}
	return string(b)
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) error {
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) {
			return context.DeadlineExceeded
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}
