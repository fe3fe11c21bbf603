package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/e2e/kubeenv"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// kubeRig is a hub, two docker hosts (pool dock, dc1) and a Kubernetes
// cluster with one real node enrolled as one host (pool k8s, dc3) by a
// `wharf agent --driver kubernetes` process.
type kubeRig struct {
	t       *testing.T
	kube    *kubeenv.Cluster
	gate    *udpGate // between the cluster agent and the hub
	cs      k8s.Interface
	admin   *client.Client
	w       *client.WriteOptions
	q       *client.QueryOptions
	routers []string // the docker hosts' router addresses
	// the cluster agent's command line, process and local address
	agentArgs []string
	agent     *proc
	local     string
}

func newKubeRig(t *testing.T, fakeNodes ...kubeenv.FakeNode) *kubeRig {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no cluster")
	}
	image := drivertest.BuildTestAppImage(t, dockerDaemon(t).Client())
	kc := kubeenv.Start(t, kubeenv.Options{Nodes: 1, FakeNodes: fakeNodes})
	kc.ImportImage(t, image)
	rc, err := clientcmd.BuildConfigFromFlags("", kc.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := k8s.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}

	// Down only after 20 s: the cluster agent must come back from its
	// cut (its reconnect backoff reaches 8 s) with nothing replaced.
	c := hubtest.New(t, 1, hubtest.Options{SuspectAfter: 2 * time.Second, DownAfter: 20 * time.Second})
	ctx := context.Background()
	anon, _ := client.New(client.Config{Address: c.Nodes[0].URL()})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := client.New(client.Config{Address: c.Nodes[0].URL(), Token: boot.Token})
	for _, p := range []apitypes.PoolRequest{{Name: "dock", Datacenter: "dc1"}, {Name: "k8s", Datacenter: "dc3"}} {
		if _, err := admin.Pools().Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.Tenants().Create(ctx, apitypes.TenantRequest{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	r := &kubeRig{t: t, kube: kc, cs: cs, admin: admin, w: &client.WriteOptions{Tenant: "acme"}, q: &client.QueryOptions{Tenant: "acme"}}

	// The docker hosts, in-process; their containers are removed at the
	// end whatever happens.
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "dock"})
	var agents []*agent.Agent
	newDocker := func(hostID string) (driver.Driver, error) {
		return docker.New(docker.Config{HostID: hostID, PublishIP: "127.0.0.1"})
	}
	stopLeftovers(t, func() []driver.Driver {
		var ds []driver.Driver
		for _, a := range agents {
			if id := a.HostID(); id != "" {
				if d, err := newDocker(id); err == nil {
					ds = append(ds, d)
				}
			}
		}
		return ds
	})
	for i, name := range []string{"a", "b"} {
		a, _ := runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: t.TempDir(), Name: name, DrainDelay: -1,
			Advertise: "127.0.0.1", RouterHTTPAddr: fmt.Sprintf("127.0.%d.2:0", 110+i), NewDriver: newDocker})
		agents = append(agents, a)
		hubtest.WaitFor(t, 10*time.Second, "the router of "+name+" listening", func() bool {
			addr, _ := a.RouterAddrs()
			return addr != ""
		})
		addr, _ := a.RouterAddrs()
		r.routers = append(r.routers, addr)
	}

	// The cluster member: the wharf binary, so that it can be killed.
	kjt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "k8s"})
	r.local = fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	// Through a gate the test can close: the hub unreachable.
	r.gate = newUDPGate(t, c.Nodes[0].QUICAddr())
	r.gate.open.Store(true)
	r.agentArgs = []string{"agent", "--driver", "kubernetes", "--kubeconfig", kc.Kubeconfig, "--hub", r.gate.pc.LocalAddr().String(),
		"--token", kjt.Token, "--data-dir", filepath.Join(t.TempDir(), "agent"), "--pool", "k8s", "--name", "gz",
		"--gossip-addr", "127.0.0.1:0", "--local-addr", r.local, "--router-http-addr", "127.0.0.1:0", "--router-https-addr", "",
		"--drain-delay", "0s", "--log-level", "debug"}
	r.agent = start(t, nil, r.agentArgs...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster agent output:\n%s", tail(r.agent.out.String(), 60))
		}
	})
	// Delete the apps while the agents run, so that they stop their
	// instances the normal way.
	t.Cleanup(func() {
		ctx := context.Background()
		as, _, _ := admin.Apps().List(ctx, r.q)
		for _, a := range as {
			_ = admin.Apps().Delete(ctx, a.Name, r.w)
		}
		hubtest.WaitFor(t, 60*time.Second, "every instance stopped", func() bool {
			pods, err := cs.CoreV1().Pods("wharf-acme").List(ctx, metav1.ListOptions{})
			return err == nil && len(pods.Items) == 0
		})
	})
	hubtest.WaitFor(t, 60*time.Second, "two docker hosts and one cluster ready", func() bool {
		hs, _, err := admin.Hosts().List(ctx, nil)
		if err != nil || len(hs) != 3 {
			return false
		}
		for _, h := range hs {
			if h.State != "ready" || h.MemoryBytes == 0 {
				return false
			}
		}
		return true
	})
	return r
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// cluster returns the cluster member as GET /v1/hosts shows it.
func (r *kubeRig) cluster() apitypes.Host {
	r.t.Helper()
	hs, _, err := r.admin.Hosts().List(context.Background(), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, h := range hs {
		if h.Pool == "k8s" {
			return h
		}
	}
	r.t.Fatalf("no host in pool k8s: %+v", hs)
	return apitypes.Host{}
}

// pods returns the app's Pods (not being deleted) by name.
func (r *kubeRig) pods(app string) map[string]podSeen {
	r.t.Helper()
	ps, err := r.cs.CoreV1().Pods("wharf-acme").List(context.Background(), metav1.ListOptions{LabelSelector: "wharf.app=" + app})
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]podSeen{}
	for _, p := range ps.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		s := podSeen{UID: string(p.UID), Version: p.Labels["wharf.version"], Host: p.Labels["wharf.host"]}
		for _, c := range p.Status.ContainerStatuses {
			s.Restarts += int(c.RestartCount)
		}
		out[p.Name] = s
	}
	return out
}

