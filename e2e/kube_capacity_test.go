package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/fake"
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

// TestClusterCapacityReachesHub: an agent whose driver reports a
// cluster's capacity enrolls as kind "cluster"; GET /v1/hosts shows the
// capacity (millicores exact) from the first session on, and each change
// as the agent sends its inventory again, the last one winning when they
// come in a burst; the scheduler places by it.
func TestClusterCapacityReachesHub(t *testing.T) {
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
