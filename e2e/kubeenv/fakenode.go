package kubeenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest/deadline"
)

// FakeNode describes a Node object with no kubelet behind it. The harness
// creates it and keeps it Ready (a Lease renewed every 2 s and a Ready
// condition in its status) for capacity tests: allocatable, NotReady,
// cordoned (`kubectl cordon`). Pods bound to it never run.
type FakeNode struct {
	// Name of the Node (required).
	Name string
	// CPU, Memory and Pods are its capacity and allocatable, as
	// Kubernetes quantities. Empty: "4", "8Gi", "110".
	CPU, Memory, Pods string
	// Labels are added to the usual kubernetes.io/hostname, os and arch
	// labels and kubeenv.wharf.dev/fake=true.
	Labels map[string]string
}

// fakeLeaseSeconds is the fake nodes' lease duration; renewed every
// fakeHeartbeat.
const (
	fakeLeaseSeconds = 40
	fakeHeartbeat    = 2 * time.Second
)

// fakeNodes runs the heartbeats of a cluster's fake nodes.
type fakeNodes struct {
	c      *Cluster
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	nodes  map[string]*fakeNode
}

type fakeNode struct {
	ready     bool // what the heartbeat reports
	since     time.Time
	stopBeats context.CancelFunc
}

func (c *Cluster) fakeNodeSet() *fakeNodes {
	if c.fakes == nil {
		ctx, cancel := context.WithCancel(context.Background())
		c.fakes = &fakeNodes{c: c, ctx: ctx, cancel: cancel, nodes: map[string]*fakeNode{}}
	}
	return c.fakes
}

func (f *fakeNodes) stop() {
	f.cancel()
	f.wg.Wait()
}

// AddFakeNode creates a fake node and waits until the control plane has
// it Ready and schedulable (its not-ready taint removed).
func (c *Cluster) AddFakeNode(t testing.TB, n FakeNode) {
	t.Helper()
	if err := c.addFakeNode(context.Background(), n, true); err != nil {
		t.Fatalf("kubeenv: %v", err)
	}
}

// addFakeNode creates the node and starts its heartbeat; with wait, it
// returns once the node is schedulable.
func (c *Cluster) addFakeNode(ctx context.Context, n FakeNode, wait bool) error {
	if n.Name == "" {
		return fmt.Errorf("fake node: no name")
	}
	f := c.fakeNodeSet()
	f.mu.Lock()
	if _, dup := f.nodes[n.Name]; dup {
		f.mu.Unlock()
		return fmt.Errorf("fake node %s: already added", n.Name)
	}
	beatCtx, stopBeats := context.WithCancel(f.ctx)
	fn := &fakeNode{ready: true, since: time.Now(), stopBeats: stopBeats}
	f.nodes[n.Name] = fn
	f.mu.Unlock()

	cpu, mem, pods := or(n.CPU, "4"), or(n.Memory, "8Gi"), or(n.Pods, "110")
	labels := map[string]string{
		"kubernetes.io/hostname": n.Name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     runtime.GOARCH,
		"kubeenv.wharf.dev/fake": "true",
	}
	for k, v := range n.Labels {
		labels[k] = v
	}
	resources := map[string]string{"cpu": cpu, "memory": mem, "pods": pods}
	status := map[string]any{
		"capacity":    resources,
		"allocatable": resources,
		"conditions":  fn.conditions(time.Now()),
		"addresses": []any{
			map[string]string{"type": "InternalIP", "address": "127.0.0.1"},
			map[string]string{"type": "Hostname", "address": n.Name},
		},
		"nodeInfo": map[string]string{
			"kubeletVersion": Version, "operatingSystem": "linux", "architecture": runtime.GOARCH,
			"containerRuntimeVersion": "fake://0", "osImage": "kubeenv fake node",
		},
	}
	node := map[string]any{
		"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]any{"name": n.Name, "labels": labels},
		"status":   status,
	}
	code, body, err := c.Do(ctx, http.MethodPost, "/api/v1/nodes", node)
	if err != nil || code != http.StatusCreated {
		return fmt.Errorf("create fake node %s: %d %v %s", n.Name, code, err, body)
	}
	// As a kubelet does: the status again through the status
	// subresource, whatever the create kept of it.
	code, body, err = c.doType(ctx, http.MethodPatch, "/api/v1/nodes/"+n.Name+"/status", "application/merge-patch+json", map[string]any{"status": status})
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("status of fake node %s: %d %v %s", n.Name, code, err, body)
	}
	lease := map[string]any{
		"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
		"metadata": map[string]any{"name": n.Name, "namespace": "kube-node-lease"},
		"spec": map[string]any{
			"holderIdentity":       n.Name,
			"leaseDurationSeconds": fakeLeaseSeconds,
			"renewTime":            microTime(time.Now()),
		},
	}
	code, body, err = c.Do(ctx, http.MethodPost, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)
	if err != nil || code != http.StatusCreated {
		return fmt.Errorf("create lease of fake node %s: %d %v %s", n.Name, code, err, body)
	}
	if err := f.beat(ctx, n.Name); err != nil {
		return err
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		tick := time.NewTicker(fakeHeartbeat)
		defer tick.Stop()
		for {
			select {
			case <-beatCtx.Done():
				return
			case <-tick.C:
				// A missed beat is retried at the next tick; the
				// lease outlives several.
				_ = f.beat(beatCtx, n.Name)
			}
		}
	}()
	if !wait {
		return nil
	}
	return waitFor("fake node "+n.Name+" schedulable", deadline.Scale(60*time.Second), c.procs, func() (bool, error) {
		return c.nodeSchedulable(ctx, n.Name)
	})
}

