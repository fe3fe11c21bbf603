package kubeenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest/deadline"
)

// Options says what a cluster has besides its control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler).
type Options struct {
	// Nodes is the number of real nodes: each a kubelet with a containerd
	// of its own, named node-0, node-1, ... Zero: none. Real nodes need
	// root, containerd, runc and the CNI plugins (Debian's containerd, runc
	// and containernetworking-plugins).
	Nodes int
	// FakeNodes are Node objects with no kubelet behind them, kept Ready
	// by a heartbeat (Lease and NodeStatus) until SetNodeReady or
	// StopHeartbeat say otherwise. Pods bound to them never run.
	FakeNodes []FakeNode
	// NodeMonitorGracePeriod is how long the controller-manager waits for
	// a node's heartbeat before it marks the node NotReady (Unknown).
	// Zero: 20s (Kubernetes' default is 50s).
	NodeMonitorGracePeriod time.Duration
}

// Cluster is a running control plane, with its nodes. Its fields are
// read-only.
type Cluster struct {
	// Server is the API server's URL (https://127.0.0.1:PORT).
	Server string
	// Kubeconfig is the path of a kubeconfig for a cluster admin (a client
	// certificate in group system:masters).
	Kubeconfig string
	// CAFile is the PEM file of the cluster's CA, which signed the API
	// server's certificate.
	CAFile string
	// Dir holds everything the cluster writes (certificates, etcd's data,
	// component logs as <component>.log, nodes' state); removed by Stop.
	Dir string
	// BinDir holds the binaries the cluster runs (see Bin).
	BinDir string
	// NodeNames are the names of the real nodes (kubelets), in order.
	NodeNames []string

	ca      *ca
	admin   credential
	client  *http.Client
	procs   []*proc // control plane, in start order
	nodes   []*node
	fakes   *fakeNodes
	logf    func(format string, args ...any)
	stopped sync.Once
}

// Start starts a cluster for one test, stopped by t.Cleanup. It skips the
// test when the machine cannot run one (fails with WHARF_REQUIRE_KUBE=1).
// When the test fails, the end of every component's log is logged.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c, err := start(opts, t.Logf)
	Check(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			c.logTails(t.Logf, 25)
		}
		c.Stop()
	})
	return c
}

// StartShared starts a cluster outside any test (from TestMain) for the
// tests of a package to share. stop ends it; it is never nil, so it can
// be deferred or called even when err is not. Tests report err with
// Check (a skip when the machine cannot run a cluster and
// WHARF_REQUIRE_KUBE is not 1).
func StartShared(opts Options) (c *Cluster, stop func(), err error) {
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
	c, err = start(opts, logf)
	if err != nil {
		return nil, func() {}, err
	}
	return c, c.Stop, nil
}

// Validate reports options that cannot make a cluster.
func (o Options) Validate() error {
	if o.Nodes < 0 {
		return fmt.Errorf("kubeenv: Nodes %d: want 0 or more", o.Nodes)
	}
	if o.NodeMonitorGracePeriod < 0 {
		return fmt.Errorf("kubeenv: NodeMonitorGracePeriod %v: want 0 (the default) or more", o.NodeMonitorGracePeriod)
	}
	seen := map[string]bool{}
	for i := range o.Nodes {
		seen[fmt.Sprintf("node-%d", i)] = true
	}
	for _, fn := range o.FakeNodes {
		if fn.Name == "" {
			return errors.New("kubeenv: a fake node has no name")
		}
		if seen[fn.Name] {
			return fmt.Errorf("kubeenv: node name %s used twice (real nodes are node-0, node-1, ...)", fn.Name)
		}
		seen[fn.Name] = true
	}
	return nil
}

func start(opts Options, logf func(string, ...any)) (*Cluster, error) {
	began := time.Now()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	// Real nodes' prerequisites first: a look at the machine, where
	// BinDir may build for many minutes.
	if opts.Nodes > 0 {
		if err := nodePrerequisites(); err != nil {
			return nil, err
		}
	}
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	// A short path: containerd's socket lives under it (a unix socket
	// path has at most 107 bytes) and so do kubelets' mounts.
	dir, err := os.MkdirTemp("", "kubeenv")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, BinDir: bin, logf: logf}
	if err := c.startControlPlane(opts, began); err != nil {
		c.logTails(logf, 25)
		c.Stop()
		return nil, err
	}
	logf("kubeenv: control plane ready in %v", time.Since(began).Round(time.Millisecond))
	if err := c.startNodes(opts); err != nil {
		c.logTails(logf, 25)
		c.Stop()
		return nil, err
	}
	logf("kubeenv: cluster ready in %v (%d real nodes, %d fake)", time.Since(began).Round(time.Millisecond), opts.Nodes, len(opts.FakeNodes))
	return c, nil
}

// serviceCIDR is the Services' virtual IP range: away from Docker's
// 172.17.0.0/16 and from the 10.77.0.0/16 other tests use.
const serviceCIDR = "10.96.0.0/16"

