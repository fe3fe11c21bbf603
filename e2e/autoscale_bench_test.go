package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// BenchmarkAutoscale measures, on one hub node and one Docker host with
// its router: burst, from the start of 100 requests/s through the router
// on an app at 1 instance with qps 20 and max 6, to 5 distinct instances
// answering through the router; cold-start, from the first request for
// an app scaled to zero to its answer (the router holds it while the app
// wakes); and docker-run, a bare `docker run` of the same image until it
// answers HTTP, the yardstick for cold-start.
//
//	go test -run '^$' -bench Autoscale -benchtime 3x ./e2e
func BenchmarkAutoscale(b *testing.B) {
	ctx := context.Background()
	image := drivertest.BuildTestAppImage(b, dockerDaemon(b).Client())
	b.Run("docker-run", func(b *testing.B) { benchDockerRun(b, image) })

	c, admin, jt := benchCluster(b, 1)
	var drv driver.Driver
	a, err := agent.New(agent.Config{Hubs: []string{c.Nodes[0].QUICAddr()}, Token: jt.Token, DataDir: b.TempDir(), Name: "bench",
		RouterHTTPAddr: "127.0.0.1:0", RouterHTTPSAddr: "127.0.0.1:0",
		NewDriver: func(hostID string) (driver.Driver, error) {
			d, err := docker.New(docker.Config{HostID: hostID, PublishIP: "127.0.0.1"})
			drv = d
			return d, err
		}})
	if err != nil {
		b.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() { stop(); <-done }()
	hubtest.WaitFor(b, 15*time.Second, "the host ready", func() bool {
		hs, _, err := admin.Hosts().List(ctx, nil)
		return err == nil && len(hs) == 1 && hs[0].State == "ready" && hs[0].MemoryBytes > 0
	})
	router, _ := a.RouterAddrs()
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	deploy := func(name string, as apitypes.Autoscale) {
		spec := apitypes.AppSpec{Name: name, Image: image, Ports: []apitypes.Port{{ContainerPort: 8080}},
			Health: &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(20 * time.Millisecond)}, Autoscale: &as}
		if _, err := admin.Apps().Create(ctx, spec, w); err != nil {
			b.Fatal(err)
		}
	}
	remove := func(name string) {
		admin.Apps().Delete(ctx, name, w)
		hubtest.WaitFor(b, 60*time.Second, "the instances removed", func() bool {
			l, err := drv.List(ctx)
			return err == nil && len(l) == 0
		})
	}
	get := func(host string, timeout time.Duration) (int, string, error) {
		req, _ := http.NewRequest("GET", "http://"+router+"/", nil)
		req.Host = host
		resp, err := (&http.Client{Timeout: timeout}).Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}

	// Apps get names never used before in the run: the testing package
	// runs a benchmark more than once (b.N of 1 first), and the counts of
	// a deleted app's last seconds would scale a new app of its name.
	apps := 0
	b.Run("burst", func(b *testing.B) {
		var ds []time.Duration
		for i := 0; i < b.N; i++ {
			apps++
			name := fmt.Sprintf("burst%d", apps)
			host := name + ".acme.localhost"
			one := 1
			deploy(name, apitypes.Autoscale{Min: &one, Max: 6, QPS: 20, Window: apitypes.Duration(5 * time.Second), ScaleDownDelay: apitypes.Duration(5 * time.Second)})
			// Asked slowly: the router counts its 503s for an app without
			// a ready instance as load, and polled every 20 ms they would
			// start the burst before the burst.
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
				if code, _, err := get(host, time.Second); err == nil && code == 200 {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("%s does not answer through the router", name)
				}
			}
			if a, _, err := admin.Apps().Get(ctx, name, q); err != nil || *a.Instances != 1 {
				b.Fatalf("%s before the burst: %+v %v; want 1 instance", name, a, err)
			}
			var mu sync.Mutex
			seen := map[string]time.Time{}
			start := time.Now()
			lctx, stopLoad := context.WithTimeout(ctx, 2*time.Minute)
			var wg sync.WaitGroup
			t := time.NewTicker(10 * time.Millisecond)
			go func() {
				defer t.Stop()
				for {
					select {
					case <-lctx.Done():
						return
					case <-t.C:
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						if code, body, err := get(host, 5*time.Second); err == nil && code == 200 {
							mu.Lock()
							if id := field(body, "instance"); id != "" && seen[id].IsZero() {
								seen[id] = time.Now()
							}
							mu.Unlock()
						}
					}()
				}
			}()
			hubtest.WaitFor(b, 90*time.Second, "5 instances answering through the router", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(seen) >= 5
			})
			ds = append(ds, time.Since(start))
			stopLoad()
			wg.Wait()
			mu.Lock()
			b.Logf("%s: %s", name, burstTimeline(ctx, admin, name, q, start, seen))
			mu.Unlock()
			remove(name)
		}
		report(b, ds)
	})

	b.Run("cold-start", func(b *testing.B) {
		var ds []time.Duration
		for i := 0; i < b.N; i++ {
			apps++
			name := fmt.Sprintf("cold%d", apps)
			zero := 0
			deploy(name, apitypes.Autoscale{Min: &zero, Max: 2, QPS: 10, Window: apitypes.Duration(2 * time.Second), ScaleDownDelay: apitypes.Duration(2 * time.Second)})
			hubtest.WaitFor(b, 60*time.Second, name+" at zero", func() bool {
				a, _, err := admin.Apps().Get(ctx, name, q)
				if err != nil || *a.Instances != 0 {
					return false
				}
				l, err := drv.List(ctx)
				return err == nil && len(l) == 0
			})
			time.Sleep(time.Second) // the router's table without the instance
			start := time.Now()
			code, body, err := get(name+".acme.localhost", 40*time.Second)
			if err != nil || code != 200 {
				b.Fatalf("first request after zero: %d %v %q", code, err, body)
			}
			ds = append(ds, time.Since(start))
			remove(name)
		}
		report(b, ds)
	})
}