// nodeSchedulable tells whether the Node is Ready with no not-ready or
// unreachable taint left.
func (c *Cluster) nodeSchedulable(ctx context.Context, name string) (bool, error) {
	code, body, err := c.Do(ctx, http.MethodGet, "/api/v1/nodes/"+name, nil)
	if err != nil || code != http.StatusOK {
		return false, fmt.Errorf("get node %s: %d %v", name, code, err)
	}
	var node struct {
		Spec struct {
			Taints []struct{ Key string } `json:"taints"`
		} `json:"spec"`
		Status struct {
			Conditions []struct{ Type, Status string } `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &node); err != nil {
		return false, err
	}
	ready := false
	for _, cond := range node.Status.Conditions {
		if cond.Type == "Ready" && cond.Status == "True" {
			ready = true
		}
	}
	for _, taint := range node.Spec.Taints {
		if taint.Key == "node.kubernetes.io/not-ready" || taint.Key == "node.kubernetes.io/unreachable" {
			return false, nil
		}
	}
	return ready, nil
}

// beat renews a fake node's lease and reports its conditions.
func (f *fakeNodes) beat(ctx context.Context, name string) error {
	f.mu.Lock()
	fn := f.nodes[name]
	conds := fn.conditions(time.Now())
	f.mu.Unlock()
	now := time.Now()
	patch := map[string]any{"spec": map[string]any{"renewTime": microTime(now)}}
	code, body, err := f.c.doType(ctx, http.MethodPatch, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/"+name, "application/merge-patch+json", patch)
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("renew lease of fake node %s: %d %v %s", name, code, err, body)
	}
	status := map[string]any{"status": map[string]any{"conditions": conds}}
	code, body, err = f.c.doType(ctx, http.MethodPatch, "/api/v1/nodes/"+name+"/status", "application/strategic-merge-patch+json", status)
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("report status of fake node %s: %d %v %s", name, code, err, body)
	}
	return nil
}

// conditions is what a kubelet reports: Ready as set, no pressure.
func (fn *fakeNode) conditions(now time.Time) []any {
	readyStatus, reason, msg := "True", "KubeletReady", "kubelet is posting ready status"
	if !fn.ready {
		readyStatus, reason, msg = "False", "KubeletNotReady", "fake node set not ready"
	}
	cond := func(typ, status, reason, msg string, since time.Time) map[string]string {
		return map[string]string{
			"type": typ, "status": status, "reason": reason, "message": msg,
			"lastHeartbeatTime": now.UTC().Format(time.RFC3339), "lastTransitionTime": since.UTC().Format(time.RFC3339),
		}
	}
	return []any{
		cond("Ready", readyStatus, reason, msg, fn.since),
		cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "", fn.since),
		cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "", fn.since),
		cond("PIDPressure", "False", "KubeletHasSufficientPID", "", fn.since),
	}
}

// SetNodeReady makes a fake node's heartbeat report Ready (true) or
// NotReady (false) from now on; the node lifecycle controller then taints
// or untaints it. It returns once the API server has the new status.
func (c *Cluster) SetNodeReady(t testing.TB, name string, ready bool) {
	t.Helper()
	f := c.fakes
	if f == nil {
		t.Fatalf("kubeenv: %s is not a fake node", name)
	}
	f.mu.Lock()
	fn, ok := f.nodes[name]
	if ok && fn.ready != ready {
		fn.ready, fn.since = ready, time.Now()
	}
	f.mu.Unlock()
	if !ok {
		t.Fatalf("kubeenv: %s is not a fake node", name)
	}
	if err := f.beat(context.Background(), name); err != nil {
		t.Fatalf("kubeenv: %v", err)
	}
}

// StopHeartbeat stops renewing a fake node's lease and status, as when
// its kubelet dies: after NodeMonitorGracePeriod the controller-manager
// marks it Unknown (NotReady) and taints it unreachable.
func (c *Cluster) StopHeartbeat(t testing.TB, name string) {
	t.Helper()
	f := c.fakes
	if f == nil {
		t.Fatalf("kubeenv: %s is not a fake node", name)
	}
	f.mu.Lock()
	fn, ok := f.nodes[name]
	f.mu.Unlock()
	if !ok {
		t.Fatalf("kubeenv: %s is not a fake node", name)
	}
	fn.stopBeats()
}

// microTime formats t as a Kubernetes MicroTime.
func microTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00") }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
