package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sort"
	"strings"
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

// BenchmarkDeployLatency measures, on a real Docker host, the time from the
// API call that creates a one-instance app to that instance reported ready
// (its HTTP health check passed), against a bare `docker run` of the same
// image until it answers HTTP, in the same run. make bench runs it.
//
//	go test -run '^$' -bench DeployLatency -benchtime 20x ./e2e
func BenchmarkDeployLatency(b *testing.B) {
	ctx := context.Background()
	image := drivertest.BuildTestAppImage(b, dockerDaemon(b).Client())

	b.Run("docker-run", func(b *testing.B) {
		var ds []time.Duration
		var steps []map[string]time.Duration
		for i := 0; i < b.N; i++ {
			name := fmt.Sprintf("wharf-bench-bare-%d", i)
			start := time.Now()
			out, err := exec.Command("docker", "run", "-d", "--rm", "--name", name, "-p", "127.0.0.1::8080", "--label", "wharf.bench=1", image).CombinedOutput()
			if err != nil {
				b.Fatalf("docker run: %v %s", err, out)
			}
			ran := time.Since(start)
			port, err := exec.Command("docker", "port", name, "8080/tcp").Output()
			if err != nil {
				b.Fatal(err)
			}
			addr := strings.TrimSpace(strings.Split(string(port), "\n")[0])
			ported := time.Since(start)
			waitHTTP(b, "http://"+addr+"/healthz")
			ds = append(ds, time.Since(start))
			steps = append(steps, map[string]time.Duration{"run-returned": ran, "port-known": ported, "answered": ds[len(ds)-1]})
			exec.Command("docker", "rm", "-f", name).Run()
		}
		report(b, ds)
		reportSteps(b, []string{"run-returned", "port-known", "answered"}, steps)
	})

	b.Run("wharf", func(b *testing.B) {
		c, admin, jt := benchCluster(b, 1)
		var drv driver.Driver
		tl := &timeline{}
		a, err := agent.New(agent.Config{Hubs: []string{c.Nodes[0].QUICAddr()}, Token: jt.Token, DataDir: b.TempDir(), Name: "bench",
			NewDriver: func(hostID string) (driver.Driver, error) {
				d, err := docker.New(docker.Config{HostID: hostID, PublishIP: "127.0.0.1"})
				drv = d
				if err != nil {
					return nil, err
				}
				return timedDriver{Driver: d, tl: tl, port: 8080}, nil
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
		w := &client.WriteOptions{Tenant: "acme"}
		var ds []time.Duration
		var steps []map[string]time.Duration
		for i := 0; i < b.N; i++ {
			name := fmt.Sprintf("bench%d", i)
			spec := apitypes.AppSpec{Name: name, Image: image, Instances: intp(1), Ports: []apitypes.Port{{ContainerPort: 8080}},
				Health: &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(20 * time.Millisecond)}}
			start := time.Now()
			tl.reset(start)
			wctx, stopWatch := context.WithCancel(ctx)
			watched := make(chan struct{})
			go func() { defer close(watched); tl.watch(wctx, c.Nodes[0].Hub().Store(), "acme", name) }()
			if _, err := admin.Apps().Create(ctx, spec, w); err != nil {
				b.Fatal(err)
			}
			tl.mark("api-answered")
			var index uint64
			for {
				is, meta, err := admin.Apps().Instances(ctx, name, &client.QueryOptions{Tenant: "acme", WaitIndex: index, WaitTime: 10 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				if len(is) == 1 && is[0].Ready {
					break
				}
				if time.Since(start) > 60*time.Second {
					b.Fatalf("app %s not ready after 60s: %+v", name, is)
				}
				index = meta.LastIndex
			}
			ds = append(ds, time.Since(start))
			tl.mark("client-saw-ready")
			stopWatch()
			<-watched
			steps = append(steps, tl.copy())
			admin.Apps().Delete(ctx, name, w)
			hubtest.WaitFor(b, 30*time.Second, "the instance removed", func() bool {
				l, err := drv.List(ctx)
				return err == nil && len(l) == 0
			})
		}
		report(b, ds)
		reportSteps(b, timelineSteps, steps)
	})
}

func waitHTTP(b *testing.B, url string) {
	deadline := time.Now().Add(30 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.Fatalf("%s never answered", url)
}

// report sets the benchmark's metrics: p50 and p90 in ms.
func report(b *testing.B, ds []time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(ds[len(ds)/2]), "p50-ms")
	b.ReportMetric(ms(ds[len(ds)*9/10]), "p90-ms")
	b.ReportMetric(ms(ds[min(len(ds)-1, len(ds)*99/100)]), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