// burstTimeline says where a burst's time went, from the load's start:
// the autoscaler's decisions (with their reasons), the new instances'
// placements, and when each first answered through the router.
func burstTimeline(ctx context.Context, admin *client.Client, app string, q *client.QueryOptions, start time.Time, seen map[string]time.Time) string {
	at := func(t time.Time) string { return fmt.Sprintf("+%.1fs", t.Sub(start).Seconds()) }
	var parts []string
	hist, _, err := admin.Apps().History(ctx, app, q)
	if err != nil {
		return err.Error()
	}
	for _, d := range hist {
		if d.Kind == "autoscale" && d.Time.After(start) {
			parts = append(parts, fmt.Sprintf("decided %d at %s (%s)", d.Instances, at(d.Time), d.Message))
		}
	}
	is, _, err := admin.Apps().Instances(ctx, app, q)
	if err != nil {
		return err.Error()
	}
	var placed, answered []string
	for _, i := range is {
		if i.CreatedAt.After(start) {
			placed = append(placed, at(i.CreatedAt))
		}
	}
	var firsts []time.Time
	for _, t := range seen {
		firsts = append(firsts, t)
	}
	slices.SortFunc(firsts, func(a, b time.Time) int { return a.Compare(b) })
	for _, t := range firsts {
		answered = append(answered, at(t))
	}
	slices.Sort(placed)
	parts = append(parts, "placed "+strings.Join(placed, " "), "first answers "+strings.Join(answered, " "))
	return strings.Join(parts, "; ")
}

// benchDockerRun times a bare `docker run` of image until it answers HTTP.
func benchDockerRun(b *testing.B, image string) {
	var ds []time.Duration
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("wharf-bench-autoscale-bare-%d", i)
		start := time.Now()
		out, err := exec.Command("docker", "run", "-d", "--rm", "--name", name, "-p", "127.0.0.1::8080", "--label", "wharf.bench=1", image).CombinedOutput()
		if err != nil {
			b.Fatalf("docker run: %v %s", err, out)
		}
		port, err := exec.Command("docker", "port", name, "8080/tcp").Output()
		if err != nil {
			b.Fatal(err)
		}
		waitHTTP(b, "http://"+strings.TrimSpace(strings.Split(string(port), "\n")[0])+"/")
		ds = append(ds, time.Since(start))
		exec.Command("docker", "rm", "-f", name).Run()
	}
	report(b, ds)
}
