package kubeenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

// TestRealNode runs Pods of a locally built image on a real kubelet: they
// become Ready (an HTTP readiness probe from the kubelet), a Pod IP answers
// HTTP from the test process, logs are read and a command executed through
// the API server, and deleting a Pod ends its processes, network namespace
// and CNI attachment. A node whose kubelet stops goes NotReady; Stop then leaves no
// process, mount, cgroup or bridge behind, though the kubelet is gone and
// a Pod still runs.
func TestRealNode(t *testing.T) {
	cli := dockerClient(t)
	began := time.Now()
	c := Start(t, Options{Nodes: 1, NodeMonitorGracePeriod: 8 * time.Second})
	t.Logf("cluster with a real node ready in %v", time.Since(began).Round(time.Millisecond))
	nd := c.nodes[0]
	kubectl := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := c.Kubectl(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// The API server reaches the kubelet (logs, exec) at the node's
	// InternalIP: its bridge's address, never loopback.
	if got := kubectl(t, "get", "node", "node-0", "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`); got != nd.ip() {
		t.Fatalf("node-0 InternalIP %q, want its bridge address %s", got, nd.ip())
	}

	image := drivertest.BuildTestAppImage(t, cli)
	c.ImportImage(t, image)
	applied := time.Now()
	for _, name := range []string{"web", "left"} {
		if _, err := c.KubectlStdin(t, realPod(name, image), "apply", "-f", "-"); err != nil {
			t.Fatal(err)
		}
	}
	wait := deadline.Scale(90 * time.Second).String()
	if out, err := c.Kubectl(t, "wait", "--for=condition=Ready", "pod/web", "pod/left", "--timeout="+wait); err != nil {
		desc, _ := c.Kubectl(t, "describe", "pods")
		t.Fatalf("%v\n%s\n%s", err, out, desc)
	}
	t.Logf("2 pods Ready %v after apply", time.Since(applied).Round(time.Millisecond))
	ip, nodeName, _ := strings.Cut(kubectl(t, "get", "pod", "web", "-o", "jsonpath={.status.podIP} {.spec.nodeName}"), " ")
	if !strings.HasPrefix(ip, fmt.Sprintf("10.244.%d.", nd.subnet)) || nodeName != "node-0" {
		t.Fatalf("pod IP %q on %q, want one of 10.244.%d.0/24 on node-0", ip, nodeName, nd.subnet)
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
	code, body, err := c.Do(t.Context(), http.MethodGet, "/api/v1/namespaces/default/pods/web/log?container=web", nil)
	if err != nil || code != http.StatusOK || !strings.Contains(string(body), "kubeenv-smoke-line") {
		t.Fatalf("GET pods/web/log: %d %v %q", code, err, body)
	}

	// Exec, through the API server and the kubelet to containerd's
	// streaming server: the app's own health check, run in the Pod.
	if out, err := c.Kubectl(t, "exec", "web", "--", "/testapp", "check"); err != nil {
		t.Fatalf("kubectl exec web -- /testapp check: %v %s", err, out)
	}

	// Deleting a Pod ends its processes (sandbox and container) and
	// removes its network namespace.
	uid := kubectl(t, "get", "pod", "web", "-o", "jsonpath={.metadata.uid}")
	webPIDs := cgroupPIDs(nd, "pod"+uid)
	if len(webPIDs) < 2 {
		t.Fatalf("pod web (uid %s) has %d processes in the node's cgroups, want its pause and its app", uid, len(webPIDs))
	}
	netnsBefore := nsMounts(t, c.Dir)
	kubectl(t, "delete", "pod", "web", "--timeout="+wait)
	if err := waitUntil(deadline.Scale(20*time.Second), func() bool {
		for _, pid := range webPIDs {
			if running(pid) {
				return false
			}
		}
		return len(nsMounts(t, c.Dir)) == len(netnsBefore)-1
	}); err != nil {
		t.Fatalf("deleted pod web: processes %v or its network namespace remain (namespaces before %v, now %v)", webPIDs, netnsBefore, nsMounts(t, c.Dir))
	}
	if left := filesNaming(t, cniResults, uid); len(left) > 0 {
		t.Fatalf("deleted pod web: CNI results remain: %v", left)
	}

	// A node whose kubelet stops goes NotReady; its Pod keeps running.
	c.StopNode(t, "node-0")
	if err := waitUntil(deadline.Scale(40*time.Second), func() bool {
		out, _ := c.Kubectl(t, "get", "node", "node-0", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return out == "Unknown"
	}); err != nil {
		t.Fatal("node-0 did not become NotReady (Ready Unknown) after its kubelet stopped")
	}

	// The processes of the cluster and of the Pod left running, then Stop.
	pids := componentPIDs(t, c.Dir, 6) // 4 control plane, containerd, a shim
	left := cgroupPIDs(nd, "")
	if len(left) < 2 {
		t.Fatalf("pod left has %d processes in the node's cgroups, want its pause and its app", len(left))
	}
	pids = append(pids, left...)
	// The CNI attachments of a Pod that no kubelet deleted.
	leftUID := kubectl(t, "get", "pod", "left", "-o", "jsonpath={.metadata.uid}")
	cniLeft := filesNaming(t, cniResults, leftUID)
	if len(cniLeft) == 0 {
		t.Fatalf("no CNI result in %s names pod left (uid %s)", cniResults, leftUID)
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
	for _, f := range cniLeft {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("CNI result %s remains after Stop", f)
		}
	}
	// The device plugins' socket goes with the last kubelet (another
	// test's kubelet may have replaced it and listen on it).
	if _, err := os.Stat(kubeletSocket); err == nil {
		if conn, err := net.Dial("unix", kubeletSocket); err != nil {
			t.Errorf("%s remains after Stop and no kubelet listens on it: %v", kubeletSocket, err)
		} else {
			conn.Close()
		}
	}
	entries, _ := os.ReadDir(containerLogLinks)
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join(containerLogLinks, e.Name())); err == nil && strings.HasPrefix(target, c.Dir) {
			t.Errorf("log link %s to %s remains after Stop", e.Name(), target)
		}
	}
}

// filesNaming lists the files of dir whose content holds s.
func filesNaming(t *testing.T, dir, s string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), s) {
			files = append(files, p)
		}
	}
	return files
}

// realPod is a Pod of the test app named name, Ready when its /healthz
// answers.
func realPod(name, image string) string {
	return `apiVersion: v1
kind: Pod
metadata:
  name: ` + name + `
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
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
}

// cgroupPIDs lists the processes in the node's cgroups whose path holds
// part ("": all of them).
func cgroupPIDs(nd *node, part string) []int {
	seen := map[int]bool{}
	var pids []int
	for _, h := range cgroupHierarchies() {
		_ = filepath.WalkDir(filepath.Join(h, nd.cgroupRoot), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.Name() != "cgroup.procs" || !strings.Contains(p, part) {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil && !seen[pid] {
					seen[pid] = true
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// nsMounts lists the network namespace mounts (nsfs) under dir: a node's
// Pods' network namespaces.
func nsMounts(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") && strings.Contains(line, " - nsfs ") {
			ns = append(ns, fields[4])
		}
	}
	return ns
}

// checkStopped fails the test if a process of pids runs, or the cluster's
// directory or a mount under it remains.
func checkStopped(t *testing.T, c *Cluster, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if running(pid) {
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

// running tells whether process pid exists and has not exited. An exited
// process whose parent is gone stays a zombie until init reaps it, which
// this machine's init (a Firecracker VM's process API) does only now and
// then: a zombie counts as stopped.
func running(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
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