type podSeen struct {
	UID, Version, Host string
	Restarts           int
}

// live waits until the app's instances wanted to run are n, all running,
// ready and at version v, and the cluster's are its Pods (of version v);
// it returns them by host name.
func (r *kubeRig) live(what, app string, n, v int, also func(map[string][]apitypes.Instance) bool) map[string][]apitypes.Instance {
	r.t.Helper()
	var by map[string][]apitypes.Instance
	hubtest.WaitFor(r.t, 120*time.Second, what, func() bool {
		is, _, err := r.admin.Apps().Instances(context.Background(), app, r.q)
		if err != nil {
			return false
		}
		by = map[string][]apitypes.Instance{}
		got := 0
		for _, i := range is {
			if i.Desired != "run" {
				return false // wait for the stops too
			}
			if i.State != "running" || !i.Ready || i.Version != v || i.Address == "" {
				return false
			}
			got++
			by[i.HostName] = append(by[i.HostName], i)
		}
		if got != n {
			return false
		}
		pods := r.pods(app)
		if len(pods) != len(by["gz"]) {
			return false
		}
		for _, i := range by["gz"] {
			if p, ok := pods[i.ID]; !ok || p.Version != strconv.Itoa(v) {
				return false
			}
		}
		return also == nil || also(by)
	})
	return by
}

// serve fetches / of the app through a docker host's router until every
// instance in want has answered.
func (r *kubeRig) serve(router, app string, want []string) {
	r.t.Helper()
	seen := map[string]bool{}
	hubtest.WaitFor(r.t, 60*time.Second, fmt.Sprintf("router %s serving from %v", router, want), func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+router+"/", nil)
		req.Host = app + ".acme.localhost"
		resp, err := kubeHTTP.Do(req)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			seen[field(string(b), "instance")] = true
		}
		for _, id := range want {
			if !seen[id] {
				return false
			}
		}
		return true
	})
}

// health returns what the cluster agent's /healthz says.
func (r *kubeRig) health() (agent.Health, error) {
	var h agent.Health
	resp, err := kubeHTTP.Get("http://" + r.local + "/healthz")
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	return h, json.NewDecoder(resp.Body).Decode(&h)
}

