package kubeenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest/deadline"
)

// Real nodes. Each is a kubelet with a containerd of its own (Debian's;
// never the one under dockerd), everything under the node's directory:
// containerd's root, state and socket (Pods' network namespaces are
// mounted under its state dir, not /run/netns), the kubelet's root dir
// and Pod logs. Pods get their addresses from the CNI bridge and
// host-local plugins, one /24 of 10.244.0.0/16 per node on a bridge of
// the node's own, which the root namespace reaches directly. Pod cgroups
// live under a cgroup root of the node's own (kubelet --cgroup-root).
// The sandbox image is the pause program from BinDir, packed as an image
// and imported; no registry is ever contacted, so Pods must use images
// imported with ImportImage and imagePullPolicy IfNotPresent (or Never).

// cniBinDir is where Debian's containernetworking-plugins installs them.
const cniBinDir = "/usr/lib/cni"

// pauseImage is the sandbox image's name.
const pauseImage = "kubeenv.wharf.dev/pause:1"

// errRealNodesOff marks real nodes turned off by WHARF_KUBE_REAL_NODE=0:
// a choice of whoever runs the tests, so Check skips even when
// WHARF_REQUIRE_KUBE=1.
var errRealNodesOff = errors.New("real nodes turned off by WHARF_KUBE_REAL_NODE=0")

// nodePrerequisites tells why this machine cannot run real nodes.
func nodePrerequisites() error {
	if os.Getenv("WHARF_KUBE_REAL_NODE") == "0" {
		return fmt.Errorf("%w: %w", ErrUnavailable, errRealNodesOff)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: real nodes need root", ErrUnavailable)
	}
	var missing []string
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "ip", "mount"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, p)); err != nil {
			missing = append(missing, filepath.Join(cniBinDir, p))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: real nodes need %s (apt-get install containerd runc containernetworking-plugins iproute2)", ErrUnavailable, strings.Join(missing, ", "))
	}
	return nil
}

type node struct {
	name       string
	dir        string
	sock       string // containerd's socket
	bridge     string // the CNI bridge, created here
	subnet     int    // the third octet of its 10.244.X.0/24
	cgroupRoot string // relative to each cgroup hierarchy
	containerd *proc
	kubelet    *proc
}

// ip is the node's address: its bridge's, the Pods' gateway, which the
// root network namespace (the API server, the test process) owns.
func (n *node) ip() string { return fmt.Sprintf("10.244.%d.1", n.subnet) }

