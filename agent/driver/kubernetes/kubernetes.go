// Package kubernetes is the agent's driver for a whole Kubernetes cluster
// (client-go): the cluster is one host, and an instance is a Pod named by
// its instance id in the namespace wharf-<tenant> (created when missing,
// labelled wharf.tenant). Pods carry the labels wharf.instance, wharf.app,
// wharf.tenant, wharf.version and wharf.host (the agent's host id), which
// scopes what one agent sees: two agents on one cluster never see each
// other's Pods.
//
// What the driver knows comes from informers (a shared informer factory
// filtered by wharf.host across namespaces, and one over Nodes), never
// from polling: List and Inspect read the cache, and Start and Stop wait
// on it.
//
// Restarts are Kubernetes' (restartPolicy Always): a container that exits
// is restarted by its kubelet, so its Pod stays Running, and the driver
// reports its restartCount. A Pod that failed (evicted, or Failed) or
// whose node is gone is reported exited; Start then replaces it with a new
// Pod of the same name. A Pod that waits for a node or its image is
// pending, never failed for that alone. Readiness is the Pod's Ready
// condition, driven by a readiness probe made from the app's health check
// (driver.Readiness); addresses are PodIP:port, reachable as they are.
//
// The cluster's capacity is the allocatable CPU and memory of its nodes
// that are Ready and not cordoned (driver.CapacityReporter). Logs come
// from the Pod log API with timestamps; Kubernetes interleaves stdout and
// stderr in one stream, so every line is reported as stdout.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wharf-platform/wharf/agent/driver"
)

// Name is the driver's name as --driver spells it.
const Name = "kubernetes"

// Labels every Pod of this driver carries; LabelHost scopes the informers
// to one agent. LabelTenant also marks the namespaces the driver made.
const (
	LabelInstance = "wharf.instance"
	LabelApp      = "wharf.app"
	LabelTenant   = "wharf.tenant"
	LabelHost     = "wharf.host"
	LabelVersion  = "wharf.version"
)

// containerName is the name of the one container of every Pod.
const containerName = "app"

// NamespacePrefix starts the name of every tenant's namespace.
const NamespacePrefix = "wharf-"

// Config configures a Driver.
type Config struct {
	// HostID is the agent's host id, put on every Pod as wharf.host.
	// Required.
	HostID string
	// Kubeconfig is the path of a kubeconfig file. "": the in-cluster
	// config (a Pod's service account), when KUBERNETES_SERVICE_HOST is
	// set.
	Kubeconfig string
	// REST, when set, is used instead of Kubeconfig.
	REST *rest.Config
	// Labels are put on every Pod besides the wharf.* ones (which win on
	// a clash). Nil: none.
	Labels map[string]string
	// StartWait bounds how long Start waits for a new Pod to run before
	// it reports it pending (the agent then waits for it without
	// blocking its other instances). Zero: 30 s. Negative: Start does
	// not wait; it reports the Pod as made, and the caller looks again
	// with Inspect (the agent, which starts its instances one after
	// another, so that a thousand Pods waiting for nodes do not hold
	// each other up).
	StartWait time.Duration
	// SyncTimeout bounds how long New waits for the informers' first
	// lists. Zero: 30 s.
	SyncTimeout time.Duration
	// Logger receives the driver's diagnostics. Nil: slog.Default().
	Logger *slog.Logger
}

// Validate reports a Config that New would refuse.
func (c Config) Validate() error {
	if c.HostID == "" {
		return errors.New("kubernetes: HostID is required")
	}
	if c.REST == nil && c.Kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return errors.New("kubernetes: --kubeconfig is required outside a cluster (KUBERNETES_SERVICE_HOST is not set)")
	}
	return nil
}

// RESTConfig loads the client configuration: the kubeconfig at path, or
// the in-cluster config when path is "".
func RESTConfig(path string) (*rest.Config, error) {
	if path == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes: in-cluster config: %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: kubeconfig %s: %w", path, err)
	}
	return c, nil
}

// Driver runs instances as Pods of one cluster. It is safe for concurrent
// use.
type Driver struct {
	cfg       Config
	log       *slog.Logger
	cs        kubernetes.Interface
	rc        *rest.Config // for the exec subresource's streams
	pods      cache.SharedIndexInformer
	nodes     corelisters.NodeLister
	factories []informers.SharedInformerFactory
	stop      chan struct{}
	closeOnce sync.Once

	// changed is closed, and replaced, whenever a Pod of this host
	// changes: waiters re-read the cache.
	mu         sync.Mutex
	changed    chan struct{}
	namespaces map[string]bool // tenant namespaces known to exist
	starting   map[string]*instanceLock

	capacity capacityWatch
	metrics  *podMetrics
}

var (
	_ driver.Driver           = (*Driver)(nil)
	_ driver.Readiness        = (*Driver)(nil)
	_ driver.CapacityReporter = (*Driver)(nil)
)

// byInstance indexes Pods by their instance id (their wharf.instance).
const byInstance = "instance"