// logsWhole waits until the hub has instance id's numbered lines (the
// test app's TESTAPP_PRINT) up to one printed after the time given, and
// fails at once when one is missing or comes twice.
func (r *kubeRig) logsWhole(app, id string, after time.Time) {
	r.t.Helper()
	var n int
	hubtest.WaitFor(r.t, 60*time.Second, fmt.Sprintf("the lines of %s up to %v at the hub", id, after), func() bool {
		n = 0
		var last time.Time
		var bad string
		err := r.admin.Apps().Logs(context.Background(), app, client.LogOptions{Tenant: "acme", Instance: id, Limit: 100000},
			func(l apitypes.LogLine) error {
				var num int
				if _, err := fmt.Sscanf(l.Line, "line %d", &num); err != nil {
					return nil // not a numbered line
				}
				if num != n+1 && bad == "" {
					bad = fmt.Sprintf("line %d (seq %d) follows line %d", num, l.Seq, n)
				}
				n, last = num, l.Time
				return nil
			})
		if err != nil || !last.After(after) {
			return false
		}
		if bad != "" {
			r.t.Fatalf("the output of %s at the hub: %s: lost or repeated", id, bad)
		}
		return true
	})
	r.t.Logf("%s: lines 1 to %d at the hub, none lost or repeated", id, n)
}

var kubeHTTP = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func ids(is []apitypes.Instance) []string {
	var out []string
	for _, i := range is {
		out = append(out, i.ID)
	}
	return out
}