func (c *Cluster) startControlPlane(opts Options, began time.Time) error {
	pki := filepath.Join(c.Dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	ca, err := newCA(pki)
	if err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	c.ca, c.CAFile = ca, ca.CertPEM
	servingCert, servingKey, err := ca.issue("apiserver", "kube-apiserver", nil,
		[]string{"127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	if err != nil {
		return err
	}
	adminCert, adminKey, err := ca.issue("admin", "kubeenv-admin", []string{"system:masters"}, nil)
	if err != nil {
		return err
	}
	c.admin = credential{CertFile: adminCert, KeyFile: adminKey}
	saKey, saPub, err := serviceAccountKeys(pki)
	if err != nil {
		return err
	}
	if c.client, err = httpClient(ca.CertPEM, adminCert, adminKey); err != nil {
		return err
	}

	// etcd, on loopback, without fsync: its data dies with the test.
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	etcdPeer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	etcd, err := startProc("etcd", c.logPath("etcd"), nil, filepath.Join(c.BinDir, "etcd"),
		"--name", "kubeenv", "--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", etcdClient, "--advertise-client-urls", etcdClient,
		"--listen-peer-urls", etcdPeer, "--initial-advertise-peer-urls", etcdPeer,
		"--initial-cluster", "kubeenv="+etcdPeer, "--unsafe-no-fsync", "--log-level", "warn")
	if err != nil {
		return err
	}
	c.procs = append(c.procs, etcd)

	// The API server can start before etcd answers: it waits for its
	// storage. Authorization is Node,RBAC so that RBAC tests are real.
	c.Server = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	apiserver, err := startProc("kube-apiserver", c.logPath("kube-apiserver"), nil, filepath.Join(c.BinDir, "kube-apiserver"),
		"--etcd-servers", etcdClient,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(ports[2]),
		"--tls-cert-file", servingCert, "--tls-private-key-file", servingKey,
		"--client-ca-file", ca.CertPEM,
		"--service-account-key-file", saPub, "--service-account-signing-key-file", saKey,
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--api-audiences", "https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range", serviceCIDR,
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		"--allow-privileged",
		"--kubelet-client-certificate", adminCert, "--kubelet-client-key", adminKey,
		"--kubelet-preferred-address-types", "InternalIP,Hostname",
		"--cert-dir", filepath.Join(c.Dir, "apiserver-certs"),
		"--profiling=false",
		"--enable-priority-and-fairness=false")
	if err != nil {
		return err
	}
	c.procs = append(c.procs, apiserver)
	if err := c.writeAdminKubeconfig(); err != nil {
		return err
	}
	ctx := context.Background()
	if err := waitFor("API server /readyz", deadline.Scale(60*time.Second), []*proc{etcd, apiserver}, func() (bool, error) {
		code, body, err := c.Do(ctx, http.MethodGet, "/readyz", nil)
		if err != nil {
			return false, err
		}
		if code != http.StatusOK {
			return false, fmt.Errorf("/readyz: %d %s", code, lastLines(string(body), 3))
		}
		return true, nil
	}); err != nil {
		return err
	}
	c.logf("kubeenv: API server ready at %s in %v", c.Server, time.Since(began).Round(time.Millisecond))

	grace := opts.NodeMonitorGracePeriod
	if grace == 0 {
		grace = 20 * time.Second
	}
	cm, err := startProc("kube-controller-manager", c.logPath("kube-controller-manager"), nil, filepath.Join(c.BinDir, "kube-controller-manager"),
		"--kubeconfig", c.Kubeconfig,
		"--authentication-kubeconfig", c.Kubeconfig, "--authorization-kubeconfig", c.Kubeconfig,
		"--bind-address", "127.0.0.1", "--secure-port", "0",
		"--leader-elect=false",
		"--service-account-private-key-file", saKey, "--root-ca-file", ca.CertPEM,
		"--cluster-signing-cert-file", ca.CertPEM, "--cluster-signing-key-file", filepath.Join(pki, "ca.key"),
		"--service-cluster-ip-range", serviceCIDR,
		"--node-monitor-grace-period", grace.String(),
		"--node-monitor-period", "2s",
		"--profiling=false")
	if err != nil {
		return err
	}
	c.procs = append(c.procs, cm)
	sched, err := startProc("kube-scheduler", c.logPath("kube-scheduler"), nil, filepath.Join(c.BinDir, "kube-scheduler"),
		"--kubeconfig", c.Kubeconfig,
		"--authentication-kubeconfig", c.Kubeconfig, "--authorization-kubeconfig", c.Kubeconfig,
		"--bind-address", "127.0.0.1", "--secure-port", "0",
		"--leader-elect=false", "--profiling=false")
	if err != nil {
		return err
	}
	c.procs = append(c.procs, sched)
	// Pods can be created once their namespace has its default
	// ServiceAccount, which the controller-manager makes.
	return waitFor("the default ServiceAccount", deadline.Scale(60*time.Second), c.procs, func() (bool, error) {
		code, _, err := c.Do(ctx, http.MethodGet, "/api/v1/namespaces/default/serviceaccounts/default", nil)
		return err == nil && code == http.StatusOK, err
	})
}

func (c *Cluster) logPath(component string) string {
	return filepath.Join(c.Dir, component+".log")
}

func (c *Cluster) writeAdminKubeconfig() error {
	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	return writeKubeconfig(c.Kubeconfig, c.Server, c.CAFile, c.admin)
}

// Stop stops every process of the cluster by its PID (nodes first, with
// their Pods, containers, network namespaces, mounts and cgroups, then the
// control plane) and removes Dir. Start's cleanup and StartShared's stop
// call it; calling it again does nothing.
func (c *Cluster) Stop() {
	c.stopped.Do(func() {
		if c.fakes != nil {
			c.fakes.stop()
		}
		for i := len(c.nodes) - 1; i >= 0; i-- {
			if err := c.nodes[i].stop(c); err != nil {
				c.logf("kubeenv: stop %s: %v", c.nodes[i].name, err)
			}
		}
		for i := len(c.procs) - 1; i >= 0; i-- {
			c.procs[i].stop(10 * time.Second)
		}
		if err := unmountUnder(c.Dir); err != nil {
			c.logf("kubeenv: %v", err)
		}
		if err := os.RemoveAll(c.Dir); err != nil {
			c.logf("kubeenv: remove %s: %v", c.Dir, err)
		}
		if c.client != nil {
			c.client.CloseIdleConnections()
		}
	})
}

// logTails logs the last n lines of every component's log.
func (c *Cluster) logTails(logf func(string, ...any), n int) {
	all := append([]*proc(nil), c.procs...)
	for _, nd := range c.nodes {
		all = append(all, nd.procs()...)
	}
	for _, p := range all {
		logf("--- %s (%s):\n%s", p.name, p.log, logTail(p.log, n))
	}
}

// HTTPClient returns an HTTP client that trusts the API server and
// authenticates as the cluster admin, for requests to Server.
func (c *Cluster) HTTPClient() *http.Client { return c.client }

// Do sends one request to the API server as the cluster admin: path is
// absolute ("/api/v1/namespaces"), body (if not nil) is encoded as JSON
// unless it is already a []byte. It returns the status code and body; a
// status of 400 or more is not an error.
func (c *Cluster) Do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	return c.doType(ctx, method, path, "application/json", body)
}

func (c *Cluster) doType(ctx context.Context, method, path, contentType string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				return 0, nil, err
			}
		}
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Kubectl runs kubectl with args against the cluster as its admin and
// returns its standard output; the error carries its standard error. A
// --kubeconfig among args overrides the admin's (the last one counts), so
// Kubectl(t, "--kubeconfig", c.KubeconfigFor(t, ns, sa), ...) acts as a
// ServiceAccount.
func (c *Cluster) Kubectl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return c.kubectl(context.Background(), nil, args...)
}