func (n *node) procs() []*proc {
	var ps []*proc
	for _, p := range []*proc{n.containerd, n.kubelet} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// startNodes adds the fake nodes and starts the real ones, then waits
// until all are Ready and schedulable.
func (c *Cluster) startNodes(opts Options) error {
	ctx := context.Background()
	var names []string
	for _, fn := range opts.FakeNodes {
		if err := c.addFakeNode(ctx, fn, false); err != nil {
			return err
		}
		names = append(names, fn.Name)
	}
	id := make([]byte, 3)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	// Every kubelet's ports at once: a kubelet binds its own only some
	// seconds after it starts, so ports chosen one node at a time would
	// collide.
	ports, err := freePorts(2 * opts.Nodes)
	if err != nil {
		return err
	}
	for i := range opts.Nodes {
		n, err := c.startNode(fmt.Sprintf("node-%d", i), hex.EncodeToString(id), i, ports[2*i:2*i+2])
		if n != nil {
			c.nodes = append(c.nodes, n)
		}
		if err != nil {
			return err
		}
		c.NodeNames = append(c.NodeNames, n.name)
		names = append(names, n.name)
	}
	watch := append([]*proc(nil), c.procs...)
	for _, n := range c.nodes {
		watch = append(watch, n.procs()...)
	}
	for _, name := range names {
		if err := waitFor("node "+name+" Ready and schedulable", deadline.Scale(90*time.Second), watch, func() (bool, error) {
			return c.nodeSchedulable(ctx, name)
		}); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) startNode(name, clusterID string, index int, ports []int) (*node, error) {
	n := &node{name: name, dir: filepath.Join(c.Dir, name)}
	n.sock = filepath.Join(n.dir, "containerd.sock")
	n.bridge = fmt.Sprintf("kbr%s%d", clusterID, index)
	n.cgroupRoot = fmt.Sprintf("/kubeenv-%s-%d", clusterID, index)
	for _, d := range []string{"cni", "pods-logs", "kubelet", "volume-plugins", "pki"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := n.makeBridge(); err != nil {
		return n, err
	}
	if err := n.makeCgroupRoot(); err != nil {
		return n, err
	}
	if err := n.startContainerd(c); err != nil {
		return n, err
	}
	if err := n.startKubelet(c, ports); err != nil {
		return n, err
	}
	return n, nil
}

// StopNode stops the kubelet of real node name (by its PID), the way a
// node fails: its containerd and its Pods' containers keep running, its
// heartbeat stops, and the controller-manager reports it NotReady (Ready
// Unknown) after Options.NodeMonitorGracePeriod and taints it. Stop
// removes what the node leaves, as for any node.
func (c *Cluster) StopNode(t testing.TB, name string) {
	t.Helper()
	for _, n := range c.nodes {
		if n.name == name {
			n.kubelet.stop(10 * time.Second)
			return
		}
	}
	t.Fatalf("kubeenv: StopNode %s: not a real node of the cluster (%s)", name, strings.Join(c.NodeNames, ", "))
}

// makeBridge creates the node's bridge with a free 10.244.X.1/24 (no
// route of the machine in it yet), which the CNI bridge plugin then uses
// as the Pods' gateway.
func (n *node) makeBridge() error {
	for range 50 {
		x, err := rand.Int(rand.Reader, big.NewInt(250))
		if err != nil {
			return err
		}
		n.subnet = int(x.Int64()) + 2
		routes, err := exec.Command("ip", "-4", "route", "show").CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip route: %v: %s", err, routes)
		}
		if strings.Contains(string(routes), fmt.Sprintf("10.244.%d.", n.subnet)) {
			continue
		}
		for _, args := range [][]string{
			{"link", "add", "name", n.bridge, "type", "bridge"},
			{"addr", "add", fmt.Sprintf("10.244.%d.1/24", n.subnet), "dev", n.bridge},
			{"link", "set", n.bridge, "up"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		return nil
	}
	return errors.New("no free /24 in 10.244.0.0/16 for a node's Pods")
}

// cgroupHierarchies lists the mounted cgroup v1 hierarchies (each a
// directory of /sys/fs/cgroup), or the cgroup v2 root alone.
func cgroupHierarchies() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup"}
	}
	var hs []string
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		// Symlinks (cpu -> cpu,cpuacct) name a hierarchy twice. The
		// cgroup2 mount of a hybrid setup ("unified") is one too: runc
		// may place containers there as well.
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(p, "cgroup.procs")); err == nil {
			hs = append(hs, p)
		}
	}
	return hs
}

// makeCgroupRoot creates the node's cgroup root in every hierarchy (the
// kubelet refuses a cgroup root that does not exist), with cpuset's CPUs
// and memory nodes copied from the parent so that tasks can join.
func (n *node) makeCgroupRoot() error {
	for _, h := range cgroupHierarchies() {
		d := filepath.Join(h, n.cgroupRoot)
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("cgroup root: %w", err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
					return fmt.Errorf("cgroup root %s: %w", f, err)
				}
			}
		}
	}
	return nil
}

func (n *node) startContainerd(c *Cluster) error {
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "kubeenv",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": "10.244.%d.0/24", "gateway": "10.244.%d.1"}]],
      "dataDir": %q
    }
  }]
}
`, n.bridge, n.subnet, n.subnet, filepath.Join(n.dir, "cni-ipam"))
	if err := os.WriteFile(filepath.Join(n.dir, "cni", "10-kubeenv.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	// restrict_oom_score_adj: the kubelet asks for oom_score_adj -998 for
	// every Pod sandbox (-997 for Guaranteed containers), and some kernels
	// refuse a negative one even to root (this machine's, a Firecracker
	// VM's). runc's init dies of it, containerd reports only "can't get
	// final child's PID from pipe: EOF", and no Pod ever starts.
	// Restricted, containerd raises a score below its own (0) to its own.
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
    max_conf_num = 1
`, filepath.Join(n.dir, "containerd-root"), filepath.Join(n.dir, "containerd-state"), n.sock,
		filepath.Join(n.dir, "opt"), pauseImage, filepath.Join(n.dir, "runc"), cniBinDir, filepath.Join(n.dir, "cni"))
	cfgPath := filepath.Join(n.dir, "containerd.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	p, err := startProc(n.name+"/containerd", filepath.Join(c.Dir, n.name+"-containerd.log"), nil, "containerd", "--config", cfgPath)
	if err != nil {
		return err
	}
	n.containerd = p
	if err := waitFor(n.name+" containerd", deadline.Scale(30*time.Second), []*proc{p}, func() (bool, error) {
		out, err := n.ctr(context.Background(), "version")
		if err != nil {
			return false, fmt.Errorf("%v: %s", err, out)
		}
		return true, nil
	}); err != nil {
		return err
	}
	tar, err := pauseImageTar(c)
	if err != nil {
		return err
	}
	if out, err := n.ctr(context.Background(), "-n", "k8s.io", "images", "import", "--digests", "--snapshotter", "overlayfs", tar); err != nil {
		return fmt.Errorf("import the pause image into %s: %v: %s", n.name, err, out)
	}
	return nil
}

