package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// BenchmarkConsoleRender measures the console's answer for /ui/apps and
// /ui/hosts, signed in as the admin, with 5,000 hosts and 1,000 apps in
// a one-node hub: the hosts are enrolled straight through Raft (no agent;
// liveness set to an hour so none goes suspect) in 5 pools of 2
// datacenters, the apps (one instance each, placed by the leader) are
// created through the API in 2 tenants. It reports the time of one page
// over loopback HTTP (ns/op: the server's rendering and its API calls,
// all in process) and the page's weight in bytes.
//
//	go test -run '^$' -bench ConsoleRender -benchtime 20x ./hub/console
func BenchmarkConsoleRender(b *testing.B) {
	const hosts, apps = 5000, 1000
	c := hubtest.New(b, 1, hubtest.Options{SuspectAfter: time.Hour, DownAfter: 2 * time.Hour})
	u := c.Nodes[0].URL()
	ctx := context.Background()
	anon, _ := client.New(client.Config{Address: u})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		b.Fatal(err)
	}
	api, _ := client.New(client.Config{Address: u, Token: boot.Token})
	leader := c.WaitLeader(10 * time.Second).Hub()
	apply := func(mt state.MessageType, req any) {
		msg, err := state.Encode(mt, req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := leader.Cluster().Apply(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now().UTC()
	for p := range 5 {
		name := fmt.Sprintf("pool%d", p)
		if _, err := api.Pools().Create(ctx, apitypes.PoolRequest{Name: name, Datacenter: fmt.Sprintf("dc%d", p%2+1)}); err != nil {
			b.Fatal(err)
		}
		apply(state.JoinTokenCreateType, &state.JoinTokenCreateRequest{Token: state.JoinToken{ID: "jt-" + name, Pool: name, SecretHash: "s"}, Time: now})
	}
	for _, tn := range []string{"acme", "globex"} {
		if _, err := api.Tenants().Create(ctx, apitypes.TenantRequest{Name: tn}); err != nil {
			b.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for j := w; j < hosts; j += 16 {
				apply(state.HostEnrollType, &state.HostEnrollRequest{TokenID: fmt.Sprintf("jt-pool%d", j%5), SecretHash: "s", Time: now,
					Host: state.Host{ID: fmt.Sprintf("h%05d", j), Name: fmt.Sprintf("host-%05d", j),
						Inventory: state.Inventory{CPUs: 4, MemoryBytes: 16 << 30, Drivers: []string{"docker"}, AgentVersion: "v1.0.0"}}})
			}
		})
	}
	wg.Wait()
	one := 1
	for w := range 8 {
		wg.Go(func() {
			for a := w; a < apps; a += 8 {
				tenant := []string{"acme", "globex"}[a%2]
				if _, err := api.Apps().Create(ctx, apitypes.AppSpec{Name: fmt.Sprintf("app-%04d", a), Image: "registry.example.com/app:1", Instances: &one},
					&client.WriteOptions{Tenant: tenant}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	hubtest.WaitFor(b, 2*time.Minute, "every app's instance placed", func() bool {
		hs, _ := leader.Store().Snapshot().Hosts(nil)
		cpu := 0
		for _, h := range hs {
			cpu += h.AllocCPU
		}
		return cpu >= apps*apitypes.DefaultCPU
	})

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: time.Minute}
	resp, err := hc.Get(u + "/ui/login")
	if err != nil {
		b.Fatal(err)
	}
	login, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindStringSubmatch(string(login))
	if m == nil {
		b.Fatalf("no CSRF field in the login page:\n%s", login)
	}
	if resp, err = hc.PostForm(u+"/ui/login", url.Values{"csrf": {m[1]}, "token": {boot.Token}}); err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	for _, page := range []string{"/ui/apps", "/ui/hosts"} {
		b.Run(page[4:], func(b *testing.B) {
			var size int
			for b.Loop() {
				resp, err := hc.Get(u + page)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("GET %s answered %d:\n%.2000s", page, resp.StatusCode, body)
				}
				size = len(body)
			}
			b.ReportMetric(float64(size), "bytes/page")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
		})
	}
}
