package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// BenchmarkRoutePush measures the time from a route change committed (the
// API call that adds it has returned) to that route being live on every
// router: 20 agents' routers in one pool, a 3-node hub, each iteration one
// new route. It reports p50 and p99 of the slowest router per change.
//
//	go test -run '^$' -bench RoutePush -benchtime 100x ./e2e
func BenchmarkRoutePush(b *testing.B) {
	const agents = 20
	ctx := context.Background()
	c, admin, jt := benchCluster(b, 3)
	w := &client.WriteOptions{Tenant: "acme"}
	if _, err := admin.Apps().Create(ctx, apitypes.AppSpec{Name: "web", Image: "x", Instances: intp(0)}, w); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	applied := make([]int, agents)    // tables applied per agent
	last := make([]time.Time, agents) // when the last one was
	for i := 0; i < agents; i++ {
		i := i
		ip := fmt.Sprintf("127.0.%d.%d", 120+i/200, 2+i%200)
		a, err := agent.New(agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: b.TempDir(), Name: fmt.Sprintf("r%d", i),
			RouterHTTPAddr: ip + ":0", OnRoutes: func(uint64) {
				mu.Lock()
				applied[i]++
				last[i] = time.Now()
				mu.Unlock()
			}})
		if err != nil {
			b.Fatal(err)
		}
		actx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(actx) }()
		b.Cleanup(func() { cancel(); <-done })
	}
	hubtest.WaitFor(b, 30*time.Second, "every router has a table", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range applied {
			if n == 0 {
				return false
			}
		}
		return true
	})
	var ds []time.Duration
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		mu.Lock()
		before := append([]int(nil), applied...)
		mu.Unlock()
		if _, err := admin.Routes().Add(ctx, "web", apitypes.RouteRequest{Host: fmt.Sprintf("r%d.example.com", it)}, w); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		var slowest time.Time
		hubtest.WaitFor(b, 10*time.Second, "the route on every router", func() bool {
			mu.Lock()
			defer mu.Unlock()
			for i := range applied {
				if applied[i] == before[i] {
					return false
				}
				if last[i].After(slowest) {
					slowest = last[i]
				}
			}
			return true
		})
		ds = append(ds, max(0, slowest.Sub(committed)))
	}
	b.StopTimer()
	report(b, ds)
}

// benchCluster starts an n-node hub cluster in this process, bootstraps it
// and creates pool p and tenant acme; it returns the cluster, an admin
// client of node 0 and a join token of p.
func benchCluster(b *testing.B, n int) (*hubtest.Cluster, *client.Client, *apitypes.JoinToken) {
	b.Helper()
	ctx := context.Background()
	c := hubtest.New(b, n, hubtest.Options{})
	anon, _ := client.New(client.Config{Address: c.Nodes[0].URL()})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		b.Fatal(err)
	}
	admin, _ := client.New(client.Config{Address: c.Nodes[0].URL(), Token: boot.Token})
	admin.Pools().Create(ctx, apitypes.PoolRequest{Name: "p"})
	admin.Tenants().Create(ctx, apitypes.TenantRequest{Name: "acme"})
	var jt *apitypes.JoinToken
	hubtest.WaitFor(b, 10*time.Second, "a join token", func() bool {
		jt, err = admin.JoinTokens().Create(ctx, apitypes.JoinTokenRequest{Pool: "p"})
		return err == nil
	})
	return c, admin, jt
}
