package e2e

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/fake"
	"github.com/wharf-platform/wharf/agent/driver/kubernetes"
	"github.com/wharf-platform/wharf/e2e/kubeenv"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// clusterCapacity is the fake driver with a capacity the test sets, as
// the kubernetes driver reports its nodes'.
type clusterCapacity struct {
	*fake.Driver
	mu      sync.Mutex
	c       driver.Capacity
	changed chan struct{}
}

func (d *clusterCapacity) Capacity() driver.Capacity {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c
}

func (d *clusterCapacity) CapacityChanged() <-chan struct{} { return d.changed }

func (d *clusterCapacity) set(c driver.Capacity) {
	d.mu.Lock()
	d.c = c
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// TestClusterCapacityReachesHub: an agent with the kubernetes driver on a
// real API server (fake nodes: 2.5, 4 and 1 cores) enrolls as kind
// "cluster" with the allocatable of its Ready nodes, millicores exact;
// the scheduler places by it; a node going NotReady, one cordoned and
// one joining change what GET /v1/hosts shows.
func TestClusterCapacityReachesHub(t *testing.T) {
	t.Parallel() // everything of its own: see doc.go
	if testing.Short() {
		t.Skip("-short: no cluster")
	}
	kc := kubeenv.Start(t, kubeenv.Options{FakeNodes: []kubeenv.FakeNode{
		{Name: "fake-a", CPU: "2500m", Memory: "4Gi"},
		{Name: "fake-b", CPU: "4", Memory: "8Gi"},
		{Name: "fake-c", CPU: "1", Memory: "2Gi"},
	}})
	rc, err := clientcmd.BuildConfigFromFlags("", kc.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c := hubtest.New(t, 1, hubtest.Options{})
	ctx := context.Background()
	anon, _ := client.New(client.Config{Address: c.Nodes[0].URL()})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := client.New(client.Config{Address: c.Nodes[0].URL(), Token: boot.Token})
	if _, err := admin.Pools().Create(ctx, apitypes.PoolRequest{Name: "k8s", Datacenter: "dc3", Drivers: []string{"kubernetes"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Tenants().Create(ctx, apitypes.TenantRequest{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "k8s"})
	runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: t.TempDir(), Name: "gz", Drivers: []string{kubernetes.Name},
		NewDriver: func(hostID string) (driver.Driver, error) {
			return kubernetes.New(kubernetes.Config{HostID: hostID, REST: rc, StartWait: -1}) // as wharf agent makes it
		}})
	// The Pods placed on fake nodes never run, and no kubelet confirms
	// their deletion: delete them at once, whatever the test left.
	cs, err := k8s.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		zero := int64(0)
		_ = cs.CoreV1().Pods("wharf-acme").DeleteCollection(context.Background(),
			metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	})

	host := func() apitypes.Host {
		hs, _, err := admin.Hosts().List(ctx, nil)
		if err != nil || len(hs) != 1 {
			return apitypes.Host{}
		}
		return hs[0]
	}
	want := func(what string, millis int, mem uint64) {
		t.Helper()
		hubtest.WaitFor(t, 60*time.Second, what, func() bool {
			h := host()
			return h.State == "ready" && h.Kind == "cluster" && h.CPUMillis == millis && h.MemoryBytes == mem
		})
	}
	want("the cluster with 7500 millicores and 14 GiB", 7500, 14<<30)
	if h := host(); h.CPUs != 7 || !slices.Equal(h.Drivers, []string{"kubernetes"}) {
		t.Errorf("the cluster: cpus %d (want the whole cores, 7), drivers %v", h.CPUs, h.Drivers)
	}

	// Fifteen half-core instances fit 7.5 cores; the sixteenth waits.
	spec := apitypes.AppSpec{Name: "web", Image: "web:1", Instances: intp(16), CPU: 500, Memory: 64}
	if _, err := admin.Apps().Create(ctx, spec, &client.WriteOptions{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	placed := func() int {
		is, _, err := admin.Apps().Instances(ctx, "web", &client.QueryOptions{Tenant: "acme"})
		if err != nil {
			return -1
		}
		n := 0
		for _, i := range is {
			if i.Host != "" {
				n++
			}
		}
		return n
	}
	hubtest.WaitFor(t, 30*time.Second, "15 instances placed", func() bool { return placed() == 15 })
	if err := admin.Apps().Delete(ctx, "web", &client.WriteOptions{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}

	kc.SetNodeReady(t, "fake-b", false)
	want("the NotReady node's 4 cores and 8 GiB gone", 3500, 6<<30)
	if out, err := kc.Kubectl(t, "cordon", "fake-c"); err != nil {
		t.Fatalf("cordon: %v\n%s", err, out)
	}
	want("the cordoned node's core and 2 GiB gone", 2500, 4<<30)
	kc.AddFakeNode(t, kubeenv.FakeNode{Name: "fake-d", CPU: "1500m", Memory: "3Gi"})
	want("the new node's 1500 millicores and 3 GiB added", 4000, 7<<30)
}

// TestCapacityBurstLastWins: an agent whose driver reports a cluster's
// capacity (a fake driver, so that the test sets the capacity itself,
// faster than any node changes) enrolls as kind "cluster"; GET /v1/hosts
// shows each change as the agent sends its inventory again, the last
// one winning when they come in a burst; the scheduler places by it.
// TestClusterCapacityReachesHub does the same with the kubernetes driver
// on a real API server.
func TestCapacityBurstLastWins(t *testing.T) {
	t.Parallel() // everything of its own: see doc.go
	c := hubtest.New(t, 1, hubtest.Options{})
	ctx := context.Background()
	anon, _ := client.New(client.Config{Address: c.Nodes[0].URL()})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := client.New(client.Config{Address: c.Nodes[0].URL(), Token: boot.Token})
	if _, err := admin.Pools().Create(ctx, apitypes.PoolRequest{Name: "k8s", Datacenter: "dc3", Drivers: []string{"kubernetes"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Tenants().Create(ctx, apitypes.TenantRequest{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "k8s"})
	d := &clusterCapacity{Driver: fake.New(fake.NewHost()), changed: make(chan struct{}, 1),
		c: driver.Capacity{CPUMillis: 7500, MemoryBytes: 12 << 30, Nodes: 3}}
	runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: t.TempDir(), Name: "gz", Drivers: []string{"kubernetes"},
		NewDriver: func(string) (driver.Driver, error) { return d, nil }})

	host := func() apitypes.Host {
		hs, _, err := admin.Hosts().List(ctx, nil)
		if err != nil || len(hs) != 1 {
			return apitypes.Host{}
		}
		return hs[0]
	}
	hubtest.WaitFor(t, 15*time.Second, "the cluster with 7500 millicores and 12 GiB", func() bool {
		h := host()
		return h.State == "ready" && h.Kind == "cluster" && h.CPUMillis == 7500 && h.CPUs == 7 && h.MemoryBytes == 12<<30
	})

	// Fifteen half-core instances fit 7.5 cores; the sixteenth waits.
	spec := apitypes.AppSpec{Name: "web", Image: "web:1", Instances: intp(16), CPU: 500, Memory: 64}
	if _, err := admin.Apps().Create(ctx, spec, &client.WriteOptions{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	placed := func() int {
		is, _, err := admin.Apps().Instances(ctx, "web", &client.QueryOptions{Tenant: "acme"})
		if err != nil {
			return -1
		}
		n := 0
		for _, i := range is {
			if i.Host != "" {
				n++
			}
		}
		return n
	}
	hubtest.WaitFor(t, 15*time.Second, "15 instances placed", func() bool { return placed() == 15 })

	// A burst of changes: the last one is what the hub keeps.
	for _, m := range []int64{1000, 3000, 8000} {
		d.set(driver.Capacity{CPUMillis: m, MemoryBytes: 16 << 30, Nodes: 2})
		time.Sleep(5 * time.Millisecond)
	}
	hubtest.WaitFor(t, 15*time.Second, "the cluster with 8000 millicores and 16 GiB", func() bool {
		h := host()
		return h.CPUMillis == 8000 && h.MemoryBytes == 16<<30
	})
	hubtest.WaitFor(t, 15*time.Second, "the 16th instance placed on the grown cluster", func() bool { return placed() == 16 })
	time.Sleep(500 * time.Millisecond)
	if h := host(); h.CPUMillis != 8000 {
		t.Fatalf("capacity went back to %d millicores: an older inventory was applied after the newest", h.CPUMillis)
	}
}
