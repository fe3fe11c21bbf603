package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
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
			zero := int64(0)
			_ = cs.CoreV1().Pods("bench").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}
		report(b, ds)
	})

	b.Run("wharf", func(b *testing.B) {
		c, admin, jt := benchCluster(b, 1)
		var drv driver.Driver
		a, err := agent.New(agent.Config{Hubs: []string{c.Nodes[0].QUICAddr()}, Token: jt.Token, DataDir: b.TempDir(), Name: "gz",
			Drivers: []string{kubernetes.Name},
			NewDriver: func(hostID string) (driver.Driver, error) {
				d, err := kubernetes.New(kubernetes.Config{HostID: hostID, REST: rc})
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
