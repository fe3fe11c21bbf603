package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/kubernetes"
	"github.com/wharf-platform/wharf/e2e/kubeenv"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// BenchmarkKubeDeploy measures, on a real cluster (one kubelet node), the
// time from the API call that creates a one-instance app on the cluster
// member to that instance reported ready (its Pod's readiness probe
// passed), against `kubectl apply` of an equivalent Pod until the API
// server says it is Ready, on the same API server in the same run. make
// bench runs it.
//
//	go test -run '^$' -bench KubeDeploy -benchtime 20x ./e2e
func BenchmarkKubeDeploy(b *testing.B) {
	ctx := context.Background()
	image := drivertest.BuildTestAppImage(b, dockerDaemon(b).Client())
	kc := kubeenv.Start(b, kubeenv.Options{Nodes: 1})
	kc.ImportImage(b, image)
	rc, err := clientcmd.BuildConfigFromFlags("", kc.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	cs, err := k8s.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	if out, err := kc.Kubectl(b, "create", "namespace", "bench"); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	// The default ServiceAccount a Pod needs comes from the
	// controller-manager, a moment after the namespace.
	hubtest.WaitFor(b, 30*time.Second, "the bench namespace's default ServiceAccount", func() bool {
		_, err := cs.CoreV1().ServiceAccounts("bench").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})

	b.Run("kubectl-apply", func(b *testing.B) {
		var ds []time.Duration
		for i := 0; i < b.N; i++ {
			name := fmt.Sprintf("bare-%d-%d", time.Now().UnixNano()%1e6, i)
			start := time.Now()
			if out, err := kc.KubectlStdin(b, benchPod(name, image), "apply", "-f", "-"); err != nil {
				b.Fatalf("kubectl apply: %v: %s", err, out)
			}
			waitPodReady(b, cs, "bench", name)
			ds = append(ds, time.Since(start))
			// As the wharf side does: a graceful delete, which the
			// kubelet confirms once the container stopped, and the next
			// round only once the Pod is gone, so that its teardown on
			// the node does not slow the next one's start.
			_ = cs.CoreV1().Pods("bench").Delete(ctx, name, metav1.DeleteOptions{})
			hubtest.WaitFor(b, 60*time.Second, "the Pod removed", func() bool {
				_, err := cs.CoreV1().Pods("bench").Get(ctx, name, metav1.GetOptions{})
				return apierrors.IsNotFound(err)
			})
		}
		report(b, ds)
	})

	b.Run("wharf", func(b *testing.B) {
		c, admin, jt := benchCluster(b, 1)
		var drv driver.Driver
		a, err := agent.New(agent.Config{Hubs: []string{c.Nodes[0].QUICAddr()}, Token: jt.Token, DataDir: b.TempDir(), Name: "gz",
			Drivers: []string{kubernetes.Name},
			NewDriver: func(hostID string) (driver.Driver, error) {
				d, err := kubernetes.New(kubernetes.Config{HostID: hostID, REST: rc, StartWait: -1}) // as wharf agent makes it
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
		hubtest.WaitFor(b, 30*time.Second, "the cluster ready", func() bool {
			hs, _, err := admin.Hosts().List(ctx, nil)
			return err == nil && len(hs) == 1 && hs[0].State == "ready" && hs[0].Kind == "cluster" && hs[0].CPUMillis > 0
		})
		w := &client.WriteOptions{Tenant: "acme"}
		var ds []time.Duration
		for i := 0; i < b.N; i++ {
			name := fmt.Sprintf("bench%d", i)
			spec := apitypes.AppSpec{Name: name, Image: image, Instances: intp(1), CPU: 100, Memory: 32,
				Ports:  []apitypes.Port{{ContainerPort: 8080}},
				Health: &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(time.Second)}}
			start := time.Now()
			if _, err := admin.Apps().Create(ctx, spec, w); err != nil {
				b.Fatal(err)
			}
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
			admin.Apps().Delete(ctx, name, w)
			hubtest.WaitFor(b, 60*time.Second, "the Pod removed", func() bool {
				l, err := drv.List(ctx)
				return err == nil && len(l) == 0
			})
		}
		report(b, ds)
	})
}

// benchPod is a Pod like the one the kubernetes driver makes for the
// benchmark's app.
func benchPod(name, image string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: bench
spec:
  automountServiceAccountToken: false
  enableServiceLinks: false
  containers:
    - name: app
      image: %s
      imagePullPolicy: IfNotPresent
      env: [{name: PORT, value: "8080"}]
      ports: [{containerPort: 8080}]
      resources:
        requests: {cpu: 100m, memory: 32Mi}
        limits: {cpu: 100m, memory: 32Mi}
      readinessProbe:
        httpGet: {path: /healthz, port: 8080}
        periodSeconds: 1
        timeoutSeconds: 2
`, name, image)
}

// waitPodReady watches the Pod until its Ready condition is true.
func waitPodReady(b *testing.B, cs k8s.Interface, ns, name string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	for ctx.Err() == nil {
		w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			b.Fatal(err)
		}
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
						w.Stop()
						return
					}
				}
			}
		}
	}
	b.Fatalf("pod %s/%s not ready after 60s", ns, name)
}

// BenchmarkKubeAgent1000Pods: one cluster agent (the wharf binary,
// --driver kubernetes) holding 1,000 Pods. The Pods are bound to fake
// nodes and never run (no kubelet): what is measured is the agent's
// side, its memory and the load its informers and calls put on the API
// server, not the Pods'. Reported: the time from the app's creation to
// its 1,000 Pods made, the agent's RSS while it holds them, and the API
// server's requests per second (apiserver_request_total from its
// /metrics) over a window while it holds them, beside the same window
// before the agent started (controllers and fake nodes' heartbeats).
//
//	go test -run '^$' -bench KubeAgent1000Pods -benchtime 1x ./e2e
func BenchmarkKubeAgent1000Pods(b *testing.B) {
	const pods = 1000
	const window = 30 * time.Second
	ctx := context.Background()
	var fakes []kubeenv.FakeNode
	for i := range 10 {
		fakes = append(fakes, kubeenv.FakeNode{Name: fmt.Sprintf("fake-%d", i), CPU: "64", Memory: "256Gi", Pods: "110"})
	}
	kc := kubeenv.Start(b, kubeenv.Options{FakeNodes: fakes})
	rc, err := clientcmd.BuildConfigFromFlags("", kc.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	cs, err := k8s.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	c, admin, jt := benchCluster(b, 1)
	idle := apiRequestRate(b, kc, window)

	local := fmt.Sprintf("127.0.0.1:%d", freePorts(b, 1)[0])
	cmd := exec.Command(wharfBin, "agent", "--driver", "kubernetes", "--kubeconfig", kc.Kubeconfig, "--hub", c.Nodes[0].QUICAddr(),
		"--token", jt.Token, "--data-dir", filepath.Join(b.TempDir(), "agent"), "--pool", "p", "--name", "gz",
		"--gossip-addr", "127.0.0.1:0", "--local-addr", local, "--router-http-addr", "127.0.0.1:0", "--router-https-addr", "",
		"--log-level", "warn")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill() // by its PID: the process this benchmark started
		_ = cmd.Wait()
		// No kubelet will confirm these Pods' deletion: force it.
		zero := int64(0)
		_ = cs.CoreV1().Pods("wharf-acme").DeleteCollection(context.Background(), metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		if b.Failed() {
			b.Logf("agent output:\n%s", tail(out.String(), 40))
		}
	})
	hubtest.WaitFor(b, 60*time.Second, "the cluster ready", func() bool {
		hs, _, err := admin.Hosts().List(ctx, nil)
		return err == nil && len(hs) == 1 && hs[0].State == "ready" && hs[0].Kind == "cluster"
	})

	start := time.Now()
	spec := apitypes.AppSpec{Name: "many", Image: drivertest.TestAppImage, Instances: intp(pods), CPU: 10, Memory: 16,
		Ports: []apitypes.Port{{ContainerPort: 8080}}}
	if _, err := admin.Apps().Create(ctx, spec, &client.WriteOptions{Tenant: "acme"}); err != nil {
		b.Fatal(err)
	}
	made := 0
	hubtest.WaitFor(b, 10*time.Minute, fmt.Sprintf("%d Pods made", pods), func() bool {
		l, err := cs.CoreV1().Pods("wharf-acme").List(ctx, metav1.ListOptions{LabelSelector: kubernetes.LabelApp + "=many"})
		if err == nil {
			made = len(l.Items)
		}
		return made == pods
	})
	toMade := time.Since(start)
	// Let the agent settle: every instance reported, the supervisor back
	// to its normal pace.
	time.Sleep(35 * time.Second)
	held := apiRequestRate(b, kc, window)
	rss := procRSS(b, cmd.Process.Pid)

	b.ReportMetric(toMade.Seconds(), "s-to-1000-pods")
	b.ReportMetric(float64(rss)/(1<<20), "agent-rss-MiB")
	b.ReportMetric(held, "apiserver-req/s-held")
	b.ReportMetric(idle, "apiserver-req/s-idle")
	b.ReportMetric(0, "ns/op")
}

// apiRequestRate returns the API server's requests per second over the
// window: the sum of apiserver_request_total before and after.
func apiRequestRate(b *testing.B, kc *kubeenv.Cluster, window time.Duration) float64 {
	b.Helper()
	total := func() float64 {
		code, body, err := kc.Do(context.Background(), http.MethodGet, "/metrics", nil)
		if err != nil || code != http.StatusOK {
			b.Fatalf("apiserver /metrics: %d %v", code, err)
		}
		var sum float64
		for _, line := range strings.Split(string(body), "\n") {
			if !strings.HasPrefix(line, "apiserver_request_total{") {
				continue
			}
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				b.Fatalf("apiserver /metrics line %q: %v", line, err)
			}
			sum += v
		}
		return sum
	}
	before := total()
	t0 := time.Now()
	time.Sleep(window)
	after := total()
	return (after - before) / time.Since(t0).Seconds()
}

// procRSS returns the resident set of process pid in bytes.
func procRSS(b *testing.B, pid int) int64 {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