// KubectlStdin is Kubectl with stdin as kubectl's standard input (for
// `apply -f -`).
func (c *Cluster) KubectlStdin(t testing.TB, stdin string, args ...string) (string, error) {
	t.Helper()
	return c.kubectl(context.Background(), strings.NewReader(stdin), args...)
}

func (c *Cluster) kubectl(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, deadline.Scale(2*time.Minute))
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &stdout, &stderr, stdin
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// KubeconfigFor writes a kubeconfig that authenticates as ServiceAccount
// serviceAccount of namespace (both created if missing) with a token from
// the TokenRequest API (`kubectl create token`, valid 24h), and returns
// its path. It has only the rights RBAC gives that ServiceAccount.
func (c *Cluster) KubeconfigFor(t testing.TB, namespace, serviceAccount string) string {
	t.Helper()
	if _, err := c.Kubectl(t, "get", "namespace", namespace); err != nil {
		if _, err := c.Kubectl(t, "create", "namespace", namespace); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
			t.Fatalf("kubeenv: %v", err)
		}
	}
	if _, err := c.Kubectl(t, "-n", namespace, "get", "serviceaccount", serviceAccount); err != nil {
		if _, err := c.Kubectl(t, "-n", namespace, "create", "serviceaccount", serviceAccount); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
			t.Fatalf("kubeenv: %v", err)
		}
	}
	token, err := c.Kubectl(t, "-n", namespace, "create", "token", serviceAccount, "--duration", "24h")
	if err != nil {
		t.Fatalf("kubeenv: %v", err)
	}
	f, err := os.CreateTemp(c.Dir, "sa-"+namespace+"-"+serviceAccount+"-*.kubeconfig")
	if err != nil {
		t.Fatalf("kubeenv: %v", err)
	}
	f.Close()
	if err := writeKubeconfig(f.Name(), c.Server, c.CAFile, credential{Token: strings.TrimSpace(token)}); err != nil {
		t.Fatalf("kubeenv: %v", err)
	}
	return f.Name()
}

// httpClient trusts caFile and presents the client certificate.
func httpClient(caFile, certFile, keyFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no certificate in " + caFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr}, nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