// TestKubernetesMember: a cluster enrolled as one host beside two docker
// hosts. An image app spread over datacenters runs on both docker hosts
// and as Pods in the cluster, and one router serves them all; scale,
// rolling update, rollback and delete act on the Pods; the cluster agent
// killed with -9 and restarted adopts its Pods (same UIDs, no restart)
// and ships their output with no line lost or repeated; with the hub
// down the Pods keep running and serving; a node going NotReady lowers
// the capacity GET /v1/hosts shows.
func TestKubernetesMember(t *testing.T) {
	t.Parallel() // everything of its own: see doc.go
	r := newKubeRig(t)
	ctx := context.Background()
	k := r.cluster()
	if k.Kind != "cluster" || !slices.Equal(k.Drivers, []string{"kubernetes"}) || k.CPUMillis <= 0 {
		t.Fatalf("the cluster member: kind %q, drivers %v, cpu_millis %d", k.Kind, k.Drivers, k.CPUMillis)
	}
	hs, _, _ := r.admin.Hosts().List(ctx, nil)
	for _, h := range hs {
		if h.Pool == "dock" && h.Kind != "host" {
			t.Errorf("docker host %s: kind %q, want host", h.Name, h.Kind)
		}
	}

	spec := apitypes.AppSpec{Name: "web", Image: drivertest.TestAppImage, Instances: intp(4), CPU: 100, Memory: 32,
		Pools: []string{"dock", "k8s"}, Spread: "datacenter", Env: map[string]string{"VERSION": "1", "TESTAPP_PRINT": "5"},
		Ports:  []apitypes.Port{{Name: "http", ContainerPort: 8080}},
		Health: &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(time.Second)}}
	if _, err := r.admin.Apps().Create(ctx, spec, r.w); err != nil {
		t.Fatal(err)
	}
	by := r.live("4 instances: one on each docker host, two Pods", "web", 4, 1, func(by map[string][]apitypes.Instance) bool {
		return len(by["a"]) == 1 && len(by["b"]) == 1 && len(by["gz"]) == 2
	})
	var all []string
	for _, is := range by {
		all = append(all, ids(is)...)
	}
	for _, i := range by["gz"] {
		p, err := r.cs.CoreV1().Pods("wharf-acme").Get(ctx, i.ID, metav1.GetOptions{})
		if err != nil || i.Address != p.Status.PodIP+":8080" {
			t.Errorf("cluster instance %s at %s: want its Pod's IP and port (%v)", i.ID, i.Address, err)
		}
	}
	r.serve(r.routers[0], "web", all)
	if got := r.cluster(); got.CPUMillis != k.CPUMillis {
		t.Errorf("capacity changed from %d to %d millicores without a node change", k.CPUMillis, got.CPUMillis)
	}

	// Scale: the cluster's share grows as Pods.
	if _, err := r.admin.Apps().Scale(ctx, "web", 6, r.w); err != nil {
		t.Fatal(err)
	}
	r.live("6 instances, three Pods", "web", 6, 1, func(by map[string][]apitypes.Instance) bool { return len(by["gz"]) == 3 })
	if _, err := r.admin.Apps().Scale(ctx, "web", 4, r.w); err != nil {
		t.Fatal(err)
	}
	r.live("back to 4 instances, the cluster's as Pods", "web", 4, 1, nil)

	// Rolling update, then rollback: the Pods follow the versions.
	spec.Env = map[string]string{"VERSION": "2", "TESTAPP_PRINT": "5"}
	spec.Instances = nil
	if _, _, _, err := r.admin.Apps().Put(ctx, spec, r.w); err != nil {
		t.Fatal(err)
	}
	r.live("4 instances of version 2", "web", 4, 2, nil)
	if _, err := r.admin.Apps().Rollback(ctx, "web", 1, r.w); err != nil {
		t.Fatal(err)
	}
	by = r.live("4 instances of version 1 after the rollback, some on the cluster", "web", 4, 1, func(by map[string][]apitypes.Instance) bool {
		return len(by["gz"]) > 0
	})
	r.serve(r.routers[1], "web", ids(by["gz"]))

	// The cluster agent killed and restarted: it adopts its Pods, and
	// nothing restarts; the Pods' output, which went on while no agent
	// read it, reaches the hub with no line lost or repeated.
	before := r.pods("web")
	r.agent.kill()
	r.agent.wait(t)
	killed := time.Now()
	time.Sleep(2 * time.Second)
	r.agent = start(t, nil, r.agentArgs...)
	hubtest.WaitFor(t, 60*time.Second, "the restarted cluster agent connected", func() bool {
		h, err := r.health()
		return err == nil && h.Connected && h.Acked > 2 && r.cluster().State == "ready"
	})
	r.live("the cluster's instances ready again after its agent's restart", "web", 4, 1, nil)
	time.Sleep(3 * time.Second) // long enough for a wrongful restart to show
	after := r.pods("web")
	if len(after) != len(before) {
		t.Fatalf("pods before the agent's restart %v, after %v", before, after)
	}
	for name, p := range before {
		if q := after[name]; q.UID != p.UID || q.Restarts != p.Restarts {
			t.Errorf("pod %s before the agent's restart %+v, after %+v", name, p, q)
		}
	}
	for name := range before {
		r.logsWhole("web", name, killed.Add(3*time.Second))
	}

	// Offline: with the hub unreachable (for less than its down-after,
	// so that it replaces nothing), the Pods keep running and serving,
	// and the agent that comes back changes none of them.
	r.gate.open.Store(false)
	hubtest.WaitFor(t, 30*time.Second, "the cluster agent cut off from the hub", func() bool {
		h, err := r.health()
		return err == nil && !h.Connected
	})
	down := time.Now()
	for time.Since(down) < 8*time.Second {
		for name, p := range before {
			pod, err := r.cs.CoreV1().Pods("wharf-acme").Get(ctx, name, metav1.GetOptions{})
			if err != nil || string(pod.UID) != p.UID || pod.DeletionTimestamp != nil {
				t.Fatalf("pod %s with the hub unreachable: %v (deleting: %v)", name, err, err == nil && pod.DeletionTimestamp != nil)
			}
			resp, err := kubeHTTP.Get("http://" + pod.Status.PodIP + ":8080/healthz")
			if err != nil {
				t.Fatalf("pod %s with the hub unreachable: %v", name, err)
			}
			resp.Body.Close()
		}
		time.Sleep(500 * time.Millisecond)
	}
	r.gate.open.Store(true)
	hubtest.WaitFor(t, 60*time.Second, "the cluster agent back on the hub", func() bool {
		h, err := r.health()
		return err == nil && h.Connected
	})
	r.live("the cluster's instances ready after the hub was back", "web", 4, 1, nil)
	after = r.pods("web")
	for name, p := range before {
		if q := after[name]; q.UID != p.UID || q.Restarts != p.Restarts {
			t.Errorf("pod %s before the cut %+v, after %+v", name, p, q)
		}
	}

	// Delete: the Pods go.
	if err := r.admin.Apps().Delete(ctx, "web", r.w); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 60*time.Second, "the app's Pods deleted", func() bool { return len(r.pods("web")) == 0 })

	// Capacity follows the nodes: a node joins (the capacity shown
	// grows), then goes NotReady (it drops back).
	base := r.cluster().CPUMillis
	r.kube.AddFakeNode(t, kubeenv.FakeNode{Name: "fake-1", CPU: "1500m", Memory: "2Gi"})
	hubtest.WaitFor(t, 30*time.Second, "the new node's 1500 millicores in GET /v1/hosts", func() bool {
		return r.cluster().CPUMillis == base+1500
	})
	r.kube.SetNodeReady(t, "fake-1", false)
	hubtest.WaitFor(t, 30*time.Second, "the NotReady node's capacity gone from GET /v1/hosts", func() bool {
		return r.cluster().CPUMillis == base
	})
}