// ctr runs ctr against the node's containerd.
func (n *node) ctr(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, deadline.Scale(2*time.Minute))
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", n.sock}, args...)...).CombinedOutput()
	return string(out), err
}

// startKubelet starts the kubelet, serving on ports[0] and its healthz on
// ports[1] (loopback).
func (n *node) startKubelet(c *Cluster, ports []int) error {
	cert, key, err := c.ca.issue("kubelet-"+n.name, "system:node:"+n.name, []string{"system:nodes"}, nil)
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(n.dir, "kubelet.kubeconfig")
	if err := writeKubeconfig(kubeconfig, c.Server, c.CAFile, credential{CertFile: cert, KeyFile: key}); err != nil {
		return err
	}
	cfg := map[string]any{
		"kind":       "KubeletConfiguration",
		"apiVersion": "kubelet.config.k8s.io/v1beta1",
		// This machine (and CI's) has cgroup v1, which 1.35 refuses
		// unless told otherwise.
		"failCgroupV1": false,
		"failSwapOn":   false,
		// The kubelet's own OOM score: its default, -999, is refused by
		// kernels that take no negative oom_score_adj (see
		// startContainerd).
		"oomScoreAdj":  0,
		"cgroupDriver": "cgroupfs",
		"cgroupRoot":   n.cgroupRoot,
		// The bridge's address: the kubelet refuses a loopback node
		// IP, and the API server reaches the kubelet (logs, exec) at the
		// node's InternalIP.
		"address":            n.ip(),
		"port":               ports[0],
		"readOnlyPort":       0,
		"healthzBindAddress": "127.0.0.1",
		"healthzPort":        ports[1],
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true},
			"x509":      map[string]any{"clientCAFile": c.CAFile},
		},
		"authorization":            map[string]any{"mode": "Webhook"},
		"containerRuntimeEndpoint": "unix://" + n.sock,
		"podLogsDir":               filepath.Join(n.dir, "pods-logs"),
		"volumePluginDir":          filepath.Join(n.dir, "volume-plugins"),
		"resolvConf":               "/etc/resolv.conf",
		// No image is ever garbage-collected (imported images cannot be
		// pulled again) and no Pod evicted for disk space on a shared
		// test machine.
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"evictionHard":                map[string]string{"nodefs.available": "0%", "nodefs.inodesFree": "0%", "imagefs.available": "0%"},
		// Heartbeats well inside the controller-manager's grace period.
		"nodeLeaseDurationSeconds":  10,
		"nodeStatusUpdateFrequency": "4s",
		"syncFrequency":             "10s",
		"serializeImagePulls":       false,
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(n.dir, "kubelet-config.json")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return err
	}
	path, err := n.pathWithoutIPTables()
	if err != nil {
		return err
	}
	p, err := startProc(n.name+"/kubelet", filepath.Join(c.Dir, n.name+"-kubelet.log"), []string{"PATH=" + path}, filepath.Join(c.BinDir, "kubelet"),
		"--config", cfgPath, "--kubeconfig", kubeconfig,
		"--root-dir", filepath.Join(n.dir, "kubelet"), "--cert-dir", filepath.Join(n.dir, "pki"),
		"--hostname-override", n.name, "--node-ip", n.ip(), "-v", "1")
	if err != nil {
		return err
	}
	n.kubelet = p
	return nil
}

// pathWithoutIPTables returns a PATH for the kubelet: a directory of links
// to every program of the usual PATH but iptables and ip6tables. A kubelet
// that finds iptables adds machine-wide chains and rules (KUBE-FIREWALL in
// INPUT and OUTPUT, KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY) for the benefit
// of kube-proxy, which these clusters do not run; without it, it skips them
// and leaves the machine's firewall as it was.
func (n *node) pathWithoutIPTables() (string, error) {
	dir := filepath.Join(n.dir, "path")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, "iptables") || strings.HasPrefix(name, "ip6tables") {
				continue
			}
			// The first directory of the PATH that has a name wins.
			if err := os.Symlink(filepath.Join(d, name), filepath.Join(dir, name)); err != nil && !os.IsExist(err) {
				return "", err
			}
		}
	}
	return dir, nil
}
