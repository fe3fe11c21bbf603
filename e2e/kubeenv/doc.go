// Package kubeenv runs a real Kubernetes cluster for tests: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler (v1.35.4,
// built from source by e2e/kube/build.sh), optionally real kubelets with
// containerd of their own, and fake nodes. It imports only the standard
// library (and the repository's deadline scaling), not client-go, so that
// it builds fast; a test that wants client-go builds its config from
// Cluster.Kubeconfig.
//
// # One cluster per test
//
//	func TestPods(t *testing.T) {
//		c := kubeenv.Start(t, kubeenv.Options{Nodes: 1})
//		c.ImportImage(t, "wharf-testapp:v1") // docker image of this machine
//		out, err := c.Kubectl(t, "get", "nodes", "-o", "wide")
//		...
//	}
//
// Start skips the test when the machine cannot run a cluster (no Go to
// build the binaries, or for real nodes: not root, no containerd, runc or
// CNI plugins) and fails it instead when WHARF_REQUIRE_KUBE=1 (CI sets
// it). WHARF_KUBE_REAL_NODE=0 turns real nodes off: a cluster with
// Options.Nodes > 0 then skips its test, even with WHARF_REQUIRE_KUBE=1.
// Everything is stopped by t.Cleanup: processes by their PID, then the
// nodes' containers, shims, mounts, network namespaces, cgroups, CNI
// results and bridges, then the cluster's directory. When the test failed,
// the end of every component's log is logged.
//
// # One cluster per package
//
// The control plane takes a few seconds to start (a real node some
// more), so a package with many tests shares one from TestMain:
//
//	var cluster *kubeenv.Cluster
//	var clusterErr error
//
//	func TestMain(m *testing.M) {
//		c, stop, err := kubeenv.StartShared(kubeenv.Options{Nodes: 1})
//		cluster, clusterErr = c, err
//		code := m.Run()
//		stop()
//		os.Exit(code)
//	}
//
//	func kube(t *testing.T) *kubeenv.Cluster {
//		t.Helper()
//		kubeenv.Check(t, clusterErr) // skip, or fail with WHARF_REQUIRE_KUBE=1
//		return cluster
//	}
//
// Tests sharing a cluster should each use namespaces of their own.
//
// # What a cluster has
//
//   - The API server on https://127.0.0.1:PORT (Cluster.Server), with
//     --authorization-mode=Node,RBAC and the NodeRestriction admission
//     plugin, certificates from a CA of the cluster's own (Cluster.CAFile),
//     ServiceAccount tokens signed by a key pair of its own, Services in
//     10.96.0.0/16 (no kube-proxy: a Service's virtual IP routes nowhere).
//   - Cluster.Kubeconfig: an admin (group system:masters).
//     Cluster.KubeconfigFor(t, namespace, serviceAccount) writes a
//     kubeconfig with a TokenRequest token of that ServiceAccount (created
//     if missing), which has only what RBAC grants it: for RBAC tests.
//   - Cluster.Kubectl(t, args...) runs kubectl as the admin (a later
//     --kubeconfig among args overrides it); KubectlStdin feeds it a
//     manifest; Cluster.Do sends a raw API request.
//   - The controller-manager: namespaces get their default ServiceAccount,
//     Deployments get ReplicaSets and Pods, nodes whose heartbeat stops
//     become NotReady after Options.NodeMonitorGracePeriod (default 20 s)
//     and are tainted. The scheduler binds Pods to nodes.
//   - Options.Nodes real nodes, node-0, node-1, ...: a kubelet each,
//     with a containerd of its own (Debian's package, its root, state and
//     socket under the cluster's directory), Pods on a bridge of the node's
//     own with a /24 of 10.244.0.0/16 that the test process reaches
//     directly (a Pod IP answers HTTP from the root namespace). The node's
//     InternalIP is its bridge's address (10.244.X.1), where the kubelet
//     serves. StopNode(t, name) stops a node's kubelet as a failing node
//     does (its Pods' containers keep running; the node goes NotReady). No
//     registry is reachable: the sandbox image is a FROM-scratch image of
//     e2e/kube/pause, and a test's images come from the local Docker daemon
//     through Cluster.ImportImage; such Pods must say imagePullPolicy:
//     IfNotPresent (or Never). Logs (`kubectl logs`) and exec go through
//     the API server to the kubelet, as in any cluster. The kubelet runs
//     on cgroup v1 (failCgroupV1: false) with the cgroupfs driver, image
//     garbage collection and disk-pressure eviction off. No process of a
//     Pod gets a negative OOM score (containerd's restrict_oom_score_adj):
//     the test machine's kernel (a Firecracker VM's) refuses them.
//   - Options.FakeNodes: Node objects with no kubelet, kept Ready by a
//     heartbeat (Lease and status) with the capacity given, for capacity
//     tests; SetNodeReady(t, name, false) reports NotReady,
//     StopHeartbeat(t, name) lets the controller-manager find the node
//     gone; cordon with `kubectl cordon`. AddFakeNode adds one later.
//
// Startup, measured on the 2-core test machine: see e2e/kube/README.md.
package kubeenv