// New connects to the cluster, starts the informers and waits for their
// first lists. Close stops them.
func New(cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	rc := cfg.REST
	if rc == nil {
		var err error
		if rc, err = RESTConfig(cfg.Kubeconfig); err != nil {
			return nil, err
		}
	}
	rc = rest.CopyConfig(rc)
	if rc.UserAgent == "" {
		rc.UserAgent = "wharf-agent"
	}
	// The defaults (5 qps) would make a deployment of many instances wait
	// on the client, not on the cluster.
	if rc.QPS == 0 {
		rc.QPS, rc.Burst = 50, 100
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client: %w", err)
	}
	d := &Driver{cfg: cfg, log: log, cs: cs, rc: rc, stop: make(chan struct{}), changed: make(chan struct{}),
		namespaces: map[string]bool{}, starting: map[string]*instanceLock{}}
	d.capacity.changed = make(chan struct{}, 1)

	host := labels.Set{LabelHost: cfg.HostID}.AsSelector().String()
	podFactory := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = host }))
	d.pods = podFactory.Core().V1().Pods().Informer()
	if err := d.pods.AddIndexers(cache.Indexers{byInstance: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Labels[LabelInstance] != "" {
			return []string{p.Labels[LabelInstance]}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, fmt.Errorf("kubernetes: pod index: %w", err)
	}
	if _, err := d.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { d.broadcast() },
		UpdateFunc: func(any, any) { d.broadcast() },
		DeleteFunc: func(any) { d.broadcast() },
	}); err != nil {
		return nil, fmt.Errorf("kubernetes: pod events: %w", err)
	}
	nodeFactory := informers.NewSharedInformerFactory(cs, 0)
	nodeInformer := nodeFactory.Core().V1().Nodes()
	d.nodes = nodeInformer.Lister()
	if _, err := nodeInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { d.nodesChanged() },
		UpdateFunc: func(any, any) { d.nodesChanged() },
		DeleteFunc: func(any) { d.nodesChanged() },
	}); err != nil {
		return nil, fmt.Errorf("kubernetes: node events: %w", err)
	}
	d.factories = []informers.SharedInformerFactory{podFactory, nodeFactory}
	for _, f := range d.factories {
		f.Start(d.stop)
	}
	timeout := cfg.SyncTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, f := range d.factories {
		if err := f.WaitForCacheSyncWithContext(ctx).AsError(); err != nil {
			d.Close()
			return nil, fmt.Errorf("kubernetes: list pods and nodes of %s: %w", rc.Host, err)
		}
	}
	d.nodesChanged()
	d.metrics = newPodMetrics(rc, log)
	return d, nil
}

// Close stops the informers. Pods keep running.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		close(d.stop)
		for _, f := range d.factories {
			f.Shutdown()
		}
	})
	return nil
}

// Name returns "kubernetes".
func (d *Driver) Name() string { return Name }

// Client returns the driver's clientset (tests look at what it made).
func (d *Driver) Client() kubernetes.Interface { return d.cs }

// Ready reports the Pod's Ready condition, as Inspect put it in st.
func (d *Driver) Ready(st driver.Status) bool { return st.Ready }

// broadcast wakes everything that waits for a Pod to change.
func (d *Driver) broadcast() {
	d.mu.Lock()
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// watch returns a channel closed at the next change of a Pod.
func (d *Driver) watch() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

// cached returns the Pod of instance id from the informer's cache, nil
// when there is none. When two Pods claim one instance (which only a hand
// edit makes), the one not being deleted wins.
func (d *Driver) cached(id string) *corev1.Pod {
	objs, err := d.pods.GetIndexer().ByIndex(byInstance, id)
	if err != nil {
		return nil
	}
	var found *corev1.Pod
	for _, o := range objs {
		p, ok := o.(*corev1.Pod)
		if !ok || p.Name != id {
			continue
		}
		if found == nil || found.DeletionTimestamp != nil {
			found = p
		}
	}
	return found
}

// waitPod waits until cond holds for the cached Pod of id (nil when there
// is none), ctx ends or timeout passes; it returns the last Pod seen and
// whether cond held.
func (d *Driver) waitPod(ctx context.Context, id string, timeout time.Duration, cond func(*corev1.Pod) bool) (*corev1.Pod, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ch := d.watch()
		p := d.cached(id)
		if cond(p) {
			return p, true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return p, false
		case <-deadline.C:
			return p, false
		case <-d.stop:
			return p, false
		}
	}
}

// Inspect reports one instance from the cache, or driver.ErrNotFound.
func (d *Driver) Inspect(_ context.Context, id string) (driver.Status, error) {
	p := d.cached(id)
	if p == nil {
		return driver.Status{}, fmt.Errorf("kubernetes: %s: %w", id, driver.ErrNotFound)
	}
	return statusOf(p, d.nodeState(p)), nil
}

// List reports every Pod of this host from the cache.
func (d *Driver) List(context.Context) ([]driver.Status, error) {
	var out []driver.Status
	for _, o := range d.pods.GetStore().List() {
		p, ok := o.(*corev1.Pod)
		if !ok || p.Labels[LabelInstance] != p.Name {
			continue
		}
		out = append(out, statusOf(p, d.nodeState(p)))
	}
	return out, nil
}
